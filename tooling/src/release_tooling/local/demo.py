"""`local demo`: what the template's `make demo` runs in a freshly baked project.

Up, a good release that reaches production, a deliberately broken release that the smoke tests
stop and roll back, down; all in a scratch copy of the repository, so the working tree's
lambdas/app/handler.py is never edited and an environment already up is left alone.
"""

from __future__ import annotations

import json

from .common import ROOT, LocalError, ScratchCopy, say

BROKEN_APP = """

def handler(event, context):  # demo: a release that fails on every call
    raise RuntimeError("demo: this release is broken")
"""


def break_app(copy: ScratchCopy) -> None:
    """The demo's broken change, made to the copy's handler (never the working tree's)."""
    copy.handler.write_text(copy.handler.read_text(encoding="utf-8") + BROKEN_APP, encoding="utf-8")


def cmd_demo(args) -> int:
    say(f"Copying {ROOT.name} to a scratch directory: the demo never edits the working tree")
    copy = ScratchCopy("local-demo-")
    try:
        if copy.local("up", f"--minute-seconds={args.minute_seconds}", capture=False).returncode:
            raise LocalError("local up failed in the demo's copy; see the output above")
        say("\n== 1. Release the generated service: it must reach production")
        if copy.local("release", capture=False).returncode != 0:
            raise LocalError("the first release did not reach production; see the output above")
        say("\n== 2. Release a broken change (the handler raises): smoke tests catch it, rollback")
        break_app(copy)
        broken = copy.local("release", capture=False).returncode
        status = copy.local("status", "--json")
        if status.returncode != 0:
            raise LocalError(f"local status failed in the demo's copy:\n{status.stdout}")
        ended = json.loads(status.stdout)["aliases"]
    finally:
        copy.remove()
    say("\n== Where each alias ended")
    for alias, version in ended.items():
        say(f"  {alias:<10} version {version}")
    if broken == 0:
        raise LocalError("the broken release reached production; the pipeline did not protect it")
    if broken != 1:
        raise LocalError("the broken release could not be run; see the output above")
    say("The broken release was stopped and rolled back; production kept the good version.")
    return 0
