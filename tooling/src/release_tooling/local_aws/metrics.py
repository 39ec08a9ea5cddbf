"""The AWS/Lambda metrics Lambda sends for each invocation, put into moto's CloudWatch.

What Lambda sends ("Types of metrics for Lambda functions" and "Viewing metrics for Lambda
functions", Lambda Developer Guide): invocation metrics are binary indicators of an invocation's
outcome (Invocations 1; Errors 1 when the function failed: an unhandled exception, a timeout, a
runtime error; Throttles counts throttled attempts, which never happen locally), Duration is in
milliseconds. Each datum is published under these dimension sets:
- none: across all functions of the Region;
- FunctionName: all versions and aliases of the function;
- FunctionName + Resource: one version or alias, Resource being "<function>:<alias or version>"
  (only for a qualified invocation);
- FunctionName + Resource + ExecutedVersion: the version an alias invocation ran, to compare the
  two versions of a weighted alias (only for alias invocations).
A CloudWatch metric is its namespace, name and full set of dimensions, so an alarm on
{FunctionName, Resource: fn:production} sees exactly the invocations through that alias.

Service errors (Lambda's own 500) are neither invocations nor function errors and emit nothing.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime

from moto.cloudwatch.models import cloudwatch_backends
from moto.core.utils import utcnow

NAMESPACE = "AWS/Lambda"
log = logging.getLogger("local_aws.metrics")
_VERSION = re.compile(r"^\d+$")


def dimension_sets(
    function_name: str, qualifier: str | None, executed_version: str
) -> list[list[dict[str, str]]]:
    """Every dimension set one invocation is published under (see the module docstring)."""
    function = [{"Name": "FunctionName", "Value": function_name}]
    sets: list[list[dict[str, str]]] = [[], function]
    if qualifier and qualifier != "$LATEST":
        resource = [*function, {"Name": "Resource", "Value": f"{function_name}:{qualifier}"}]
        sets.append(resource)
        if not _VERSION.match(qualifier):  # an alias: which version served the call
            sets.append([*resource, {"Name": "ExecutedVersion", "Value": executed_version}])
    return sets


def invocation_datums(
    function_name: str,
    qualifier: str | None,
    executed_version: str,
    failed: bool,
    duration_ms: float,
    timestamp: datetime | None = None,
) -> list[dict]:
    """PutMetricData MetricData entries for one invocation."""
    when = timestamp or utcnow()
    values = (
        ("Invocations", 1.0, "Count"),
        ("Errors", 1.0 if failed else 0.0, "Count"),
        ("Throttles", 0.0, "Count"),
        ("Duration", round(float(duration_ms), 3), "Milliseconds"),
    )
    return [
        {"MetricName": name, "Value": value, "Unit": unit, "Dimensions": dims, "Timestamp": when}
        for dims in dimension_sets(function_name, qualifier, executed_version)
        for name, value, unit in values
    ]


def record_invocation(
    account_id: str,
    region: str,
    function_name: str,
    qualifier: str | None,
    executed_version: str,
    failed: bool,
    duration_ms: float,
) -> None:
    """Put one invocation's metrics into the account's CloudWatch (never fails the invocation)."""
    try:
        cloudwatch_backends[account_id][region].put_metric_data(
            NAMESPACE,
            invocation_datums(function_name, qualifier, executed_version, failed, duration_ms),
        )
    except Exception:  # noqa: BLE001 - metrics are observability; an invocation never fails for them
        log.warning("could not record the metrics of %s", function_name, exc_info=True)
