"""A CodePipeline execution engine: runs pipeline executions the way AWS CodePipeline does.

Independent of moto: every AWS call the pipeline makes goes through a `Services` object (S3 and
Step Functions, built over moto's backends by codepipeline_patch) and is authorized first through
an injectable `Authorizer`, as the pipeline's service role (or the action's role).

Implemented (CodePipeline User Guide / API Reference pages named where the code depends on them):
- executions and their statuses (API_PipelineExecution, API_PipelineExecutionSummary);
- execution modes QUEUED (one at a time, in start order), SUPERSEDED (a newer waiting execution
  supersedes an older waiting one) and PARALLEL ("How pipeline executions work");
- the Amazon S3 source action ("Amazon S3 source action reference") with source revision overrides
  ("Start a pipeline with a source revision override", API_SourceRevisionOverride);
- the AWS Step Functions invoke action ("AWS Step Functions invoke action reference").
"""

from __future__ import annotations

import io
import json
import logging
import secrets
import string
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

log = logging.getLogger("local_aws.codepipeline")

Authorizer = Callable[[str, str, str, Mapping[str, str]], None]
"""authorizer(principal_role_arn, action, resource_arn, context) returns None when allowed and
raises ServiceAccessDenied (a PermissionError) when denied."""

# API_PipelineExecution: Cancelled | InProgress | Stopped | Stopping | Succeeded | Superseded |
# Failed. There is no "Queued" value: an execution waiting its turn in QUEUED mode is InProgress.
IN_PROGRESS, SUCCEEDED, FAILED, STOPPED, STOPPING, SUPERSEDED = (
    "InProgress",
    "Succeeded",
    "Failed",
    "Stopped",
    "Stopping",
    "Superseded",
)
ACTION_ABANDONED = "Abandoned"
TERMINAL = {SUCCEEDED, FAILED, STOPPED, SUPERSEDED, "Cancelled"}
SFN_TERMINAL_FAILURES = {"FAILED", "TIMED_OUT", "ABORTED"}
ARTIFACT_KEY_CHARS = string.ascii_letters + string.digits


class ServiceAccessDenied(PermissionError):
    """An AWS call the pipeline (or its trigger) makes was denied."""

    def __init__(self, principal: str, action: str, resource: str, reason: str = "") -> None:
        self.principal, self.action, self.resource = principal, action, resource
        message = (
            f"User: {principal} is not authorized to perform: {action} on resource: {resource}"
        )
        super().__init__(f"{message} {reason}".strip())


class RecordingAuthorizer:
    """Default authorizer: records every call and allows it. FOR UNIT TESTS ONLY: the embedded
    endpoint must install a real IAM evaluator (codepipeline_patch.install(authorizer=...))."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, dict]] = []
        self._lock = threading.Lock()

    def __call__(self, principal: str, action: str, resource: str, context: Mapping) -> None:
        with self._lock:
            self.calls.append((principal, action, resource, dict(context)))


class SourceNotFound(Exception):
    """The S3 source object (or the requested version of it) does not exist."""


class Services(Protocol):
    """The AWS calls the engine makes, already authorized (the engine authorizes before calling)."""

    def bucket_versioning(self, bucket: str) -> str | None: ...

    def get_object(self, bucket: str, key: str, version_id: str | None) -> tuple[bytes, str, str]:
        """(body, version id, ETag); raises SourceNotFound."""
        ...

    def put_object(self, bucket: str, key: str, body: bytes, kms_key_id: str | None) -> None: ...

    def start_execution(self, state_machine_arn: str, name: str, payload: str) -> str: ...

    def describe_execution(self, execution_arn: str) -> dict[str, Any]: ...


class ActionFailure(Exception):
    def __init__(self, message: str, code: str = "JobFailed") -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _now() -> datetime:
    return datetime.now(UTC)


def _ts(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment else None


@dataclass
class ActionRun:
    pipeline_execution_id: str
    pipeline_version: int
    stage: str
    action: dict[str, Any]
    role_arn: str
    region: str
    action_execution_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    status: str = IN_PROGRESS
    start: datetime = field(default_factory=_now)
    updated: datetime = field(default_factory=_now)
    summary: str | None = None
    external_id: str | None = None
    error: dict[str, str] | None = None
    input_artifacts: list[dict] = field(default_factory=list)
    output_artifacts: list[dict] = field(default_factory=list)
    output_variables: dict[str, str] = field(default_factory=dict)

    def finish(self, status: str, summary: str | None = None, error: dict | None = None) -> None:
        self.status, self.updated = status, _now()
        self.summary = summary if summary is not None else self.summary
        self.error = error

    def to_api(self) -> dict[str, Any]:
        """API_ActionExecutionDetail."""
        action = self.action
        result: dict[str, Any] = {}
        if self.external_id:
            result["externalExecutionId"] = self.external_id
        if self.summary:
            result["externalExecutionSummary"] = self.summary
        if self.error:
            result["errorDetails"] = self.error
        return {
            "pipelineExecutionId": self.pipeline_execution_id,
            "actionExecutionId": self.action_execution_id,
            "pipelineVersion": self.pipeline_version,
            "stageName": self.stage,
            "actionName": action["name"],
            "startTime": _ts(self.start),
            "lastUpdateTime": _ts(self.updated),
            "status": self.status,
            "input": {
                "actionTypeId": action["actionTypeId"],
                "configuration": action.get("configuration", {}),
                "resolvedConfiguration": action.get("configuration", {}),
                "roleArn": self.role_arn,
                "region": self.region,
                "inputArtifacts": self.input_artifacts,
                "namespace": action.get("namespace"),
            },
            "output": {
                "outputArtifacts": self.output_artifacts,
                "executionResult": result,
                "outputVariables": self.output_variables,
            },
        }


@dataclass
class PipelineRun:
    pipeline_name: str
    pipeline_arn: str
    pipeline: dict[str, Any]
    account: str
    region: str
    trigger: dict[str, str]
    source_overrides: list[dict[str, str]]
    variables: list[dict[str, str]]
    execution_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    status: str = IN_PROGRESS
    summary: str | None = None
    start: datetime = field(default_factory=_now)
    updated: datetime = field(default_factory=_now)
    actions: list[ActionRun] = field(default_factory=list)
    artifact_revisions: list[dict[str, Any]] = field(default_factory=list)
    source_revisions: list[dict[str, Any]] = field(default_factory=list)
    started_running: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    stop_requested: str | None = None  # None | "abandon" | "finish"

    @property
    def mode(self) -> str:
        return self.pipeline.get("executionMode") or "SUPERSEDED"

    def finish(self, status: str, summary: str | None = None) -> None:
        self.status, self.summary, self.updated = status, summary, _now()
        self.done.set()

    def to_api(self) -> dict[str, Any]:
        """API_PipelineExecution (GetPipelineExecution)."""
        return {
            "pipelineName": self.pipeline_name,
            "pipelineVersion": self.pipeline.get("version", 1),
            "pipelineExecutionId": self.execution_id,
            "status": self.status,
            **({"statusSummary": self.summary} if self.summary else {}),
            "artifactRevisions": self.artifact_revisions,
            "variables": [{"name": v["name"], "resolvedValue": v["value"]} for v in self.variables],
            "trigger": self.trigger,
            "executionMode": self.mode,
            "executionType": "STANDARD",
        }

    def to_summary(self) -> dict[str, Any]:
        """API_PipelineExecutionSummary (ListPipelineExecutions)."""
        return {
            "pipelineExecutionId": self.execution_id,
            "status": self.status,
            **({"statusSummary": self.summary} if self.summary else {}),
            "startTime": _ts(self.start),
            "lastUpdateTime": _ts(self.updated),
            "sourceRevisions": self.source_revisions,
            "trigger": self.trigger,
            "executionMode": self.mode,
            "executionType": "STANDARD",
        }


class PipelineEngine:
    """Runs executions in background threads; request threads only enqueue and read."""

    def __init__(
        self,
        services: Callable[[str, str], Services],
        authorizer: Authorizer | None = None,
        poll_seconds: float = 0.1,
    ) -> None:
        self.services = services
        self.authorizer: Authorizer = authorizer or RecordingAuthorizer()
        self.poll_seconds = poll_seconds
        self.runs: dict[str, list[PipelineRun]] = {}  # pipeline ARN -> runs, oldest first
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ API-facing calls

    def start(
        self,
        account: str,
        region: str,
        pipeline_arn: str,
        pipeline: dict[str, Any],
        trigger: dict[str, str],
        source_revisions: list[dict[str, str]] | None = None,
        variables: list[dict[str, str]] | None = None,
    ) -> PipelineRun:
        overrides = list(source_revisions or [])
        _validate_overrides(pipeline, overrides)
        run = PipelineRun(
            pipeline_name=pipeline["name"],
            pipeline_arn=pipeline_arn,
            pipeline=json.loads(json.dumps(pipeline)),  # the definition this execution runs
            account=account,
            region=region,
            trigger=trigger,
            source_overrides=overrides,
            variables=list(variables or []),
        )
        with self._lock:
            runs = self.runs.setdefault(pipeline_arn, [])
            if run.mode == "SUPERSEDED":
                # "A more recent execution can overtake an older one": a waiting one is replaced.
                for older in runs:
                    if older.status == IN_PROGRESS and not older.started_running.is_set():
                        older.finish(SUPERSEDED, f"Superseded by execution {run.execution_id}")
            earlier = [] if run.mode == "PARALLEL" else [r for r in runs if not r.done.is_set()]
            runs.append(run)
        threading.Thread(
            target=self._run,
            args=(run, earlier),
            name=f"codepipeline-{run.execution_id[:8]}",
            daemon=True,
        ).start()
        log.info(
            "pipeline %s: execution %s started by %s",
            run.pipeline_name,
            run.execution_id,
            trigger.get("triggerType"),
        )
        return run

    def executions(self, pipeline_arn: str) -> list[PipelineRun]:
        with self._lock:
            return list(reversed(self.runs.get(pipeline_arn, [])))  # newest first, as AWS lists

    def find(self, pipeline_arn: str, execution_id: str) -> PipelineRun | None:
        with self._lock:
            return next(
                (r for r in self.runs.get(pipeline_arn, []) if r.execution_id == execution_id),
                None,
            )

    def forget(self, pipeline_arn: str) -> None:
        """DeletePipeline: running executions stop at the next action boundary."""
        with self._lock:
            for run in self.runs.pop(pipeline_arn, []):
                if run.status == IN_PROGRESS:
                    run.stop_requested = "abandon"

    def stop(self, run: PipelineRun, abandon: bool, reason: str | None) -> None:
        """StopPipelineExecution: "Stop and wait" lets in-progress actions finish; "Stop and
        abandon" abandons them (API_StopPipelineExecution)."""
        if run.status != IN_PROGRESS:
            raise ValueError(f"Pipeline execution {run.execution_id} is not in progress")
        run.stop_requested = "abandon" if abandon else "finish"
        if not run.started_running.is_set():
            run.finish(STOPPED, reason)
        else:
            run.status, run.summary, run.updated = STOPPING, reason, _now()

    def state(self, pipeline_arn: str, pipeline: dict[str, Any]) -> list[dict[str, Any]]:
        """GetPipelineState stageStates: the latest execution that entered each stage."""
        runs = self.executions(pipeline_arn)
        stages = []
        for stage in pipeline.get("stages", []):
            latest = next(
                (r for r in runs if any(a.stage == stage["name"] for a in r.actions)), None
            )
            action_states = []
            for action in stage.get("actions", []):
                entry: dict[str, Any] = {"actionName": action["name"]}
                ran = next(
                    (
                        a
                        for r in runs
                        for a in reversed(r.actions)
                        if a.stage == stage["name"] and a.action["name"] == action["name"]
                    ),
                    None,
                )
                if ran:
                    entry["latestExecution"] = {
                        "actionExecutionId": ran.action_execution_id,
                        "status": ran.status,
                        "lastStatusChange": _ts(ran.updated),
                        **({"summary": ran.summary} if ran.summary else {}),
                        **({"externalExecutionId": ran.external_id} if ran.external_id else {}),
                        **({"errorDetails": ran.error} if ran.error else {}),
                    }
                    revision = ran.output_variables.get("VersionId")
                    if revision:
                        entry["currentRevision"] = {"revisionId": revision}
                action_states.append(entry)
            state: dict[str, Any] = {"stageName": stage["name"], "actionStates": action_states}
            if latest:
                stage_runs = [a for a in latest.actions if a.stage == stage["name"]]
                status = (
                    FAILED
                    if any(a.status == FAILED for a in stage_runs)
                    else IN_PROGRESS
                    if any(a.status == IN_PROGRESS for a in stage_runs)
                    else STOPPED
                    if any(a.status == ACTION_ABANDONED for a in stage_runs)
                    else SUCCEEDED
                )
                state["latestExecution"] = {
                    "pipelineExecutionId": latest.execution_id,
                    "status": status,
                }
            stages.append(state)
        return stages

    def action_executions(self, pipeline_arn: str, execution_id: str | None) -> list[dict]:
        runs = self.executions(pipeline_arn)
        details = [
            a.to_api()
            for r in runs
            if execution_id in (None, r.execution_id)
            for a in reversed(r.actions)
        ]
        return details

    # ------------------------------------------------------------------ the run

    def _run(self, run: PipelineRun, earlier: list[PipelineRun]) -> None:
        try:
            # QUEUED: "Executions are processed one by one in the order that they are queued."
            for other in earlier:
                other.done.wait()
            if run.done.is_set():  # stopped or superseded while waiting
                return
            run.started_running.set()
            self._run_stages(run)
        except Exception as exc:  # an engine bug must still end the execution, visibly
            log.exception("pipeline %s: execution %s crashed", run.pipeline_name, run.execution_id)
            if not run.done.is_set():
                run.finish(FAILED, f"Internal error in the local CodePipeline engine: {exc}")

    def _run_stages(self, run: PipelineRun) -> None:
        artifacts: dict[str, dict[str, str]] = {}
        for stage in run.pipeline.get("stages", []):
            actions = sorted(stage.get("actions", []), key=lambda a: a.get("runOrder", 1))
            for action in actions:
                if run.stop_requested:
                    run.finish(STOPPED, run.summary)
                    return
                action_run = ActionRun(
                    pipeline_execution_id=run.execution_id,
                    pipeline_version=run.pipeline.get("version", 1),
                    stage=stage["name"],
                    action=action,
                    role_arn=action.get("roleArn") or run.pipeline["roleArn"],
                    region=action.get("region") or run.region,
                )
                with self._lock:
                    run.actions.append(action_run)
                run.updated = _now()
                try:
                    self._run_action(run, action_run, artifacts)
                except ActionFailure as failure:
                    action_run.finish(
                        FAILED, failure.message, {"code": failure.code, "message": failure.message}
                    )
                    log.info(
                        "pipeline %s: execution %s: %s/%s failed: %s",
                        run.pipeline_name,
                        run.execution_id,
                        stage["name"],
                        action["name"],
                        failure.message,
                    )
                    run.finish(
                        FAILED,
                        f"Action {action['name']} in stage {stage['name']} failed: "
                        f"{failure.message}",
                    )
                    return
                if action_run.status == ACTION_ABANDONED:
                    run.finish(STOPPED, run.summary)
                    return
        run.finish(STOPPED if run.stop_requested else SUCCEEDED, run.summary)

    def _authorize(self, principal: str, action: str, resource: str, run: PipelineRun) -> None:
        context: dict[str, object] = {
            "aws:SourceAccount": run.account,
            "aws:SourceArn": run.pipeline_arn,
        }
        if action.startswith("kms:"):
            # The artifact store's key is used by S3 while it stores and serves the artifact, for
            # the pipeline role (S3 User Guide, "Using server-side encryption with AWS KMS keys").
            context.update(
                {
                    "kms:ViaService": f"s3.{run.region}.amazonaws.com",
                    "kms:CallerAccount": run.account,
                }
            )
        try:
            self.authorizer(principal, action, resource, context)
        except PermissionError as exc:
            raise ActionFailure(str(exc), code="AccessDenied") from None

    def _run_action(self, run: PipelineRun, action_run: ActionRun, artifacts: dict) -> None:
        type_id = action_run.action["actionTypeId"]
        kind = (type_id.get("category"), type_id.get("owner"), type_id.get("provider"))
        if kind == ("Source", "AWS", "S3"):
            self._s3_source(run, action_run, artifacts)
        elif kind == ("Invoke", "AWS", "StepFunctions"):
            self._step_functions(run, action_run, artifacts)
        else:
            raise ActionFailure(
                f"The local CodePipeline engine runs S3 source and Step Functions invoke actions "
                f"only, not {'/'.join(str(k) for k in kind)} ({action_run.action['name']})",
                code="ConfigurationError",
            )

    # ------------------------------------------------------------------ artifact store

    def _store(self, run: PipelineRun) -> dict[str, Any]:
        pipeline = run.pipeline
        store = pipeline.get("artifactStore") or (pipeline.get("artifactStores") or {}).get(
            run.region
        )
        if not store:
            raise ActionFailure("The pipeline has no artifact store", code="ConfigurationError")
        return store

    def _write_artifact(
        self, run: PipelineRun, action_run: ActionRun, name: str, body: bytes
    ) -> dict[str, str]:
        store = self._store(run)
        bucket = store["location"]
        # Artifacts live at <pipeline name, 20 chars>/<artifact name, 10 chars>/<random key>, the
        # layout seen in real artifact stores (e.g. MyFirstPipeline/SourceArti/1a2B3c4); AWS does
        # not document it beyond "the pipeline name is truncated", so do not rely on the suffix.
        key = (
            f"{run.pipeline_name[:20]}/{name[:10]}/"
            f"{''.join(secrets.choice(ARTIFACT_KEY_CHARS) for _ in range(7))}"
        )
        kms = (store.get("encryptionKey") or {}).get("id")
        services = self.services(run.account, run.region)
        self._authorize(action_run.role_arn, "s3:PutObject", f"arn:aws:s3:::{bucket}/{key}", run)
        if kms:
            self._authorize(action_run.role_arn, "kms:GenerateDataKey", _kms_arn(kms, run), run)
        services.put_object(bucket, key, body, kms)
        artifact = {"name": name, "s3location": {"bucket": bucket, "key": key}}
        return artifact

    def _read_artifact(self, run: PipelineRun, action_run: ActionRun, artifact: dict) -> bytes:
        location = artifact["s3location"]
        store = self._store(run)
        kms = (store.get("encryptionKey") or {}).get("id")
        self._authorize(
            action_run.role_arn,
            "s3:GetObject",
            f"arn:aws:s3:::{location['bucket']}/{location['key']}",
            run,
        )
        if kms:
            self._authorize(action_run.role_arn, "kms:Decrypt", _kms_arn(kms, run), run)
        try:
            body, _, _ = self.services(run.account, run.region).get_object(
                location["bucket"], location["key"], None
            )
        except SourceNotFound:
            raise ActionFailure(
                f"Input artifact {artifact['name']} is missing from "
                f"s3://{location['bucket']}/{location['key']}"
            ) from None
        return body

    # ------------------------------------------------------------------ S3 source action

    def _s3_source(self, run: PipelineRun, action_run: ActionRun, artifacts: dict) -> None:
        """Amazon S3 source action reference: S3Bucket + S3ObjectKey in a versioned bucket; the
        output artifact is the object; output variables ETag and VersionId."""
        config = action_run.action.get("configuration", {})
        bucket, key = config.get("S3Bucket"), config.get("S3ObjectKey")
        if not bucket or not key:
            raise ActionFailure(
                "The S3 source action needs S3Bucket and S3ObjectKey", code="ConfigurationError"
            )
        version = None
        for override in run.source_overrides:
            if override["actionName"] != action_run.action["name"]:
                continue
            if override["revisionType"] == "S3_OBJECT_VERSION_ID":
                version = override["revisionValue"]
            elif override["revisionType"] == "S3_OBJECT_KEY":
                key = override["revisionValue"]
        role = action_run.role_arn
        services = self.services(run.account, run.region)
        self._authorize(role, "s3:GetBucketVersioning", f"arn:aws:s3:::{bucket}", run)
        if services.bucket_versioning(bucket) != "Enabled":
            raise ActionFailure(
                f"Bucket {bucket} must have versioning enabled to be an S3 source "
                "(Amazon S3 source action reference)",
                code="ConfigurationError",
            )
        object_arn = f"arn:aws:s3:::{bucket}/{key}"
        self._authorize(role, "s3:GetObjectVersion" if version else "s3:GetObject", object_arn, run)
        try:
            body, version_id, etag = services.get_object(bucket, key, version)
        except SourceNotFound:
            which = f"version {version} of " if version else ""
            raise ActionFailure(
                f"The {which}object with key '{key}' does not exist in bucket '{bucket}'."
            ) from None
        outputs = []
        for out in action_run.action.get("outputArtifacts", []):
            artifact = self._write_artifact(run, action_run, out["name"], body)
            artifacts[out["name"]] = artifact
            outputs.append(artifact)
        action_run.external_id = version_id
        action_run.output_artifacts = outputs
        action_run.output_variables = {"ETag": etag, "VersionId": version_id}
        revision = {
            "name": outputs[0]["name"] if outputs else action_run.action["name"],
            "revisionId": version_id,
            "revisionSummary": f"Amazon S3 version id: {version_id}",
            "created": _ts(_now()),
        }
        run.artifact_revisions.append(revision)
        run.source_revisions.append(
            {
                "actionName": action_run.action["name"],
                "revisionId": version_id,
                "revisionSummary": revision["revisionSummary"],
            }
        )
        action_run.finish(SUCCEEDED, revision["revisionSummary"])

    # ------------------------------------------------------------------ Step Functions action

    def _step_functions(self, run: PipelineRun, action_run: ActionRun, artifacts: dict) -> None:
        """AWS Step Functions invoke action reference: StateMachineArn, ExecutionNamePrefix
        (prepended to the action execution ID with a hyphen), InputType Literal|FilePath, Input."""
        config = action_run.action.get("configuration", {})
        machine = config.get("StateMachineArn")
        if not machine:
            raise ActionFailure(
                "The Step Functions action needs StateMachineArn", code="ConfigurationError"
            )
        input_type = config.get("InputType", "Literal")
        if input_type == "FilePath":
            names = [a["name"] for a in action_run.action.get("inputArtifacts", [])]
            if not names or names[0] not in artifacts:
                raise ActionFailure(
                    "InputType FilePath needs an input artifact produced earlier in the pipeline",
                    code="ConfigurationError",
                )
            artifact = artifacts[names[0]]
            action_run.input_artifacts = [artifact]
            blob = self._read_artifact(run, action_run, artifact)
            path = config.get("Input")
            if not path:
                raise ActionFailure("InputType FilePath needs Input: a file path in the artifact")
            try:
                with zipfile.ZipFile(io.BytesIO(blob)) as archive:
                    payload = archive.read(path).decode()
            except (zipfile.BadZipFile, KeyError):
                raise ActionFailure(
                    f"Input artifact {artifact['name']} has no file {path!r} "
                    "(the artifact must be a zip holding it)"
                ) from None
        elif input_type == "Literal":
            payload = config.get("Input") or "{}"
        else:
            raise ActionFailure(
                f"InputType must be Literal or FilePath, not {input_type!r}",
                code="ConfigurationError",
            )
        prefix = config.get("ExecutionNamePrefix")
        name = (
            f"{prefix}-{action_run.action_execution_id}"
            if prefix
            else (action_run.action_execution_id)
        )
        services = self.services(run.account, run.region)
        role = action_run.role_arn
        self._authorize(role, "states:StartExecution", machine, run)
        try:
            execution_arn = services.start_execution(machine, name, payload)
        except Exception as exc:  # the service's own error, as the action reports it
            raise ActionFailure(f"StartExecution failed: {exc}") from None
        action_run.external_id = execution_arn
        action_run.output_variables = {"StateMachineArn": machine, "ExecutionArn": execution_arn}
        action_run.summary = f"Execution {name} started"
        while True:
            if run.stop_requested == "abandon":
                action_run.finish(ACTION_ABANDONED, "Abandoned by StopPipelineExecution")
                return
            self._authorize(role, "states:DescribeExecution", execution_arn, run)
            described = services.describe_execution(execution_arn)
            status = described["status"]
            if status == "SUCCEEDED":
                action_run.finish(SUCCEEDED, f"Execution {name} succeeded")
                return
            if status in SFN_TERMINAL_FAILURES:
                details = ": ".join(
                    str(p) for p in (described.get("error"), described.get("cause")) if p
                )
                raise ActionFailure(
                    f"Execution {name} ended with status {status}"
                    + (f" ({details})" if details else "")
                )
            time.sleep(self.poll_seconds)


def _kms_arn(key_id: str, run: PipelineRun) -> str:
    if key_id.startswith("arn:"):
        return key_id
    return f"arn:aws:kms:{run.region}:{run.account}:key/{key_id}"


def _validate_overrides(pipeline: dict[str, Any], overrides: list[dict[str, str]]) -> None:
    """API_SourceRevisionOverride: actionName, revisionType and revisionValue are all required;
    S3_OBJECT_KEY needs AllowOverrideForS3ObjectKey=true on the action (S3 source reference)."""
    actions = {a["name"]: a for s in pipeline.get("stages", []) for a in s.get("actions", [])}
    for override in overrides:
        missing = [
            k for k in ("actionName", "revisionType", "revisionValue") if not override.get(k)
        ]
        if missing:
            raise ValueError(f"sourceRevisions entries need {', '.join(missing)}")
        action = actions.get(override["actionName"])
        if action is None or action["actionTypeId"].get("category") != "Source":
            raise ValueError(
                f"sourceRevisions names {override['actionName']!r}, which is not a source action "
                "of this pipeline"
            )
        kind = override["revisionType"]
        if kind not in ("COMMIT_ID", "IMAGE_DIGEST", "S3_OBJECT_VERSION_ID", "S3_OBJECT_KEY"):
            raise ValueError(
                f"revisionType {kind!r} must be one of COMMIT_ID | IMAGE_DIGEST | "
                "S3_OBJECT_VERSION_ID | S3_OBJECT_KEY"
            )
        allowed = str(action.get("configuration", {}).get("AllowOverrideForS3ObjectKey", "false"))
        if kind == "S3_OBJECT_KEY" and allowed.lower() != "true":
            raise ValueError(
                f"Action {override['actionName']} does not allow S3_OBJECT_KEY overrides: set "
                "AllowOverrideForS3ObjectKey to true in its configuration"
            )
