"""check-asl applies its policy to the states inside Parallel branches and Map processors too.

The checks of the top level against the real state machine live in the generated project's
tests/test_state_machine.py.
"""

from __future__ import annotations

import copy
import json

from release_tooling import check_asl

LAMBDA = "arn:aws:states:::lambda:invoke"
RETRY = [
    {
        "ErrorEquals": sorted(check_asl.LAMBDA_RETRY_ERRORS),
        "IntervalSeconds": 2,
        "MaxAttempts": 3,
        "BackoffRate": 2,
    }
]
CATCH = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Failed"}]
FAILED = {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"}


def task(**extra) -> dict:
    return {
        "Type": "Task",
        "Resource": LAMBDA,
        "Parameters": {"FunctionName": "${notify_function_arn}", "Payload.$": "$"},
        "Retry": copy.deepcopy(RETRY),
        "Catch": copy.deepcopy(CATCH),
        **extra,
    }


def machine() -> dict:
    """Well formed: a Parallel whose first branch runs a Map; every Task retries and catches."""
    return {
        "Comment": "nested",
        "TimeoutSeconds": 600,
        "StartAt": "Fanout",
        "States": {
            "Fanout": {
                "Type": "Parallel",
                "Branches": [
                    {
                        "StartAt": "Each",
                        "States": {
                            "Each": {
                                "Type": "Map",
                                "ItemProcessor": {
                                    "StartAt": "Deliver",
                                    "States": {
                                        "Deliver": task(End=True),
                                        "Failed": FAILED,
                                    },
                                },
                                "End": True,
                            }
                        },
                    },
                    {
                        "StartAt": "Notify",
                        "States": {"Notify": task(End=True), "Failed": FAILED},
                    },
                ],
                "Next": "Done",
                "Retry": copy.deepcopy(RETRY),
                "Catch": copy.deepcopy(CATCH),
            },
            "Done": {"Type": "Succeed"},
            "Failed": FAILED,
        },
    }


def branch(doc: dict, number: int) -> dict:
    return doc["States"]["Fanout"]["Branches"][number - 1]["States"]


def processor(doc: dict) -> dict:
    return branch(doc, 1)["Each"]["ItemProcessor"]["States"]


def test_a_well_formed_nested_machine_passes():
    assert check_asl.find_problems(machine()) == []


def test_a_task_in_a_parallel_branch_without_retry_or_catch_fails_naming_its_branch():
    doc = machine()
    branch(doc, 2)["Notify"].pop("Retry")
    branch(doc, 2)["Notify"].pop("Catch")

    problems = check_asl.find_problems(doc)

    assert problems == [
        "State Branch 2 of Fanout › Notify: Task has no Retry",
        "State Branch 2 of Fanout › Notify: Task has no Catch",
        # Its Failed state was only reachable through the removed Catch.
        "State Branch 2 of Fanout › Failed: unreachable from StartAt",
    ]


def test_a_task_in_a_map_without_retry_or_catch_fails_naming_its_scope():
    doc = machine()
    processor(doc)["Deliver"].pop("Retry")
    processor(doc)["Deliver"]["Catch"][0]["ResultPath"] = None

    problems = check_asl.find_problems(doc)

    where = "State Branch 1 of Fanout › ItemProcessor of Each › Deliver"
    assert f"{where}: Task has no Retry" in problems
    assert f"{where}: Catch[0] ResultPath must be '$.error' (got None)" in problems


def test_a_nested_task_missing_lambda_errors_in_its_retry_fails():
    doc = machine()
    branch(doc, 2)["Notify"]["Retry"][0]["ErrorEquals"] = ["Lambda.ServiceException"]

    assert any(
        p.startswith("State Branch 2 of Fanout › Notify: Retry does not cover Lambda.AWS")
        for p in check_asl.find_problems(doc)
    )


def test_a_transition_out_of_a_branch_is_an_unknown_state():
    doc = machine()
    branch(doc, 2)["Notify"]["Catch"][0]["Next"] = "Done"  # a top-level state

    assert check_asl.find_problems(doc) == [
        "State Branch 2 of Fanout › Notify: Catch[0].Next points to unknown state 'Done'",
        "State Branch 2 of Fanout › Failed: unreachable from StartAt",
    ]


def test_a_broken_branch_start_and_a_map_without_processor_are_reported():
    doc = machine()
    doc["States"]["Fanout"]["Branches"][1]["StartAt"] = "Nope"
    branch(doc, 1)["Each"].pop("ItemProcessor")

    problems = check_asl.find_problems(doc)

    assert "State Branch 2 of Fanout: StartAt points to unknown state 'Nope'" in problems
    assert "State Branch 1 of Fanout › Each: Map needs an ItemProcessor (or Iterator)" in problems


def test_a_choice_rule_without_next_is_reported():
    doc = machine()
    doc["States"]["Done"] = {
        "Type": "Choice",
        "Choices": [{"Variable": "$.ok", "BooleanEquals": True}],
        "Default": "Failed",
    }

    assert "State Done: Choices[0].Next is missing (it must name a state)" in (
        check_asl.find_problems(doc)
    )


def test_cli_reports_nested_problems_and_exits_1(tmp_path, capsys):
    doc = machine()
    processor(doc)["Deliver"].pop("Catch")
    path = tmp_path / "sm.asl.json"
    path.write_text(json.dumps(doc))

    assert check_asl.main([str(path)]) == 1

    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "sm.asl.json: State Branch 1 of Fanout › ItemProcessor of Each › Deliver: "
        "Task has no Catch",
        "sm.asl.json: State Branch 1 of Fanout › ItemProcessor of Each › Failed: "
        "unreachable from StartAt",
    ]


def test_invalid_json_names_the_position():
    assert check_asl.check_text('{"StartAt": "A",\n  "States": }\n') == [
        "State machine: invalid JSON at line 2 column 13: Expecting value"
    ]
