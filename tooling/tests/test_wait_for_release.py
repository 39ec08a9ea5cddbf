"""wait_for_release.py against stubbed Step Functions and CodePipeline (botocore Stubber)."""

from __future__ import annotations

import argparse
import datetime as dt
import json

import boto3
import pytest
from botocore.stub import Stubber

from release_tooling import wait_for_release as wfr

REGION = "us-east-2"
ACCOUNT = "123456789012"
SM_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:orders-service-release"
COMMIT = "a" * 40
OTHER = "b" * 40
NOW = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)


def exec_arn(name: str) -> str:
    return f"arn:aws:states:{REGION}:{ACCOUNT}:execution:orders-service-release:{name}"


def listed(name: str, minutes_ago: float) -> dict:
    return {
        "executionArn": exec_arn(name),
        "stateMachineArn": SM_ARN,
        "name": name,
        "status": "RUNNING",
        "startDate": NOW - dt.timedelta(minutes=minutes_ago),
    }


def described(name: str, commit: str, status: str = "RUNNING", **extra) -> dict:
    return {
        "executionArn": exec_arn(name),
        "stateMachineArn": SM_ARN,
        "status": status,
        "startDate": NOW,
        "input": json.dumps({"commit_sha": commit, "artifact_bucket": "b"}),
        **extra,
    }


def entered(*names: str) -> dict:
    events = [
        {
            "timestamp": NOW,
            "type": "TaskStateEntered",
            "id": i + 1,
            "stateEnteredEventDetails": {"name": name},
        }
        for i, name in enumerate(names)
    ]
    return {"events": events}


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def stubs():
    sfn = boto3.client("stepfunctions", region_name=REGION)
    cp = boto3.client("codepipeline", region_name=REGION)
    with Stubber(sfn) as sfn_stub, Stubber(cp) as cp_stub:
        yield sfn, sfn_stub, cp, cp_stub
        sfn_stub.assert_no_pending_responses()
        cp_stub.assert_no_pending_responses()


def settings(**overrides) -> wfr.Settings:
    values = {
        "commit": COMMIT,
        "state_machine_arn": SM_ARN,
        "pipeline_name": "orders-service-release",
        "region": REGION,
        "since": NOW - dt.timedelta(minutes=5),
        "timeout": 600.0,
        "find_timeout": 120.0,
        "poll_interval": 15.0,
    }
    return wfr.Settings(**{**values, **overrides})


def watcher(stubs, fake_time, lines, **overrides) -> wfr.ReleaseWatcher:
    sfn, _, cp, _ = stubs
    return wfr.ReleaseWatcher(
        settings(**overrides),
        sfn=sfn,
        codepipeline=cp,
        sleep=fake_time.sleep,
        clock=fake_time.clock,
        log=lines.append,
    )


def expect_list(sfn_stub, *items) -> None:
    sfn_stub.add_response(
        "list_executions",
        {"executions": list(items)},
        {"stateMachineArn": SM_ARN, "maxResults": 50},
    )


def expect_describe(sfn_stub, response) -> None:
    sfn_stub.add_response(
        "describe_execution", response, {"executionArn": response["executionArn"]}
    )


def expect_history(sfn_stub, name, *states) -> None:
    sfn_stub.add_response(
        "get_execution_history",
        entered(*states),
        {"executionArn": exec_arn(name), "maxResults": 1000},
    )


def expect_pipeline_executions(cp_stub, *statuses: str) -> None:
    cp_stub.add_response(
        "list_pipeline_executions",
        {
            "pipelineExecutionSummaries": [
                {"pipelineExecutionId": f"p-{i}", "status": status, "startTime": NOW}
                for i, status in enumerate(statuses)
            ]
        },
        {"pipelineName": "orders-service-release", "maxResults": 10},
    )


def expect_pipeline_link(cp_stub, name) -> None:
    cp_stub.add_response(
        "list_pipeline_executions",
        {
            "pipelineExecutionSummaries": [
                {"pipelineExecutionId": "p-2"},
                {"pipelineExecutionId": "p-1"},
            ]
        },
        {"pipelineName": "orders-service-release", "maxResults": 10},
    )
    base = {
        "pipelineVersion": 1,
        "stageName": "Release",
        "actionName": "RunStateMachine",
        "startTime": NOW,
        "lastUpdateTime": NOW,
        "status": "InProgress",
    }
    cp_stub.add_response(
        "list_action_executions",
        {
            "actionExecutionDetails": [
                {**base, "pipelineExecutionId": "p-2", "actionExecutionId": "x"}
            ]
        },
        {"pipelineName": "orders-service-release", "filter": {"pipelineExecutionId": "p-2"}},
    )
    result = {"executionResult": {"externalExecutionId": exec_arn(name)}}
    cp_stub.add_response(
        "list_action_executions",
        {
            "actionExecutionDetails": [
                {**base, "pipelineExecutionId": "p-1", "actionExecutionId": "y", "output": result}
            ]
        },
        {"pipelineName": "orders-service-release", "filter": {"pipelineExecutionId": "p-1"}},
    )


def test_finds_this_commits_execution_and_reports_success(stubs):
    _, sfn_stub, _, cp_stub = stubs
    fake_time, lines = FakeTime(), []
    # First poll: another commit's execution, then one older than --since (not described).
    expect_list(sfn_stub, listed("other", 1), listed("ancient", 60))
    expect_describe(sfn_stub, described("other", OTHER))
    expect_pipeline_executions(cp_stub, "InProgress", "Succeeded")
    # Second poll: ours has appeared; "other" is not described again.
    expect_list(sfn_stub, listed("mine", 0), listed("other", 1), listed("ancient", 60))
    expect_describe(sfn_stub, described("mine", COMMIT))
    expect_pipeline_link(cp_stub, "mine")
    expect_describe(sfn_stub, described("mine", COMMIT))
    expect_history(sfn_stub, "mine", "ValidateArtifact", "DeployStaging")
    expect_describe(sfn_stub, described("mine", COMMIT))
    expect_history(sfn_stub, "mine", "ValidateArtifact", "DeployStaging")
    expect_describe(sfn_stub, described("mine", COMMIT, status="SUCCEEDED"))
    expect_history(sfn_stub, "mine", "DeployProduction", "ReleaseSucceeded")

    outcome = watcher(stubs, fake_time, lines).wait()

    assert outcome.succeeded and outcome.state == "ReleaseSucceeded"
    assert outcome.pipeline_execution_id == "p-1"
    assert fake_time.sleeps == [15.0, 15.0, 15.0]
    text = "\n".join(lines)
    assert (
        "RUNNING: DeployStaging" in text and text.count("DeployStaging") == 1
    )  # printed on change
    assert f"#/v2/executions/details/{exec_arn('mine')}" in text
    assert "pipelines/orders-service-release/executions/p-1/timeline" in text
    assert "queued: pipeline orders-service-release has 1 execution(s) in progress (p-0)" in text
    assert wfr.report(outcome, settings()).startswith(f"Release of {COMMIT[:12]} succeeded")


def test_failed_release_with_rollback_is_reported(stubs):
    _, sfn_stub, _, cp_stub = stubs
    fake_time, lines = FakeTime(), []
    expect_list(sfn_stub, listed("mine", 0))
    expect_describe(sfn_stub, described("mine", COMMIT))
    cp_stub.add_client_error("list_pipeline_executions", "AccessDeniedException", "no")
    failed = described(
        "mine", COMMIT, status="FAILED", error="SmokeTestsFailed", cause="GET /health returned 500"
    )
    expect_describe(sfn_stub, failed)
    expect_history(
        sfn_stub,
        "mine",
        "ValidateArtifact",
        "DeployStaging",
        "RunSmokeTests",
        "Rollback",
        "ReleaseFailed",
    )

    outcome = watcher(stubs, fake_time, lines).wait()

    assert (outcome.status, outcome.state, outcome.rolled_back) == ("FAILED", "ReleaseFailed", True)
    message = wfr.report(outcome, settings())
    assert "FAILED in state ReleaseFailed" in message
    assert "error: SmokeTestsFailed" in message and "cause: GET /health returned 500" in message
    assert "rolled back" in message
    assert any("could not link the pipeline execution" in line for line in lines)


def test_failed_rollback_says_to_check_the_aliases():
    outcome = wfr.Outcome("FAILED", exec_arn("mine"), "RollbackFailed", rolled_back=True)
    message = wfr.report(outcome, settings())
    assert "The rollback itself failed" in message and "rolled back:" not in message


def test_rejected_artifact_is_a_failure_without_rollback(stubs):
    _, sfn_stub, _, _ = stubs
    fake_time, lines = FakeTime(), []
    expect_list(sfn_stub, listed("mine", 0))
    expect_describe(sfn_stub, described("mine", COMMIT))
    expect_describe(sfn_stub, described("mine", COMMIT, status="FAILED", error="ArtifactRejected"))
    expect_history(sfn_stub, "mine", "ValidateArtifact", "ArtifactRejected")
    outcome = watcher(stubs, fake_time, lines, pipeline_name=None).wait()
    assert not outcome.succeeded and not outcome.rolled_back
    assert "rolled back" not in wfr.report(outcome, settings())


def test_gives_up_when_no_execution_appears(stubs):
    _, sfn_stub, _, _ = stubs
    fake_time = FakeTime()
    for _ in range(9):  # 0, 15, ..., 120 seconds
        expect_list(sfn_stub)
    with pytest.raises(wfr.ReleaseNotFound, match=f"for commit {COMMIT} started after"):
        watcher(stubs, fake_time, [], pipeline_name=None).wait()
    assert fake_time.now == 120.0


def test_a_release_queued_behind_another_is_waiting_not_failure(stubs):
    """V2 QUEUED pipeline: no execution for the commit yet, but the pipeline is busy."""
    _, sfn_stub, _, cp_stub = stubs
    fake_time, lines = FakeTime(), []
    for poll in range(11):  # 0 .. 150 s: longer than the 120 s find timeout
        expect_list(sfn_stub, listed("other", 1))
        if poll == 0:
            expect_describe(sfn_stub, described("other", OTHER))
        expect_pipeline_executions(cp_stub, "InProgress", "InProgress")
    expect_list(sfn_stub, listed("mine", 0), listed("other", 1))
    expect_describe(sfn_stub, described("mine", COMMIT))
    expect_describe(sfn_stub, described("mine", COMMIT, status="SUCCEEDED"))
    expect_history(sfn_stub, "mine", "ReleaseSucceeded")
    w = watcher(stubs, fake_time, lines)
    w.pipeline_execution_for = lambda arn: None  # the console link is tested above
    outcome = w.wait()
    assert outcome.succeeded
    assert fake_time.now == 165.0
    assert sum("queued:" in line for line in lines) == 1  # said once, not every poll


def test_queued_past_the_follow_limit_stops_following_with_still_running(stubs):
    _, sfn_stub, _, cp_stub = stubs
    fake_time, lines = FakeTime(), []
    for _ in range(3):  # 0, 15, 30 s
        expect_list(sfn_stub)
        expect_pipeline_executions(cp_stub, "InProgress")
    with pytest.raises(wfr.WaitTimeout, match="still queued after 30s.*goes on without this job"):
        watcher(stubs, fake_time, lines, follow_limit=30.0).wait()
    assert "may take up to 600s; this job follows it for 30s" in lines[1]


def test_find_release_follows_the_newest_execution_of_a_reuploaded_commit(stubs):
    sfn, sfn_stub, cp, _ = stubs
    expect_list(sfn_stub, listed("rerun", 1), listed("other", 2), listed("first", 3))
    expect_describe(sfn_stub, described("rerun", COMMIT))
    found = wfr.find_release(
        sfn, cp, SM_ARN, "orders-service-release", COMMIT, NOW - dt.timedelta(minutes=5)
    )
    assert found == wfr.ReleaseRef(exec_arn("rerun"), NOW - dt.timedelta(minutes=1))


def test_find_release_names_nothing_when_the_pipeline_is_idle(stubs):
    sfn, sfn_stub, cp, cp_stub = stubs
    expect_list(sfn_stub, listed("other", 1))
    expect_describe(sfn_stub, described("other", OTHER))
    expect_pipeline_executions(cp_stub, "Succeeded", "Failed")
    assert wfr.find_release(sfn, cp, SM_ARN, "orders-service-release", COMMIT) is None


def test_overall_timeout_is_a_cap_on_a_running_release(stubs):
    _, sfn_stub, _, _ = stubs
    fake_time = FakeTime()
    expect_list(sfn_stub, listed("mine", 0))
    expect_describe(sfn_stub, described("mine", COMMIT))
    for _ in range(3):  # 0, 15, 30 seconds
        expect_describe(sfn_stub, described("mine", COMMIT))
        expect_history(sfn_stub, "mine", "WaitStaging")
    with pytest.raises(wfr.WaitTimeout, match="still RUNNING in state WaitStaging after 30s"):
        watcher(stubs, fake_time, [], timeout=30.0, pipeline_name=None).wait()


def test_stop_at_state_ends_the_wait_while_the_release_goes_on(stubs):
    _, sfn_stub, _, _ = stubs
    fake_time, lines = FakeTime(), []
    expect_list(sfn_stub, listed("mine", 0))
    expect_describe(sfn_stub, described("mine", COMMIT))
    expect_describe(sfn_stub, described("mine", COMMIT))
    expect_history(sfn_stub, "mine", "RunSmokeTests")
    expect_describe(sfn_stub, described("mine", COMMIT))
    expect_history(sfn_stub, "mine", "RunSmokeTests", "ApproveProduction")
    w = watcher(stubs, fake_time, lines, pipeline_name=None, stop_at_state="ApproveProduction")
    outcome = w.wait()
    assert (outcome.status, outcome.succeeded) == ("PAUSED", True)
    assert "is waiting in state ApproveProduction" in wfr.report(outcome, settings())


def test_hooks_see_each_event_once_and_each_running_poll(stubs):
    """The local release streams through the same follower: every history event reaches on_event
    once, in order, and on_poll sees the history of the running execution after each poll."""
    _, sfn_stub, _, _ = stubs
    fake_time, lines, events, polls = FakeTime(), [], [], []
    expect_list(sfn_stub, listed("mine", 0))
    expect_describe(sfn_stub, described("mine", COMMIT))
    expect_describe(sfn_stub, described("mine", COMMIT))
    expect_history(sfn_stub, "mine", "ValidateArtifact")
    expect_describe(sfn_stub, described("mine", COMMIT))
    expect_history(sfn_stub, "mine", "ValidateArtifact", "DeployStaging")
    expect_describe(sfn_stub, described("mine", COMMIT, status="SUCCEEDED"))
    expect_history(sfn_stub, "mine", "ValidateArtifact", "DeployStaging", "ReleaseSucceeded")
    w = watcher(stubs, fake_time, lines, pipeline_name=None)
    w.on_event = lambda event: events.append(event["stateEnteredEventDetails"]["name"])
    w.on_poll = lambda arn, history: polls.append((arn, history.state))
    w.console_links = False
    outcome = w.wait()
    assert outcome.succeeded and outcome.state == "ReleaseSucceeded"
    assert events == ["ValidateArtifact", "DeployStaging", "ReleaseSucceeded"]
    assert polls == [(exec_arn("mine"), "ValidateArtifact"), (exec_arn("mine"), "DeployStaging")]
    assert not any("console.aws.amazon.com" in line for line in lines)
    assert not any("RUNNING:" in line for line in lines)  # on_event shows the states instead


def test_start_failure_ends_the_search_at_once(stubs):
    _, sfn_stub, _, _ = stubs
    fake_time = FakeTime()
    expect_list(sfn_stub)
    expect_list(sfn_stub)
    reasons = iter([None, "IAM denied events:PutEvents"])
    w = watcher(stubs, fake_time, [], pipeline_name=None)
    w.start_failure = lambda: next(reasons)
    with pytest.raises(wfr.ReleaseNotFound, match="IAM denied events:PutEvents"):
        w.wait()
    assert fake_time.now == 15.0  # not the 120 s find timeout


def test_main_exit_codes_and_error_annotation(stubs, capsys):
    sfn, sfn_stub, cp, _ = stubs
    expect_list(sfn_stub, listed("mine", 0))
    expect_describe(sfn_stub, described("mine", COMMIT))
    expect_describe(sfn_stub, described("mine", COMMIT, status="TIMED_OUT"))
    expect_history(sfn_stub, "mine", "WaitProduction")
    env = {"STATE_MACHINE_ARN": SM_ARN}
    argv = ["--commit", COMMIT, "--since", "2026-05-01T11:55:00Z", "--poll-interval", "1"]
    assert wfr.main(argv, env=env, clients=(sfn, cp)) == 1
    out = capsys.readouterr().out
    assert (
        "::error title=Release failed::Release of aaaaaaaaaaaa TIMED_OUT in state WaitProduction"
        in out
    )
    # The job summary keeps the chain from commit to execution (release_tooling.provenance).
    assert f"Provenance:\n- commit `{COMMIT}`\n- execution `{exec_arn('mine')}`" in out


# ------------------------------------------------------------------- settings


def args(**kw) -> argparse.Namespace:
    return wfr.build_parser().parse_args(
        [f"--{k.replace('_', '-')}={v}" for k, v in {"commit": COMMIT, **kw}.items()]
    )


def no_outputs():
    raise AssertionError("terraform output must not be consulted")


def test_settings_from_env_and_arn_region():
    s = wfr.resolve_settings(
        args(), {"STATE_MACHINE_ARN": SM_ARN, "PIPELINE_NAME": "p"}, no_outputs, NOW
    )
    assert (s.region, s.pipeline_name, s.since) == (REGION, "p", NOW - dt.timedelta(minutes=5))
    assert (s.timeout, s.stop_at_state) == (3300.0, None)


def test_timeout_and_stop_state_from_env():
    env = {
        "STATE_MACHINE_ARN": SM_ARN,
        "RELEASE_WAIT_TIMEOUT": "600",
        "RELEASE_STOP_AT_STATE": "ApproveProduction",
    }
    s = wfr.resolve_settings(args(), env, no_outputs, NOW)
    assert (s.timeout, s.stop_at_state) == (600.0, "ApproveProduction")
    with pytest.raises(wfr.ConfigError, match="RELEASE_WAIT_TIMEOUT must be a number"):
        wfr.resolve_settings(args(), {**env, "RELEASE_WAIT_TIMEOUT": "1h"}, no_outputs, NOW)


def test_settings_fall_back_to_terraform_outputs():
    outputs = {
        "state_machine_arn": SM_ARN,
        "pipeline_name": "from-tf",
        "aws_region": "eu-west-1",
        "release_budget": {"release_wait_seconds": 16000, "state_machine_timeout_seconds": 15100},
    }
    s = wfr.resolve_settings(args(since="2026-05-01T10:00:00"), {}, lambda: outputs, NOW)
    assert (s.pipeline_name, s.region) == ("from-tf", "eu-west-1")
    assert s.since == dt.datetime(2026, 5, 1, 10, 0, tzinfo=dt.UTC)
    # The wait outlasts the state machine: the budget comes from terraform/release_budget.
    assert (s.timeout, s.follow_limit) == (16000.0, None)


def test_on_github_actions_the_follow_limit_is_one_role_session():
    env = {"STATE_MACHINE_ARN": SM_ARN, "GITHUB_ACTIONS": "true", "RELEASE_WAIT_TIMEOUT": "16000"}
    s = wfr.resolve_settings(args(), env, no_outputs, NOW)
    assert (s.timeout, s.follow_limit) == (16000.0, 3300.0)
    s = wfr.resolve_settings(args(), {**env, "RELEASE_FOLLOW_LIMIT": "20000"}, no_outputs, NOW)
    assert s.follow_limit == 20000.0
    with pytest.raises(wfr.ConfigError, match="RELEASE_FOLLOW_LIMIT must be a number"):
        wfr.resolve_settings(args(), {**env, "RELEASE_FOLLOW_LIMIT": "1h"}, no_outputs, NOW)


def test_main_exit_3_means_still_running_and_1_means_never_started(stubs, capsys):
    sfn, sfn_stub, cp, cp_stub = stubs
    env = {"STATE_MACHINE_ARN": SM_ARN, "PIPELINE_NAME": "orders-service-release"}
    base = ["--commit", COMMIT, "--since", "2026-05-01T11:55:00Z", "--poll-interval", "0.01"]
    expect_list(sfn_stub, listed("mine", 0))
    expect_describe(sfn_stub, described("mine", COMMIT))
    expect_pipeline_executions(cp_stub)
    expect_describe(sfn_stub, described("mine", COMMIT))
    expect_history(sfn_stub, "mine", "WaitStaging")
    assert wfr.main([*base, "--follow-limit", "0.001"], env=env, clients=(sfn, cp)) == 3
    assert "::warning title=Release still running::" in capsys.readouterr().out
    for _ in range(2):  # found nothing at once, and still nothing one 0.05 s poll later
        expect_list(sfn_stub)
        expect_pipeline_executions(cp_stub, "Succeeded")
    base[-1] = "0.05"
    assert wfr.main([*base, "--find-timeout", "0.02"], env=env, clients=(sfn, cp)) == 1
    assert "::error title=Release not started::" in capsys.readouterr().out


def test_terraform_output_failure_is_a_config_error():
    def failing(cmd, **kwargs):
        assert cmd[-2:] == ["output", "-json"]
        return type(
            "P", (), {"returncode": 1, "stderr": "Backend initialization required", "stdout": ""}
        )

    with pytest.raises(wfr.ConfigError, match="run `make tf-init` first"):
        wfr.terraform_outputs(runner=failing)


@pytest.mark.parametrize(
    ("kw", "env", "message"),
    [
        ({"commit": "abc"}, {"STATE_MACHINE_ARN": SM_ARN}, "full 40-character hex SHA"),
        ({}, {"STATE_MACHINE_ARN": "arn:aws:lambda:x"}, "not a state machine ARN"),
        ({"since": "yesterday"}, {"STATE_MACHINE_ARN": SM_ARN}, "ISO 8601"),
        ({"timeout": "0"}, {"STATE_MACHINE_ARN": SM_ARN}, "--timeout must be positive"),
    ],
)
def test_bad_settings_are_clear_errors(kw, env, message):
    with pytest.raises(wfr.ConfigError, match=message):
        wfr.resolve_settings(args(**kw), env, no_outputs, NOW)


def test_main_bad_commit_exits_2(capsys):
    assert (
        wfr.main(["--commit", "HEAD"], env={"STATE_MACHINE_ARN": SM_ARN}, clients=(None, None)) == 2
    )
    assert "full 40-character hex SHA" in capsys.readouterr().err
