"""EventBridge targets moto does not dispatch: a CodePipeline pipeline.

moto's Rule.send_to_targets handles log groups, SQS, event buses and API destinations and raises
NotImplementedError for any other target ARN (moto's S3 notifier swallows it, so nothing starts).
Here a rule target whose ARN is a pipeline (arn:aws:codepipeline:region:account:name) starts an
execution of it, acting as the target's RoleArn: EventBridge needs that role to be allowed
codepipeline:StartPipelineExecution on the pipeline ("Create an EventBridge rule for an Amazon S3
source", CodePipeline User Guide). A denied or failed invocation starts nothing and is recorded in
FAILED_INVOCATIONS and logged (EventBridge counts it as a FailedInvocation).

The target's InputTransformer is applied to the event and the result is the StartPipelineExecution
request, which is how a source revision override reaches the pipeline ("Connecting to Amazon S3
source actions with a source enabled for events": InputPathsMap
{"revisionValue": "$.detail.object.version-id"} with the template
{"sourceRevisions": [{"actionName": "<source action>", "revisionType": "S3_OBJECT_VERSION_ID",
"revisionValue": "<revisionValue>"}]}). moto's S3 notifier passes transform_input=False; AWS applies
a target's transformer whatever the event source, so it is applied here for pipeline targets.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from moto.events import models as events_models
from moto.events.utils import EventTemplateParser
from moto.utilities.arns import parse_arn

log = logging.getLogger("local_aws.events")

StartPipeline = Callable[[str, str, str, dict[str, str], dict[str, Any]], str]
AUTHORIZER: list[Callable | None] = [None]
FAILED_INVOCATIONS: list[dict[str, Any]] = []
_STARTER: list[StartPipeline | None] = [None]
_lock = threading.Lock()


def _is_pipeline(arn: str) -> bool:
    return arn.startswith("arn:") and arn.split(":")[2] == "codepipeline"


def _request(target: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    transformer = target.get("InputTransformer")
    if transformer:
        event = {"ingestion-time": event.get("time", time.time()), **event}
        return EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=event,
        )
    if target.get("Input"):
        return json.loads(target["Input"])
    return {}  # the event itself is not a StartPipelineExecution request: start with defaults


def invoke_pipeline_target(rule: Any, target: dict[str, Any], event: dict[str, Any]) -> str | None:
    """Start the target pipeline as the target's role; None (and a recorded failure) if denied."""
    arn = target["Arn"]
    pipeline = parse_arn(arn)
    role = target.get("RoleArn") or ""
    try:
        if not role:
            raise PermissionError(
                f"target {target.get('Id')} of rule {rule.name} has no RoleArn; EventBridge needs "
                "a role allowed codepipeline:StartPipelineExecution to start a pipeline"
            )
        authorizer = AUTHORIZER[0]
        if authorizer is not None:
            authorizer(
                role,
                "codepipeline:StartPipelineExecution",
                arn,
                {"aws:SourceArn": rule.arn, "aws:SourceAccount": rule.account_id},
            )
        request = _request(target, event)
        starter = _STARTER[0]
        if starter is None:
            raise RuntimeError("the CodePipeline engine is not installed")
        execution_id = starter(
            pipeline.account,
            pipeline.region,
            arn,
            {"triggerType": "CloudWatchEvent", "triggerDetail": rule.arn},
            request,
        )
    except Exception as exc:  # noqa: BLE001 - any failure is a failed invocation, as on AWS
        failure = {"rule": rule.arn, "target": target.get("Id"), "arn": arn, "error": str(exc)}
        with _lock:
            FAILED_INVOCATIONS.append(failure)
        log.warning(
            "EventBridge rule %s: target %s (%s) failed invocation: %s",
            rule.name,
            target.get("Id"),
            arn,
            exc,
        )
        return None
    log.info("EventBridge rule %s started pipeline %s: execution %s", rule.name, arn, execution_id)
    return execution_id


def install(start_pipeline: StartPipeline, authorizer: Callable | None) -> None:
    _STARTER[0] = start_pipeline
    AUTHORIZER[0] = authorizer
    rule_cls = events_models.Rule
    if getattr(rule_cls, "_local_pipeline_targets", False):
        return
    original = rule_cls.send_to_targets

    def send_to_targets(self, original_event, transform_input: bool = True) -> None:
        pipelines = [t for t in self.targets if _is_pipeline(t.get("Arn", ""))]
        if not pipelines:
            return original(self, original_event, transform_input)
        if self.state != "ENABLED" or not self.event_pattern.matches_event(original_event):
            return None
        others = [t for t in self.targets if not _is_pipeline(t.get("Arn", ""))]
        for target in pipelines:
            invoke_pipeline_target(self, target, original_event)
        if others:
            shallow = copy.copy(self)
            shallow.targets = others
            original(shallow, original_event, transform_input)
        return None

    rule_cls.send_to_targets = send_to_targets
    rule_cls._local_pipeline_targets = True
