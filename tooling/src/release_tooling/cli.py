"""`release-tooling <command> ...`: one entry point for every job of the package.

Each command is its own module with its own `main(argv)`; this only dispatches, after checking that
the repository follows this package's release contract.
"""

from __future__ import annotations

import importlib
import sys

from . import __version__, project

# command -> (module, what it does)
COMMANDS = {
    "package": ("package", "build the Lambda zips and manifest, or upload a release"),
    "terraform": ("terraform", "init/validate/plan/apply/drift both Terraform roots"),
    "plan-comment": ("plan_comment", "render and post the pull request's plan comment"),
    "plan-review": ("plan_review", "record the reviewed plan; on merge, compare with it"),
    "release-wait": ("wait_for_release", "find a commit's release and follow it to the end"),
    "approve": ("approve", "approve or reject a release waiting for a person"),
    "alias-drift": ("alias_drift", "aliases changed outside the pipeline since the last release"),
    "template-drift": ("template_drift", "template commits newer than this repository's"),
    "check-asl": ("check_asl", "check the state machine definition"),
    "diagram": ("asl_to_mermaid", "render the state machine as the README's Mermaid diagram"),
    "policy-lint": ("policy_lint", "parliament and cloudsplaining over the rendered IAM policies"),
    "local": ("local", "the local rehearsal: up, release, plan, status, down, demo, bench"),
}


def usage() -> str:
    lines = [f"usage: release-tooling COMMAND [ARGS]  (serverless-release-tooling {__version__})"]
    lines.append("")
    lines += [f"  {name:<13} {what}" for name, (_, what) in COMMANDS.items()]
    lines += ["", "`release-tooling COMMAND --help` shows a command's arguments."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0
    if args[0] == "--version":
        print(__version__)
        return 0
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        print(f"release-tooling: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return 2
    try:
        project.require_repository()
        project.check_schema()
    except project.ProjectError as exc:
        print(f"release-tooling: {exc}", file=sys.stderr)
        return 1
    module = importlib.import_module(f"release_tooling.{COMMANDS[command][0]}")
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
