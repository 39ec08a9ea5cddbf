import json

import boto3
import pytest
from botocore.stub import Stubber
from release_tooling.package import deterministic_zip

FUNCTION = "orders-app"


@pytest.fixture
def lam(aws):
    role = boto3.client("iam").create_role(RoleName="r", AssumeRolePolicyDocument=json.dumps({}))[
        "Role"
    ]["Arn"]
    client = boto3.client("lambda")
    client.create_function(
        FunctionName=FUNCTION,
        Runtime="python3.12",
        Role=role,
        Handler="handler.handler",
        Code={
            "ZipFile": deterministic_zip([("handler.py", b"def handler(e, c):\n    return 0\n")])
        },
    )
    for i in range(3):
        client.update_function_configuration(FunctionName=FUNCTION, Description=f"v{i}")
        client.publish_version(FunctionName=FUNCTION, Description=f"commit {i + 1}")
    client.create_alias(FunctionName=FUNCTION, Name="staging", FunctionVersion="3")
    client.create_alias(FunctionName=FUNCTION, Name="production", FunctionVersion="2")
    return client


@pytest.fixture
def rollback(load_lambda, lam, monkeypatch):
    groups = {"staging": "staging", "production": "production"}
    entry = {"key": "app", "function_name": FUNCTION, "deployment_groups": groups}
    monkeypatch.setenv("APP_FUNCTIONS", json.dumps([entry]))
    module = load_lambda("rollback")
    cd = boto3.client("codedeploy")
    stubber = Stubber(cd)
    real = module.client
    monkeypatch.setattr(module, "client", lambda name: cd if name == "codedeploy" else real(name))
    # Waiting on CodeDeploy runs on a fake clock: each sleep advances it, none really sleeps.
    fake = {"now": 0.0, "sleeps": 0}

    def sleep(seconds):
        fake["now"] += seconds
        fake["sleeps"] += 1

    real_clock = module.Clock
    monkeypatch.setattr(
        module, "Clock", lambda seconds: real_clock(seconds, sleep, lambda: fake["now"])
    )
    module.fake_time = fake
    with stubber:
        yield module, stubber
    stubber.assert_no_pending_responses()


def record(alias, previous, target, deployment_id=None):
    return {
        "alias": alias,
        "function_name": FUNCTION,
        "previous_version": previous,
        "target_version": target,
        "deployment_id": deployment_id,
    }


def alias(lam, name):
    return lam.get_alias(FunctionName=FUNCTION, Name=name)


def deployment(stubber, deployment_id, status, rollback_id=None):
    info = {"deploymentId": deployment_id, "status": status}
    if rollback_id:
        info["rollbackInfo"] = {"rollbackDeploymentId": rollback_id, "rollbackMessage": "rb"}
    stubber.add_response(
        "get_deployment", {"deploymentInfo": info}, {"deploymentId": deployment_id}
    )


def test_moves_alias_back_and_clears_routing(rollback, lam, context):
    module, _ = rollback
    lam.update_alias(
        FunctionName=FUNCTION,
        Name="staging",
        FunctionVersion="2",
        RoutingConfig={"AdditionalVersionWeights": {"3": 0.1}},
    )
    result = module.handler({"state": {"staging": record("staging", "2", "3")}}, context)
    assert result["results"] == [
        {
            "alias": "staging",
            "action": "rolled_back",
            "detail": "alias moved from v2 (+v3 at 10%) back to v2",
            "function_name": FUNCTION,
        }
    ]
    current = alias(lam, "staging")
    assert current["FunctionVersion"] == "2"
    assert not (current.get("RoutingConfig") or {}).get("AdditionalVersionWeights")


def test_stops_active_deployment_then_rolls_back_production_first(rollback, lam, context):
    module, stubber = rollback
    lam.update_alias(FunctionName=FUNCTION, Name="production", FunctionVersion="3")
    deployment(stubber, "d-PROD", "InProgress")
    stubber.add_response(
        "stop_deployment",
        {"status": "Pending"},
        {"deploymentId": "d-PROD", "autoRollbackEnabled": True},
    )
    # CodeDeploy answers the stop with a rollback deployment, which must end before the next
    # release can deploy to the group.
    deployment(stubber, "d-PROD", "Stopped", rollback_id="d-RB")
    deployment(stubber, "d-RB", "InProgress")
    deployment(stubber, "d-RB", "Succeeded")
    state = {
        "staging": record("staging", "2", "3"),
        "production": record("production", "2", "3", "d-PROD"),
    }
    result = module.handler({"state": state}, context)
    assert [r["alias"] for r in result["results"]] == ["production", "staging"]
    assert (
        "stopped deployment d-PROD (InProgress) with auto-rollback"
        in result["results"][0]["detail"]
    )
    assert "CodeDeploy's rollback deployment d-RB Succeeded" in result["results"][0]["detail"]
    assert module.fake_time["sleeps"] == 1
    assert alias(lam, "production")["FunctionVersion"] == "2"
    assert alias(lam, "staging")["FunctionVersion"] == "2"


def test_is_idempotent(rollback, lam, context):
    module, stubber = rollback
    state = {"staging": record("staging", "2", "3", "d-1")}
    deployment(stubber, "d-1", "Failed")  # finished: nothing to stop
    first = module.handler({"state": state}, context)
    deployment(stubber, "d-1", "Failed")
    second = module.handler({"state": state}, context)
    assert first["results"][0]["action"] == "rolled_back"
    assert second["results"][0]["action"] == "already_rolled_back"
    assert alias(lam, "staging")["FunctionVersion"] == "2"


def test_waits_for_codedeploys_own_rollback_and_a_second_run_is_a_no_op(rollback, lam, context):
    """A failed deployment with auto-rollback: CodeDeploy itself runs a rollback deployment."""
    module, stubber = rollback
    lam.update_alias(
        FunctionName=FUNCTION,
        Name="staging",
        FunctionVersion="2",
        RoutingConfig={"AdditionalVersionWeights": {"3": 0.1}},
    )
    state = {"staging": record("staging", "2", "3", "d-1")}
    deployment(stubber, "d-1", "Failed", rollback_id="d-RB")
    deployment(stubber, "d-RB", "Created")
    deployment(stubber, "d-RB", "InProgress")

    stubber.add_response(
        "get_deployment",
        {"deploymentInfo": {"deploymentId": "d-RB", "status": "Succeeded"}},
        {"deploymentId": "d-RB"},
    )
    original_sleep_count = module.fake_time["sleeps"]
    first = module.handler({"state": state}, context)
    assert module.fake_time["sleeps"] - original_sleep_count == 2
    assert "CodeDeploy's rollback deployment d-RB Succeeded" in first["results"][0]["detail"]
    # The routing CodeDeploy had not cleared yet is cleared by us.
    assert first["results"][0]["action"] == "rolled_back"
    assert alias(lam, "staging")["RoutingConfig"]["AdditionalVersionWeights"] == {}
    deployment(stubber, "d-1", "Failed", rollback_id="d-RB")
    deployment(stubber, "d-RB", "Succeeded")
    second = module.handler({"state": state}, context)
    assert second["results"][0]["action"] == "already_rolled_back"
    assert module.fake_time["sleeps"] - original_sleep_count == 2  # nothing waited for


def test_a_rollback_deployment_outlasting_the_wait_is_stopped(rollback, lam, context):
    module, stubber = rollback
    lam.update_alias(FunctionName=FUNCTION, Name="staging", FunctionVersion="3")
    deployment(stubber, "d-1", "Stopped", rollback_id="d-RB")
    for _ in range(46):  # polled every 2 s for the 90 s the invocation can wait, then stopped
        deployment(stubber, "d-RB", "InProgress")
    stubber.add_response(
        "stop_deployment",
        {"status": "Succeeded"},
        {"deploymentId": "d-RB", "autoRollbackEnabled": False},
    )
    result = module.handler({"state": {"staging": record("staging", "2", "3", "d-1")}}, context)
    detail = result["results"][0]["detail"]
    assert "stopped CodeDeploy's rollback deployment d-RB, still InProgress" in detail
    assert alias(lam, "staging")["FunctionVersion"] == "2"


def test_a_rollback_deployment_that_cannot_be_stopped_fails_loudly(rollback, lam, context):
    module, stubber = rollback
    deployment(stubber, "d-1", "Failed", rollback_id="d-RB")
    for _ in range(46):
        deployment(stubber, "d-RB", "InProgress")
    stubber.add_client_error("stop_deployment", "AccessDeniedException", "not allowed")
    with pytest.raises(
        module.RollbackFailedError, match="could not roll back staging.*not allowed"
    ):
        module.handler({"state": {"staging": record("staging", "2", "3", "d-1")}}, context)


def test_deployment_finishing_during_stop_is_fine(rollback, lam, context):
    module, stubber = rollback
    deployment(stubber, "d-1", "Baking")
    stubber.add_client_error("stop_deployment", "DeploymentAlreadyCompletedException", "done")
    result = module.handler({"state": {"staging": record("staging", "2", "3", "d-1")}}, context)
    assert result["results"][0]["action"] == "rolled_back"


def test_no_previous_version_leaves_alias_alone_and_says_so(rollback, lam, context):
    module, _ = rollback
    result = module.handler({"state": {"staging": record("staging", None, "3")}}, context)
    assert result["results"][0]["action"] == "left_alone"
    assert "first release" in result["summary"]
    assert alias(lam, "staging")["FunctionVersion"] == "3"


def test_alias_moved_by_someone_else_is_left_alone(rollback, lam, context):
    module, _ = rollback
    lam.update_alias(FunctionName=FUNCTION, Name="staging", FunctionVersion="1")
    result = module.handler({"state": {"staging": record("staging", "2", "3")}}, context)
    assert result["results"][0]["action"] == "left_alone"
    assert alias(lam, "staging")["FunctionVersion"] == "1"


def test_nothing_deployed(rollback, context):
    module, _ = rollback
    result = module.handler({"state": {"commit_sha": "a" * 40}}, context)
    assert result == {"results": [], "summary": "nothing was deployed; nothing to roll back"}


def test_failure_raises_naming_the_alias_after_trying_all(rollback, lam, context):
    module, _ = rollback
    state = {
        "staging": record("staging", "2", "3"),
        "production": {**record("production", "1", "2"), "alias": "missing-alias"},
    }
    with pytest.raises(
        module.RollbackFailedError, match="could not roll back missing-alias"
    ) as err:
        module.handler({"state": state}, context)
    assert "update-alias" in str(err.value)
    # staging was still rolled back
    assert alias(lam, "staging")["FunctionVersion"] == "2"


def test_accepts_the_bare_state_too(rollback, lam, context):
    module, _ = rollback
    assert (
        module.handler({"staging": record("staging", "2", "3")}, context)["results"][0]["action"]
        == "rolled_back"
    )


def test_invalid_record(rollback, context):
    module, _ = rollback
    from shared.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="staging"):
        module.handler({"state": {"staging": "oops"}}, context)


# --------------------------------------------------------------------- several app functions

WORKER = "orders-worker"


@pytest.fixture
def two(rollback, lam, monkeypatch):
    """A stack with a second app function, worker (v1..v3, staging on 3, production on 2)."""
    module, stubber = rollback
    groups = {"staging": "staging", "production": "production"}
    worker_groups = {"staging": "worker-staging", "production": "worker-production"}
    monkeypatch.setenv(
        "APP_FUNCTIONS",
        json.dumps(
            [
                {"key": "app", "function_name": FUNCTION, "deployment_groups": groups},
                {"key": "worker", "function_name": WORKER, "deployment_groups": worker_groups},
            ]
        ),
    )
    role = boto3.client("iam").get_role(RoleName="r")["Role"]["Arn"]
    lam.create_function(
        FunctionName=WORKER,
        Runtime="python3.12",
        Role=role,
        Handler="handler.handler",
        Code={
            "ZipFile": deterministic_zip([("handler.py", b"def handler(e, c):\n    return 1\n")])
        },
    )
    for i in range(3):
        lam.update_function_configuration(FunctionName=WORKER, Description=f"v{i}")
        lam.publish_version(FunctionName=WORKER, Description=f"commit {i + 1}")
    lam.create_alias(FunctionName=WORKER, Name="staging", FunctionVersion="3")
    lam.create_alias(FunctionName=WORKER, Name="production", FunctionVersion="3")
    return module, stubber


def stage_record(alias_name, *records):
    """deploy's record of a stage covering several functions: the primary's fields on top."""
    return {**records[0], "deployments": list(records)}


def worker_record(alias_name, previous, target, deployment_id=None):
    return {**record(alias_name, previous, target, deployment_id), "function_name": WORKER}


def test_every_function_the_release_moved_is_rolled_back(two, lam, context):
    module, stubber = two
    # The worker's production deployment is still shifting when the release fails.
    deployment(stubber, "d-WORKER", "InProgress")
    stubber.add_response(
        "stop_deployment",
        {"status": "Pending"},
        {"deploymentId": "d-WORKER", "autoRollbackEnabled": True},
    )
    deployment(stubber, "d-WORKER", "Stopped")
    state = {
        "staging": stage_record(
            "staging", record("staging", "2", "3"), worker_record("staging", "2", "3")
        ),
        "production": stage_record(
            "production",
            record("production", None, "2"),  # app was already on v2: left alone
            worker_record("production", "2", "3", "d-WORKER"),
        ),
    }
    result = module.handler({"state": state}, context)

    assert [(r["function_name"], r["alias"], r["action"]) for r in result["results"]] == [
        (FUNCTION, "production", "left_alone"),
        (WORKER, "production", "rolled_back"),
        (FUNCTION, "staging", "rolled_back"),
        (WORKER, "staging", "rolled_back"),
    ]
    assert f"{WORKER}:production: rolled_back" in result["summary"]
    for function, name, version in [
        (FUNCTION, "staging", "2"),
        (FUNCTION, "production", "2"),
        (WORKER, "staging", "2"),
        (WORKER, "production", "2"),
    ]:
        assert lam.get_alias(FunctionName=function, Name=name)["FunctionVersion"] == version


def test_a_function_outside_the_stack_is_never_touched(two, lam, context):
    module, _ = two
    foreign = {**record("staging", "1", "3"), "function_name": "someone-elses-function"}
    state = {"staging": stage_record("staging", record("staging", "2", "3"), foreign)}
    with pytest.raises(module.InvalidInputError, match="someone-elses-function"):
        module.handler({"state": state}, context)
    assert alias(lam, "staging")["FunctionVersion"] == "3"  # refused before moving anything
