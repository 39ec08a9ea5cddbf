"""`release-tooling policy-lint`: parliament and cloudsplaining on a Terraform state.

The rehearsal's real policies are linted in tests/local_aws/test_pipeline.py; these tests
check that the lint fails on what it must catch and that suppressions need a reason.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from release_tooling import policy_lint

BUCKET_OBJECTS = "arn:aws:s3:::orders-service-artifacts-123456789012/releases/*"


def state(policies: dict[str, dict], trust: dict | None = None) -> dict:
    resources = [
        {
            "mode": "managed",
            "type": "aws_iam_role_policy",
            "name": name,
            "instances": [{"attributes": {"policy": json.dumps(document)}}],
        }
        for name, document in policies.items()
    ]
    if trust is not None:
        resources.append(
            {
                "mode": "managed",
                "type": "aws_iam_role",
                "name": "deploy",
                "instances": [{"attributes": {"assume_role_policy": json.dumps(trust)}}],
            }
        )
    return {"version": 4, "resources": resources}


def allow(action, resource) -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}],
    }


def run(tmp_path: Path, tf_state: dict, suppressions: str | None = None):
    path = tmp_path / "terraform.tfstate"
    path.write_text(json.dumps(tf_state))
    rules = tmp_path / "suppressions.yaml"
    rules.write_text(suppressions or "[]")
    return policy_lint.lint([path], rules)


def test_a_service_wildcard_on_every_resource_is_flagged_by_both_tools(tmp_path):
    findings, count = run(tmp_path, state({"broad": allow("s3:*", "*")}))
    assert count == 1
    issues = {(f.tool, f.issue) for f in findings}
    assert ("parliament", "RESOURCE_STAR") in issues
    assert ("cloudsplaining", "ServiceWildcard") in issues
    assert ("cloudsplaining", "DataExfiltration") in issues


def test_an_action_scoped_to_the_wrong_resource_type_is_flagged(tmp_path):
    # StopDeployment has no resource type: granted on a group ARN it never applies on AWS.
    group = "arn:aws:codedeploy:us-east-2:123456789012:deploymentgroup:orders-service-app/staging"
    findings, _ = run(tmp_path, state({"deploy": allow("codedeploy:StopDeployment", group)}))
    assert [(f.issue, f.actions) for f in findings] == [
        ("RESOURCE_MISMATCH", ("codedeploy:StopDeployment",))
    ]


def test_exact_least_privilege_policies_and_trust_policies_pass(tmp_path):
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    findings, count = run(
        tmp_path, state({"read": allow(["s3:GetObject"], BUCKET_OBJECTS)}, trust=trust)
    )
    assert count == 2 and findings == []


def test_a_suppression_covers_only_the_actions_it_lists(tmp_path):
    group = "arn:aws:codedeploy:us-east-2:123456789012:deploymentgroup:orders-service-app/staging"
    tf_state = state({"deploy": allow("codedeploy:StopDeployment", group)})
    listed = (
        "- {tool: parliament, issue: RESOURCE_MISMATCH, policy: 'aws_iam_role_policy.*', "
        "actions: [codedeploy:StopDeployment], reason: accepted for this test}"
    )
    other = listed.replace("codedeploy:StopDeployment", "states:ListExecutions")
    assert run(tmp_path, tf_state, listed)[0] == []
    assert len(run(tmp_path, tf_state, other)[0]) == 1


def test_a_suppression_without_a_reason_is_refused(tmp_path):
    rules = "- {tool: parliament, issue: RESOURCE_STAR, policy: '*'}"
    with pytest.raises(policy_lint.LintError, match="reason"):
        run(tmp_path, state({"broad": allow("s3:*", "*")}), rules)


def test_the_command_exits_1_on_findings_and_says_how_many(tmp_path, capsys):
    path = tmp_path / "terraform.tfstate"
    path.write_text(json.dumps(state({"broad": allow("s3:*", "*")})))
    assert policy_lint.main([str(path)]) == 1
    assert "finding(s) not suppressed" in capsys.readouterr().out


def test_an_unreadable_state_is_one_line_and_exit_2(tmp_path, capsys):
    path = tmp_path / "terraform.tfstate"
    path.write_text("{not json")
    assert policy_lint.main([str(path)]) == 2
    out = capsys.readouterr().out.strip()
    assert out.startswith("policy_lint: cannot read IAM policies from") and "\n" not in out
