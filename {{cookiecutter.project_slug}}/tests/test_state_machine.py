import json
from pathlib import Path

import pytest
from release_tooling import check_asl, contract
from release_tooling.sfn_harness import (
    COMMIT,
    LambdaFailure,
    create_state_machine,
    entered_states,
    healthy_lambdas,
    release_input,
    start,
    wait,
)

ROOT = Path(__file__).resolve().parent.parent
ASL = ROOT / "state_machine.asl.json"
APPROVAL = (ROOT / "lambdas" / "approval_notifier").is_dir()  # manual_approval=yes
LAMBDA_ERRORS = sorted(check_asl.LAMBDA_RETRY_ERRORS)


def definition():
    return json.loads(check_asl.render(ASL.read_text()))


# --- static checks of the real definition ------------------------------------------------------


def test_definition_has_no_problems():
    assert check_asl.check_text(ASL.read_text()) == []


def test_every_transition_resolves_and_every_task_retries_and_catches():
    doc = definition()
    states = doc["States"]
    assert doc["StartAt"] in states
    for name, state in states.items():
        for where, target in check_asl.targets(state):
            assert target in states, f"{name}.{where} -> {target}"
        if state["Type"] == "Task":
            assert set(LAMBDA_ERRORS) <= set(state["Retry"][0]["ErrorEquals"]), name
            assert state["Retry"][0]["BackoffRate"] > 1
            assert state["Catch"][-1] == {
                "ErrorEquals": ["States.ALL"],
                "ResultPath": "$.error",
                "Next": state["Catch"][-1]["Next"],
            }
        if state["Type"] == "Choice":
            assert "Default" in state
    assert check_asl.reachable(doc) == set(states)


def test_flow_matches_the_contract():
    states = definition()["States"]
    assert definition()["TimeoutSeconds"] > 0
    # Every end goes through the notification first, recording which end it is.
    assert states["ValidateArtifact"]["Catch"][-1]["Next"] == "RecordRejection"
    assert states["DeployStaging"]["Catch"][-1]["Next"] == "RecordFailure"
    assert states["Rollback"]["Next"] == "RecordFailure"
    assert states["Rollback"]["Catch"][-1]["Next"] == "RecordRollbackFailure"
    assert states["ProductionDeployed"]["Choices"][0]["Next"] == "RecordSuccess"
    ends = {
        "RecordSuccess": ("SUCCEEDED", "ReleaseSucceeded"),
        "RecordRejection": ("FAILED", "ArtifactRejected"),
        "RecordFailure": ("FAILED", "ReleaseFailed"),
        "RecordRollbackFailure": ("FAILED", "RollbackFailed"),
    }
    for record, (status, end) in ends.items():
        assert states[record]["ResultPath"] == "$.outcome"
        assert (states[record]["Result"]["status"], states[record]["Result"]["end"]) == (
            status,
            end,
        )
        assert states[record]["Next"] == "NotifyRelease"
        # An email Subject: at most 100 ASCII characters (SNS Publish API reference).
        assert len(states[record]["Result"]["subject"]) <= 100
        assert states[record]["Result"]["subject"].isascii()
    # The notification cannot touch $.error (the Fail states' ErrorPath/CausePath) or the outcome:
    # its branch works on a copy, and its own failure is kept apart.
    notify = states["NotifyRelease"]
    assert notify["Type"] == "Parallel" and notify["Next"] == "EndRelease"
    assert notify["ResultPath"] == "$.notification"
    assert [(c["ErrorEquals"], c["ResultPath"], c["Next"]) for c in notify["Catch"]] == [
        (["States.ALL"], "$.notification_error", "EndRelease")
    ]
    route = states["EndRelease"]
    assert {c["Next"]: c["StringEquals"] for c in route["Choices"]} | {
        route["Default"]: "ReleaseFailed"
    } == {end: end for _, end in ends.values()}
    assert all(c["Variable"] == "$.outcome.end" for c in route["Choices"])
    for poll in ("WaitStaging", "WaitProduction"):
        assert states[poll]["SecondsPath"] == "$.poll_interval_seconds"
    for fail in ("ReleaseFailed", "ArtifactRejected", "RollbackFailed"):
        assert states[fail]["ErrorPath"] == "$.error.Error"
        assert states[fail]["CausePath"] == "$.error.Cause"
    for task in ("CheckStaging", "RunSmokeTests", "DeployProduction", "CheckProduction"):
        assert states[task]["Catch"][-1]["Next"] == "Rollback"
    assert (
        states["DeployProduction"]["Parameters"]["Payload"]["target_version.$"]
        == "$.staging.target_version"
    )
    assert ("ApproveProduction" in states) == APPROVAL
    after_smoke = states["SmokeTestsPassed"]["Choices"][0]["Next"]
    assert after_smoke == ("AlreadyInProduction" if APPROVAL else "DeployProduction")
    if APPROVAL:
        # A re-run of what production already serves skips the approval (see the rerun tests
        # below); anything else waits for it.
        already = states["AlreadyInProduction"]
        assert already["Choices"] == [
            {"Variable": "$.staging.in_production", "BooleanEquals": True, "Next": "SkipApproval"}
        ]
        assert already["Default"] == "ApproveProduction"
        assert states["SkipApproval"]["ResultPath"] == "$.approval"
        assert states["SkipApproval"]["Next"] == "DeployProduction"
        assert states["DeployProduction"]["Parameters"]["Payload"]["approval.$"] == "$.approval"
        approve = states["ApproveProduction"]
        assert approve["Resource"].endswith("lambda:invoke.waitForTaskToken")
        assert approve["Parameters"]["Payload"]["task_token.$"] == "$$.Task.Token"
        # The machine outlasting the approval is checked on the real numbers in
        # test_release_budget.py; here both are the renderer's sample value.
        assert approve["TimeoutSeconds"] > 0


def test_staging_record_keeps_what_production_served_through_the_poll_loop():
    """CheckStaging replaces $.staging with its own selection (AWS: "Specifying state output
    using ResultPath in Step Functions"): both must carry the fields the approval choice reads, or
    the choice would fail on a missing path. deployment_status passes the record through."""
    states = definition()["States"]
    for name in ("DeployStaging", "CheckStaging"):
        selector = states[name]["ResultSelector"]
        assert states[name]["ResultPath"] == "$.staging"
        assert selector["production_version.$"] == "$.Payload.production_version", name
        assert selector["in_production.$"] == "$.Payload.in_production", name


def test_template_vars_match_the_lambdas():
    expected = {
        "validate_artifact_function_arn",
        "deploy_function_arn",
        "deployment_status_function_arn",
        "smoke_tests_function_arn",
        "rollback_function_arn",
    }
    if APPROVAL:
        expected.add("approval_notifier_function_arn")
    found = set(check_asl.template_vars(ASL.read_text()))
    assert {name for name in found if name.endswith("_arn")} == expected | {
        "release_events_topic_arn"
    }
    # The topic NotifyRelease publishes to is the release-events topic.
    tf = " ".join((ROOT / "terraform" / "step-functions.tf").read_text().split())
    assert "release_events_topic_arn = aws_sns_topic.release_events.arn" in tf
    lambdas = {p.name for p in (ROOT / "lambdas").iterdir() if p.is_dir()} - {"app", "shared"}
    assert {f"{name}_function_arn" for name in lambdas} == expected


def test_every_timeout_comes_from_the_release_budget():
    """The file carries sample numbers (it stays valid JSON); Terraform replaces each one with the
    budget terraform/release_budget derives from the strategy and approval. The deployed values
    are checked against the budget in tests/local_pipeline/test_pipeline.py."""
    found = set(check_asl.template_vars(ASL.read_text()))
    assert {name for name in found if not name.endswith("_arn")} == set()
    doc = json.loads(check_asl.render(ASL.read_text()))
    assert isinstance(doc["TimeoutSeconds"], int)
    for state in ("CheckStaging", "CheckProduction"):
        assert isinstance(doc["States"][state]["Parameters"]["Payload"]["timeout_seconds"], int)
    tf = " ".join((ROOT / "terraform" / "step-functions.tf").read_text().split())
    for name in ("state_machine_timeout_seconds", "deployment_timeout_seconds"):
        assert f"module.release_budget.{name}" in tf
    for state in ("CheckStaging", "CheckProduction", "ApproveProduction"):
        assert f'if name == "{state}"' in tf
    if APPROVAL:
        assert isinstance(doc["States"]["ApproveProduction"]["TimeoutSeconds"], int)
        assert "module.release_budget.approval_timeout_seconds" in tf


def broken(mutate):
    doc = definition()
    mutate(doc)
    return check_asl.find_problems(doc)


def test_invalid_json_is_reported():
    problems = check_asl.check_text(ASL.read_text().replace('"States": {', '"States": {,', 1))
    assert len(problems) == 1
    assert problems[0].startswith("State machine: invalid JSON at line")


def test_unknown_next():
    problems = broken(lambda d: d["States"]["DeployStaging"].update(Next="Nowhere"))
    assert "State DeployStaging: Next points to unknown state 'Nowhere'" in problems


def test_unknown_catch_target():
    problems = broken(lambda d: d["States"]["RunSmokeTests"]["Catch"][0].update(Next="Gone"))
    assert "State RunSmokeTests: Catch[0].Next points to unknown state 'Gone'" in problems


def test_unknown_start_at():
    assert "State machine: StartAt points to unknown state 'Begin'" in broken(
        lambda d: d.update(StartAt="Begin")
    )


def test_choice_without_default():
    problems = broken(lambda d: d["States"]["SmokeTestsPassed"].pop("Default"))
    assert "State SmokeTestsPassed: Choice has no Default" in problems
    # SmokeTestsFailed is now only reachable through the removed Default.
    assert "State SmokeTestsFailed: unreachable from StartAt" in problems


def test_states_all_not_last():
    def mutate(doc):
        doc["States"]["DeployStaging"]["Catch"].append(
            {
                "ErrorEquals": ["DeploymentInProgressError"],
                "ResultPath": "$.error",
                "Next": "ReleaseFailed",
            }
        )

    assert "State DeployStaging: Catch[0] States.ALL must be in the last entry" in broken(mutate)


def test_states_all_combined_with_other_errors():
    problems = broken(lambda d: d["States"]["Rollback"]["Catch"][0]["ErrorEquals"].append("X"))
    assert "State Rollback: Catch[0] combines States.ALL with other errors" in problems


def test_missing_timeout():
    problems = broken(lambda d: d.pop("TimeoutSeconds"))
    assert problems == ["State machine: top-level TimeoutSeconds must be a positive integer"]


def test_task_without_retry_or_catch():
    problems = broken(
        lambda d: (
            d["States"]["CheckStaging"].pop("Retry"),
            d["States"]["CheckStaging"].pop("Catch"),
        )
    )
    assert "State CheckStaging: Task has no Retry" in problems
    assert "State CheckStaging: Task has no Catch" in problems


def test_retry_missing_lambda_errors():
    problems = broken(
        lambda d: d["States"]["CheckStaging"]["Retry"][0].update(
            ErrorEquals=["Lambda.ServiceException"]
        )
    )
    assert any(
        p.startswith("State CheckStaging: Retry does not cover Lambda.AWSLambdaException")
        for p in problems
    )


def test_catch_result_path_must_keep_input():
    problems = broken(lambda d: d["States"]["CheckStaging"]["Catch"][0].update(ResultPath=None))
    assert any(
        p.startswith("State CheckStaging: Catch[0] ResultPath must be '$.error'") for p in problems
    )


def test_unreachable_state():
    problems = broken(
        lambda d: d["States"].update(Orphan={"Type": "Pass", "Next": "ReleaseSucceeded"})
    )
    assert problems == ["State Orphan: unreachable from StartAt"]


def test_fail_without_cause_and_task_without_next():
    def mutate(doc):
        doc["States"]["ReleaseFailed"].pop("CausePath")
        doc["States"]["Rollback"].pop("Next")

    problems = broken(mutate)
    assert any(p.startswith("State ReleaseFailed: Fail must say") for p in problems)
    assert "State Rollback: Task has neither Next nor End" in problems


def test_cli_prints_one_line_per_problem_and_exits_1(tmp_path, capsys):
    doc = definition()
    doc.pop("TimeoutSeconds")
    doc["States"]["Orphan"] = {"Type": "Succeed"}
    path = tmp_path / "sm.asl.json"
    path.write_text(json.dumps(doc))
    assert check_asl.main([str(path)]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "sm.asl.json: State machine: top-level TimeoutSeconds must be a positive integer",
        "sm.asl.json: State Orphan: unreachable from StartAt",
    ]


def test_cli_ok(capsys):
    assert check_asl.main([str(ASL)]) == 0
    assert capsys.readouterr().out.strip() == "state_machine.asl.json: OK"


def test_cli_template_vars(capsys):
    assert check_asl.main([str(ASL), "--template-vars"]) == 0
    assert "deploy_function_arn" in capsys.readouterr().out.split()


def test_cli_asl_validator_command_failure_is_reported(tmp_path, capsys):
    fake = tmp_path / "fake-validator"
    fake.write_text("#!/bin/sh\necho 'definition invalid: States.X bad' >&2\nexit 1\n")
    fake.chmod(0o755)
    assert check_asl.main([str(ASL), "--with-asl-validator", "--asl-validator", str(fake)]) == 1
    assert "asl-validator: definition invalid: States.X bad" in capsys.readouterr().err


def test_render_keeps_templatefile_escapes():
    assert check_asl.render('{"a": "$${literal}", "b": "${deploy_function_arn}"}') == (
        '{"a": "${literal}", "b": "arn:aws:lambda:us-east-2:123456789012:function:check-deploy"}'
    )


# --- executing the definition in moto's interpreter ---------------------------------------------


REGION = "us-east-1"


@pytest.fixture
def sfn_env():
    from moto import mock_aws

    with mock_aws(
        config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
    ):
        yield create_state_machine(REGION)


def test_happy_path(sfn_env, monkeypatch):
    if APPROVAL:
        pytest.skip("the approval variant's happy path is covered by the tooling's test_approve.py")
    lambdas = healthy_lambdas()
    lambdas.install(monkeypatch)
    result = wait(start(sfn_env, release_input()))
    assert result["status"] == "SUCCEEDED", result
    assert lambdas.names() == [
        "validate_artifact",
        "deploy",
        "deployment_status",
        "deployment_status",
        "smoke_tests",
        "deploy",
        "deployment_status",
        "deployment_status",
    ]
    staging_deploy, production_deploy = lambdas.payloads("deploy")
    assert staging_deploy["artifact_sha256"] == "ab" * 32
    # The smoke step reads the checks the release's artifact declares, from the validated bytes.
    # Every app function's artifact, as validate_artifact listed them.
    functions = [
        {
            "key": "app",
            "artifact_key": contract.artifact_key(COMMIT),
            "sha256": "ab" * 32,
            "size": 100,
        }
    ]
    assert staging_deploy["functions"] == functions
    (smoke,) = lambdas.payloads("smoke_tests")
    staged = smoke.pop("deployments")
    assert smoke == {
        "commit_sha": COMMIT,
        "artifact_bucket": "artifacts",
        "artifact_key": contract.artifact_key(COMMIT),
        "artifact_sha256": "ab" * 32,
        "target_version": "2",
        "functions": functions,
        "execution_name": "release-test",
    }
    assert [(d["key"], d["target_version"]) for d in staged] == [("app", "2")]
    assert production_deploy == {
        "stage": "production",
        "commit_sha": COMMIT,
        "target_version": "2",
        "artifact_sha256": "ab" * 32,
        "functions": functions,
        "deployments": staged,  # production promotes what staging got, function by function
        "execution_name": "release-test",
    }
    output = json.loads(result["output"])
    assert output["production"]["status"] == "Succeeded"
    assert output["staging"]["polls"] == 2


def test_a_failing_second_function_rolls_back_every_function(sfn_env, monkeypatch):
    """A release of two app functions whose worker fails its smoke checks hands the rollback
    both functions' staging records; production is never deployed."""

    def deploy(payload):
        records = [
            {
                "key": key,
                "alias": payload["stage"],
                "function_name": f"orders-{key}",
                "previous_version": "1",
                "target_version": "2",
                "deployment_id": f"d-{key}",
                "action": "deployment_created",
                "production_version": "1",
                "in_production": False,
            }
            for key in ("app", "worker")
        ]
        return {**records[0], "deployments": records}

    lambdas = healthy_lambdas(
        deploy=deploy,
        smoke_tests=lambda p: {
            "passed": False,
            "summary": "1/1 passed against orders-app:staging; 0/1 passed against "
            "orders-worker:staging; failed: queue",
            "results": [],
        },
    )
    lambdas.install(monkeypatch)
    result = wait(start(sfn_env, release_input()))
    assert result["status"] == "FAILED"
    assert lambdas.names().count("deploy") == 1  # staging only
    (rollback,) = lambdas.payloads("rollback")
    staged = rollback["state"]["staging"]["deployments"]
    assert [(d["function_name"], d["deployment_id"]) for d in staged] == [
        ("orders-app", "d-app"),
        ("orders-worker", "d-worker"),
    ]
    assert "orders-worker:staging" in result["cause"]


def test_rejected_artifact_deploys_nothing(sfn_env, monkeypatch):
    def reject(payload):
        raise LambdaFailure(
            "ChecksumMismatchError", "artifact sha256 1234 does not match manifest sha256 5678"
        )

    lambdas = healthy_lambdas(validate_artifact=reject)
    lambdas.install(monkeypatch)
    result = wait(start(sfn_env, release_input()))
    assert result["status"] == "FAILED"
    assert result["error"] == "ChecksumMismatchError"
    assert "does not match manifest" in result["cause"]
    assert lambdas.names() == ["validate_artifact"]
    assert entered_states(result["executionArn"])[-1] == "ArtifactRejected"


def test_failed_smoke_tests_roll_back(sfn_env, monkeypatch):
    lambdas = healthy_lambdas(
        smoke_tests=lambda p: {
            "passed": False,
            "summary": "3/4 smoke tests passed; failed: health",
            "results": [],
        }
    )
    lambdas.install(monkeypatch)
    result = wait(start(sfn_env, release_input()))
    assert result["status"] == "FAILED"
    assert result["error"] == "SmokeTestsFailed"
    assert result["cause"] == "3/4 smoke tests passed; failed: health"
    assert "deploy" not in lambdas.names()[2:]  # production never deployed
    (rollback,) = lambdas.payloads("rollback")
    assert rollback["state"]["staging"]["alias"] == "staging"
    assert "production" not in rollback["state"]


def test_failed_deployment_rolls_back_with_the_reason(sfn_env, monkeypatch):
    def failed(payload):
        raise LambdaFailure(
            "DeploymentFailedError", "deployment d-staging of alias staging Failed: ALARM_ACTIVE"
        )

    lambdas = healthy_lambdas(deployment_status=failed)
    lambdas.install(monkeypatch)
    result = wait(start(sfn_env, release_input()))
    assert (result["status"], result["error"]) == ("FAILED", "DeploymentFailedError")
    assert "ALARM_ACTIVE" in result["cause"]
    assert lambdas.names()[-1] == "rollback"


def test_failed_rollback_is_its_own_failure(sfn_env, monkeypatch):
    def failed(payload):
        raise LambdaFailure("DeploymentStoppedError", "stopped")

    def rollback(payload):
        raise LambdaFailure("RollbackFailedError", "could not roll back staging: AccessDenied")

    lambdas = healthy_lambdas(deployment_status=failed, rollback=rollback)
    lambdas.install(monkeypatch)
    result = wait(start(sfn_env, release_input()))
    assert (result["status"], result["error"]) == ("FAILED", "RollbackFailedError")
    assert entered_states(result["executionArn"])[-1] == "RollbackFailed"


def test_staging_deploy_failure_fails_without_rollback(sfn_env, monkeypatch):
    def busy(payload):
        raise LambdaFailure(
            "DeploymentInProgressError", "CodeDeploy deployment d-X is deploying version 9"
        )

    lambdas = healthy_lambdas(deploy=busy)
    lambdas.install(monkeypatch)
    result = wait(start(sfn_env, release_input()))
    assert (result["status"], result["error"]) == ("FAILED", "DeploymentInProgressError")
    assert lambdas.names() == ["validate_artifact", "deploy"]


def test_poll_loop_is_bounded_by_the_status_lambda(sfn_env, monkeypatch, load_lambda):
    """The real deployment_status Lambda ends an endless InProgress loop at the stage budget."""
    status_module = load_lambda("deployment_status")

    class Forever:
        def get_deployment(self, deploymentId):
            return {"deploymentInfo": {"deploymentId": deploymentId, "status": "InProgress"}}

    monkeypatch.setattr(status_module, "client", lambda name: Forever())

    def status(payload):
        try:
            return status_module.check(
                payload["deployment"],
                payload["deployment"].get("polls", 0),
                payload["timeout_seconds"],
                # The harness waits 0 s between polls; count each poll as 1200 s of CodeDeploy time.
                payload["poll_interval_seconds"] + 1200,
            )
        except status_module.DeploymentTimeoutError as exc:
            raise LambdaFailure("DeploymentTimeoutError", str(exc)) from None

    lambdas = healthy_lambdas(deployment_status=status)
    lambdas.install(monkeypatch)
    # 1200 s per poll against the ASL file's sample budget of 3600 s: the third poll ends it.
    result = wait(start(sfn_env, release_input()))
    assert (result["status"], result["error"]) == ("FAILED", "DeploymentTimeoutError")
    assert lambdas.names().count("deployment_status") == 3


# --- approval of a re-run (manual_approval=yes) --------------------------------------------------


approval_only = pytest.mark.skipif(
    not APPROVAL, reason="this project was made with manual_approval=no: there is no approval"
)


def rerun_lambdas(**overrides):
    """A re-run of the release production already serves: version 2 everywhere."""

    def deploy(payload):
        record = {
            "alias": payload["stage"],
            "function_name": "app",
            "previous_version": None,
            "target_version": payload.get("target_version", "2"),
            "deployment_id": None,
            "action": "already_deployed",
        }
        if payload["stage"] == "staging":
            record.update(production_version="2", in_production=True)
        return {**record, "deployments": [{"key": "app", **record}]}

    return healthy_lambdas(**{"deploy": deploy, **overrides})


@approval_only
def test_rerun_of_the_production_version_skips_the_approval(sfn_env, monkeypatch):
    lambdas = rerun_lambdas()
    lambdas.install(monkeypatch)
    result = wait(start(sfn_env, release_input()))
    assert result["status"] == "SUCCEEDED", result
    states = entered_states(result["executionArn"])
    assert "ApproveProduction" not in states
    assert states[states.index("AlreadyInProduction") :][:3] == [
        "AlreadyInProduction",
        "SkipApproval",
        "DeployProduction",
    ]
    assert "approval_notifier" not in lambdas.names()
    production = lambdas.payloads("deploy")[-1]
    assert production["stage"] == "production"
    assert production["target_version"] == "2"
    assert production["approval"] == {
        "skipped": True,
        "reason": "production already serves this version",
        "production_version": "2",
    }
    output = json.loads(result["output"])
    assert output["production"]["action"] == "already_deployed"


@approval_only
def test_new_version_still_waits_for_the_approval(sfn_env, monkeypatch):
    import boto3

    lambdas = healthy_lambdas()  # production serves version 1, the release brings 2
    lambdas.install(monkeypatch)
    arn = start(sfn_env, release_input())
    waiting = wait(arn, until=lambda d: "ApproveProduction" in entered_states(d["executionArn"]))
    assert waiting["status"] == "RUNNING"
    assert "SkipApproval" not in entered_states(arn)
    (notify,) = lambdas.payloads("approval_notifier")
    assert [p["stage"] for p in lambdas.payloads("deploy")] == ["staging"]
    boto3.client("stepfunctions", region_name=REGION).send_task_success(
        taskToken=notify["task_token"], output=json.dumps({"reason": "ok", "approved_by": "me"})
    )
    result = wait(arn)
    assert result["status"] == "SUCCEEDED", result
    production = lambdas.payloads("deploy")[-1]
    assert production["approval"] == {"reason": "ok", "approved_by": "me"}


@approval_only
def test_production_moved_since_staging_fails_the_skipped_approval_and_rolls_back(
    sfn_env, monkeypatch
):
    rerun = rerun_lambdas().handlers["deploy"]

    def deploy(payload):
        if payload["stage"] == "production":
            raise LambdaFailure("ApprovalSkippedError", "production now serves version 1")
        return rerun(payload)

    lambdas = rerun_lambdas(deploy=deploy)
    lambdas.install(monkeypatch)
    result = wait(start(sfn_env, release_input()))
    assert (result["status"], result["error"]) == ("FAILED", "ApprovalSkippedError")
    assert "approval_notifier" not in lambdas.names()
    assert lambdas.names()[-1] == "rollback"


# --- the release notification (NotifyRelease) ---------------------------------------------------

REVIEW = {"digest": "sha256:" + "d" * 64, "source": "pull request #12: run 7", "matches": True}


def released_lambdas():
    """Lambdas of a release that reaches production without waiting: with manual approval, a
    re-run of what production serves (it skips the approval)."""
    return rerun_lambdas() if APPROVAL else healthy_lambdas()


@pytest.fixture
def notified(sfn_env):
    """The definition publishing to a real (moto) topic, and a reader of what it published: the
    static renderer gives the topic placeholder a dummy ARN no topic has."""
    import boto3
    from release_tooling.sfn_harness import ACCOUNT

    sns, sqs = boto3.client("sns", region_name=REGION), boto3.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name="release-events")["TopicArn"]
    queue = sqs.create_queue(QueueName="watch")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"])
    text = ASL.read_text().replace("${release_events_topic_arn}", topic)
    machine = boto3.client("stepfunctions", region_name=REGION).create_state_machine(
        name="release-notifying",
        definition=check_asl.render(text, region=REGION, account=ACCOUNT),
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/state-machine",
    )["stateMachineArn"]

    def published() -> list[dict]:
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)
        return [json.loads(m["Body"]) for m in got.get("Messages", [])]

    return machine, published


def test_a_release_notifies_its_outcome_with_the_provenance_chain(notified, monkeypatch):
    from release_tooling import provenance

    machine, published = notified
    released_lambdas().install(monkeypatch)
    result = wait(start(machine, release_input(review=REVIEW)))
    assert result["status"] == "SUCCEEDED", result

    (envelope,) = published()  # one notification per release
    assert envelope["Subject"].startswith("Release succeeded")
    message = json.loads(envelope["Message"])
    output = json.loads(result["output"])
    assert message["execution"] == result["executionArn"]
    assert (message["status"], message["end"]) == ("SUCCEEDED", "ReleaseSucceeded")
    assert message["review"] == REVIEW
    assert message["artifact"]["sha256"] == "ab" * 32
    assert message["staging"] == output["staging"]
    assert message["production"] == output["production"]
    assert (message["error"], message["rollback"]) == (None, None)
    # The chain the deploy job summary prints from the execution reads the same off the message.
    chain = provenance.chain(result["executionArn"], result["input"], result["output"], REVIEW)
    assert provenance.notification_chain(envelope["Message"]) == chain
    assert [line for line in chain if line.startswith("- production: `app:production` version 2")]
    # The execution keeps what it sent and that it was delivered.
    (sent,) = output["notification"]
    assert sent["message"] == message and sent["delivery"]["message_id"]


def test_a_release_packaged_without_a_review_still_notifies(notified, monkeypatch):
    """Releases uploaded before the review field (or by an unreviewed apply) have none: a
    missing path would fail the state with States.Runtime, which no Catch catches."""
    machine, published = notified
    released_lambdas().install(monkeypatch)
    result = wait(start(machine, release_input()))
    assert result["status"] == "SUCCEEDED", result
    (envelope,) = published()
    assert json.loads(envelope["Message"])["review"] is None


def failing(error_type, message):
    def fail(payload):
        raise LambdaFailure(error_type, message)

    return fail


@pytest.mark.parametrize(
    ("overrides", "end", "error", "reached"),
    [
        (
            {"validate_artifact": failing("ChecksumMismatchError", "sha256 differs")},
            "ArtifactRejected",
            "ChecksumMismatchError",
            set(),
        ),
        (
            {"deploy": failing("DeploymentInProgressError", "d-X is deploying version 9")},
            "ReleaseFailed",
            "DeploymentInProgressError",
            {"artifact"},
        ),
        (
            {"deployment_status": failing("DeploymentFailedError", "ALARM_ACTIVE")},
            "ReleaseFailed",
            "DeploymentFailedError",
            {"artifact", "staging", "rollback"},
        ),
        (
            {
                "deployment_status": failing("DeploymentStoppedError", "stopped"),
                "rollback": failing("RollbackFailedError", "AccessDenied"),
            },
            "RollbackFailed",
            "RollbackFailedError",
            {"artifact", "staging"},
        ),
    ],
)
def test_a_failed_release_notifies_what_it_reached_and_why(
    notified, monkeypatch, overrides, end, error, reached
):
    """Each failure path has only part of the data: the message has null for the rest, and the
    Fail state still reports the release's own error."""
    machine, published = notified
    healthy_lambdas(**overrides).install(monkeypatch)
    result = wait(start(machine, release_input(review=REVIEW)))
    assert (result["status"], result["error"]) == ("FAILED", error)
    assert entered_states(result["executionArn"])[-1] == end

    (envelope,) = published()
    message = json.loads(envelope["Message"])
    assert (message["status"], message["end"]) == ("FAILED", end)
    assert message["error"]["Error"] == error and message["error"]["Cause"] == result["cause"]
    assert message["review"] == REVIEW and message["commit_sha"] == COMMIT
    optional = {"artifact", "staging", "production", "rollback"}
    assert {key for key in optional if message[key] is not None} == reached


def test_a_notification_that_cannot_be_published_changes_nothing(sfn_env, monkeypatch):
    """sfn_env's definition names a topic that does not exist: Publish fails, and the release
    still ends where it would have, with its own error and cause."""
    lambdas = healthy_lambdas(deploy=failing("DeploymentInProgressError", "d-X is deploying"))
    lambdas.install(monkeypatch)
    result = wait(start(sfn_env, release_input()))
    assert (result["status"], result["error"]) == ("FAILED", "DeploymentInProgressError")
    assert json.loads(result["cause"])["errorMessage"] == "d-X is deploying"
    assert entered_states(result["executionArn"])[-2:] == ["EndRelease", "ReleaseFailed"]
    assert "NotificationUndelivered" in entered_states(result["executionArn"])

    released_lambdas().install(monkeypatch)
    ok = wait(start(sfn_env, release_input(), name="release-ok"))
    assert ok["status"] == "SUCCEEDED"
    (sent,) = json.loads(ok["output"])["notification"]
    assert sent["error"]["Error"].startswith("SNS.") and "delivery" not in sent
