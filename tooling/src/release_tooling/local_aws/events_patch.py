"""EventBridge targets moto does not dispatch (a CodePipeline pipeline, an SNS topic), and the
events AWS services put on the default bus (service_event).

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

An SNS topic target publishes the event, or what the target's Input/InputTransformer makes of it,
to the topic. EventBridge publishes with the topic's resource policy, which must allow the
service principal events.amazonaws.com sns:Publish ("Amazon SNS permissions", EventBridge User
Guide; aws:SourceArn is the rule's ARN): a topic policy that does not is a failed invocation here
too. A transformer whose template is a JSON string yields that string, quotes included, as on AWS.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from moto.events import models as events_models
from moto.events.utils import EventTemplateParser
from moto.sns.models import sns_backends
from moto.utilities.arns import parse_arn

from . import iam_policy

log = logging.getLogger("local_aws.events")

StartPipeline = Callable[[str, str, str, dict[str, str], dict[str, Any]], str]
AUTHORIZER: list[Callable | None] = [None]
FAILED_INVOCATIONS: list[dict[str, Any]] = []
_STARTER: list[StartPipeline | None] = [None]
_lock = threading.Lock()


def _is_pipeline(arn: str) -> bool:
    return arn.startswith("arn:") and arn.split(":")[2] == "codepipeline"


def _is_topic(arn: str) -> bool:
    return arn.startswith("arn:") and arn.split(":")[2] == "sns"


def _ours(arn: str) -> bool:
    return _is_pipeline(arn) or _is_topic(arn)


def _message(target: dict[str, Any], event: dict[str, Any]) -> str:
    """What EventBridge sends a target: Input, the transformed event, or the event itself."""
    if target.get("Input"):
        return target["Input"]
    transformer = target.get("InputTransformer")
    if transformer:
        event = {"ingestion-time": event.get("time", time.time()), **event}
        result = EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=event,
        )
        return json.dumps(result, ensure_ascii=False)
    return json.dumps(event, ensure_ascii=False)


def publish_topic_target(rule: Any, target: dict[str, Any], event: dict[str, Any]) -> str | None:
    """Publish to the target topic under its resource policy; None (and a recorded failure) if
    the policy does not let EventBridge publish or the topic does not exist."""
    arn = target["Arn"]
    topic = parse_arn(arn)
    try:
        backend = sns_backends[topic.account][topic.region]
        found = backend.topics.get(arn)
        if found is None:
            raise LookupError(f"topic {arn} does not exist")
        decision = iam_policy.evaluate(
            iam_policy.AuthzRequest(
                action="sns:Publish",
                resource=arn,
                context={"aws:SourceArn": rule.arn, "aws:SourceAccount": rule.account_id},
                principal_arn="events.amazonaws.com",
            ),
            identity_policies=[],
            resource_policy=(f"the topic policy of {topic.resource_id}", found.policy),
        )
        if not decision:
            raise PermissionError(f"events.amazonaws.com may not publish: {decision.reason}")
        message_id = backend.publish(_message(target, event), arn=arn)
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
    log.info("EventBridge rule %s published to %s: message %s", rule.name, arn, message_id)
    return message_id


def service_event(
    account_id: str,
    region: str,
    source: str,
    detail_type: str,
    detail: dict[str, Any],
    resources: list[str],
) -> dict[str, Any]:
    """Put an AWS service's event on the account's default bus and run the rules it matches.

    The envelope is EventBridge's ("Amazon EventBridge events", EventBridge User Guide): version,
    id, detail-type, source, account, time (ISO 8601 UTC), region, resources, detail.
    """
    event = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": account_id,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": region,
        "resources": resources,
        "detail": detail,
    }
    backend = events_models.events_backends[account_id][region]
    bus = backend.event_buses.get("default")
    for rule in list(bus.rules.values()) if bus else []:
        if rule.state != "ENABLED":
            continue
        try:
            rule.send_to_targets(copy.deepcopy(event))
        except Exception:  # noqa: BLE001 - one rule's target never keeps the others from the event
            log.exception("EventBridge rule %s could not handle a %s event", rule.name, source)
    return event


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
        handled = [t for t in self.targets if _ours(t.get("Arn", ""))]
        if not handled:
            return original(self, original_event, transform_input)
        if self.state != "ENABLED" or not self.event_pattern.matches_event(original_event):
            return None
        others = [t for t in self.targets if not _ours(t.get("Arn", ""))]
        for target in handled:
            if _is_pipeline(target["Arn"]):
                invoke_pipeline_target(self, target, original_event)
            else:
                publish_topic_target(self, target, original_event)
        if others:
            shallow = copy.copy(self)
            shallow.targets = others
            original(shallow, original_event, transform_input)
        return None

    rule_cls.send_to_targets = send_to_targets
    rule_cls._local_pipeline_targets = True
