"""CloudWatch metric alarms evaluated on the metrics in moto's CloudWatch, on a compressed clock.

moto stores alarms and metric data but never evaluates an alarm: its state stays whatever
SetAlarmState last said. Here each metric alarm is evaluated as "Alarm evaluation" (CloudWatch
User Guide) describes: the statistic of the metric over each of the last Evaluation Periods
(N) complete periods is a datapoint; a datapoint is breaching when it compares to the threshold
as ComparisonOperator says; the alarm is ALARM when at least Datapoints to Alarm (M, default N)
of them breach, else OK. Periods without data are treated as TreatMissingData says ("Configuring
how CloudWatch alarms treat missing data"): notBreaching counts them as good, breaching as bad,
missing (the default) goes to INSUFFICIENT_DATA when every datapoint of the range is missing,
ignore then keeps the current state. Simplification: the range is exactly the last N periods
(CloudWatch may look further back when datapoints are missing).

A metric is its namespace, name and full set of dimensions, as in CloudWatch: an alarm on
{FunctionName, Resource} does not see the datapoints published under {FunctionName} alone.

The clock: an alarm's Period (seconds) is compressed by the factor the local CodeDeploy uses
(`minute_seconds` real seconds per minute, codedeploy.DeploymentRun), so a 60-second period lasts
0.2 s at the default, and alarms are evaluated once per compressed minute, as CloudWatch
evaluates standard alarms every minute. Periods are aligned to the epoch, like CloudWatch's.

A state set with SetAlarmState (or by the alarm fault) lasts until an evaluation at least
HOLD_SECONDS later ("SetAlarmState": the alarm returns to its actual state at its next
evaluation), so a poller such as the local CodeDeploy (every 50 ms) sees it.

A state change runs the actions of the new state (AlarmActions, OKActions,
InsufficientDataActions) when ActionsEnabled: an SNS topic gets the alarm's notification (the JSON
CloudWatch sends: AlarmName, NewStateValue, NewStateReason, OldStateValue, Trigger, ...) if its
topic policy lets cloudwatch.amazonaws.com publish for the alarm (aws:SourceArn is the alarm's
ARN). Other action kinds (EC2, Auto Scaling, Systems Manager) are logged and skipped.

Not evaluated (left as they are, said once in the log): metric math alarms, extended statistics
(percentiles), anomaly detection bands.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from moto.cloudwatch.models import CloudWatchBackend, MetricDatum, cloudwatch_backends
from moto.sns.models import sns_backends
from moto.utilities.arns import parse_arn

from . import iam_policy

log = logging.getLogger("local_aws.alarms")

HOLD_SECONDS = 0.25
# Datapoints kept per metric for evaluation, in compressed minutes: a day (periods x N beyond it
# see less data than CloudWatch keeps).
KEEP_PERIODS = 1440

COMPARISONS: dict[str, tuple[Callable[[float, float], bool], str]] = {
    "GreaterThanThreshold": (lambda v, t: v > t, "greater than"),
    "GreaterThanOrEqualToThreshold": (lambda v, t: v >= t, "greater than or equal to"),
    "LessThanThreshold": (lambda v, t: v < t, "less than"),
    "LessThanOrEqualToThreshold": (lambda v, t: v <= t, "less than or equal to"),
}
STATISTICS: dict[str, Callable[[list[float]], float]] = {
    "Sum": sum,
    "Average": lambda vs: sum(vs) / len(vs),
    "Minimum": min,
    "Maximum": max,
    "SampleCount": lambda vs: float(len(vs)),
}
UNEVALUATED = "metric math, percentile or anomaly band"

MetricKey = tuple[str, str, frozenset[tuple[str, str]]]


@dataclass(frozen=True)
class AlarmRule:
    """What evaluating one metric alarm needs (PutMetricAlarm's fields)."""

    name: str
    namespace: str
    metric_name: str
    dimensions: frozenset[tuple[str, str]]
    statistic: str
    period: int  # seconds, as configured (uncompressed)
    evaluation_periods: int
    datapoints_to_alarm: int
    threshold: float
    comparison: str
    treat_missing_data: str = "missing"
    unit: str | None = None

    @property
    def key(self) -> MetricKey:
        return (self.namespace, self.metric_name, self.dimensions)

    @classmethod
    def from_moto(cls, alarm) -> AlarmRule | None:
        """The rule of a moto Alarm, or None for an alarm this evaluator does not evaluate."""
        if (
            alarm.metric_data_queries
            or alarm.statistic not in STATISTICS
            or alarm.comparison_operator not in COMPARISONS
            or not alarm.metric_name
        ):
            return None
        n = int(alarm.evaluation_periods)
        return cls(
            name=alarm.name,
            namespace=alarm.namespace,
            metric_name=alarm.metric_name,
            dimensions=frozenset((d.name, d.value) for d in alarm.dimensions),
            statistic=alarm.statistic,
            period=int(alarm.period),
            evaluation_periods=n,
            datapoints_to_alarm=int(alarm.datapoints_to_alarm or n),
            threshold=float(alarm.threshold),
            comparison=alarm.comparison_operator,
            treat_missing_data=alarm.treat_missing_data or "missing",
            unit=alarm.unit,
        )


def period_values(
    rule: AlarmRule, points: Iterable[tuple[float, float]], now: float, period_seconds: float
) -> list[float | None]:
    """The statistic of each of the last N complete periods (oldest first; None: no data).

    `points` are (epoch seconds, value); `period_seconds` is the rule's period on the wall clock.
    """
    end = (now // period_seconds) * period_seconds
    start = end - rule.evaluation_periods * period_seconds
    buckets: list[list[float]] = [[] for _ in range(rule.evaluation_periods)]
    for when, value in points:
        if start <= when < end:
            index = min(int((when - start) // period_seconds), rule.evaluation_periods - 1)
            buckets[index].append(value)
    aggregate = STATISTICS[rule.statistic]
    return [aggregate(b) if b else None for b in buckets]


def evaluate(rule: AlarmRule, values: list[float | None], current: str) -> tuple[str, str]:
    """(state, reason) of an alarm whose last N period datapoints are `values`."""
    compare, words = COMPARISONS[rule.comparison]
    treatment = rule.treat_missing_data
    flags: list[bool | None] = []
    for value in values:
        if value is not None:
            flags.append(compare(value, rule.threshold))
        elif treatment == "breaching":
            flags.append(True)
        elif treatment == "notBreaching":
            flags.append(False)
        else:  # missing / ignore: the period does not count
            flags.append(None)
    present = [f for f in flags if f is not None]
    n = rule.evaluation_periods
    if not present:
        if treatment == "ignore":
            return current, f"Ignoring missing data: kept {current}."
        return (
            "INSUFFICIENT_DATA",
            f"Insufficient Data: {n} datapoint{'s' if n > 1 else ''} were unknown.",
        )
    breaching = sum(present)
    shown = ", ".join("-" if v is None else f"{v:g}" for v in values)
    if breaching >= rule.datapoints_to_alarm:
        return (
            "ALARM",
            f"Threshold Crossed: {breaching} out of the last {n} datapoints [{shown}] were "
            f"{words} the threshold ({rule.threshold:g}) (minimum {rule.datapoints_to_alarm} "
            "datapoint for OK -> ALARM transition).",
        )
    return (
        "OK",
        f"Threshold Crossed: {len(present) - breaching} out of the last {n} datapoints "
        f"[{shown}] were not {words} the threshold ({rule.threshold:g}).",
    )


def _epoch(ts: datetime) -> float:
    return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).timestamp()


class _MetricIndex:
    """Datapoints of one CloudWatch backend by metric, read incrementally from moto's list."""

    def __init__(self) -> None:
        self.seen = 0
        self.points: dict[MetricKey, list[tuple[float, float, str | None]]] = {}

    def refresh(self, backend: CloudWatchBackend, keep_seconds: float) -> None:
        data = backend.metric_data
        if len(data) < self.seen:  # moto's list was replaced (a reset): start over
            self.seen, self.points = 0, {}
        for datum in data[self.seen :]:
            if isinstance(datum, MetricDatum):
                key = (
                    datum.namespace,
                    datum.name,
                    frozenset((d.name, d.value) for d in datum.dimensions),
                )
                self.points.setdefault(key, []).append(
                    (_epoch(datum.timestamp), datum.value, datum.unit)
                )
        self.seen = len(data)
        horizon = time.time() - keep_seconds
        for key, points in self.points.items():
            if points and points[0][0] < horizon:
                self.points[key] = [p for p in points if p[0] >= horizon]

    def values(self, rule: AlarmRule) -> list[tuple[float, float]]:
        return [
            (when, value)
            for when, value, unit in self.points.get(rule.key, ())
            if rule.unit is None or unit == rule.unit
        ]


class AlarmEvaluator:
    """Evaluates every metric alarm of every account and Region, once per compressed minute."""

    def __init__(self, minute_seconds: float, clock: Callable[[], float] = time.time) -> None:
        self.minute_seconds = minute_seconds
        self.clock = clock
        self._indexes: dict[tuple[str, str], _MetricIndex] = {}
        self._manual: dict[tuple[str, str, str], float] = {}
        self._skipped: set[tuple[str, str, str]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="alarm-evaluator", daemon=True)

    def period_seconds(self, rule: AlarmRule) -> float:
        return rule.period * self.minute_seconds / 60

    def state_was_set(self, account_id: str, region: str, name: str) -> None:
        """SetAlarmState was called: the state holds until an evaluation HOLD_SECONDS later."""
        self._manual[(account_id, region, name)] = time.monotonic() + HOLD_SECONDS

    def evaluate_all(self) -> None:
        now = self.clock()
        for account_id, regions in list(cloudwatch_backends.items()):
            for region, backend in list(regions.items()):
                if backend.alarms:
                    self._evaluate_backend(account_id, region, backend, now)

    def _evaluate_backend(self, account_id: str, region: str, backend, now: float) -> None:
        index = self._indexes.setdefault((account_id, region), _MetricIndex())
        index.refresh(backend, keep_seconds=KEEP_PERIODS * self.minute_seconds)
        for alarm in list(backend.alarms.values()):
            where = (account_id, region, alarm.name)
            held = self._manual.get(where)
            if held is not None:
                if time.monotonic() < held:
                    continue
                del self._manual[where]
            rule = AlarmRule.from_moto(alarm)
            if rule is None:
                if where not in self._skipped:
                    self._skipped.add(where)
                    log.info("alarm %s is not evaluated locally (%s)", alarm.name, UNEVALUATED)
                continue
            values = period_values(rule, index.values(rule), now, self.period_seconds(rule))
            state, reason = evaluate(rule, values, alarm.state_value)
            if state != alarm.state_value:
                old = alarm.state_value
                alarm.update_state(reason, "{}", state)
                level = logging.INFO if "ALARM" in (state, old) else logging.DEBUG
                log.log(level, "alarm %s -> %s: %s", alarm.name, state, reason)
                run_actions(account_id, region, alarm, old)

    def _loop(self) -> None:
        while not self._stop.is_set():
            now = self.clock()
            # Just after the next compressed-minute boundary, so the period that ended is complete.
            wait = self.minute_seconds - (now % self.minute_seconds) + 0.002
            if self._stop.wait(wait):
                return
            try:
                self.evaluate_all()
            except Exception:  # noqa: BLE001 - the evaluator must outlive any one bad alarm
                log.exception("alarm evaluation failed")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()


def notification(account_id: str, region: str, alarm, old_state: str) -> dict:
    """The message CloudWatch publishes to an alarm's SNS topic on a state change."""
    return {
        "AlarmName": alarm.name,
        "AlarmDescription": alarm.description,
        "AWSAccountId": account_id,
        "AlarmConfigurationUpdatedTimestamp": alarm.configuration_updated_timestamp.isoformat(),
        "NewStateValue": alarm.state_value,
        "NewStateReason": alarm.state_reason,
        "StateChangeTime": alarm.state_updated_timestamp.isoformat(),
        "Region": region,
        "AlarmArn": alarm.alarm_arn,
        "OldStateValue": old_state,
        "Trigger": {
            "MetricName": alarm.metric_name,
            "Namespace": alarm.namespace,
            "StatisticType": "Statistic",
            "Statistic": str(alarm.statistic or "").upper(),
            "Unit": alarm.unit,
            "Dimensions": [{"value": d.value, "name": d.name} for d in alarm.dimensions],
            "Period": alarm.period,
            "EvaluationPeriods": alarm.evaluation_periods,
            "DatapointsToAlarm": alarm.datapoints_to_alarm or alarm.evaluation_periods,
            "ComparisonOperator": alarm.comparison_operator,
            "Threshold": alarm.threshold,
            "TreatMissingData": alarm.treat_missing_data or "missing",
        },
    }


def run_actions(account_id: str, region: str, alarm, old_state: str) -> None:
    """The actions of the alarm's new state (see the module docstring); never raises."""
    if not alarm.actions_enabled or alarm.state_value == old_state:
        return
    actions = {
        "ALARM": alarm.alarm_actions,
        "OK": alarm.ok_actions,
        "INSUFFICIENT_DATA": alarm.insufficient_data_actions,
    }[alarm.state_value]
    for arn in actions or []:
        try:
            _publish(account_id, region, alarm, old_state, arn)
        except Exception as exc:  # noqa: BLE001 - a failed action never stops evaluation
            log.warning("alarm %s: action %s failed: %s", alarm.name, arn, exc)


def _publish(account_id: str, region: str, alarm, old_state: str, arn: str) -> None:
    topic = parse_arn(arn)
    if topic.service != "sns":
        log.info("alarm %s: action %s is not run locally (only SNS topics are)", alarm.name, arn)
        return
    backend = sns_backends[topic.account][topic.region]
    found = backend.topics.get(arn)
    if found is None:
        raise LookupError(f"topic {arn} does not exist")
    decision = iam_policy.evaluate(
        iam_policy.AuthzRequest(
            action="sns:Publish",
            resource=arn,
            context={
                "aws:SourceArn": alarm.alarm_arn,
                "aws:SourceAccount": account_id,
                "aws:SourceOwner": account_id,
            },
            principal_arn="cloudwatch.amazonaws.com",
        ),
        identity_policies=[],
        resource_policy=(f"the topic policy of {topic.resource_id}", found.policy),
    )
    if not decision:
        raise PermissionError(f"cloudwatch.amazonaws.com may not publish: {decision.reason}")
    backend.publish(
        json.dumps(notification(account_id, region, alarm, old_state)),
        arn=arn,
        subject=f'{alarm.state_value}: "{alarm.name}" in {region}'[:100],
    )


def install(evaluator: AlarmEvaluator) -> None:
    """Route SetAlarmState through the evaluator's hold and the alarm's actions."""
    original = CloudWatchBackend.set_alarm_state

    def set_alarm_state(self, alarm_name, reason, reason_data, state_value):
        old = self.alarms[alarm_name].state_value if alarm_name in self.alarms else None
        original(self, alarm_name, reason, reason_data, state_value)
        evaluator.state_was_set(self.account_id, self.region_name, alarm_name)
        if old is not None:
            run_actions(self.account_id, self.region_name, self.alarms[alarm_name], old)

    CloudWatchBackend.set_alarm_state = set_alarm_state
