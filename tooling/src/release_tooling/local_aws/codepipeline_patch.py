"""CodePipeline: moto records pipelines but runs nothing. This wires the execution engine
(codepipeline.py) into moto's CodePipeline API, over moto's S3 and Step Functions backends, and
installs the EventBridge target that starts a pipeline (events_patch.py).

Also: moto serialises pipeline metadata timestamps as ISO strings; the AWS JSON protocol (and the
Terraform provider's SDK, which refuses anything else) sends epoch seconds.

Usage at server start (the lead passes the IAM evaluator):
    codepipeline_patch.install(authorizer=iam_authorizer)
`authorizer(principal_role_arn, action, resource_arn, context)` raises PermissionError
(codepipeline.ServiceAccessDenied) to deny. Without one, a RecordingAuthorizer allows everything:
that default exists for unit tests only.

Finding the executions of a release: ListPipelineExecutions gives each execution's
sourceRevisions (the S3 version id of pipeline/source.zip); ListActionExecutions gives the Step
Functions action's externalExecutionId (the state machine execution ARN), whose input (Step
Functions DescribeExecution) is execution-input.json, carrying commit_sha.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from dateutil import parser as date_parser
from moto.codepipeline import responses as cp_responses
from moto.codepipeline.exceptions import PipelineExecutionNotFoundException
from moto.codepipeline.models import codepipeline_backends
from moto.core.exceptions import JsonRESTError

from . import events_patch
from .codepipeline import (
    Authorizer,
    PipelineEngine,
    RecordingAuthorizer,
    ServiceAccessDenied,
    SourceNotFound,
)

_TIMESTAMP_FIELDS = ("created", "updated", "pollingDisabledAt")
log = logging.getLogger("local_aws.codepipeline")


class MotoServices:
    """The engine's AWS calls, answered by moto's backends in this process."""

    def __init__(self, account: str, region: str) -> None:
        self.account, self.region = account, region

    def _s3(self):
        from moto.s3.models import s3_backends

        return s3_backends[self.account]["aws"]

    def bucket_versioning(self, bucket: str) -> str | None:
        from moto.s3.exceptions import MissingBucket

        try:
            return self._s3().get_bucket(bucket).versioning_status
        except MissingBucket:
            return None

    def get_object(self, bucket: str, key: str, version_id: str | None) -> tuple[bytes, str, str]:
        from moto.s3.exceptions import MissingBucket
        from moto.s3.models import FakeKey

        try:
            found = self._s3().get_object(bucket, key, version_id=version_id)
        except MissingBucket:
            found = None
        if not isinstance(found, FakeKey):
            raise SourceNotFound(f"s3://{bucket}/{key}")
        return found.value, str(found.version_id), found.etag.strip('"')

    def put_object(self, bucket: str, key: str, body: bytes, kms_key_id: str | None) -> None:
        self._s3().put_object(
            bucket,
            key,
            body,
            encryption="aws:kms" if kms_key_id else None,
            kms_key_id=kms_key_id,
        )

    def _sfn(self):
        from moto.stepfunctions.responses import get_backend

        return get_backend(self.account, self.region)

    def start_execution(self, state_machine_arn: str, name: str, payload: str) -> str:
        return self._sfn().start_execution(state_machine_arn, name, payload).execution_arn

    def describe_execution(self, execution_arn: str) -> dict[str, Any]:
        execution = self._sfn().describe_execution(execution_arn)
        status = getattr(execution.status, "value", execution.status)
        return {"status": str(status), "error": execution.error, "cause": execution.cause}


ENGINE = PipelineEngine(MotoServices)


def set_authorizer(authorizer: Authorizer | None) -> None:
    ENGINE.authorizer = authorizer or RecordingAuthorizer()
    events_patch.AUTHORIZER[0] = ENGINE.authorizer


def _validation(message: str) -> JsonRESTError:
    return JsonRESTError("ValidationException", message)


def _epoch(metadata: dict) -> dict:
    fixed = dict(metadata)
    for key in _TIMESTAMP_FIELDS:
        if isinstance(fixed.get(key), str):
            fixed[key] = date_parser.isoparse(fixed[key]).timestamp()
    return fixed


def _pipeline(account: str, region: str, name: str | None):
    backend = codepipeline_backends[account][region]
    if not name:
        raise _validation("pipelineName is required")
    backend.get_pipeline(name)  # raises PipelineNotFoundException as moto words it
    return backend.pipelines[name]


def start_pipeline(
    account: str,
    region: str,
    pipeline_arn: str,
    trigger: dict[str, str],
    request: dict[str, Any],
) -> str:
    """StartPipelineExecution (also what an EventBridge target does). Returns the execution id."""
    if trigger["triggerType"] == "CloudWatchEvent" and not AUTOMATIC_TRIGGERS[0]:
        raise RuntimeError("automatic pipeline triggers are off on this endpoint")
    name = pipeline_arn.split(":")[-1]
    model = _pipeline(account, region, name)
    try:
        run = ENGINE.start(
            account,
            region,
            model._arn,
            model.pipeline,
            trigger,
            source_revisions=request.get("sourceRevisions"),
            variables=request.get("variables"),
        )
    except ValueError as exc:
        raise _validation(str(exc)) from None
    return run.execution_id


AUTOMATIC_TRIGGERS = [True]


def install(authorizer: Authorizer | None = None, *, automatic_triggers: bool = True):
    """Install the engine into moto's CodePipeline API and the EventBridge pipeline target.

    `authorizer`: called for every AWS action the pipeline role or the trigger role performs;
    raise PermissionError to deny. The default (RecordingAuthorizer) allows everything and is
    meant for unit tests only.
    `automatic_triggers`: False keeps the executions AWS starts by itself (the one at
    CreatePipeline, and EventBridge rule targets) from starting; StartPipelineExecution still
    runs. For as long as release-tooling local starts the state machine itself, an upload-triggered
    execution would deploy every release twice.
    """
    set_authorizer(authorizer)
    AUTOMATIC_TRIGGERS[0] = automatic_triggers
    events_patch.install(start_pipeline, ENGINE.authorizer)
    cls = cp_responses.CodePipelineResponse
    if getattr(cls, "_local_engine_installed", False):
        return ENGINE
    original_get = cls.get_pipeline
    original_list = cls.list_pipelines
    original_create = cls.create_pipeline
    original_delete = cls.delete_pipeline

    def get_pipeline(self) -> str:
        body = json.loads(original_get(self))
        body["metadata"] = _epoch(body.get("metadata") or {})
        return json.dumps(body)

    def list_pipelines(self) -> str:
        body = json.loads(original_list(self))
        body["pipelines"] = [_epoch(p) for p in body.get("pipelines", [])]
        return json.dumps(body)

    def create_pipeline(self) -> str:
        body = original_create(self)
        if not AUTOMATIC_TRIGGERS[0]:
            return body
        model = _pipeline(self.current_account, self.region, self._get_param("pipeline")["name"])
        # "When a pipeline is created, a pipeline execution starts automatically. This is the
        # CreatePipeline trigger type" (User Guide, "Start a pipeline in CodePipeline").
        ENGINE.start(
            self.current_account,
            self.region,
            model._arn,
            model.pipeline,
            {"triggerType": "CreatePipeline", "triggerDetail": _caller(self)},
        )
        return body

    def delete_pipeline(self) -> str:
        name = self._get_param("name")
        model = codepipeline_backends[self.current_account][self.region].pipelines.get(name)
        if model is not None:
            ENGINE.forget(model._arn)
        return original_delete(self)

    def start_pipeline_execution(self) -> str:
        model = _pipeline(self.current_account, self.region, self._get_param("name"))
        execution_id = start_pipeline(
            self.current_account,
            self.region,
            model._arn,
            {"triggerType": "StartPipelineExecution", "triggerDetail": _caller(self)},
            {
                "sourceRevisions": self._get_param("sourceRevisions"),
                "variables": self._get_param("variables"),
            },
        )
        return json.dumps({"pipelineExecutionId": execution_id})

    def _run(self):
        model = _pipeline(self.current_account, self.region, self._get_param("pipelineName"))
        execution_id = self._get_param("pipelineExecutionId")
        run = ENGINE.find(model._arn, execution_id)
        if run is None:
            raise PipelineExecutionNotFoundException(
                f"Pipeline execution with id {execution_id} does not exist in pipeline "
                f"{model.pipeline['name']}"
            )
        return run

    def get_pipeline_execution(self) -> str:
        return json.dumps({"pipelineExecution": _run(self).to_api()})

    def list_pipeline_executions(self) -> str:
        model = _pipeline(self.current_account, self.region, self._get_param("pipelineName"))
        summaries = [r.to_summary() for r in ENGINE.executions(model._arn)]
        return json.dumps({"pipelineExecutionSummaries": _page(self, summaries)})

    def list_action_executions(self) -> str:
        model = _pipeline(self.current_account, self.region, self._get_param("pipelineName"))
        wanted = (self._get_param("filter") or {}).get("pipelineExecutionId")
        details = ENGINE.action_executions(model._arn, wanted)
        return json.dumps({"actionExecutionDetails": _page(self, details)})

    def get_pipeline_state(self) -> str:
        model = _pipeline(self.current_account, self.region, self._get_param("name"))
        metadata = _epoch(model.metadata)
        return json.dumps(
            {
                "pipelineName": model.pipeline["name"],
                "pipelineVersion": model.pipeline["version"],
                "stageStates": ENGINE.state(model._arn, model.pipeline),
                "created": metadata["created"],
                "updated": metadata["updated"],
            }
        )

    def stop_pipeline_execution(self) -> str:
        run = _run(self)
        try:
            ENGINE.stop(run, bool(self._get_param("abandon")), self._get_param("reason"))
        except ValueError as exc:
            raise JsonRESTError("PipelineExecutionNotStoppableException", str(exc)) from None
        return json.dumps({"pipelineExecutionId": run.execution_id})

    cls.get_pipeline = get_pipeline
    cls.list_pipelines = list_pipelines
    cls.create_pipeline = create_pipeline
    cls.delete_pipeline = delete_pipeline
    cls.start_pipeline_execution = start_pipeline_execution
    cls.get_pipeline_execution = get_pipeline_execution
    cls.list_pipeline_executions = list_pipeline_executions
    cls.list_action_executions = list_action_executions
    cls.get_pipeline_state = get_pipeline_state
    cls.stop_pipeline_execution = stop_pipeline_execution
    cls._local_engine_installed = True
    return ENGINE


def _caller(response) -> str:
    return f"arn:aws:iam::{response.current_account}:root"


def _page(response, items: list) -> list:
    limit = response._get_param("maxResults")
    return items[: int(limit)] if limit else items


__all__ = ["ENGINE", "ServiceAccessDenied", "install", "set_authorizer", "start_pipeline"]
