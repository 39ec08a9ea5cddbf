"""ValidateStateMachineDefinition: really check an Amazon States Language definition.

Structural rules (JSON, StartAt, state types, Next/End, transition targets, reachability, nested
Parallel/Map machines) are checked here with AWS's diagnostic codes and JSON-pointer locations;
when they pass, moto's ASL grammar parser gets the last word on everything else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

STATE_TYPES = ("Task", "Pass", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map")
_TERMINAL = ("Succeed", "Fail", "Choice")  # never take Next/End (Choice uses Choices/Default)
_WAIT_FIELDS = ("Seconds", "Timestamp", "SecondsPath", "TimestampPath")


@dataclass(frozen=True)
class Diagnostic:
    code: str
    message: str
    location: str
    severity: str = "ERROR"

    def to_api(self) -> dict:
        return {
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "location": self.location,
        }


def validate_definition(definition: str, grammar_check=None) -> list[Diagnostic]:
    try:
        doc = json.loads(definition)
    except ValueError as exc:
        return [Diagnostic("INVALID_JSON_DESCRIPTION", f"Invalid JSON: {exc}", "/")]
    if not isinstance(doc, dict):
        return [Diagnostic("SCHEMA_VALIDATION_FAILED", "The definition must be a JSON object", "/")]
    diagnostics = _validate_machine(doc, "")
    if not diagnostics and grammar_check is not None:
        problem = grammar_check(definition)
        if problem:
            diagnostics.append(Diagnostic("SCHEMA_VALIDATION_FAILED", problem, "/"))
    return diagnostics


def _validate_machine(doc: dict, base: str) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    start = doc.get("StartAt")
    states = doc.get("States")
    missing = [f for f, v in (("StartAt", start), ("States", states)) if v is None]
    if missing:
        return [
            Diagnostic(
                "SCHEMA_VALIDATION_FAILED", f"These fields are required: {missing}", base or "/"
            )
        ]
    if not isinstance(start, str):
        out.append(
            Diagnostic(
                "SCHEMA_VALIDATION_FAILED",
                "The field 'StartAt' must be a string",
                f"{base}/StartAt",
            )
        )
    if not isinstance(states, dict) or not states:
        return out + [
            Diagnostic(
                "SCHEMA_VALIDATION_FAILED",
                "The field 'States' must be a non-empty object",
                f"{base}/States",
            )
        ]
    if isinstance(start, str) and start not in states:
        out.append(
            Diagnostic(
                "MISSING_TRANSITION_TARGET", f"Missing 'Next' target: {start}", f"{base}/StartAt"
            )
        )

    edges: dict[str, list[str]] = {}
    for name, state in states.items():
        loc = f"{base}/States/{name}"
        if not isinstance(state, dict):
            out.append(Diagnostic("SCHEMA_VALIDATION_FAILED", "A state must be a JSON object", loc))
            continue
        kind = state.get("Type")
        if kind not in STATE_TYPES:
            out.append(
                Diagnostic(
                    "SCHEMA_VALIDATION_FAILED",
                    f"The field 'Type' must be one of {list(STATE_TYPES)}, got {kind!r}",
                    f"{loc}/Type",
                )
            )
            continue
        targets: list[tuple[str, str]] = []
        if kind not in _TERMINAL:
            has_next, has_end = "Next" in state, state.get("End") is True
            if has_next == has_end:
                out.append(
                    Diagnostic(
                        "SCHEMA_VALIDATION_FAILED",
                        "Exactly one of 'Next' or 'End: true' is required",
                        loc,
                    )
                )
            if has_next:
                targets.append((state["Next"], f"{loc}/Next"))
        if kind == "Task" and "Resource" not in state:
            out.append(
                Diagnostic("SCHEMA_VALIDATION_FAILED", "These fields are required: [Resource]", loc)
            )
        if kind == "Wait" and sum(f in state for f in _WAIT_FIELDS) != 1:
            out.append(
                Diagnostic(
                    "SCHEMA_VALIDATION_FAILED",
                    f"A Wait state needs exactly one of {list(_WAIT_FIELDS)}",
                    loc,
                )
            )
        if kind == "Choice":
            choices = state.get("Choices")
            if not isinstance(choices, list) or not choices:
                out.append(
                    Diagnostic(
                        "SCHEMA_VALIDATION_FAILED",
                        "The field 'Choices' must be a non-empty array",
                        f"{loc}/Choices",
                    )
                )
                choices = []
            for i, rule in enumerate(choices):
                if not isinstance(rule, dict) or "Next" not in rule:
                    out.append(
                        Diagnostic(
                            "SCHEMA_VALIDATION_FAILED",
                            "These fields are required: [Next]",
                            f"{loc}/Choices/{i}",
                        )
                    )
                else:
                    targets.append((rule["Next"], f"{loc}/Choices/{i}/Next"))
            if "Default" in state:
                targets.append((state["Default"], f"{loc}/Default"))
        for i, catcher in enumerate(state.get("Catch") or []):
            if (
                not isinstance(catcher, dict)
                or "Next" not in catcher
                or not catcher.get("ErrorEquals")
            ):
                out.append(
                    Diagnostic(
                        "SCHEMA_VALIDATION_FAILED",
                        "These fields are required: [ErrorEquals, Next]",
                        f"{loc}/Catch/{i}",
                    )
                )
            else:
                targets.append((catcher["Next"], f"{loc}/Catch/{i}/Next"))
                if "States.ALL" in catcher["ErrorEquals"] and i != len(state["Catch"]) - 1:
                    out.append(
                        Diagnostic(
                            "SCHEMA_VALIDATION_FAILED",
                            "States.ALL must appear alone in the last Catcher",
                            f"{loc}/Catch/{i}/ErrorEquals",
                        )
                    )
        for i, retrier in enumerate(state.get("Retry") or []):
            if not isinstance(retrier, dict) or not retrier.get("ErrorEquals"):
                out.append(
                    Diagnostic(
                        "SCHEMA_VALIDATION_FAILED",
                        "These fields are required: [ErrorEquals]",
                        f"{loc}/Retry/{i}",
                    )
                )
        if kind == "Parallel":
            for i, branch in enumerate(state.get("Branches") or []):
                out.extend(
                    _validate_machine(branch, f"{loc}/Branches/{i}")
                    if isinstance(branch, dict)
                    else [
                        Diagnostic(
                            "SCHEMA_VALIDATION_FAILED",
                            "A branch must be an object",
                            f"{loc}/Branches/{i}",
                        )
                    ]
                )
        if kind == "Map":
            key = "ItemProcessor" if "ItemProcessor" in state else "Iterator"
            sub = state.get(key)
            if isinstance(sub, dict):
                out.extend(_validate_machine(sub, f"{loc}/{key}"))
            else:
                out.append(
                    Diagnostic(
                        "SCHEMA_VALIDATION_FAILED",
                        "These fields are required: [ItemProcessor]",
                        loc,
                    )
                )
        for target, where in targets:
            if target not in states:
                out.append(
                    Diagnostic(
                        "MISSING_TRANSITION_TARGET", f"Missing 'Next' target: {target}", where
                    )
                )
        edges[name] = [t for t, _ in targets if t in states]

    if isinstance(start, str) and start in states:
        seen, todo = set(), [start]
        while todo:
            current = todo.pop()
            if current not in seen:
                seen.add(current)
                todo.extend(edges.get(current, []))
        for name in states:
            if name not in seen:
                out.append(
                    Diagnostic(
                        "UNREACHABLE_STATE",
                        f"State '{name}' is not reachable",
                        f"{base}/States/{name}",
                    )
                )
    return out


def moto_grammar_check(definition: str) -> str | None:
    """moto's ASL parser (the one that runs executions): None when it accepts the definition."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    try:
        AmazonStateLanguageParser.parse(definition)
    except Exception as exc:  # noqa: BLE001 - every parser failure is a validation finding
        return f"{type(exc).__name__}: {exc}"
    return None
