"""Rehearsal: the end of every release reaches the release-events topic, as on AWS.

Step Functions sends "Step Functions Execution Status Change" events to the default EventBridge
bus; the rule in terraform/monitoring.tf matches the release state machine's final statuses and
publishes a one-line summary to the SNS topic, whose subscribers (here an SQS queue, as a person's
email on AWS) get it.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid

import pytest
from release_tooling.rehearsal import commit_id

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("terraform") is None,
        reason="terraform is not installed (needed by release-tooling local up)",
    ),
]


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
    received: list[str] = []

    def read(containing: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            received.extend(json.loads(m["Body"])["Message"] for m in got.get("Messages", []))
            found = [m for m in received if containing in m]
            if found:
                return found[0]
        raise AssertionError(f"no notification naming {containing} in {timeout} s: {received}")

    yield read
    sns.unsubscribe(SubscriptionArn=subscription)
    sqs.delete_queue(QueueUrl=queue)


def execution_arn(project, name: str) -> str:
    sfn = project.admin_client("stepfunctions")
    machine = project.outputs()["state_machine_arn"]
    return next(
        e["executionArn"]
        for e in sfn.list_executions(stateMachineArn=machine)["executions"]
        if e["name"] == name
    )


def test_a_release_notifies_the_topic_with_its_execution_and_status(project, released, watcher):
    machine = project.outputs()["state_machine_name"]
    commit = commit_id("notified")
    run = project.local("release", "--commit", commit)
    assert run.returncode == 0, run.stdout
    name = project.execution(commit)["name"]

    # The topic also carries approval requests and alarm changes: read the status notification.
    message = watcher(f"execution {name} finished")

    arn = execution_arn(project, name)
    assert message == (
        f'"Release {machine} execution {name} finished with status SUCCEEDED ({arn})."'
    )


def test_a_failed_release_notifies_its_failure(project, released, watcher):
    commit = commit_id("notified-failure")
    run = project.local("release", "--fail", "validate", "--commit", commit)
    assert run.returncode == 1, run.stdout
    name = project.execution(commit)["name"]

    message = watcher(f"execution {name} finished")

    assert f"execution {name} finished with status FAILED" in message
