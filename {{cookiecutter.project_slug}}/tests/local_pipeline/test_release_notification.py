"""Rehearsal: every release's end reaches the release-events topic once, as on AWS.

The state machine publishes its own outcome as it ends (NotifyRelease in state_machine.asl.json,
through the sns:publish integration with its role, under IAM enforcement here): a JSON message with
the provenance chain, commit -> reviewed plan -> artifact sha256 -> versions -> deployments ->
execution. A release that never reaches its end states (timed out, stopped) is reported by the
EventBridge rule in terraform/monitoring.tf instead. Subscribers (here an SQS queue, as a person's
email on AWS) get either.
"""

from __future__ import annotations

import io
import json
import shutil
import time
import uuid
import zipfile

import pytest
from release_tooling import contract, provenance
from release_tooling.rehearsal import commit_id

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("terraform") is None,
        reason="terraform is not installed (needed by release-tooling local up)",
    ),
]

REVIEW = {
    "digest": "sha256:" + "d" * 64,
    "source": "pull request #12: run https://github.com/o/r/actions/runs/7",
    "matches": True,
}


@pytest.fixture
def watcher(project):
    """An SQS queue subscribed to the release-events topic; yields a reader of its messages."""
    sns, sqs = project.admin_client("sns"), project.admin_client("sqs")
    queue = sqs.create_queue(QueueName=f"release-watch-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    subscription = sns.subscribe(
        TopicArn=project.outputs()["sns_topic_arn"], Protocol="sqs", Endpoint=arn
    )["SubscriptionArn"]
    received: list[dict] = []

    def read(containing: str, timeout: float = 30, outcome: bool = False) -> list[dict]:
        """Every notification (SNS envelope) whose Message names `containing` (and is a release
        outcome, if asked), once one has."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            received.extend(json.loads(m["Body"]) for m in got.get("Messages", []))
            found = [
                m for m in received if containing in m["Message"] and (not outcome or is_outcome(m))
            ]
            if found:
                return found
        raise AssertionError(f"no notification naming {containing} in {timeout} s: {received}")

    yield read
    sns.unsubscribe(SubscriptionArn=subscription)
    sqs.delete_queue(QueueUrl=queue)


def is_outcome(envelope: dict) -> bool:
    """The state machine's notification of how a release ended (not an approval request or an
    alarm, which the topic also carries)."""
    try:
        message = json.loads(envelope["Message"])
    except ValueError:
        return False
    return isinstance(message, dict) and message.get("notification") == "release"


def execution(project, name: str) -> dict:
    sfn = project.admin_client("stepfunctions")
    machine = project.outputs()["state_machine_arn"]
    arn = next(
        e["executionArn"]
        for e in sfn.list_executions(stateMachineArn=machine)["executions"]
        if e["name"] == name
    )
    return sfn.describe_execution(executionArn=arn)


def release_notification(watcher, arn: str) -> tuple[dict, dict]:
    """The one notification of how an execution ended (envelope, message), after EventBridge had
    its chance to send a second one."""
    (envelope,) = watcher(arn, outcome=True)
    time.sleep(3)
    ends = [
        m
        for m in watcher(arn, timeout=1)
        if is_outcome(m) or "finished with status" in m["Message"]
    ]
    assert ends == [envelope], "one notification per release"
    return envelope, json.loads(envelope["Message"])


def test_a_release_notifies_its_outcome_with_the_provenance_chain(project, released, watcher):
    commit = commit_id("notified")
    run = project.local("release", "--commit", commit)
    assert run.returncode == 0, run.stdout
    described = execution(project, project.execution(commit)["name"])

    envelope, message = release_notification(watcher, described["executionArn"])

    assert envelope["Subject"].startswith("Release succeeded")
    assert (message["status"], message["end"]) == ("SUCCEEDED", "ReleaseSucceeded")
    output = json.loads(described["output"])
    assert message["commit_sha"] == commit
    assert message["artifact"]["sha256"] == output["artifact"]["sha256"]
    for stage in ("staging", "production"):
        assert message[stage]["target_version"] == output[stage]["target_version"]
        assert message[stage]["deployment_id"] == output[stage]["deployment_id"]
    assert message["review"] is None  # a local release has no reviewed plan
    # The deploy job summary's chain, from the execution, is the one the notification carries.
    chain = provenance.chain(described["executionArn"], described["input"], described["output"])
    assert provenance.notification_chain(message) == chain
    assert [line for line in chain if "CodeDeploy deployment `d-" in line]


def test_a_failed_release_notifies_its_failure_and_why(project, released, watcher):
    commit = commit_id("notified-failure")
    run = project.local("release", "--fail", "validate", "--commit", commit)
    assert run.returncode == 1, run.stdout
    described = execution(project, project.execution(commit)["name"])

    envelope, message = release_notification(watcher, described["executionArn"])

    assert envelope["Subject"].startswith("Release rejected")
    assert (message["status"], message["end"]) == ("FAILED", "ArtifactRejected")
    assert message["error"] == {"Error": described["error"], "Cause": described["cause"]}
    assert (message["artifact"], message["staging"], message["production"]) == (None,) * 3
    assert provenance.notification_chain(message) == [
        f"- commit `{commit}`",
        f"- execution `{described['executionArn']}`",
    ]


def test_the_reviewed_plan_travels_from_the_upload_to_the_notification(project, watcher):
    """What `package upload --reviewed` writes into pipeline/source.zip reaches the state machine
    through CodePipeline: re-uploading it for a released commit starts a re-run carrying it."""
    commit = commit_id("notified")  # released by the first scenario; releasing it again is a re-run
    payload = contract.execution_input(
        project.outputs()["artifact_bucket"], commit, 1, 120, review=REVIEW
    )
    source = io.BytesIO()
    with zipfile.ZipFile(source, "w") as archive:
        archive.writestr(contract.INPUT_FILE, json.dumps(payload))
    project.admin_client("s3").put_object(
        Bucket=payload["artifact_bucket"], Key=contract.SOURCE_KEY, Body=source.getvalue()
    )

    (envelope,) = watcher(REVIEW["digest"], timeout=240, outcome=True)

    message = json.loads(envelope["Message"])
    assert message["review"] == REVIEW and message["commit_sha"] == commit
    assert message["status"] == "SUCCEEDED"
    assert provenance.notification_chain(message)[0] == (
        f"- reviewed plan `{REVIEW['digest']}` from {REVIEW['source']}"
    )
