"""Gap: moto's CodePipeline records pipelines but runs nothing, and its EventBridge ignores pipeline
targets. The engine (local_aws/codepipeline.py) runs the release pipeline's real path: S3 upload ->
EventBridge rule -> pipeline (QUEUED) -> S3 source action -> Step Functions invoke action.

In-process moto (mock_aws) with the adapters installed, so each test can inject an authorizer.
"""

from __future__ import annotations

import io
import json
import time
import zipfile

import boto3
import pytest
from moto import mock_aws

from release_tooling.local_aws import codepipeline_patch, events_patch, stepfunctions_patch
from release_tooling.local_aws.codepipeline import RecordingAuthorizer, ServiceAccessDenied

REGION = "us-east-2"
ACCOUNT = "123456789012"
BUCKET = "orders-artifacts-123456789012"
SOURCE_KEY = "pipeline/source.zip"
PIPELINE = "orders-service-dev-release"
SOURCE_ACTION = "ReleaseUpload"

MACHINE = {
    "StartAt": "Route",
    "States": {
        "Route": {
            "Type": "Choice",
            "Choices": [
                {
                    "And": [
                        {"Variable": "$.fail", "IsPresent": True},
                        {"Variable": "$.fail", "BooleanEquals": True},
                    ],
                    "Next": "Broken",
                }
            ],
            "Default": "Hold",
        },
        "Hold": {"Type": "Wait", "SecondsPath": "$.hold_seconds", "Next": "Done"},
        "Done": {"Type": "Succeed"},
        "Broken": {"Type": "Fail", "Error": "ReleaseBroken", "Cause": "asked to fail"},
    },
}


class DenyingAuthorizer(RecordingAuthorizer):
    def __init__(self, deny: set[tuple[str, str]]) -> None:
        super().__init__()
        self.deny = deny

    def __call__(self, principal, action, resource, context) -> None:
        super().__call__(principal, action, resource, context)
        if (principal, action) in self.deny:
            raise ServiceAccessDenied(principal, action, resource)


@pytest.fixture
def authorizer():
    return RecordingAuthorizer()


@pytest.fixture
def aws(authorizer):
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        stepfunctions_patch.install()
        codepipeline_patch.install(authorizer=authorizer)
        events_patch.FAILED_INVOCATIONS.clear()
        yield lambda service: boto3.client(service, region_name=REGION)
        for run in [r for runs in codepipeline_patch.ENGINE.runs.values() for r in runs]:
            run.done.wait(10)  # let no execution outlive the mock
        codepipeline_patch.ENGINE.runs.clear()
    codepipeline_patch.install()


def role(aws, name: str, service: str) -> str:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
        ],
    }
    return aws("iam").create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))[
        "Role"
    ]["Arn"]


@pytest.fixture
def stack(aws):
    """The release stack of terraform/pipeline.tf and artifacts.tf, pipeline created last."""
    s3 = aws("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    key = aws("kms").create_key()["KeyMetadata"]["Arn"]
    sfn_role = role(aws, "sfn-role", "states.amazonaws.com")
    machine = aws("stepfunctions").create_state_machine(
        name="orders-release", definition=json.dumps(MACHINE), roleArn=sfn_role
    )["stateMachineArn"]
    pipeline_role = role(aws, "pipeline-role", "codepipeline.amazonaws.com")
    trigger_role = role(aws, "trigger-role", "events.amazonaws.com")
    events = aws("events")
    events.put_rule(
        Name="orders-artifact-uploaded",
        EventPattern=json.dumps(
            {
                "source": ["aws.s3"],
                "detail-type": ["Object Created"],
                "detail": {"bucket": {"name": [BUCKET]}, "object": {"key": [SOURCE_KEY]}},
            }
        ),
    )
    pipeline = aws("codepipeline").create_pipeline(
        pipeline={
            "name": PIPELINE,
            "roleArn": pipeline_role,
            "pipelineType": "V2",
            "executionMode": "QUEUED",
            "artifactStore": {
                "type": "S3",
                "location": BUCKET,
                "encryptionKey": {"id": key, "type": "KMS"},
            },
            "stages": [
                {
                    "name": "Source",
                    "actions": [
                        {
                            "name": SOURCE_ACTION,
                            "actionTypeId": {
                                "category": "Source",
                                "owner": "AWS",
                                "provider": "S3",
                                "version": "1",
                            },
                            "outputArtifacts": [{"name": "release_input"}],
                            "configuration": {
                                "S3Bucket": BUCKET,
                                "S3ObjectKey": SOURCE_KEY,
                                "PollForSourceChanges": "false",
                            },
                        }
                    ],
                },
                {
                    "name": "Release",
                    "actions": [
                        {
                            "name": "RunStateMachine",
                            "actionTypeId": {
                                "category": "Invoke",
                                "owner": "AWS",
                                "provider": "StepFunctions",
                                "version": "1",
                            },
                            "inputArtifacts": [{"name": "release_input"}],
                            "configuration": {
                                "StateMachineArn": machine,
                                "ExecutionNamePrefix": "release",
                                "InputType": "FilePath",
                                "Input": "execution-input.json",
                            },
                        }
                    ],
                },
            ],
        }
    )
    arn = aws("codepipeline").get_pipeline(name=PIPELINE)["metadata"]["pipelineArn"]
    events.put_targets(
        Rule="orders-artifact-uploaded",
        Targets=[
            {
                "Id": "release-pipeline",
                "Arn": arn,
                "RoleArn": trigger_role,
                "InputTransformer": {
                    "InputPathsMap": {"revisionValue": "$.detail.object.version-id"},
                    "InputTemplate": json.dumps(
                        {
                            "sourceRevisions": [
                                {
                                    "actionName": SOURCE_ACTION,
                                    "revisionType": "S3_OBJECT_VERSION_ID",
                                    "revisionValue": "<revisionValue>",
                                }
                            ]
                        }
                    ),
                },
            }
        ],
    )
    return {
        "pipeline": pipeline["pipeline"],
        "arn": arn,
        "machine": machine,
        "key": key,
        "pipeline_role": pipeline_role,
        "trigger_role": trigger_role,
    }


def upload(aws, payload: dict) -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("execution-input.json", json.dumps(payload))
    return aws("s3").put_object(Bucket=BUCKET, Key=SOURCE_KEY, Body=buffer.getvalue())["VersionId"]


def executions(aws) -> list[dict]:
    return aws("codepipeline").list_pipeline_executions(pipelineName=PIPELINE)[
        "pipelineExecutionSummaries"
    ]


def wait_until_done(aws, execution_id: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = aws("codepipeline").get_pipeline_execution(
            pipelineName=PIPELINE, pipelineExecutionId=execution_id
        )["pipelineExecution"]
        if got["status"] not in ("InProgress", "Stopping"):
            return got
        time.sleep(0.05)
    raise AssertionError(f"execution {execution_id} still running after {timeout} s")


def started_by_upload(aws, before: int) -> dict:
    found = executions(aws)
    assert len(found) == before + 1, found
    assert found[0]["trigger"]["triggerType"] == "CloudWatchEvent"
    return found[0]


def release_action(aws, execution_id: str) -> dict:
    details = aws("codepipeline").list_action_executions(
        pipelineName=PIPELINE, filter={"pipelineExecutionId": execution_id}
    )["actionExecutionDetails"]
    return next(d for d in details if d["actionName"] == "RunStateMachine")


def test_creating_the_pipeline_starts_an_execution_that_fails_at_source(aws, stack):
    (first,) = executions(aws)
    assert first["trigger"]["triggerType"] == "CreatePipeline"
    done = wait_until_done(aws, first["pipelineExecutionId"])
    assert done["status"] == "Failed"
    assert SOURCE_KEY in done["statusSummary"] and "does not exist" in done["statusSummary"]
    state = aws("codepipeline").get_pipeline_state(name=PIPELINE)["stageStates"]
    assert state[0]["latestExecution"]["status"] == "Failed"
    assert state[0]["actionStates"][0]["latestExecution"]["errorDetails"]["code"] == "JobFailed"
    assert "latestExecution" not in state[1]  # the Release stage never ran


def test_an_upload_runs_the_release_with_the_uploaded_version(aws, stack, authorizer):
    wait_until_done(aws, executions(aws)[0]["pipelineExecutionId"])
    payload = {"commit_sha": "a" * 40, "hold_seconds": 0}
    version = upload(aws, payload)
    summary = started_by_upload(aws, before=1)
    done = wait_until_done(aws, summary["pipelineExecutionId"])
    assert done["status"] == "Succeeded", done
    assert done["artifactRevisions"][0]["revisionId"] == version
    listed = executions(aws)[0]
    assert listed["sourceRevisions"] == [
        {
            "actionName": SOURCE_ACTION,
            "revisionId": version,
            "revisionSummary": f"Amazon S3 version id: {version}",
        }
    ]
    assert listed["trigger"]["triggerDetail"].endswith(":rule/orders-artifact-uploaded")

    action = release_action(aws, summary["pipelineExecutionId"])
    execution_arn = action["output"]["executionResult"]["externalExecutionId"]
    described = aws("stepfunctions").describe_execution(executionArn=execution_arn)
    # "prepended to the action execution ID with a hyphen" (Step Functions invoke action reference)
    assert described["name"] == f"release-{action['actionExecutionId']}"
    assert json.loads(described["input"]) == payload
    # The source artifact went to <pipeline name[:20]>/<artifact name[:10]>/<key>, KMS-encrypted.
    source = next(
        d
        for d in aws("codepipeline").list_action_executions(
            pipelineName=PIPELINE, filter={"pipelineExecutionId": summary["pipelineExecutionId"]}
        )["actionExecutionDetails"]
        if d["actionName"] == SOURCE_ACTION
    )
    location = source["output"]["outputArtifacts"][0]["s3location"]
    assert location["key"].startswith(f"{PIPELINE[:20]}/release_in/")
    head = aws("s3").head_object(Bucket=BUCKET, Key=location["key"])
    assert head["ServerSideEncryption"] == "aws:kms"
    calls = {(c[0], c[1]) for c in authorizer.calls}
    role_arn = stack["pipeline_role"]
    assert {
        (stack["trigger_role"], "codepipeline:StartPipelineExecution"),
        (role_arn, "s3:GetObjectVersion"),
        (role_arn, "s3:PutObject"),
        (role_arn, "kms:GenerateDataKey"),
        (role_arn, "s3:GetObject"),
        (role_arn, "states:StartExecution"),
        (role_arn, "states:DescribeExecution"),
    } <= calls


def test_a_failing_state_machine_execution_fails_the_pipeline_execution(aws, stack):
    wait_until_done(aws, executions(aws)[0]["pipelineExecutionId"])
    upload(aws, {"fail": True})
    summary = started_by_upload(aws, before=1)
    done = wait_until_done(aws, summary["pipelineExecutionId"])
    assert done["status"] == "Failed"
    assert "FAILED" in done["statusSummary"] and "ReleaseBroken" in done["statusSummary"]
    action = release_action(aws, summary["pipelineExecutionId"])
    assert action["status"] == "Failed"
    assert "asked to fail" in action["output"]["executionResult"]["errorDetails"]["message"]


def test_queued_mode_holds_the_second_release_and_pins_its_version(aws, stack):
    wait_until_done(aws, executions(aws)[0]["pipelineExecutionId"])
    first_version = upload(aws, {"commit_sha": "1" * 40, "hold_seconds": 1})
    second_version = upload(aws, {"commit_sha": "2" * 40, "hold_seconds": 0})
    second, first = executions(aws)[:2]
    assert first["sourceRevisions"] == [] or first["sourceRevisions"][0]["revisionId"] == (
        first_version
    )
    time.sleep(0.5)  # the first is holding in its Wait state; the second must not have started
    assert [a["actionName"] for a in _actions(aws, second["pipelineExecutionId"])] == []
    assert executions(aws)[0]["status"] == "InProgress"  # queued executions report InProgress
    first_done = wait_until_done(aws, first["pipelineExecutionId"])
    second_done = wait_until_done(aws, second["pipelineExecutionId"])
    assert (first_done["status"], second_done["status"]) == ("Succeeded", "Succeeded")
    assert second_done["artifactRevisions"][0]["revisionId"] == second_version
    assert first_done["artifactRevisions"][0]["revisionId"] == first_version
    inputs = []
    for done in (first_done, second_done):
        arn = release_action(aws, done["pipelineExecutionId"])["output"]["executionResult"][
            "externalExecutionId"
        ]
        described = aws("stepfunctions").describe_execution(executionArn=arn)
        inputs.append((json.loads(described["input"])["commit_sha"], described["startDate"]))
    assert [c for c, _ in inputs] == ["1" * 40, "2" * 40]
    first_sfn = aws("stepfunctions").describe_execution(
        executionArn=release_action(aws, first_done["pipelineExecutionId"])["output"][
            "executionResult"
        ]["externalExecutionId"]
    )
    assert inputs[1][1] >= first_sfn["stopDate"]  # the second began after the first ended


def test_a_pinned_version_wins_over_the_latest_object(aws, stack):
    wait_until_done(aws, executions(aws)[0]["pipelineExecutionId"])
    old = upload(aws, {"commit_sha": "3" * 40, "hold_seconds": 0})
    wait_until_done(aws, executions(aws)[0]["pipelineExecutionId"])
    upload(aws, {"commit_sha": "4" * 40, "hold_seconds": 0})
    wait_until_done(aws, executions(aws)[0]["pipelineExecutionId"])
    started = aws("codepipeline").start_pipeline_execution(
        name=PIPELINE,
        sourceRevisions=[
            {
                "actionName": SOURCE_ACTION,
                "revisionType": "S3_OBJECT_VERSION_ID",
                "revisionValue": old,
            }
        ],
    )["pipelineExecutionId"]
    done = wait_until_done(aws, started)
    assert done["trigger"]["triggerType"] == "StartPipelineExecution"
    arn = release_action(aws, started)["output"]["executionResult"]["externalExecutionId"]
    described = aws("stepfunctions").describe_execution(executionArn=arn)
    assert json.loads(described["input"])["commit_sha"] == "3" * 40


def test_an_override_naming_no_source_action_is_rejected(aws, stack):
    with pytest.raises(aws("codepipeline").exceptions.ClientError, match="not a source action"):
        aws("codepipeline").start_pipeline_execution(
            name=PIPELINE,
            sourceRevisions=[
                {"actionName": "Nope", "revisionType": "S3_OBJECT_VERSION_ID", "revisionValue": "x"}
            ],
        )


@pytest.fixture
def deny():
    return DenyingAuthorizer(set())


def test_a_denied_trigger_role_starts_nothing(aws, stack, deny):
    codepipeline_patch.set_authorizer(deny)
    deny.deny.add((stack["trigger_role"], "codepipeline:StartPipelineExecution"))
    wait_until_done(aws, executions(aws)[0]["pipelineExecutionId"])
    upload(aws, {"commit_sha": "5" * 40})
    assert len(executions(aws)) == 1  # only the one CreatePipeline started
    (failure,) = events_patch.FAILED_INVOCATIONS
    assert "codepipeline:StartPipelineExecution" in failure["error"]
    assert failure["target"] == "release-pipeline"


def test_a_denied_source_read_fails_the_source_action_naming_it(aws, stack, deny):
    codepipeline_patch.set_authorizer(deny)
    deny.deny.add((stack["pipeline_role"], "s3:GetObjectVersion"))
    wait_until_done(aws, executions(aws)[0]["pipelineExecutionId"])
    upload(aws, {"commit_sha": "6" * 40})
    done = wait_until_done(aws, executions(aws)[0]["pipelineExecutionId"])
    assert done["status"] == "Failed"
    assert "s3:GetObjectVersion" in done["statusSummary"]
    (source,) = _actions(aws, done["pipelineExecutionId"])
    assert source["output"]["executionResult"]["errorDetails"]["code"] == "AccessDenied"
    assert (
        f"{BUCKET}/{SOURCE_KEY}" in source["output"]["executionResult"]["errorDetails"]["message"]
    )


def test_stopping_a_queued_execution_stops_it_before_it_runs(aws, stack):
    wait_until_done(aws, executions(aws)[0]["pipelineExecutionId"])
    upload(aws, {"commit_sha": "7" * 40, "hold_seconds": 1})
    upload(aws, {"commit_sha": "8" * 40, "hold_seconds": 0})
    queued = executions(aws)[0]["pipelineExecutionId"]
    aws("codepipeline").stop_pipeline_execution(
        pipelineName=PIPELINE, pipelineExecutionId=queued, abandon=True, reason="not this one"
    )
    assert wait_until_done(aws, queued)["status"] == "Stopped"
    wait_until_done(aws, executions(aws)[1]["pipelineExecutionId"])
    assert _actions(aws, queued) == []


def _actions(aws, execution_id: str) -> list[dict]:
    return aws("codepipeline").list_action_executions(
        pipelineName=PIPELINE, filter={"pipelineExecutionId": execution_id}
    )["actionExecutionDetails"]
