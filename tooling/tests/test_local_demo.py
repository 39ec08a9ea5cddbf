"""`release-tooling local demo` breaks the app in a scratch copy, never in the working tree.

The copy's `release-tooling local` child processes are replaced by a recorder (the real ones take
minutes); everything else, the copy and the edit included, is the demo's own code.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import pytest

from release_tooling import local
from release_tooling.local import common, demo


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> dict:
    """The commands the demo ran in its copy, with the copy's handler as each one saw it."""
    seen: dict = {"runs": [], "broken_release": 1}

    def fake_local(self, *args: str, capture: bool = True) -> subprocess.CompletedProcess:
        seen["copy"] = self.path
        seen["runs"].append((args, self.handler.read_bytes()))
        returncode, stdout = 0, ""
        if args[0] == "release" and demo.BROKEN_APP.encode() in self.handler.read_bytes():
            returncode = seen["broken_release"]
        if args[0] == "status":
            stdout = json.dumps({"aliases": {"staging": "1", "production": "1"}})
        return subprocess.CompletedProcess(["release-tooling", "local", *args], returncode, stdout)

    monkeypatch.setattr(common.ScratchCopy, "local", fake_local)
    return seen


def handler() -> Path:
    return common.ROOT / "lambdas" / "app" / "handler.py"


def test_the_demo_edits_only_its_scratch_copy(recorded: dict, capsys) -> None:
    before = handler().read_bytes()

    assert demo.cmd_demo(argparse.Namespace(minute_seconds=0.2)) == 0

    assert handler().read_bytes() == before  # the working tree's handler, byte for byte
    commands = [args[0] for args, _ in recorded["runs"]]
    assert commands == ["up", "release", "release", "status"]
    (_, first), (_, second) = [run for run in recorded["runs"] if run[0][0] == "release"]
    assert first == before  # the copy starts as the working tree...
    assert second == before + demo.BROKEN_APP.encode()  # ...and only the copy is broken
    assert recorded["copy"] != common.ROOT
    assert not recorded["copy"].exists()  # the copy is removed afterwards
    assert "production kept the good version" in capsys.readouterr().out


def test_a_broken_release_reaching_production_fails_the_demo(recorded: dict) -> None:
    recorded["broken_release"] = 0
    before = handler().read_bytes()
    with pytest.raises(local.LocalError, match="the broken release reached production"):
        demo.cmd_demo(argparse.Namespace(minute_seconds=0.2))
    assert handler().read_bytes() == before
    assert not recorded["copy"].exists()


def test_a_broken_release_that_could_not_run_is_not_a_rollback(recorded: dict) -> None:
    recorded["broken_release"] = 2  # release-tooling local's exit code for an error
    with pytest.raises(local.LocalError, match="could not be run"):
        demo.cmd_demo(argparse.Namespace(minute_seconds=0.2))
