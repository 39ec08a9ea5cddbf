"""ValidateStateMachineDefinition: really check an Amazon States Language definition.

Structural rules (JSON, StartAt, state types, Next/End, transition targets, reachability, nested
Parallel/Map machines) are checked here with AWS's diagnostic codes and JSON-pointer locations;
when they pass, moto's ASL grammar parser gets the last word on everything else. The walk
itself (nested scopes, transitions, reachability) is release_tooling.asl's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .. import asl

STATE_TYPES = asl.STATE_TYPES
_TERMINAL = ("Succeed", "Fail", "Choice")  # never take Next/End (Choice uses Choices/Default)
_WAIT_FIELDS = ("Seconds", "Timestamp", "SecondsPath", "TimestampPath")
_SCHEMA = "SCHEMA_VALIDATION_FAILED"


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
        doc = asl.parse(definition)
    except asl.AslError as exc:
        return [Diagnostic("INVALID_JSON_DESCRIPTION", f"Invalid JSON: {exc}", "/")]
    if not isinstance(doc, dict):
        return [Diagnostic(_SCHEMA, "The definition must be a JSON object", "/")]
    diagnostics = []
    for scope in asl.scopes(doc):
        diagnostics += _validate_scope(scope)
    if not diagnostics and grammar_check is not None:
        problem = grammar_check(definition)
        if problem:
            diagnostics.append(Diagnostic(_SCHEMA, problem, "/"))
    return diagnostics


def _validate_scope(scope: asl.Scope) -> list[Diagnostic]:
    """StartAt/States of one machine (top level, branch or Map processor), its states, and
    reachability; the model visits nested machines as scopes of their own."""
    base = scope.pointer
    if not isinstance(scope.doc, Mapping):
        field = "A branch" if scope.owner and scope.owner.type == "Parallel" else "The processor"
        return [Diagnostic(_SCHEMA, f"{field} must be an object with StartAt and States", base)]
    start, states = scope.doc.get("StartAt"), scope.doc.get("States")
    missing = [f for f, v in (("StartAt", start), ("States", states)) if v is None]
    if missing:
        return [Diagnostic(_SCHEMA, f"These fields are required: {missing}", base or "/")]
    out: list[Diagnostic] = []
    if not isinstance(start, str):
        out.append(Diagnostic(_SCHEMA, "The field 'StartAt' must be a string", f"{base}/StartAt"))
    if not isinstance(states, dict) or not states:
        message = "The field 'States' must be a non-empty object"
        return [*out, Diagnostic(_SCHEMA, message, f"{base}/States")]
    if isinstance(start, str) and start not in states:
        out.append(
            Diagnostic(
                "MISSING_TRANSITION_TARGET", f"Missing 'Next' target: {start}", f"{base}/StartAt"
            )
        )
    for state in scope.states.values():
        out += _validate_state(state, states)
    if isinstance(start, str) and start in states:
        out += [
            Diagnostic("UNREACHABLE_STATE", f"State '{state.name}' is not reachable", state.pointer)
            for state in scope.unreachable()
        ]
    return out


def _validate_state(state: asl.State, names: Mapping) -> list[Diagnostic]:
    loc, definition, kind = state.pointer, state.definition, state.type
    if not isinstance(definition, dict):
        return [Diagnostic(_SCHEMA, "A state must be a JSON object", loc)]
    if kind not in STATE_TYPES:
        message = f"The field 'Type' must be one of {list(STATE_TYPES)}, got {kind!r}"
        return [Diagnostic(_SCHEMA, message, f"{loc}/Type")]
    out: list[Diagnostic] = []
    if kind not in _TERMINAL and ("Next" in definition) == (definition.get("End") is True):
        out.append(Diagnostic(_SCHEMA, "Exactly one of 'Next' or 'End: true' is required", loc))
    if kind == "Task" and "Resource" not in definition:
        out.append(Diagnostic(_SCHEMA, "These fields are required: [Resource]", loc))
    if kind == "Wait" and sum(f in definition for f in _WAIT_FIELDS) != 1:
        message = f"A Wait state needs exactly one of {list(_WAIT_FIELDS)}"
        out.append(Diagnostic(_SCHEMA, message, loc))
    if kind == "Choice":
        choices = definition.get("Choices")
        if not isinstance(choices, list) or not choices:
            message = "The field 'Choices' must be a non-empty array"
            out.append(Diagnostic(_SCHEMA, message, f"{loc}/Choices"))
    catchers = definition.get("Catch") or []
    for i, catcher in enumerate(catchers if isinstance(catchers, list) else []):
        if not isinstance(catcher, dict) or not catcher.get("ErrorEquals"):
            continue  # reported with the missing Next below
        if "States.ALL" in catcher["ErrorEquals"] and i != len(catchers) - 1:
            message = "States.ALL must appear alone in the last Catcher"
            out.append(Diagnostic(_SCHEMA, message, f"{loc}/Catch/{i}/ErrorEquals"))
    for transition in state.transitions():
        if transition.kind in ("choice", "catch") and transition.target is None:
            fields = "[Next]" if transition.kind == "choice" else "[ErrorEquals, Next]"
            where = loc + transition.pointer.removesuffix("/Next")
            out.append(Diagnostic(_SCHEMA, f"These fields are required: {fields}", where))
        elif transition.kind == "catch" and not transition.entry.get("ErrorEquals"):
            where = loc + transition.pointer.removesuffix("/Next")
            out.append(Diagnostic(_SCHEMA, "These fields are required: [ErrorEquals, Next]", where))
        elif transition.target not in names:
            message = f"Missing 'Next' target: {transition.target}"
            out.append(Diagnostic("MISSING_TRANSITION_TARGET", message, loc + transition.pointer))
    retriers = definition.get("Retry") or []
    for i, retrier in enumerate(retriers if isinstance(retriers, list) else []):
        if not isinstance(retrier, dict) or not retrier.get("ErrorEquals"):
            out.append(
                Diagnostic(_SCHEMA, "These fields are required: [ErrorEquals]", f"{loc}/Retry/{i}")
            )
    if kind == "Parallel" and not state.scopes():
        out.append(Diagnostic(_SCHEMA, "The field 'Branches' must be a non-empty array", loc))
    if kind == "Map" and not state.scopes():
        out.append(Diagnostic(_SCHEMA, "These fields are required: [ItemProcessor]", loc))
    return out


def moto_grammar_check(definition: str) -> str | None:
    """moto's ASL parser (the one that runs executions): None when it accepts the definition."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    try:
        AmazonStateLanguageParser.parse(definition)
    except Exception as exc:  # noqa: BLE001 - every parser failure is a validation finding
        return f"{type(exc).__name__}: {exc}"
    return None
