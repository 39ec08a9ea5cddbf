"""Gaps: moto lacks ValidateStateMachineDefinition and ListStateMachineVersions (both used by
Terraform), and its interpreter sleeps a Retry's real seconds."""

from __future__ import annotations

import json
import uuid

import pytest
from _helpers import wait_for

GOOD = {
    "StartAt": "Work",
    "States": {
        "Work": {"Type": "Pass", "Next": "Check"},
        "Check": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.ok", "BooleanEquals": True, "Next": "Done"}],
            "Default": "Failed",
        },
        "Done": {"Type": "Succeed"},
        "Failed": {"Type": "Fail", "Error": "NotOk", "Cause": "ok was false"},
    },
}


def validate(aws, definition) -> dict:
    text = definition if isinstance(definition, str) else json.dumps(definition)
    return aws("stepfunctions").validate_state_machine_definition(definition=text, type="STANDARD")


def test_a_valid_definition_passes(aws):
    resp = validate(aws, GOOD)
    assert resp["result"] == "OK"
    assert resp["diagnostics"] == []


@pytest.mark.parametrize(
    "mutate, code, location",
    [
        (lambda d: "{not json", "INVALID_JSON_DESCRIPTION", "/"),
        (
            lambda d: d["States"]["Work"].update(Next="Nowhere"),
            "MISSING_TRANSITION_TARGET",
            "/States/Work/Next",
        ),
        (lambda d: d.pop("StartAt") and None, "SCHEMA_VALIDATION_FAILED", "/"),
        (
            lambda d: d["States"]["Check"].update(Default="Ghost"),
            "MISSING_TRANSITION_TARGET",
            "/States/Check/Default",
        ),
        (
            lambda d: d["States"].update(Orphan={"Type": "Succeed"}),
            "UNREACHABLE_STATE",
            "/States/Orphan",
        ),
        (
            lambda d: d["States"]["Work"].pop("Next") and None,
            "SCHEMA_VALIDATION_FAILED",
            "/States/Work",
        ),
        (
            lambda d: d["States"]["Work"].update(Type="Sleep"),
            "SCHEMA_VALIDATION_FAILED",
            "/States/Work/Type",
        ),
    ],
    ids=[
        "bad-json",
        "unknown-next",
        "no-startat",
        "unknown-default",
        "unreachable",
        "no-next-or-end",
        "bad-type",
    ],
)
def test_invalid_definitions_fail_with_a_located_diagnostic(aws, mutate, code, location):
    definition = json.loads(json.dumps(GOOD))
    result = mutate(definition)
    resp = validate(aws, result if isinstance(result, str) else definition)
    assert resp["result"] == "FAIL"
    assert (code, location) in [(d["code"], d["location"]) for d in resp["diagnostics"]], resp[
        "diagnostics"
    ]


def test_grammar_errors_the_structure_check_cannot_see_are_reported(aws):
    definition = json.loads(json.dumps(GOOD))
    definition["States"]["Work"]["TimeoutSeconds"] = "soon"  # must be an integer
    resp = validate(aws, definition)
    assert resp["result"] == "FAIL"
    assert resp["diagnostics"][0]["code"] == "SCHEMA_VALIDATION_FAILED"


def test_list_state_machine_versions_lists_published_versions_newest_first(aws, lambda_role):
    sfn = aws("stepfunctions")
    arn = sfn.create_state_machine(
        name=f"sm-{uuid.uuid4().hex[:8]}",
        definition=json.dumps(GOOD),
        roleArn=lambda_role,
        publish=True,
    )["stateMachineArn"]
    assert [
        v["stateMachineVersionArn"]
        for v in sfn.list_state_machine_versions(stateMachineArn=arn)["stateMachineVersions"]
    ] == [f"{arn}:1"]
    changed = json.loads(json.dumps(GOOD))
    changed["States"]["Work"]["Result"] = {"changed": True}
    sfn.update_state_machine(stateMachineArn=arn, definition=json.dumps(changed), publish=True)
    versions = sfn.list_state_machine_versions(stateMachineArn=arn)["stateMachineVersions"]
    assert [v["stateMachineVersionArn"] for v in versions] == [f"{arn}:2", f"{arn}:1"]


def test_retry_intervals_run_on_the_endpoint_clock(aws, lambda_role):
    """Gap: moto's interpreter sleeps a Retry's real seconds. The endpoint runs them on the clock
    it runs CodeDeploy's minutes on (this session's endpoint: 1 minute = 0.05 s), so a retry that
    waits 20 minutes on AWS ends here in a second, after the attempts the state machine asks for."""
    missing = f"arn:aws:lambda:us-east-2:123456789012:function:missing-{uuid.uuid4().hex[:8]}"
    definition = {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": missing, "Payload": {}},
                "Retry": [
                    {
                        "ErrorEquals": ["States.ALL"],
                        "IntervalSeconds": 600,
                        "BackoffRate": 2.0,
                        "MaxAttempts": 2,
                    }
                ],
                "End": True,
            }
        },
    }
    sfn = aws("stepfunctions")
    machine = sfn.create_state_machine(
        name=f"retry-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition), roleArn=lambda_role
    )["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    # 600 s + 1200 s of retry intervals on AWS; 0.5 s + 1 s on this endpoint.
    desc = wait_for(
        lambda: (d := sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and d,
        timeout=30,
    )
    assert desc["status"] == "FAILED", desc
    history = sfn.get_execution_history(executionArn=arn)["events"]
    assert [e["type"] for e in history].count("TaskFailed") == 3  # the first try and two retries


def test_the_retry_clock_scales_every_sleep_and_refuses_a_non_positive_factor(monkeypatch):
    from release_tooling.local_aws import stepfunctions_patch

    slept = []
    monkeypatch.setattr(stepfunctions_patch.time, "sleep", slept.append)
    clock = stepfunctions_patch.ScaledClock(0.2 / 60)
    clock.sleep(60)
    clock.sleep(3)
    assert slept == pytest.approx([0.2, 0.01])
    assert clock.monotonic is stepfunctions_patch.time.monotonic  # the rest of `time` unchanged
    with pytest.raises(ValueError, match="must be positive"):
        stepfunctions_patch.ScaledClock(0)


@pytest.fixture(scope="module")
def finished_execution(aws, lambda_role) -> str:
    """An execution of five Pass states: 12 history events (start, 5 entered/exited, success)."""
    states = {f"Step{n}": {"Type": "Pass", "Next": f"Step{n + 1}"} for n in range(1, 5)}
    states["Step5"] = {"Type": "Pass", "End": True}
    sfn = aws("stepfunctions")
    machine = sfn.create_state_machine(
        name=f"history-{uuid.uuid4().hex[:8]}",
        definition=json.dumps({"StartAt": "Step1", "States": states}),
        roleArn=lambda_role,
    )["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    wait_for(lambda: sfn.describe_execution(executionArn=arn)["status"] == "SUCCEEDED")
    return arn


def read_pages(sfn, **kwargs) -> list[list[dict]]:
    pages = []
    while True:
        page = sfn.get_execution_history(**kwargs)
        pages.append(page["events"])
        if "nextToken" not in page:
            return pages
        kwargs["nextToken"] = page["nextToken"]


def test_history_pages_by_max_results_oldest_first_by_default(aws, finished_execution):
    """Gap: moto returns the whole history in one page, oldest first, whatever is asked."""
    sfn = aws("stepfunctions")
    whole = sfn.get_execution_history(executionArn=finished_execution)
    assert "nextToken" not in whole  # 12 events fit the default page of 100
    events = whole["events"]
    assert [e["type"] for e in events][:2] == ["ExecutionStarted", "PassStateEntered"]
    assert events[-1]["type"] == "ExecutionSucceeded"
    pages = read_pages(sfn, executionArn=finished_execution, maxResults=5)
    assert [len(p) for p in pages] == [5, 5, 2]
    assert [e["id"] for p in pages for e in p] == [e["id"] for e in events]


def test_history_in_reverse_order_starts_with_the_latest_event(aws, finished_execution):
    sfn = aws("stepfunctions")
    forward = sfn.get_execution_history(executionArn=finished_execution)["events"]
    pages = read_pages(sfn, executionArn=finished_execution, maxResults=5, reverseOrder=True)
    backward = [e for p in pages for e in p]
    assert backward[0]["type"] == "ExecutionSucceeded"
    assert [e["id"] for e in backward] == [e["id"] for e in reversed(forward)]


def test_history_token_must_come_with_the_same_arguments(aws, finished_execution):
    from botocore.exceptions import ClientError

    sfn = aws("stepfunctions")
    token = sfn.get_execution_history(executionArn=finished_execution, maxResults=5)["nextToken"]
    with pytest.raises(ClientError) as changed:
        sfn.get_execution_history(
            executionArn=finished_execution, maxResults=5, reverseOrder=True, nextToken=token
        )
    assert changed.value.response["Error"]["Code"] == "InvalidToken"
    with pytest.raises(ClientError) as forged:
        sfn.get_execution_history(executionArn=finished_execution, nextToken="not-a-token")
    assert forged.value.response["Error"]["Code"] == "InvalidToken"
    with pytest.raises(ClientError) as too_big:
        sfn.get_execution_history(executionArn=finished_execution, maxResults=1001)
    assert too_big.value.response["Error"]["Code"] == "ValidationException"


def test_stopping_an_execution_during_a_task_aborts_it(aws, lambda_role, make_function):
    """StopExecution while a Task runs ends the execution ABORTED, not with the Task's outcome
    (Step Functions API Reference, StopExecution): the release-status rule forwards ABORTED, the
    one end the state machine cannot report itself."""
    slow = make_function("import time\ndef handler(e, c):\n    time.sleep(3)\n    return 1\n")
    definition = {
        "StartAt": "Slow",
        "States": {
            "Slow": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": slow, "Payload": {}},
                "End": True,
            }
        },
    }
    sfn = aws("stepfunctions")
    machine = sfn.create_state_machine(
        name=f"stop-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition), roleArn=lambda_role
    )["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    wait_for(
        lambda: (
            "TaskStarted"
            in [e["type"] for e in sfn.get_execution_history(executionArn=arn)["events"]]
        )
    )
    sfn.stop_execution(executionArn=arn, error="Stopped", cause="by the test")
    desc = wait_for(
        lambda: (d := sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and d,
        timeout=30,
    )
    assert desc["status"] == "ABORTED", desc
    types = [e["type"] for e in sfn.get_execution_history(executionArn=arn)["events"]]
    assert types[-1] == "ExecutionAborted", types
    assert "ExecutionFailed" not in types
