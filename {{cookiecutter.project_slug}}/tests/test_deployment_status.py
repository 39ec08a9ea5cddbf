from datetime import UTC, datetime, timedelta

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
# Canary10Percent5Minutes' budget from terraform/release_budget: 5 min shift + 10 min margin.
BUDGET = {"timeout_seconds": 900, "poll_interval_seconds": 15}


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
    result = module.handler({"deployment": {**RECORD, "polls": 2}, **BUDGET}, context)
    assert result == {**RECORD, "status": "InProgress", "polls": 3, "error": None, "rollback": None}


def test_succeeded(status, context):
    module, stubber = status
    reply(stubber, "Succeeded")
    result = module.handler({"deployment": RECORD, **BUDGET}, context)
    assert (result["status"], result["polls"]) == ("Succeeded", 1)


def test_null_deployment_id_is_succeeded_without_calling_codedeploy(status, context):
    module, _ = status
    result = module.handler({"deployment": {**RECORD, "deployment_id": None}, **BUDGET}, context)
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
        module.handler({"deployment": RECORD, **BUDGET}, context)
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
        module.handler({"deployment": RECORD, **BUDGET}, context)


def test_in_progress_beyond_the_budget_since_create_time_times_out(status, context):
    module, stubber = status
    created = datetime.now(UTC) - timedelta(seconds=901)
    reply(stubber, "InProgress", createTime=created)
    with pytest.raises(
        module.DeploymentTimeoutError, match=r"after 901 s \(5 polls\).*900 s budget"
    ):
        module.handler({"deployment": {**RECORD, "polls": 4}, **BUDGET}, context)


def test_a_slow_strategy_within_its_budget_keeps_polling(status, context):
    """Linear10PercentEvery10Minutes shifts for 100 minutes: 80 polls x 15 s must not end it."""
    module, stubber = status
    created = datetime.now(UTC) - timedelta(minutes=95)
    reply(stubber, "InProgress", createTime=created)
    event = {"deployment": {**RECORD, "polls": 380}, "timeout_seconds": 6600}
    result = module.handler({**event, "poll_interval_seconds": 15}, context)
    assert (result["status"], result["polls"]) == ("InProgress", 381)


def test_without_create_time_polls_times_interval_is_the_clock(status, context):
    module, stubber = status
    reply(stubber, "InProgress")
    with pytest.raises(module.DeploymentTimeoutError, match="after 900 s"):
        module.handler({"deployment": {**RECORD, "polls": 59}, **BUDGET}, context)


def test_success_on_the_last_poll_is_success(status, context):
    module, stubber = status
    reply(stubber, "Succeeded")
    result = module.handler({"deployment": {**RECORD, "polls": 4}, **BUDGET}, context)
    assert result["status"] == "Succeeded"


def test_unknown_status(status, context):
    module, stubber = status
    reply(stubber, "Exploded")
    with pytest.raises(module.UnknownDeploymentStatusError, match="Exploded"):
        module.handler({"deployment": RECORD, **BUDGET}, context)


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (BUDGET, "deployment"),
        ({"deployment": RECORD, "timeout_seconds": 0, "poll_interval_seconds": 15}, "timeout"),
        ({"deployment": RECORD, "timeout_seconds": "900", "poll_interval_seconds": 15}, "timeout"),
        ({"deployment": RECORD, "timeout_seconds": 900}, "poll_interval_seconds"),
        ({"deployment": {**RECORD, "polls": -1}, **BUDGET}, "polls"),
        ({"deployment": {**RECORD, "deployment_id": 7}, **BUDGET}, "deployment_id"),
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
        {"deployment": {**RECORD, "deployment_id": deployment_id}, **BUDGET}, context
    )
    assert (result["status"], result["polls"]) == ("InProgress", 1)


# --------------------------------------------------------------------- several app functions


def two_functions(app_id, worker_id):
    """deploy's record of a stage with two app functions: the primary's fields on top."""
    app = {**RECORD, "key": "app", "deployment_id": app_id}
    worker = {
        **RECORD,
        "key": "worker",
        "function_name": "orders-worker",
        "deployment_id": worker_id,
    }
    return {**RECORD, "deployment_id": app_id, "deployments": [app, worker]}


def reply_for(stubber, deployment_id, deployment_status, **extra):
    stubber.add_response(
        "get_deployment",
        {"deploymentInfo": {"deploymentId": deployment_id, "status": deployment_status, **extra}},
        {"deploymentId": deployment_id},
    )


def test_the_alias_is_deployed_only_when_every_function_is(status, context):
    module, stubber = status
    reply_for(stubber, "d-APP", "Succeeded")
    reply_for(stubber, "d-WORKER", "InProgress")
    first = module.handler({"deployment": two_functions("d-APP", "d-WORKER"), **BUDGET}, context)
    assert (first["status"], first["polls"]) == ("InProgress", 1)
    assert [d["status"] for d in first["deployments"]] == ["Succeeded", "InProgress"]

    reply_for(stubber, "d-APP", "Succeeded")
    reply_for(stubber, "d-WORKER", "Succeeded")
    second = module.handler({"deployment": first, **BUDGET}, context)
    assert (second["status"], second["polls"]) == ("Succeeded", 2)
    assert "polls" not in second["deployments"][0]  # counted once, for the alias


def test_one_failed_function_fails_the_alias_naming_it(status, context):
    module, stubber = status
    reply_for(stubber, "d-APP", "InProgress")
    reply_for(
        stubber,
        "d-WORKER",
        "Failed",
        errorInformation={"code": "ALARM_ACTIVE", "message": "orders-worker-errors-staging"},
    )
    with pytest.raises(module.DeploymentFailedError, match="d-WORKER.*orders-worker.*ALARM_ACTIVE"):
        module.handler({"deployment": two_functions("d-APP", "d-WORKER"), **BUDGET}, context)
