import json

import pytest

from release_tooling import approve
from release_tooling.sfn_harness import (
    create_state_machine,
    entered_states,
    healthy_lambdas,
    release_input,
    start,
    wait,
)

REGION = "us-east-1"

STATE_MACHINE_NAME = approve.default_state_machine_name()


@pytest.fixture
def machine():
    from moto import mock_aws

    with mock_aws(
        config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
    ):
        yield create_state_machine(REGION, name=STATE_MACHINE_NAME)


def waiting_for_approval(described):
    return "ApproveProduction" in entered_states(described["executionArn"])


def started_and_waiting(machine, monkeypatch, name="release-eeeeeeeeeeee"):
    lambdas = healthy_lambdas()
    lambdas.install(monkeypatch)
    arn = start(machine, release_input(), name=name)
    assert wait(arn, until=waiting_for_approval)["status"] == "RUNNING"
    return lambdas, arn


def test_approve_by_name_finds_the_state_machine_and_releases(machine, monkeypatch, capsys):
    lambdas, arn = started_and_waiting(machine, monkeypatch)
    (notify,) = lambdas.payloads("approval_notifier")
    assert notify["execution_name"] == "release-eeeeeeeeeeee"
    assert notify["state_machine_arn"] == machine
    assert notify["smoke_summary"] == "4/4 smoke tests passed"
    assert (
        approve.main(["approve", "--execution", "release-eeeeeeeeeeee", "--reason", "looks good"])
        == 0
    )
    assert capsys.readouterr().out.startswith(f"approved {arn} (state ApproveProduction)")
    result = wait(arn)
    assert result["status"] == "SUCCEEDED", result
    output = json.loads(result["output"])
    assert output["approval"]["reason"] == "looks good"
    assert output["approval"]["approved_by"]
    assert lambdas.payloads("deploy")[-1]["stage"] == "production"


class RecordingSession:
    """A boto3 session whose Step Functions client records the SendTask* parameters."""

    def __init__(self):
        import boto3

        self.session = boto3.session.Session()
        self.sent = []

    def client(self, name):
        client = self.session.client(name)
        client.meta.events.register("before-parameter-build.sfn", self.record)
        return client

    def record(self, params, model, **_):
        if model.name.startswith("SendTask"):
            self.sent.append(dict(params))


def test_reject_by_arn_rolls_back(machine, monkeypatch, capsys):
    lambdas, arn = started_and_waiting(machine, monkeypatch)
    session = RecordingSession()
    argv = ["reject", "--execution", arn, "--reason", "price change not signed off"]
    assert approve.main(argv, session=session) == 0
    result = wait(arn)
    assert (result["status"], result["error"]) == ("FAILED", "ReleaseRejected")
    # moto drops the cause of SendTaskFailure, so check what was sent.
    (sent,) = session.sent
    assert sent["error"] == "ReleaseRejected"
    assert sent["cause"].endswith(": price change not signed off")
    assert lambdas.names()[-1] == "rollback"
    assert [p["stage"] for p in lambdas.payloads("deploy")] == ["staging"]


def test_from_the_approve_workflow_the_person_and_the_run_are_recorded(
    machine, monkeypatch, capsys
):
    """The Approve release workflow's job: the history names who started it and the run."""
    _, arn = started_and_waiting(machine, monkeypatch)
    github = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_ACTOR": "release-bot",
        "GITHUB_TRIGGERING_ACTOR": "octocat",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/orders-service",
        "GITHUB_RUN_ID": "42",
    }
    for name, value in github.items():
        monkeypatch.setenv(name, value)
    assert approve.main(["approve", "--execution", arn, "--reason", "CAB-7"]) == 0
    approved_by = json.loads(wait(arn)["output"])["approval"]["approved_by"]
    assert approved_by.startswith(
        "octocat via https://github.com/acme/orders-service/actions/runs/42"
    )


def test_outside_github_actions_the_aws_identity_answers(monkeypatch):
    class Session:
        def client(self, name):
            class Sts:
                def get_caller_identity(self):
                    return {"Arn": "arn:aws:sts::123456789012:assumed-role/admin/jane"}

            return Sts()

    assert approve.default_actor(Session(), {"GITHUB_ACTOR": "octocat"}) == (
        "arn:aws:sts::123456789012:assumed-role/admin/jane"
    )


def test_execution_not_waiting_is_a_clear_error(machine, monkeypatch, capsys):
    _, arn = started_and_waiting(machine, monkeypatch)
    assert approve.main(["approve", "--execution", arn, "--state-machine", machine]) == 0
    wait(arn)
    capsys.readouterr()
    assert approve.main(["approve", "--execution", arn]) == 1
    assert "is SUCCEEDED, not waiting for approval" in capsys.readouterr().err


def test_unknown_execution(machine, capsys):
    assert approve.main(["approve", "--execution", "release-nope", "--state-machine", machine]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_no_state_machine_found(capsys):
    from moto import mock_aws

    with mock_aws():
        assert approve.main(["approve", "--execution", "release-x"]) == 1
    assert f"no state machine named {STATE_MACHINE_NAME}" in capsys.readouterr().err


def test_reject_needs_a_reason(capsys):
    with pytest.raises(SystemExit):
        approve.main(["reject", "--execution", "release-x"])
    assert "--reason" in capsys.readouterr().err


def test_not_an_execution_arn(capsys):
    from moto import mock_aws

    with mock_aws():
        assert (
            approve.main(["approve", "--execution", "arn:aws:states:us-east-1:1:stateMachine:x"])
            == 1
        )
    assert "is not an execution ARN" in capsys.readouterr().err


def scheduled(state, token, resource="invoke.waitForTaskToken"):
    return [
        {"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": state}},
        {
            "type": "TaskScheduled",
            "taskScheduledEventDetails": {
                "resource": resource,
                "parameters": json.dumps({"Payload": {"task_token": token}}),
            },
        },
    ]


def test_find_waiting_task_ignores_finished_and_non_callback_tasks():
    events = [
        *scheduled("RunSmokeTests", "x", resource="invoke"),
        {"type": "TaskStateExited", "stateExitedEventDetails": {"name": "RunSmokeTests"}},
        *scheduled("ApproveProduction", "first"),
        # retried after a Lambda error: the newest token wins
        *scheduled("ApproveProduction", "second"),
    ]
    assert approve.find_waiting_task(events) == approve.Waiting("ApproveProduction", "second")
    done = [
        *events,
        {"type": "TaskStateExited", "stateExitedEventDetails": {"name": "ApproveProduction"}},
    ]
    assert approve.find_waiting_task(done) is None
    assert approve.find_waiting_task(scheduled("DeployStaging", "x", resource="invoke")) is None
