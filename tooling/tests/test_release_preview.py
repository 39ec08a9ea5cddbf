"""The release preview: what merging a pull request releases (release_preview.py)."""

from __future__ import annotations

import json
from pathlib import Path

from release_tooling import release_preview as rp

PLANS = Path(__file__).parent / "fixtures" / "plans"
MANIFEST = {
    "commit": "0123456789abcdef0123456789abcdef01234567",
    "built_at": "2026-01-01T00:00:00Z",
    "app_functions": ["app", "worker"],
    "artifacts": {
        "deploy": {"file": "deploy.zip", "sha256": "d" * 64, "size": 9000},
        "worker": {"file": "worker.zip", "sha256": "b" * 64, "size": 2 * 1024 * 1024},
        "app": {"file": "app.zip", "sha256": "a" * 64, "size": 512},
    },
}


def resource(address, values):
    rtype = address.split(".")[0]
    return {"address": address, "mode": "managed", "type": rtype, "values": values}


def change(address, actions, after=None):
    return {
        "address": address,
        "mode": "managed",
        "type": address.split(".")[0],
        "change": {"actions": actions, "after": after or {}},
    }


def plan(changes=(), approval=0):
    aliases = [
        resource(f'aws_lambda_alias.app["{key}/{alias}"]', {"name": alias, "function_name": fn})
        for key, fn in (("app", "orders-app"), ("worker", "orders-worker"))
        for alias in ("staging", "production")
    ]
    groups = [
        resource(
            f'aws_codedeploy_deployment_group.alias["{key}/{alias}"]',
            {
                "deployment_group_name": f"{key}-{alias}",
                "deployment_config_name": "CodeDeployDefault.Lambda"
                + ("AllAtOnce" if alias == "staging" else "Canary10Percent5Minutes"),
            },
        )
        for key in ("app", "worker")
        for alias in ("staging", "production")
    ]
    budget = {
        "shift_minutes": {"staging": 0, "production": 5},
        "approval_timeout_seconds": approval,
        "state_machine_timeout_seconds": 5400,
    }
    return {
        "format_version": "1.2",
        "planned_values": {
            "outputs": {"release_budget": {"sensitive": False, "value": budget}},
            "root_module": {"resources": aliases, "child_modules": [{"resources": groups}]},
        },
        "resource_changes": list(changes),
    }


def test_the_preview_names_commit_artifacts_moves_strategy_time_and_approval():
    versions = {
        ("orders-app", "staging"): "7",
        ("orders-app", "production"): "6",
        ("orders-worker", "production"): "$LATEST",
    }
    preview = rp.build(plan(approval=86400), MANIFEST, lambda f, a: versions.get((f, a)))
    text = rp.render(preview)
    assert "Zips built from commit `0123456789ab`, the tree this plan is of" in text
    # App functions first, in the manifest's order, then the pipeline's.
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert rows[:3] == [
        f"| `app` | app | `{'a' * 64}` | 512 B |",
        f"| `worker` | app | `{'b' * 64}` | 2.0 MiB |",
        f"| `deploy` | pipeline | `{'d' * 64}` | 8.8 KiB |",
    ]
    assert "| `orders-app` `production` | version `6` | `Canary10Percent5Minutes` | 5 min |" in text
    assert "| `orders-app` `staging` | version `7` | `AllAtOnce` | 0 min |" in text
    assert "| `orders-worker` `staging` | none yet | `AllAtOnce` | 0 min |" in text
    assert "| `orders-worker` `production` | `$LATEST` (no release yet) |" in text
    # Each function's aliases in the order a release moves them.
    assert text.index("`orders-app` `staging`") < text.index("`orders-app` `production`")
    assert "**Approval required** before production (the release waits up to 24 h" in text
    assert "the whole release may take up to 90 min" in text
    assert "unknown" not in text


def test_without_aws_the_current_versions_are_unknown_and_no_approval_is_said():
    text = rp.render(rp.build(plan(approval=0), MANIFEST))
    assert "| `orders-app` `staging` | unknown | `AllAtOnce` | 0 min |" in text
    assert "Current versions unknown (the preview ran without AWS access)." in text
    assert "**No approval**: production follows staging automatically" in text


def test_an_alias_that_cannot_be_read_is_unknown_and_counted():
    def flaky(function_name, alias):
        if function_name == "orders-worker":
            raise RuntimeError("AccessDenied")
        return "3"

    preview = rp.build(plan(), MANIFEST, flaky)
    assert not preview.versions_known
    text = rp.render(preview)
    assert "| `orders-worker` `production` | unknown |" in text
    assert "Current versions of 2 alias(es) could not be read." in text


def test_pipeline_changes_are_flagged_apart_from_app_changes():
    changes = [
        change("aws_sfn_state_machine.release", ["update"]),
        change('aws_iam_role_policy.pipeline_function["deploy"]', ["update"]),
        change('aws_codedeploy_deployment_group.alias["app/production"]', ["update"]),
        change('aws_lambda_function.pipeline["deploy"]', ["update"]),
        change("aws_lambda_function.app", ["update"]),
        change("aws_sns_topic.release_events", ["update"]),
        change("aws_s3_bucket.artifacts", ["no-op"]),
        change("aws_cloudwatch_event_rule.artifact_uploaded", ["create"]),
    ]
    preview = rp.build(plan(changes), MANIFEST)
    assert preview.pipeline_changes == {
        "state machine": ["aws_sfn_state_machine.release"],
        "IAM": ['aws_iam_role_policy.pipeline_function["deploy"]'],
        "CodeDeploy configuration": ['aws_codedeploy_deployment_group.alias["app/production"]'],
        "pipeline functions": ['aws_lambda_function.pipeline["deploy"]'],
        "pipeline trigger": ["aws_cloudwatch_event_rule.artifact_uploaded"],
    }
    assert preview.app_changes == 2
    text = rp.render(preview)
    assert "⚠️ **This merge changes the release pipeline itself**: state machine (1), IAM (1)" in (
        text
    )
    assert "Other (application) infrastructure changes: 2." in text
    assert "changes the release pipeline" not in rp.render(rp.build(plan(changes[4:6]), MANIFEST))


def test_a_real_first_plan_moves_aliases_of_a_function_being_created():
    # The stack-create fixture: no planned_values (stripped), no release_budget output; the
    # values come from resource_changes' after, the approval from the manual_approval variable.
    stack = json.loads((PLANS / "stack-create.json").read_text())
    manifest = {"commit": "f" * 40, "artifacts": {"app": {"sha256": "c" * 64, "size": 100}}}
    preview = rp.build(stack, manifest, lambda f, a: None)
    assert [(m.function_name, m.alias, m.strategy) for m in preview.moves] == [
        ("orders-service-app", "staging", "Canary10Percent5Minutes"),
        ("orders-service-app", "production", "Canary10Percent5Minutes"),
    ]
    assert preview.approval_required is False
    assert set(preview.pipeline_changes) >= {"state machine", "IAM", "CodeDeploy configuration"}
    text = rp.render(preview)
    assert "| `orders-service-app` `staging` | none yet | `Canary10Percent5Minutes` | ? |" in text


def test_a_manifest_with_a_list_of_artifacts_and_no_app_list_is_read():
    manifest = {"commit": "c" * 40, "artifacts": [{"name": "app", "sha256": "e" * 64, "size": 1}]}
    assert rp.read_functions(manifest) == [rp.Function("app", "e" * 64, 1, True)]


def test_without_a_manifest_the_preview_says_so():
    text = rp.render(rp.build({"format_version": "1.2"}, None))
    assert "No build manifest was given" in text
    assert "Approval before production: unknown" in text


def test_long_lists_are_bounded():
    manifest = {
        "commit": "c" * 40,
        "artifacts": {f"f{i:02}": {"sha256": "0" * 64, "size": 1} for i in range(50)},
    }
    text = rp.render(rp.build({"format_version": "1.2"}, manifest))
    assert text.count("| `f") == rp.MAX_ROWS and "| … 30 more | | |" in text
