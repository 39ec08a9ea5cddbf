"""The one ASL model (release_tooling.asl): nested scopes, transitions, reachability, parsing."""

from __future__ import annotations

import json

import pytest

from release_tooling import asl


def nested_machine() -> dict:
    """A top level with a Parallel (two branches, one holding a Map) and a legacy Map."""
    return {
        "StartAt": "Fanout",
        "States": {
            "Fanout": {
                "Type": "Parallel",
                "Branches": [
                    {
                        "StartAt": "Inner",
                        "States": {
                            "Inner": {
                                "Type": "Choice",
                                "Choices": [
                                    {
                                        "And": [
                                            {"Variable": "$.a", "IsPresent": True},
                                            {"Variable": "$.a", "NumericEquals": 1},
                                        ],
                                        "Next": "Each",
                                    },
                                    {
                                        "Not": {"Variable": "$.b", "IsNull": True},
                                        "Next": "Done",
                                    },
                                ],
                                "Default": "Done",
                            },
                            "Each": {
                                "Type": "Map",
                                "ItemProcessor": {
                                    "StartAt": "Item",
                                    "States": {
                                        "Item": {"Type": "Pass", "Next": "ItemDone"},
                                        "ItemDone": {"Type": "Succeed"},
                                    },
                                },
                                "Next": "Done",
                            },
                            "Done": {"Type": "Succeed"},
                        },
                    },
                    {"StartAt": "Solo", "States": {"Solo": {"Type": "Pass", "End": True}}},
                ],
                "Next": "Legacy",
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Failed"}],
            },
            "Legacy": {
                "Type": "Map",
                "Iterator": {"StartAt": "Old", "States": {"Old": {"Type": "Pass", "End": True}}},
                "End": True,
            },
            "Failed": {"Type": "Fail", "Error": "E", "Cause": "C"},
        },
    }


def test_every_state_is_visited_with_its_scope_path_and_pointer():
    visited = [(state.where, state.pointer) for state in asl.walk(nested_machine())]

    assert visited == [
        ("Fanout", "/States/Fanout"),
        ("Legacy", "/States/Legacy"),
        ("Failed", "/States/Failed"),
        ("Branch 1 of Fanout › Inner", "/States/Fanout/Branches/0/States/Inner"),
        ("Branch 1 of Fanout › Each", "/States/Fanout/Branches/0/States/Each"),
        ("Branch 1 of Fanout › Done", "/States/Fanout/Branches/0/States/Done"),
        (
            "Branch 1 of Fanout › ItemProcessor of Each › Item",
            "/States/Fanout/Branches/0/States/Each/ItemProcessor/States/Item",
        ),
        (
            "Branch 1 of Fanout › ItemProcessor of Each › ItemDone",
            "/States/Fanout/Branches/0/States/Each/ItemProcessor/States/ItemDone",
        ),
        ("Branch 2 of Fanout › Solo", "/States/Fanout/Branches/1/States/Solo"),
        ("Iterator of Legacy › Old", "/States/Legacy/Iterator/States/Old"),
    ]


def test_scopes_know_their_owner_and_start():
    scopes = list(asl.scopes(nested_machine()))

    assert [(scope.label, scope.start_at) for scope in scopes] == [
        ("State machine", "Fanout"),
        ("Branch 1 of Fanout", "Inner"),
        ("Branch 1 of Fanout › ItemProcessor of Each", "Item"),
        ("Branch 2 of Fanout", "Solo"),
        ("Iterator of Legacy", "Old"),
    ]
    assert [scope.owner.name if scope.owner else None for scope in scopes] == [
        None,
        "Fanout",
        "Each",
        "Fanout",
        "Legacy",
    ]


def test_transitions_cover_next_choices_default_and_catch_but_not_nested_rules():
    top = asl.top(nested_machine())
    branch = top.states["Fanout"].scopes()[0]

    inner = [(t.field, t.kind, t.target) for t in branch.states["Inner"].transitions()]
    fanout = [(t.field, t.pointer, t.target) for t in top.states["Fanout"].transitions()]

    # The And/Not rules lead where their own Next says; the nested conditions add no transition.
    assert inner == [
        ("Choices[0].Next", "choice", "Each"),
        ("Choices[1].Next", "choice", "Done"),
        ("Default", "default", "Done"),
    ]
    assert fanout == [("Next", "/Next", "Legacy"), ("Catch[0].Next", "/Catch/0/Next", "Failed")]


def test_a_rule_or_catcher_without_next_is_a_transition_to_nowhere():
    state = {
        "Type": "Task",
        "Next": 7,
        "Choices": ["not a rule"],
        "Catch": [{"ErrorEquals": ["States.ALL"]}],
    }

    assert [(t.field, t.target) for t in asl.transitions(state)] == [
        ("Next", None),
        ("Choices[0].Next", None),
        ("Catch[0].Next", None),
    ]


def test_reachability_is_per_scope():
    scopes = {scope.label: scope for scope in asl.scopes(nested_machine())}

    assert scopes["State machine"].reachable() == {"Fanout", "Legacy", "Failed"}
    assert scopes["Branch 1 of Fanout"].reachable() == {"Inner", "Each", "Done"}
    processor = scopes["Branch 1 of Fanout › ItemProcessor of Each"]
    assert processor.reachable() == {"Item", "ItemDone"}
    assert all(not scope.unreachable() for scope in scopes.values())


def test_an_unreachable_nested_state_is_reported_in_its_scope_only():
    machine = nested_machine()
    processor = machine["States"]["Fanout"]["Branches"][0]["States"]["Each"]["ItemProcessor"]
    processor["States"]["Item"]["End"] = processor["States"]["Item"].pop("Next")
    # A top-level state of the same name does not make the nested one reachable.
    machine["States"]["ItemDone"] = {"Type": "Succeed"}
    machine["States"]["Fanout"]["Catch"].insert(0, {"ErrorEquals": ["X"], "Next": "ItemDone"})

    orphans = [(s.where, s.pointer) for scope in asl.scopes(machine) for s in scope.unreachable()]

    assert orphans == [
        (
            "Branch 1 of Fanout › ItemProcessor of Each › ItemDone",
            "/States/Fanout/Branches/0/States/Each/ItemProcessor/States/ItemDone",
        )
    ]


def test_a_transition_into_another_scope_does_not_reach_it():
    machine = nested_machine()
    machine["States"]["Fanout"]["Branches"][1]["States"]["Solo"] = {
        "Type": "Pass",
        "Next": "Legacy",  # a top-level state: not part of this branch
    }
    branch = next(s for s in asl.scopes(machine) if s.label == "Branch 2 of Fanout")

    assert branch.reachable() == {"Solo"}
    assert "Legacy" not in branch.states


def test_terminal_states():
    top = asl.top(nested_machine())
    assert [name for name, state in top.states.items() if state.ends] == ["Legacy", "Failed"]


def test_malformed_nesting_gives_scopes_without_states():
    machine = {
        "StartAt": "P",
        "States": {
            "P": {"Type": "Parallel", "Branches": ["oops"], "Next": "M"},
            "M": {"Type": "Map", "End": True},
        },
    }
    top = asl.top(machine)

    (branch,) = top.states["P"].scopes()
    assert branch.doc == "oops" and branch.states == {} and branch.start_at is None
    assert top.states["M"].scopes() == []
    assert [s.where for s in asl.walk(machine)] == ["P", "M"]


def test_invalid_json_names_line_and_column(tmp_path):
    path = tmp_path / "sm.asl.json"
    path.write_text('{"StartAt": "A",\n  "States": }\n')

    with pytest.raises(asl.AslError) as raised:
        asl.load(path)

    assert str(raised.value) == "invalid JSON at line 2 column 13: Expecting value"
    assert (raised.value.lineno, raised.value.colno) == (2, 13)
    assert "\n" not in str(raised.value)


def test_an_unreadable_file_is_named(tmp_path):
    with pytest.raises(asl.AslError, match=r"cannot read .*missing\.json"):
        asl.load(tmp_path / "missing.json")


def test_render_fills_placeholders_and_keeps_escapes():
    text = json.dumps(
        {"a": "$${literal}", "b": "${deploy_function_arn}", "c": "${stage_timeout_seconds}"}
    )
    text = text.replace('"${stage_timeout_seconds}"', "${stage_timeout_seconds}")

    assert asl.template_vars(text) == ["deploy_function_arn", "stage_timeout_seconds"]
    assert json.loads(asl.render(text, values={"stage_timeout_seconds": 90})) == {
        "a": "${literal}",
        "b": "arn:aws:lambda:us-east-2:123456789012:function:check-deploy",
        "c": 90,
    }


def test_the_endpoint_validator_locates_nested_problems_through_the_model():
    from release_tooling.local_aws.asl_validation import validate_definition

    machine = nested_machine()
    inner = machine["States"]["Fanout"]["Branches"][0]["States"]
    inner["Inner"]["Default"] = "Legacy"  # a top-level state: out of this branch's reach
    inner["Stray"] = {"Type": "Succeed"}

    found = [(d.code, d.location) for d in validate_definition(json.dumps(machine))]

    assert found == [
        ("MISSING_TRANSITION_TARGET", "/States/Fanout/Branches/0/States/Inner/Default"),
        ("UNREACHABLE_STATE", "/States/Fanout/Branches/0/States/Stray"),
    ]
    assert validate_definition(json.dumps(nested_machine())) == []
    (bad,) = validate_definition('{"StartAt": }')
    assert (bad.code, bad.location) == ("INVALID_JSON_DESCRIPTION", "/")
    assert "line 1 column 13" in bad.message
