"""CodeDeploy Lambda deployments that progress like AWS, on a compressed clock.

Pure parts (AppSpec parsing, deployment configs, shift schedules) are plain functions; the
DeploymentRun drives one deployment against an `Environment` port (alias reads/writes, alarm
states, hook invocation, users' traffic while the alias shifts) so it can be tested without moto.
codedeploy_patch.py provides the moto implementation of that port and the API surface.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
import string
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import yaml

log = logging.getLogger("local_aws.codedeploy")

ACTIVE_STATUSES = ("Created", "Queued", "InProgress", "Baking", "Ready")
HOOK_TIMEOUT_MINUTES = 60  # CodeDeploy waits up to an hour for a Lambda hook to report


class AppSpecError(ValueError):
    """The AppSpec content is not a valid Lambda AppSpec."""


class DeploymentConfigError(ValueError):
    """Unknown or malformed deployment configuration."""


@dataclass(frozen=True)
class AppSpec:
    function_name: str
    alias: str
    current_version: str
    target_version: str
    before_allow_traffic: str | None = None
    after_allow_traffic: str | None = None


def parse_appspec(content: str) -> AppSpec:
    """Parse a Lambda AppSpec (YAML or JSON), naming the offending field on error."""
    try:
        doc = yaml.safe_load(content)
    except yaml.YAMLError as exc:
        raise AppSpecError(f"The AppSpec content cannot be parsed as YAML or JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise AppSpecError("The AppSpec content must be a mapping with 'version' and 'Resources'")
    if str(doc.get("version")) not in ("0.0", "0"):
        raise AppSpecError("The AppSpec 'version' must be 0.0")
    resources = doc.get("Resources")
    if not isinstance(resources, list) or len(resources) != 1 or not isinstance(resources[0], dict):
        raise AppSpecError("The AppSpec 'Resources' must list exactly one Lambda function")
    (resource,) = resources[0].values()
    if not isinstance(resource, dict) or resource.get("Type") != "AWS::Lambda::Function":
        raise AppSpecError("The AppSpec resource 'Type' must be AWS::Lambda::Function")
    props = resource.get("Properties") or {}
    missing = [
        k
        for k in ("Name", "Alias", "CurrentVersion", "TargetVersion")
        if props.get(k) in (None, "")
    ]
    if missing:
        raise AppSpecError(f"The AppSpec resource Properties miss {missing}")
    hooks: dict[str, str] = {}
    for entry in doc.get("Hooks") or []:
        if not isinstance(entry, dict):
            raise AppSpecError("Each AppSpec hook must be a mapping {EventName: FunctionName}")
        for event, fn in entry.items():
            if event not in ("BeforeAllowTraffic", "AfterAllowTraffic"):
                raise AppSpecError(
                    f"Unsupported Lambda lifecycle hook {event!r}; use BeforeAllowTraffic or "
                    "AfterAllowTraffic"
                )
            hooks[event] = str(fn)
    return AppSpec(
        function_name=str(props["Name"]),
        alias=str(props["Alias"]),
        current_version=str(props["CurrentVersion"]),
        target_version=str(props["TargetVersion"]),
        before_allow_traffic=hooks.get("BeforeAllowTraffic"),
        after_allow_traffic=hooks.get("AfterAllowTraffic"),
    )


def appspec_content(revision: dict) -> str:
    """The AppSpec text of a CreateDeployment revision (AppSpecContent or String)."""
    kind = revision.get("revisionType")
    if kind == "AppSpecContent":
        return (revision.get("appSpecContent") or {}).get("content") or ""
    if kind == "String":
        return (revision.get("string") or {}).get("content") or ""
    raise AppSpecError(
        f"Lambda deployments need revisionType AppSpecContent or String, got {kind!r}"
    )


@dataclass(frozen=True)
class TrafficRouting:
    type: str  # AllAtOnce | TimeBasedCanary | TimeBasedLinear
    percentage: int = 100
    interval_minutes: int = 0

    def to_api(self) -> dict:
        if self.type == "TimeBasedCanary":
            return {
                "type": self.type,
                "timeBasedCanary": {
                    "canaryPercentage": self.percentage,
                    "canaryInterval": self.interval_minutes,
                },
            }
        if self.type == "TimeBasedLinear":
            return {
                "type": self.type,
                "timeBasedLinear": {
                    "linearPercentage": self.percentage,
                    "linearInterval": self.interval_minutes,
                },
            }
        return {"type": "AllAtOnce"}

    @classmethod
    def from_api(cls, raw: dict) -> TrafficRouting:
        kind = raw.get("type", "AllAtOnce")
        if kind == "TimeBasedCanary":
            c = raw.get("timeBasedCanary") or {}
            return cls(kind, int(c["canaryPercentage"]), int(c["canaryInterval"]))
        if kind == "TimeBasedLinear":
            c = raw.get("timeBasedLinear") or {}
            return cls(kind, int(c["linearPercentage"]), int(c["linearInterval"]))
        if kind == "AllAtOnce":
            return cls(kind)
        raise DeploymentConfigError(
            "trafficRoutingConfig type must be AllAtOnce, TimeBasedCanary or TimeBasedLinear, "
            f"got {kind!r}"
        )


def _predefined() -> dict[str, TrafficRouting]:
    configs = {"CodeDeployDefault.LambdaAllAtOnce": TrafficRouting("AllAtOnce")}
    for minutes in (5, 10, 15, 30):
        configs[f"CodeDeployDefault.LambdaCanary10Percent{minutes}Minutes"] = TrafficRouting(
            "TimeBasedCanary", 10, minutes
        )
    for minutes in (1, 2, 3, 10):
        unit = "Minute" if minutes == 1 else "Minutes"
        configs[f"CodeDeployDefault.LambdaLinear10PercentEvery{minutes}{unit}"] = TrafficRouting(
            "TimeBasedLinear", 10, minutes
        )
    return configs


PREDEFINED_CONFIGS = _predefined()


def shift_schedule(routing: TrafficRouting) -> list[tuple[int, float]]:
    """(minute offset, fraction of traffic on the target version) steps, ending at 1.0."""
    if routing.type == "AllAtOnce":
        return [(0, 1.0)]
    if not 0 < routing.percentage < 100 or routing.interval_minutes < 1:
        raise DeploymentConfigError(
            f"bad traffic routing {routing}: percentage must be 1-99 and interval >= 1 minute"
        )
    if routing.type == "TimeBasedCanary":
        return [(0, routing.percentage / 100), (routing.interval_minutes, 1.0)]
    steps = math.ceil(100 / routing.percentage)
    return [
        (k * routing.interval_minutes, min((k + 1) * routing.percentage, 100) / 100)
        for k in range(steps)
    ]


def new_deployment_id() -> str:
    return "d-" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(9))


class Environment(Protocol):
    """What a deployment needs from the rest of AWS."""

    def alias_version(self, function_name: str, alias: str) -> tuple[str, dict]: ...
    def version_exists(self, function_name: str, version: str) -> bool: ...
    def set_alias(
        self, function_name: str, alias: str, version: str, weights: dict[str, float]
    ) -> None: ...
    def alarm_states(self, names: list[str]) -> dict[str, str | None]: ...
    def trip_alarms(self, names: list[str], reason: str) -> None: ...
    def invoke_hook(self, function_name: str, payload: dict) -> None: ...
    def injected_alarms(self, group_name: str) -> list[str]: ...
    # Users' traffic to the alias while it shifts (traffic.py); returns what stops it, or None.
    def start_traffic(self, spec: AppSpec) -> Callable[[], None] | None: ...


@dataclass
class GroupSettings:
    name: str
    alarms: list[str] = field(default_factory=list)
    alarms_enabled: bool = False
    ignore_poll_alarm_failure: bool = False
    rollback_events: tuple[
        str, ...
    ] = ()  # DEPLOYMENT_FAILURE, DEPLOYMENT_STOP_ON_ALARM, DEPLOYMENT_STOP_ON_REQUEST


@dataclass
class HookExecution:
    execution_id: str
    event: str
    function_name: str
    status: str = "Pending"


class DeploymentRun:
    """One deployment's lifecycle, run on its own thread."""

    def __init__(
        self,
        deployment_id: str,
        group: GroupSettings,
        revision: dict,
        routing: TrafficRouting,
        env: Environment,
        minute_seconds: float,
        on_rollback,  # callable(run) -> rollback deployment id
    ) -> None:
        self.deployment_id = deployment_id
        self.group = group
        self.revision = revision
        self.routing = routing
        self.env = env
        self.minute_seconds = minute_seconds
        self.on_rollback = on_rollback
        self.record = None  # moto's DeploymentInfo, kept in step for ListDeployments filters
        self._status = "Created"
        self.error_information: dict = {}
        self.rollback_info: dict = {}
        self.start_time: datetime | None = None
        self.complete_time: datetime | None = None
        self.appspec: AppSpec | None = None
        self.hooks: dict[str, HookExecution] = {}
        self.lifecycle: list[dict] = []
        self.lock = threading.RLock()
        self._wake = threading.Event()
        self.shifted = False
        self._stop_traffic: Callable[[], None] | None = None
        self.thread = threading.Thread(
            target=self._run, name=f"codedeploy-{deployment_id}", daemon=True
        )

    # ---- API-facing -------------------------------------------------------------------------
    @property
    def status(self) -> str:
        return self._status

    @status.setter
    def status(self, value: str) -> None:
        self._status = value
        if self.record is not None:
            self.record.status = value
            self.record.start_time = self.start_time
            self.record.complete_time = self.complete_time

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    def start(self) -> None:
        self.thread.start()

    def overview(self) -> dict:
        counts = dict.fromkeys(
            ("Pending", "InProgress", "Succeeded", "Failed", "Skipped", "Ready"), 0
        )
        key = {
            "Created": "Pending",
            "Succeeded": "Succeeded",
            "Failed": "Failed",
            "Stopped": "Failed",
        }.get(self.status, "InProgress")
        counts[key] = 1
        return counts

    def report_hook(self, execution_id: str, status: str) -> None:
        with self.lock:
            hook = self.hooks.get(execution_id)
            if hook is None:
                raise KeyError(execution_id)
            if hook.status in ("Succeeded", "Failed"):
                raise RuntimeError(
                    f"lifecycle event {hook.event} of {self.deployment_id} already completed"
                )
            hook.status = status
        self._wake.set()

    def stop(self, auto_rollback: bool) -> None:
        """StopDeployment: takes effect before this call returns (no alias change after it)."""
        with self.lock:
            if not self.active:
                raise RuntimeError(f"deployment {self.deployment_id} is already {self.status}")
            self._finish(
                "Stopped",
                "MANUAL_STOP",
                "The deployment was stopped by the user.",
                rollback=auto_rollback
                or "DEPLOYMENT_STOP_ON_REQUEST" in self.group.rollback_events,
            )
        self._wake.set()

    # ---- lifecycle ----------------------------------------------------------------------------
    def _sleep_minutes(self, minutes: float) -> None:
        deadline = time.monotonic() + minutes * self.minute_seconds
        while not self._done() and time.monotonic() < deadline:
            self._check_alarms()
            self._wake.wait(min(0.05, max(deadline - time.monotonic(), 0)))
            self._wake.clear()

    def _done(self) -> bool:
        return not self.active

    def _run(self) -> None:
        try:
            self._lifecycle()
        except PermissionError as exc:
            # The service role may not do what the deployment needs: AWS fails the deployment with
            # IAM_ROLE_PERMISSIONS ("ErrorInformation", CodeDeploy API Reference). Nothing was
            # shifted (the first denied call is the first change), so there is nothing to roll back.
            with self.lock:
                if self.active:
                    self._finish("Failed", "IAM_ROLE_PERMISSIONS", str(exc), rollback=False)
        except Exception as exc:  # noqa: BLE001 - any engine failure ends the deployment like INTERNAL_ERROR
            log.exception("deployment %s crashed", self.deployment_id)
            with self.lock:
                if self.active:
                    self._finish(
                        "Failed",
                        "INTERNAL_ERROR",
                        f"local CodeDeploy engine error: {exc}",
                        rollback=True,
                    )

    def _lifecycle(self) -> None:
        with self.lock:
            if not self.active:
                return
            self.start_time = datetime.now(UTC)
            self.status = "InProgress"
            try:
                self.appspec = parse_appspec(appspec_content(self.revision))
            except AppSpecError as exc:
                self._finish("Failed", "INVALID_REVISION", str(exc), rollback=False)
                return
            spec = self.appspec
            current, _ = self.env.alias_version(spec.function_name, spec.alias)
            if current != spec.current_version:
                self._finish(
                    "Failed",
                    "INVALID_LAMBDA_CONFIGURATION",
                    f"The alias {spec.alias} of {spec.function_name} points to version {current}, "
                    f"not to the AppSpec CurrentVersion {spec.current_version}.",
                    rollback=False,
                )
                return
            if not self.env.version_exists(spec.function_name, spec.target_version):
                self._finish(
                    "Failed",
                    "INVALID_LAMBDA_FUNCTION",
                    f"Version {spec.target_version} of {spec.function_name} does not exist.",
                    rollback=False,
                )
                return
        if not self._hook("BeforeAllowTraffic", spec.before_allow_traffic):
            return
        self._shift(spec)
        if self._done():
            return
        if not self._hook("AfterAllowTraffic", spec.after_allow_traffic):
            return
        with self.lock:
            if self.active:
                self._finish("Succeeded", None, None, rollback=False)

    def _hook(self, event: str, function_name: str | None) -> bool:
        if not function_name:
            self.lifecycle.append({"lifecycleEventName": event, "status": "Skipped"})
            return True
        hook = HookExecution(str(uuid.uuid4()), event, function_name)
        with self.lock:
            if not self.active:
                return False
            self.hooks[hook.execution_id] = hook
            hook.status = "InProgress"
        self.env.invoke_hook(
            function_name,
            {
                "DeploymentId": self.deployment_id,
                "LifecycleEventHookExecutionId": hook.execution_id,
            },
        )
        deadline = time.monotonic() + HOOK_TIMEOUT_MINUTES * self.minute_seconds
        while self.active and hook.status == "InProgress" and time.monotonic() < deadline:
            self._check_alarms()
            self._wake.wait(0.05)
            self._wake.clear()
        self.lifecycle.append({"lifecycleEventName": event, "status": hook.status})
        with self.lock:
            if not self.active:
                return False
            if hook.status == "Succeeded":
                return True
            if hook.status == "InProgress":
                message = (
                    f"The {event} hook {function_name} did not report a status "
                    f"within {HOOK_TIMEOUT_MINUTES} minutes."
                )
            else:
                message = f"The {event} hook {function_name} reported Failed."
            self._finish(
                "Failed",
                "HOOK_EXECUTION_FAILURE",
                message,
                rollback="DEPLOYMENT_FAILURE" in self.group.rollback_events,
            )
            return False

    def _shift(self, spec: AppSpec) -> None:
        schedule = shift_schedule(self.routing)
        elapsed = 0
        for minute, weight in schedule:
            self._sleep_minutes(minute - elapsed)
            elapsed = minute
            with self.lock:
                if not self.active:
                    return
                if weight >= 1.0:
                    self.env.set_alias(spec.function_name, spec.alias, spec.target_version, {})
                else:
                    self.env.set_alias(
                        spec.function_name,
                        spec.alias,
                        spec.current_version,
                        {spec.target_version: weight},
                    )
                if not self.shifted:
                    self.shifted = True
                    self._stop_traffic = self.env.start_traffic(spec)
                    injected = self.env.injected_alarms(self.group.name)
                    if injected:
                        self.env.trip_alarms(
                            injected,
                            f"fault injected: errors on {spec.function_name}:{spec.target_version}",
                        )
            self._check_alarms()

    def _check_alarms(self) -> None:
        if not (self.group.alarms_enabled and self.group.alarms):
            return
        states = self.env.alarm_states(self.group.alarms)
        firing = [n for n, s in states.items() if s == "ALARM"]
        missing = [n for n, s in states.items() if s is None]
        with self.lock:
            if not self.active:
                return
            if firing:
                self._finish(
                    "Stopped",
                    "ALARM_ACTIVE",
                    "One or more alarms have been activated according to the Amazon CloudWatch "
                    "metrics you selected, "
                    "and the affected deployments have been stopped. Activated alarms: "
                    f"<{', '.join(firing)}>",
                    rollback="DEPLOYMENT_STOP_ON_ALARM" in self.group.rollback_events,
                )
            elif missing and not self.group.ignore_poll_alarm_failure:
                self._finish(
                    "Stopped",
                    "ALARM_ACTIVE",
                    f"Unable to retrieve the state of alarms {missing}.",
                    rollback="DEPLOYMENT_STOP_ON_ALARM" in self.group.rollback_events,
                )

    def _finish(self, status: str, code: str | None, message: str | None, rollback: bool) -> None:
        # Caller holds self.lock.
        if self._stop_traffic is not None:
            self._stop_traffic()
            self._stop_traffic = None
        self.complete_time = datetime.now(UTC)
        self.status = status
        if code:
            self.error_information = {"code": code, "message": message}
        if rollback and self.appspec is not None:
            spec = self.appspec
            # Traffic goes back to the original version at once; the rollback deployment that
            # on_rollback starts (a RollbackRun) then occupies the group like any deployment.
            self.env.set_alias(spec.function_name, spec.alias, spec.current_version, {})
            rollback_id = self.on_rollback(self)
            self.rollback_info = {
                "rollbackDeploymentId": rollback_id,
                "rollbackMessage": f"Deployment {self.deployment_id} was rolled back by "
                f"{rollback_id}: "
                f"alias {spec.alias} points to version {spec.current_version} again.",
            }
        log.info(
            "deployment %s %s %s", self.deployment_id, status, json.dumps(self.error_information)
        )
        self._wake.set()


class RollbackRun(DeploymentRun):
    """The deployment CodeDeploy runs to roll a failed or stopped one back.

    "Redeploy and roll back a deployment with CodeDeploy" (CodeDeploy User Guide): CodeDeploy
    rolls back by redeploying the last known good revision as a new deployment with a new
    deployment ID (rollbackInfo links the two). Like any deployment it occupies its deployment
    group until it ends, so a CreateDeployment meanwhile fails with
    DeploymentLimitExceededException. Here it runs for the original's traffic-shift time on the
    compressed clock and ends with the alias wholly on the version it restores (its AppSpec's
    TargetVersion, the original's CurrentVersion).
    """

    def __init__(self, *args, hold_minutes: float, triggered_by: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.hold_minutes = hold_minutes
        self.rollback_info = {
            "rollbackTriggeringDeploymentId": triggered_by,
            "rollbackMessage": f"Rollback of deployment {triggered_by}.",
        }

    def _lifecycle(self) -> None:
        with self.lock:
            if not self.active:
                return
            self.start_time = datetime.now(UTC)
            self.status = "InProgress"
            self.appspec = parse_appspec(appspec_content(self.revision))
        self._sleep_minutes(self.hold_minutes)
        with self.lock:
            if not self.active:
                return
            spec = self.appspec
            self.env.set_alias(spec.function_name, spec.alias, spec.target_version, {})
            self._finish("Succeeded", None, None, rollback=False)


def shift_minutes(routing: TrafficRouting) -> int:
    """Minutes from the first traffic shift to the last."""
    return shift_schedule(routing)[-1][0]
