#!/usr/bin/env python3
"""Static checks for state_machine.asl.json beyond "is it valid ASL".

Renders the Terraform templatefile placeholders (${name}) with dummy ARNs, then checks: valid
JSON; StartAt and every Next/Default/Choice/Catch target exists; every state is reachable;
non-terminal states say where to go; every Choice has a Default; every Task retries the Lambda
service errors and has a Catch; States.ALL is alone and last in Retry/Catch; Catch results go to
$.error; Fail states name an error and cause; top-level TimeoutSeconds is set. The states
inside Parallel branches and Map processors (ItemProcessor or Iterator) get the same checks,
each branch being its own machine (its own StartAt; transitions stay inside it).

Each problem prints as one line naming the state (a nested one with its scope, e.g.
"State Branch 1 of Fanout › Notify: Task has no Retry"); exit status 1 if there is any.

  release-tooling check-asl [FILE] [--with-asl-validator] [--template-vars]
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from . import asl, project
from .asl import render, template_vars

__all__ = ["check_text", "find_problems", "main", "reachable", "render", "targets", "template_vars"]

DEFAULT_FILE = project.ROOT / "state_machine.asl.json"
ASL_VALIDATOR = ["npx", "--yes", "asl-validator@4.0.0"]
LAMBDA_RETRY_ERRORS = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}
STATE_TYPES = set(asl.STATE_TYPES)
TERMINAL = set(asl.TERMINAL_TYPES)
CATCH_RESULT_PATH = "$.error"


def targets(state: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """(where, target) for every transition out of a state."""
    for transition in asl.transitions(state):
        yield transition.field, transition.target


def _check_error_list(name: str, field: str, entries: Any) -> list[str]:
    problems = []
    if not isinstance(entries, list) or not entries:
        return [f"State {name}: {field} must be a non-empty list"]
    for i, entry in enumerate(entries):
        errors = entry.get("ErrorEquals") if isinstance(entry, Mapping) else None
        if not isinstance(errors, list) or not errors:
            problems.append(f"State {name}: {field}[{i}] has no ErrorEquals")
            continue
        if "States.ALL" in errors:
            if len(errors) != 1:
                problems.append(f"State {name}: {field}[{i}] combines States.ALL with other errors")
            if i != len(entries) - 1:
                problems.append(f"State {name}: {field}[{i}] States.ALL must be in the last entry")
    return problems


def check_task(name: str, state: Mapping[str, Any]) -> list[str]:
    problems = []
    if "Retry" not in state:
        problems.append(f"State {name}: Task has no Retry")
    else:
        problems += _check_error_list(name, "Retry", state["Retry"])
        retried = {
            e for r in state["Retry"] if isinstance(r, Mapping) for e in r.get("ErrorEquals") or []
        }
        if "lambda:invoke" in str(state.get("Resource", "")) and not (
            retried >= LAMBDA_RETRY_ERRORS or "States.ALL" in retried
        ):
            missing = ", ".join(sorted(LAMBDA_RETRY_ERRORS - retried))
            problems.append(f"State {name}: Retry does not cover {missing}")
    if "Catch" not in state:
        problems.append(f"State {name}: Task has no Catch")
    else:
        problems += _check_error_list(name, "Catch", state["Catch"])
        catchers = state["Catch"] if isinstance(state["Catch"], list) else []
        if catchers and not any(
            isinstance(c, Mapping) and c.get("ErrorEquals") == ["States.ALL"] for c in catchers
        ):
            problems.append(f"State {name}: Catch has no States.ALL catcher")
        for i, catcher in enumerate(catchers):
            if isinstance(catcher, Mapping) and catcher.get("ResultPath") != CATCH_RESULT_PATH:
                problems.append(
                    f"State {name}: Catch[{i}] ResultPath must be {CATCH_RESULT_PATH!r} "
                    f"(got {catcher.get('ResultPath')!r})"
                )
    return problems


def check_state(name: str, state: Any, names: set[str]) -> list[str]:
    if not isinstance(state, Mapping):
        return [f"State {name}: must be an object"]
    kind = state.get("Type")
    if kind not in STATE_TYPES:
        return [f"State {name}: unknown Type {kind!r}"]
    problems = []
    for where, target in targets(state):
        if target is None:
            problems.append(f"State {name}: {where} is missing (it must name a state)")
        elif target not in names:
            problems.append(f"State {name}: {where} points to unknown state {target!r}")
    if kind == "Choice":
        if not state.get("Choices"):
            problems.append(f"State {name}: Choice has no Choices")
        if "Default" not in state:
            problems.append(f"State {name}: Choice has no Default")
    elif kind not in TERMINAL and "Next" not in state and state.get("End") is not True:
        problems.append(f"State {name}: {kind} has neither Next nor End")
    if kind == "Task":
        problems += check_task(name, state)
    if kind == "Wait":
        given = [k for k in ("Seconds", "SecondsPath", "Timestamp", "TimestampPath") if k in state]
        if len(given) != 1:
            problems.append(
                f"State {name}: Wait needs exactly one of "
                "Seconds/SecondsPath/Timestamp/TimestampPath"
            )
    says_what = {"Error", "ErrorPath"} & state.keys()
    says_why = {"Cause", "CausePath"} & state.keys()
    if kind == "Fail" and not (says_what and says_why):
        problems.append(
            f"State {name}: Fail must say what failed (Error/ErrorPath) and why (Cause/CausePath)"
        )
    return problems


def reachable(doc: Mapping[str, Any]) -> set[str]:
    """The top-level states StartAt leads to."""
    return asl.top(doc).reachable()


def check_scope(scope: asl.Scope) -> list[str]:
    """A nested machine (Parallel branch, Map processor): StartAt and States."""
    where = f"State {scope.label}"
    if not isinstance(scope.doc, Mapping):
        return [f"{where}: must be an object with StartAt and States"]
    if not scope.states:
        return [f"{where}: States must be a non-empty object"]
    if scope.start_at not in scope.states:
        return [f"{where}: StartAt points to unknown state {scope.start_at!r}"]
    return []


def check_nesting(state: asl.State) -> list[str]:
    """A Parallel needs Branches, a Map an ItemProcessor (or the older Iterator)."""
    if state.type == "Parallel" and not state.scopes():
        return [f"State {state.where}: Parallel needs a non-empty Branches list"]
    if state.type == "Map" and not state.scopes():
        return [f"State {state.where}: Map needs an ItemProcessor (or Iterator)"]
    return []


def find_problems(doc: Any) -> list[str]:
    """Every problem in a parsed state machine, one line each; states inside Parallel branches
    and Map processors are named with their scope, e.g. "State Branch 1 of Fanout › Notify"."""
    if not isinstance(doc, Mapping):
        return ["State machine: top level must be a JSON object"]
    states = doc.get("States")
    if not isinstance(states, Mapping) or not states:
        return ["State machine: States must be a non-empty object"]
    problems = []
    timeout = doc.get("TimeoutSeconds")
    if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout <= 0:
        problems.append("State machine: top-level TimeoutSeconds must be a positive integer")
    if not doc.get("Comment"):
        problems.append("State machine: top-level Comment is missing")
    if doc.get("StartAt") not in states:
        problems.append(f"State machine: StartAt points to unknown state {doc.get('StartAt')!r}")
    for scope in asl.scopes(doc):
        if scope.owner is not None:
            problems += check_scope(scope)
        names = set(scope.states)
        for state in scope.states.values():
            problems += check_state(state.where, state.definition, names)
            if isinstance(state.definition, Mapping):
                problems += check_nesting(state)
        for state in scope.unreachable():
            problems.append(f"State {state.where}: unreachable from StartAt")
    return problems


def check_text(text: str) -> list[str]:
    rendered = render(text)
    try:
        doc = asl.parse(rendered)
    except asl.AslError as exc:
        return [f"State machine: {exc}"]
    problems = find_problems(doc)
    if "${" in rendered:
        problems.append("State machine: unrendered '${' left after substituting placeholders")
    return problems


def run_asl_validator(rendered: str, command: list[str]) -> list[str]:
    if shutil.which(command[0]) is None:
        return [f"asl-validator: {command[0]} not found on PATH (install Node.js)"]
    with tempfile.NamedTemporaryFile("w", suffix=".asl.json", delete=False) as handle:
        handle.write(rendered)
        path = Path(handle.name)
    try:
        proc = subprocess.run(  # noqa: S603 - fixed, pinned command
            [*command, "--json-path", str(path)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    finally:
        path.unlink(missing_ok=True)
    if proc.returncode == 0:
        return []
    output = (proc.stdout + proc.stderr).strip().splitlines()
    return [f"asl-validator: {line}" for line in output if "npm warn" not in line] or [
        f"asl-validator: exit status {proc.returncode}"
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", type=Path, default=DEFAULT_FILE)
    parser.add_argument(
        "--template-vars",
        action="store_true",
        help="print the ${...} placeholders templatefile must supply, then exit",
    )
    parser.add_argument(
        "--with-asl-validator",
        action="store_true",
        help="also run the pinned npm asl-validator on the rendered definition",
    )
    parser.add_argument(
        "--asl-validator",
        default=None,
        help="asl-validator command to use instead of 'npx --yes asl-validator@4.0.0'",
    )
    args = parser.parse_args(argv)
    try:
        text = args.file.read_text(encoding="utf-8")
    except OSError as exc:
        print(f"State machine: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 1
    if args.template_vars:
        print("\n".join(template_vars(text)))
        return 0
    problems = check_text(text)
    if args.with_asl_validator and not any(
        p.startswith("State machine: invalid JSON") for p in problems
    ):
        command = args.asl_validator.split() if args.asl_validator else ASL_VALIDATOR
        problems += run_asl_validator(render(text), command)
    for problem in problems:
        print(f"{args.file.name}: {problem}", file=sys.stderr)
    if not problems:
        print(f"{args.file.name}: OK")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
