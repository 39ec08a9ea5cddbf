import boto3
import pytest

STATE_MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:orders-release"
EVENT = {
    "task_token": "AAAA-token-BBBB",
    "execution_name": "release-0123456789ab",
    "execution_arn": STATE_MACHINE.replace(":stateMachine:", ":execution:")
    + ":release-0123456789ab",
    "state_machine_arn": STATE_MACHINE,
    "commit_sha": "0123456789ab" + "c" * 28,
    "smoke_summary": "4/4 smoke tests passed",
    "staging_version": "7",
}


@pytest.fixture
def notifier(load_lambda, aws, monkeypatch):
    sns = boto3.client("sns")
    topic = sns.create_topic(Name="release-events")["TopicArn"]
    monkeypatch.setenv("TOPIC_ARN", topic)
    return load_lambda("approval_notifier"), topic


def test_message_has_commit_and_exact_commands(notifier):
    module, _ = notifier
    subject, body = module.build_message(EVENT)
    assert subject == "Approve release 0123456789ab to production?"
    assert EVENT["commit_sha"] in body
    assert "(version 7)" in body
    base = f"--execution release-0123456789ab --state-machine {EVENT['state_machine_arn']}"
    assert f"release-tooling approve approve {base}" in body
    assert f'release-tooling approve reject {base} --reason "why"' in body
    # The raw token stays out of email; only its fingerprint is shown.
    assert EVENT["task_token"] not in body
    assert module.token_fingerprint(EVENT["task_token"]) in body


def test_message_leads_with_the_approve_release_workflow_when_configured(notifier):
    module, _ = notifier
    url = "https://github.com/acme/orders/actions/workflows/approve-release.yml"
    _, body = module.build_message(EVENT, url)
    assert body.index(url) < body.index("release-tooling approve approve")
    assert "execution: release-0123456789ab" in body
    _, without = module.build_message(EVENT)
    assert "github.com" not in without and "Approve release workflow" not in without


def test_publishes_to_the_topic(notifier, context, monkeypatch):
    module, topic = notifier
    url = "https://github.com/acme/orders/actions/workflows/approve-release.yml"
    monkeypatch.setenv("APPROVAL_WORKFLOW_URL", url)
    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    boto3.client("sns").subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    result = module.handler(EVENT, context)
    assert result["topic_arn"] == topic
    messages = sqs.receive_message(QueueUrl=queue, MessageAttributeNames=["All"])["Messages"]
    assert "release-tooling approve approve" in messages[0]["Body"]
    assert url in messages[0]["Body"]  # terraform/lambda.tf sets it from github_repository
    assert messages[0]["MessageAttributes"]["commit_sha"]["StringValue"] == EVENT["commit_sha"]


def test_missing_token_is_rejected(notifier, context):
    module, _ = notifier
    from shared.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="task_token"):
        module.handler({**EVENT, "task_token": ""}, context)


def test_missing_topic(notifier, context, monkeypatch):
    module, _ = notifier
    from shared.errors import ConfigurationError

    monkeypatch.delenv("TOPIC_ARN")
    with pytest.raises(ConfigurationError, match="TOPIC_ARN"):
        module.handler(EVENT, context)
