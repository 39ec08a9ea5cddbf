"""Fault rules the harness arms on the embedded endpoint (never inside Lambda code).

A rule targets invocations of one function (optionally one alias/version, optionally events with
given top-level values) and makes them fail the way AWS would fail them:
- "error":         the function raises (FunctionError Unhandled, errorType/errorMessage as set);
- "hang":          the function never returns, so the real timeout fires (Sandbox.Timedout);
- "service-error": the Lambda service answers 500 ServiceException (Step Functions sees
                   Lambda.ServiceException).
A rule with kind "alarm" instead trips the named CloudWatch alarms as soon as a CodeDeploy
deployment to its deployment group starts shifting traffic (an error spike on the new version).
It is a shortcut: without it, alarms are evaluated on the metrics real invocations emit
(alarms.py, metrics.py, traffic.py), and a tripped alarm returns to that state at a later
evaluation, as after SetAlarmState.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Any

INVOKE_ACTIONS = ("error", "hang", "service-error")


class FaultRuleError(ValueError):
    """A fault rule is malformed; the message says which field and why."""


@dataclass
class FaultRule:
    name: str
    kind: str = "invoke"  # "invoke" | "alarm"
    function: str | None = None
    qualifier: str | None = None
    event_match: dict[str, Any] = field(default_factory=dict)
    action: str = "error"
    error_type: str = "InjectedFault"
    error_message: str = "fault injected by the local harness"
    skip: int = 0
    times: int | None = None  # None: every matching call
    deployment_group: str | None = None
    alarms: list[str] = field(default_factory=list)
    fired: int = 0
    seen: int = 0

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> FaultRule:
        known = set(cls.__dataclass_fields__) - {"fired", "seen"}
        unknown = set(raw) - known
        if unknown:
            raise FaultRuleError(
                f"unknown fault rule field(s) {sorted(unknown)}; known: {sorted(known)}"
            )
        if not raw.get("name"):
            raise FaultRuleError("every fault rule needs a 'name'")
        rule = cls(**raw)
        if rule.kind == "invoke":
            if not rule.function:
                raise FaultRuleError(
                    f"rule {rule.name!r}: 'function' is required for kind 'invoke'"
                )
            if rule.action not in INVOKE_ACTIONS:
                raise FaultRuleError(
                    f"rule {rule.name!r}: action must be one of {INVOKE_ACTIONS}, got "
                    f"{rule.action!r}"
                )
        elif rule.kind == "alarm":
            if not rule.deployment_group or not rule.alarms:
                raise FaultRuleError(
                    f"rule {rule.name!r}: kind 'alarm' needs 'deployment_group' and 'alarms'"
                )
        else:
            raise FaultRuleError(
                f"rule {rule.name!r}: kind must be 'invoke' or 'alarm', got {rule.kind!r}"
            )
        return rule

    def _matches_event(self, event: Any) -> bool:
        if not self.event_match:
            return True
        return isinstance(event, dict) and all(
            event.get(k) == v for k, v in self.event_match.items()
        )

    def _take(self) -> bool:
        # Counts a matching call; True when this one is to fail (after `skip`, up to `times`).
        self.seen += 1
        if self.seen <= self.skip:
            return False
        if self.times is not None and self.fired >= self.times:
            return False
        self.fired += 1
        return True


class FaultRegistry:
    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()

    def replace(self, raw_rules: list[dict[str, Any]]) -> None:
        rules = [FaultRule.from_dict(r) for r in raw_rules]
        with self._lock:
            self._rules = rules

    def clear(self) -> None:
        self.replace([])

    def describe(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(r) for r in self._rules]

    def for_invocation(
        self, function_name: str, qualifier: str | None, event: Any
    ) -> FaultRule | None:
        with self._lock:
            for rule in self._rules:
                if rule.kind != "invoke" or rule.function != function_name:
                    continue
                if rule.qualifier is not None and rule.qualifier != qualifier:
                    continue
                if rule._matches_event(event) and rule._take():
                    return rule
        return None

    def alarms_for_deployment(self, deployment_group: str) -> list[str]:
        with self._lock:
            names: list[str] = []
            for rule in self._rules:
                if (
                    rule.kind == "alarm"
                    and rule.deployment_group == deployment_group
                    and rule._take()
                ):
                    names.extend(rule.alarms)
            return names
