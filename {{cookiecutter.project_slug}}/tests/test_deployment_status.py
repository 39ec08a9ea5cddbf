import boto3
import pytest
from botocore.stub import Stubber

RECORD = {
    "alias": "staging",
    "function_name": "orders-app",
    "previous_version": "3",
    "target_version": "4",
    "deployment_id": "d-ABC123",
    "action": "deployment_created",
}


@pytest.fixture
def status(load_lambda, monkeypatch):
    module = load_lambda("deployment_status")
    cd = boto3.client("codedeploy")
    stubber = Stubber(cd)
    monkeypatch.setattr(module, "client", lambda name: cd)
    with stubber:
        yield module, stubber
    stubber.assert_no_pending_responses()


def reply(stubber, deployment_status, **extra):
    stubber.add_response(
        "get_deployment",
        {"deploymentInfo": {"deploymentId": "d-ABC123", "status": deployment_status, **extra}},
        {"deploymentId": "d-ABC123"},
    )


@pytest.mark.parametrize("raw", ["Created", "Queued", "InProgress", "Baking", "Ready"])
def test_active_statuses_are_in_progress_and_count_polls(status, context, raw):
    module, stubber = status
    reply(stubber, raw)
    result = module.handler({"deployment": {**RECORD, "polls": 2}, "max_polls": 10}, context)
    assert result == {**RECORD, "status": "InProgress", "polls": 3, "error": None, "rollback": None}


def test_succeeded(status, context):
    module, stubber = status
    reply(stubber, "Succeeded")
    result = module.handler({"deployment": RECORD, "max_polls": 1}, context)
    assert (result["status"], result["polls"]) == ("Succeeded", 1)


def test_null_deployment_id_is_succeeded_without_calling_codedeploy(status, context):
    module, _ = status
    result = module.handler(
        {"deployment": {**RECORD, "deployment_id": None}, "max_polls": 5}, context
    )
    assert result["status"] == "Succeeded"
    assert result["alias"] == "staging"


def test_failed_names_alias_deployment_and_reason(status, context):
    module, stubber = status
    reply(
        stubber,
        "Failed",
        errorInformation={
            "code": "ALARM_ACTIVE",
            "message": "alarm orders-app-errors-staging fired",
        },
        rollbackInfo={"rollbackDeploymentId": "d-RB1", "rollbackMessage": "rolled back to v3"},
    )
    with pytest.raises(module.DeploymentFailedError) as err:
        module.handler({"deployment": RECORD, "max_polls": 5}, context)
    message = str(err.value)
    for part in (
        "d-ABC123",
        "alias staging",
        "v3 -> v4",
        "ALARM_ACTIVE",
        "alarm orders-app-errors-staging fired",
        "d-RB1",
    ):
        assert part in message


def test_stopped_without_error_information(status, context):
    module, stubber = status
    reply(stubber, "Stopped")
    with pytest.raises(
        module.DeploymentStoppedError, match="Stopped: CodeDeploy gave no errorInformation"
    ):
        module.handler({"deployment": RECORD, "max_polls": 5}, context)


def test_max_polls_reached(status, context):
    module, stubber = status
    reply(stubber, "InProgress")
    with pytest.raises(module.DeploymentTimeoutError, match="after 5 polls"):
        module.handler({"deployment": {**RECORD, "polls": 4}, "max_polls": 5}, context)


def test_success_on_the_last_poll_is_success(status, context):
    module, stubber = status
    reply(stubber, "Succeeded")
    result = module.handler({"deployment": {**RECORD, "polls": 4}, "max_polls": 5}, context)
    assert result["status"] == "Succeeded"


def test_unknown_status(status, context):
    module, stubber = status
    reply(stubber, "Exploded")
    with pytest.raises(module.UnknownDeploymentStatusError, match="Exploded"):
        module.handler({"deployment": RECORD, "max_polls": 5}, context)


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"max_polls": 5}, "deployment"),
        ({"deployment": RECORD, "max_polls": 0}, "max_polls"),
        ({"deployment": RECORD, "max_polls": "5"}, "max_polls"),
        ({"deployment": {**RECORD, "polls": -1}, "max_polls": 5}, "polls"),
        ({"deployment": {**RECORD, "deployment_id": 7}, "max_polls": 5}, "deployment_id"),
    ],
)
def test_invalid_input(status, context, event, field):
    module, _ = status
    from shared.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match=field):
        module.handler(event, context)


def test_against_moto_created_deployment(load_lambda, aws, context):
    """moto leaves deployments in Created: that must read as InProgress."""
    import json

    module = load_lambda("deployment_status")
    iam = boto3.client("iam")
    role = iam.create_role(RoleName="cd", AssumeRolePolicyDocument=json.dumps({}))["Role"]["Arn"]
    cd = boto3.client("codedeploy")
    cd.create_application(applicationName="app", computePlatform="Lambda")
    cd.create_deployment_group(
        applicationName="app", deploymentGroupName="staging", serviceRoleArn=role
    )
    deployment_id = cd.create_deployment(
        applicationName="app",
        deploymentGroupName="staging",
        revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": "{}"}},
    )["deploymentId"]
    result = module.handler(
        {"deployment": {**RECORD, "deployment_id": deployment_id}, "max_polls": 3}, context
    )
    assert (result["status"], result["polls"]) == ("InProgress", 1)
