"""plan-review: the reviewed form of a plan, and what changed since review."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from release_tooling import plan_review as pr

PLANS = Path(__file__).parent / "fixtures" / "plans"


def rc(address, actions, after, unknown=None, before=None, **extra):
    change = {"actions": actions, "before": before, "after": after}
    change["after_unknown"] = unknown or {}
    change.update(extra.pop("change", {}))
    return {"address": address, "type": address.split(".")[0], "change": change, **extra}


def plan(*changes, outputs=None, **extra):
    return {
        "format_version": "1.2",
        "terraform_version": "1.11.4",
        "timestamp": "2026-01-01T00:00:00Z",
        "resource_changes": list(changes),
        "output_changes": outputs or {},
        **extra,
    }


BASE = plan(
    rc("aws_sns_topic.t", ["create"], {"name": "t", "tags": {"a": "1"}}, {"arn": True}),
    rc(
        'aws_lambda_function.pipeline["deploy"]',
        ["update"],
        {"source_code_hash": "h1"},
        before={"source_code_hash": "h0"},
    ),
    rc("aws_s3_bucket.b", ["no-op"], {"bucket": "b"}, before={"bucket": "b"}),
    rc("data.aws_iam_policy_document.p", ["read"], {"json": "{}"}),
    outputs={
        "topic_arn": {"actions": ["create"], "after_unknown": True},
        "bucket": {"actions": ["no-op"], "after": "b", "after_unknown": False},
    },
)


def test_the_record_holds_changes_only_and_its_digest_covers_them():
    doc = pr.record(BASE)
    assert set(doc["resources"]) == {"aws_sns_topic.t", 'aws_lambda_function.pipeline["deploy"]'}
    assert set(doc["outputs"]) == {"topic_arn"}
    assert doc["digest"] == pr.digest_of(doc) and doc["digest"].startswith("sha256:")
    # Before values, the timestamp and the version are not part of it.
    assert "h0" not in json.dumps(doc) and "timestamp" not in doc
    assert pr.record(BASE, doc["salt"])["digest"] == doc["digest"]


def test_what_legitimately_differs_between_two_plans_of_the_same_change_still_matches():
    later = copy.deepcopy(BASE)
    later["timestamp"] = "2026-02-02T00:00:00Z"
    later["terraform_version"] = "1.11.5"
    later["variables"] = {"region": {"value": "x"}}
    later["resource_changes"][1]["change"]["before"] = {"source_code_hash": "other"}
    later["resource_changes"][3]["change"]["after"] = {"json": "changed"}  # a read: no change
    result = pr.compare(pr.record(BASE), later)
    assert result.matches and result.reviewed_digest == result.current_digest
    assert "matches the reviewed plan" in result.report()


def test_new_changed_and_dropped_changes_are_each_named():
    later = copy.deepcopy(BASE)
    later["resource_changes"][0]["change"]["after"]["tags"]["a"] = "2"
    later["resource_changes"][1]["change"]["actions"] = ["delete", "create"]
    later["resource_changes"][2]["change"]["actions"] = ["update"]  # was no-op
    later["output_changes"]["topic_arn"] = {"actions": ["no-op"], "after": "arn:other"}
    result = pr.compare(pr.record(BASE), later)
    assert not result.matches
    assert result.new == [("aws_s3_bucket.b", "update")]
    changed = dict(result.changed)
    assert changed["aws_sns_topic.t"] == ["values differ at tags.a"]
    assert changed['aws_lambda_function.pipeline["deploy"]'] == ["actions update → delete/create"]
    # The output was to be created; now it is unchanged (an earlier apply made it): its reviewed
    # value was unknown, so whatever it is now is what was reviewed.
    assert result.dropped == [] and result.already_applied == ["output topic_arn"]
    report = result.report()
    assert "+ new: aws_s3_bucket.b (update)" in report and "nothing was applied" in report


def test_a_reviewed_change_no_longer_planned_is_reported():
    later = copy.deepcopy(BASE)
    later["resource_changes"][0]["change"].update(actions=["no-op"], after={"name": "x"})
    result = pr.compare(pr.record(BASE), later)
    assert result.dropped == [("aws_sns_topic.t", "create")]
    assert "- no longer planned: aws_sns_topic.t (reviewed: create)" in result.report()


def test_changes_applied_since_review_by_an_earlier_merge_are_accepted():
    later = copy.deepcopy(BASE)
    # Created by an earlier deploy: a no-op now, with the reviewed values (and a known arn).
    later["resource_changes"][0]["change"].update(
        actions=["no-op"],
        after={"name": "t", "tags": {"a": "1"}, "arn": "arn:t"},
        after_unknown={},
    )
    deleted = plan(
        rc("aws_sqs_queue.q", ["delete"], None),
        *copy.deepcopy(BASE["resource_changes"]),
        outputs=BASE["output_changes"],
    )
    result = pr.compare(pr.record(deleted), later)
    assert result.matches
    assert result.already_applied == ["aws_sns_topic.t", "aws_sqs_queue.q"]
    assert "Already applied since review (2)" in result.report()


def test_unknown_values_may_become_known_but_not_the_other_way_round():
    known = copy.deepcopy(BASE)
    known["resource_changes"][0]["change"].update(
        after={"name": "t", "tags": {"a": "1"}, "arn": "arn:t"}, after_unknown={}
    )
    assert pr.compare(pr.record(BASE), known).matches  # the arn, unknown at review, is known
    unknown = copy.deepcopy(BASE)
    unknown["resource_changes"][0]["change"]["after_unknown"] = {"arn": True, "name": True}
    del unknown["resource_changes"][0]["change"]["after"]["name"]
    result = pr.compare(pr.record(BASE), unknown)
    assert dict(result.changed)["aws_sns_topic.t"] == [
        "values differ at name, name (now known only after apply)"
    ]


def test_sensitive_values_are_compared_without_being_recorded():
    secret = plan(
        rc(
            "aws_ssm_parameter.p",
            ["create"],
            {"name": "p", "value": "hunter2"},
            change={"after_sensitive": {"value": True}},
        ),
    )
    doc = pr.record(secret)
    assert "hunter2" not in json.dumps(doc)
    assert doc["resources"]["aws_ssm_parameter.p"]["after"]["value"].startswith(
        "(sensitive hmac-sha256:"
    )
    assert pr.compare(doc, secret).matches
    other = copy.deepcopy(secret)
    other["resource_changes"][0]["change"]["after"]["value"] = "hunter3"
    result = pr.compare(doc, other)
    assert dict(result.changed)["aws_ssm_parameter.p"] == ["values differ at value"]
    assert "hunter" not in result.report()
    # Another salt gives another record: the HMAC is not a plain hash of the secret.
    assert pr.record(secret)["resources"] != doc["resources"]


def test_imports_and_moves_count_as_changes():
    moved = plan(
        rc("aws_sns_topic.new", ["no-op"], {"name": "t"}, previous_address="aws_sns_topic.old"),
        rc("aws_sqs_queue.q", ["no-op"], {"name": "q"}, change={"importing": {"id": "q"}}),
    )
    doc = pr.record(moved)
    assert doc["resources"]["aws_sns_topic.new"]["moved_from"] == "aws_sns_topic.old"
    assert doc["resources"]["aws_sqs_queue.q"]["importing"] is True
    assert pr.compare(doc, plan()).dropped == [
        ("aws_sns_topic.new", "no-op"),
        ("aws_sqs_queue.q", "no-op"),
    ]


def test_the_real_stack_plan_matches_itself_and_catches_a_changed_state_machine():
    # Its definition is unknown until the functions exist (known after apply): any value matches.
    stack = json.loads((PLANS / "stack-create.json").read_text())
    doc = pr.record(stack)
    assert len(doc["resources"]) == len(stack["resource_changes"])
    again = copy.deepcopy(stack)
    again["timestamp"] = "later"
    assert pr.compare(doc, again).matches
    for change in again["resource_changes"]:
        if change["address"] == "aws_sfn_state_machine.release":
            change["change"]["after"]["definition"] = "{}"  # was unknown: accepted
            change["change"]["after"]["tracing_configuration"][0]["enabled"] = False
    result = pr.compare(doc, again)
    assert dict(result.changed)["aws_sfn_state_machine.release"] == [
        "values differ at tracing_configuration"
    ]


def test_cli_record_and_compare_exit_codes(tmp_path, capsys):
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(BASE))
    out = tmp_path / "build" / "plan-review.json"
    assert pr.main(["record", "--plan-json", str(plan_file), "--out", str(out)], env={}) == 0
    digest = capsys.readouterr().out.strip()
    assert json.loads(out.read_text())["digest"] == digest
    argv = ["compare", "--reviewed", str(out), "--plan-json", str(plan_file)]
    assert pr.main(argv, env={}) == 0
    changed = copy.deepcopy(BASE)
    changed["resource_changes"].append(rc("aws_sqs_queue.q", ["create"], {"name": "q"}))
    plan_file.write_text(json.dumps(changed))
    assert pr.main(argv, env={}) == 1
    assert "+ new: aws_sqs_queue.q (create)" in capsys.readouterr().out
    # Tampering with the record is caught by its digest.
    doc = json.loads(out.read_text())
    doc["resources"]["aws_sns_topic.t"]["after"]["name"] = "x"
    out.write_text(json.dumps(doc))
    assert pr.main(argv, env={}) == 2
    assert "does not match its content" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "missing or empty; run `make plan` first"),
        ("{", "is not valid JSON"),
        ('{"a": 1}', "is not a Terraform plan JSON"),
        ('{"format_version": "1.2", "errored": true}', "failed `terraform plan`"),
    ],
)
def test_bad_plan_files_are_clear_errors(tmp_path, capsys, content, message):
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(content)
    argv = ["record", "--plan-json", str(plan_file), "--out", str(tmp_path / "r.json")]
    assert pr.main(argv, env={}) == 2
    assert message in capsys.readouterr().err


def test_a_record_of_another_format_is_refused(tmp_path, capsys):
    (tmp_path / "r.json").write_text('{"format": "something else"}')
    (tmp_path / "plan.json").write_text(json.dumps(BASE))
    argv = [
        "compare",
        "--reviewed",
        str(tmp_path / "r.json"),
        "--plan-json",
        str(tmp_path / "plan.json"),
    ]
    assert pr.main(argv, env={}) == 2
    assert "is not a reviewed-plan record" in capsys.readouterr().err


def test_commit_must_be_a_full_sha(capsys):
    with pytest.raises(SystemExit):
        pr.main(["fetch", "--commit", "abc", "--out", "x"], env={})
    assert "full 40-character commit SHA" in capsys.readouterr().err


def test_fetch_without_github_environment_says_what_is_missing(capsys):
    assert pr.main(["fetch", "--commit", "a" * 40, "--out", "x"], env={}) == 2
    assert "GITHUB_TOKEN" in capsys.readouterr().err
