"""Rendering of the pull-request plan comment (release-tooling plan-comment render)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from release_tooling import plan_comment as pc
from release_tooling import plan_review

PLANS = Path(__file__).parent / "fixtures" / "plans"
RUN_URL = "https://github.com/acme/orders-service/actions/runs/42"


# ----------------------------------------------------------------- synthetic plans


def rc(address: str, actions: list[str], **extra) -> dict:
    """One resource_changes[] entry shaped like `terraform show -json` output."""
    resource_type, name = address.split(".")[-2:]
    entry = {
        "address": address,
        "mode": "managed",
        "type": resource_type,
        "name": name.split("[")[0],
        "provider_name": "registry.terraform.io/hashicorp/aws",
        "change": {"actions": actions, "before": None, "after": {}, "after_unknown": {}},
    }
    if "importing" in extra:
        entry["change"]["importing"] = extra.pop("importing")
    if "replace_paths" in extra:
        entry["change"]["replace_paths"] = extra.pop("replace_paths")
    entry.update(extra)
    return entry


def plan_doc(changes: list[dict], **extra) -> dict:
    return {
        "format_version": "1.2",
        "terraform_version": "1.11.4",
        "resource_changes": changes,
        "applyable": bool(changes),
        "complete": True,
        "errored": False,
        **extra,
    }


ALL_KINDS = plan_doc(
    [
        rc("aws_sns_topic.alerts", ["create"]),
        rc("aws_iam_role.app", ["update"]),
        rc("aws_sns_topic.old", ["delete"], action_reason="delete_because_no_resource_config"),
        rc(
            "aws_sqs_queue.dlq",
            ["delete", "create"],
            action_reason="replace_because_cannot_update",
            replace_paths=[["name"]],
        ),
        rc("aws_lambda_alias.live", ["create", "delete"], action_reason="replace_by_request"),
        rc("aws_sqs_queue.legacy", ["no-op"], importing={"id": "https://sqs/legacy"}),
        rc("aws_s3_bucket.release", ["no-op"], previous_address="aws_s3_bucket.artifacts"),
        rc("aws_s3_bucket.untouched", ["no-op"]),
        {**rc("data.aws_iam_policy_document.trust", ["read"]), "mode": "data"},
    ]
)


def render(plan, **kw) -> str:
    return pc.render(pc.Inputs(plan=plan, **kw))


def test_counts_each_kind_from_actions_importing_and_previous_address():
    summary = pc.parse_plan(ALL_KINDS)
    counts = {
        cat: summary.count(cat) for cat in ("add", "change", "destroy", "replace", "import", "move")
    }
    assert counts == {"add": 1, "change": 1, "destroy": 1, "replace": 2, "import": 1, "move": 1}
    body = render(ALL_KINDS)
    assert (
        "**1** to add, **1** to change, **1** to destroy, **2** to replace, "
        "**1** to import, **1** to move" in body
    )
    # no-op resources and data sources are not changes
    assert "untouched" not in body
    assert "aws_iam_policy_document" not in body


def test_marker_then_verdict_then_warnings_above_everything_else():
    body = render(
        ALL_KINDS, plan_text="Terraform will perform the following actions:\n", run_url=RUN_URL
    )
    lines = body.splitlines()
    assert lines[0] == pc.MARKER
    assert lines[2].startswith("⚠️ **Terraform plan: 7 resource(s) change**")
    warning_at = body.index("[!CAUTION]")
    assert warning_at < body.index("#### Changed resources") < body.index("<details>")
    warning = body[warning_at : body.index("#### Changed resources")]
    assert "1 resource(s) will be destroyed" in warning
    assert "`aws_sns_topic.old` — removed from the configuration" in warning
    assert "2 resource(s) will be replaced" in warning
    assert "`aws_sqs_queue.dlq` — an argument forces replacement; forced by `name`" in warning
    assert "`aws_lambda_alias.live` — replacement requested (-replace)" in warning
    # creates/updates are not warnings
    assert "aws_sns_topic.alerts" not in warning


def test_table_lists_changes_most_dangerous_first_with_notes():
    body = render(ALL_KINDS)
    rows = [line for line in body.splitlines() if line.startswith("| ") and "`" in line]
    addresses = [re.search(r"`([^`]+)`", row).group(1) for row in rows]
    assert addresses == [
        "aws_lambda_alias.live",
        "aws_sqs_queue.dlq",
        "aws_sns_topic.old",
        "aws_sns_topic.alerts",
        "aws_iam_role.app",
        "aws_sqs_queue.legacy",
        "aws_s3_bucket.release",
    ]
    assert "| 📥 import | `aws_sqs_queue.legacy` | import id `https://sqs/legacy` |" in body
    assert "| 🚚 move | `aws_s3_bucket.release` | moved from `aws_s3_bucket.artifacts` |" in body


def test_import_with_update_and_move_with_update_count_in_both():
    plan = plan_doc(
        [
            rc("aws_sqs_queue.q", ["update"], importing={"id": "q"}),
            rc("aws_s3_bucket.b", ["update"], previous_address="aws_s3_bucket.a"),
        ]
    )
    summary = pc.parse_plan(plan)
    assert (summary.count("change"), summary.count("import"), summary.count("move")) == (2, 1, 1)
    assert "| ✏️ change + 📥 import | `aws_sqs_queue.q` |" in render(plan)


def test_no_changes_is_one_line():
    body = render(plan_doc([rc("aws_s3_bucket.b", ["no-op"])]), plan_text="No changes.\n")
    assert body.splitlines() == [
        pc.MARKER,
        "",
        "✅ **Terraform plan: no changes.** The infrastructure matches the configuration.",
    ]


def test_output_only_changes_are_not_reported_as_no_changes():
    plan = plan_doc(
        [], output_changes={"url": {"actions": ["update"]}, "same": {"actions": ["no-op"]}}
    )
    body = render(plan)
    assert "only output values change" in body
    assert "`url`" in body and "`same`" not in body


def test_drift_that_fed_the_plan_is_named_and_the_rest_collapsed():
    plan = plan_doc(
        [rc("aws_iam_role.app", ["update"]), rc("aws_sqs_queue.q", ["update"])],
        resource_drift=[
            rc("aws_iam_role.app", ["update"]),
            rc("aws_sqs_queue.q", ["update"]),  # no relevant_attributes, but it is changing
            rc("aws_s3_bucket.noise", ["update"]),
        ],
        relevant_attributes=[{"resource": "aws_iam_role.app", "attribute": ["tags"]}],
    )
    body = render(plan)
    assert (
        "2 object(s) changed outside Terraform since the last apply: "
        "`aws_iam_role.app`, `aws_sqs_queue.q`" in body
    )
    named = next(line for line in body.splitlines() if "changed outside Terraform since" in line)
    assert "aws_s3_bucket.noise" not in named
    other = body[body.index("1 other object(s) changed outside Terraform") :]
    assert other.index("- `aws_s3_bucket.noise`") < other.index("</details>")
    assert body.index("changed outside Terraform") < body.index("#### Changed resources")


def test_unknown_action_is_a_clear_error():
    with pytest.raises(pc.InputError, match=r"unknown change.actions \['explode'\]"):
        pc.parse_plan(plan_doc([rc("aws_s3_bucket.b", ["explode"])]))


def test_not_a_show_json_document_is_rejected():
    with pytest.raises(pc.InputError, match="terraform show -json"):
        pc.parse_plan({"resource_changes": []})


def test_table_cells_escape_pipes_and_plan_text_fences_stay_closed():
    plan = plan_doc([rc('aws_sns_topic.t["a|b"]', ["create"])])
    text = "  + resource ... {\n      + policy = <<-EOT\n          ```\n          x\n        EOT\n"
    body = render(plan, plan_text=text)
    assert '`aws_sns_topic.t["a\\|b"]`' in body
    details = body[body.index("<details>") :]
    assert "````hcl" in details and details.rstrip().endswith("````\n\n</details>")


def test_refresh_chatter_and_ansi_codes_are_dropped_from_plan_text():
    text = (
        "aws_s3_bucket.b: Refreshing state... [id=b]\n"
        "data.aws_caller_identity.c: Reading...\n"
        "data.aws_caller_identity.c: Read complete after 0s [id=1]\n"
        "\n\x1b[1m  # aws_sns_topic.t\x1b[0m will be created\n"
    )
    body = render(plan_doc([rc("aws_sns_topic.t", ["create"])]), plan_text=text)
    assert "Refreshing state" not in body and "\x1b" not in body
    assert "<summary>Full plan output, 3 refresh line(s) omitted</summary>" in body
    assert "  # aws_sns_topic.t will be created" in body


# ------------------------------------------------------------------------ size limit


def huge_plan(n_resources: int, destroyed: int) -> tuple[dict, str]:
    changes = [rc(f"aws_sns_topic.t{i:05d}", ["delete"]) for i in range(destroyed)]
    changes += [
        rc(f"module.svc{i % 40}.aws_lambda_function.fn{i:05d}", ["create"])
        for i in range(n_resources - destroyed)
    ]
    block = "  + resource {\n      + arn = (known after apply)\n    }"
    text = "\n".join(f"  # {c['address']} will be created\n{block}" for c in changes)
    return plan_doc(changes), text


def test_far_over_the_limit_cuts_the_diff_never_warnings_or_counts():
    plan, text = huge_plan(4000, destroyed=300)
    assert len(text) > 6 * pc.GITHUB_BODY_LIMIT
    body = render(plan, plan_text=text, run_url=RUN_URL)
    assert pc.utf16_len(body) < pc.GITHUB_BODY_LIMIT
    assert "**3700** to add" in body and "**300** to destroy" in body
    for i in range(300):
        assert f"`aws_sns_topic.t{i:05d}`" in body.split("#### Changed resources")[0]
    assert "[!NOTE]" in body
    assert f"the full plan is in the [job summary of this run]({RUN_URL})" in body
    # whatever diff is kept is in a closed block
    assert body.count("<details>") == body.count("</details>")


def test_plan_text_is_cut_before_the_table():
    plan, _ = huge_plan(50, destroyed=2)
    text = "\n".join(f"line {i} " + "x" * 80 for i in range(5000))
    body = render(plan, plan_text=text, run_url=RUN_URL)
    assert pc.utf16_len(body) < pc.GITHUB_BODY_LIMIT
    match = re.search(r"Plan output \(first (\d+) of 5000 lines\)", body)
    assert match and 100 < int(match.group(1)) < 5000
    assert body.count("| ➕ add | `module.") == 48  # every row survived
    assert "| ➕ add | `aws_lambda_function` | 48 |" in body
    assert "The plan output was cut to fit" in body


def test_table_is_cut_when_even_without_diff_it_does_not_fit():
    plan, text = huge_plan(12_000, destroyed=10)
    body = render(plan, plan_text=text, run_url=RUN_URL)
    assert pc.utf16_len(body) < pc.GITHUB_BODY_LIMIT
    assert "The plan output was left out" in body
    assert re.search(r"_\d+ more row\(s\) cut to fit GitHub's comment size limit\._", body)
    assert "**11990** to add" in body and "**10** to destroy" in body


def test_emergency_cut_says_so_when_warnings_alone_overflow():
    plan, _ = huge_plan(6000, destroyed=6000)
    body = render(plan, run_url=RUN_URL)
    assert pc.utf16_len(body) < pc.GITHUB_BODY_LIMIT
    assert "**6000** to destroy" in body
    assert "[!WARNING]" in body and "cut at GitHub's size limit" in body


# ------------------------------------------------------------ big plans, natural order


def test_address_key_orders_modules_then_type_name_and_keys_naturally():
    addresses = [
        'aws_x.a["b"]',
        "module.m[10].aws_x.a",
        "aws_x.a[10]",
        "data.aws_x.a",
        "module.m[2].aws_x.a[10]",
        'aws_x.a["a"]',
        "aws_x.a[2]",
        "module.m[2].aws_x.a[2]",
        "aws_x.a",
        "module.b.aws_x.a",
        "aws_w.z",
    ]
    assert sorted(addresses, key=pc.address_key) == [
        "aws_w.z",
        "aws_x.a",
        "aws_x.a[2]",
        "aws_x.a[10]",
        'aws_x.a["a"]',
        'aws_x.a["b"]',
        "data.aws_x.a",
        "module.b.aws_x.a",
        "module.m[2].aws_x.a[2]",
        "module.m[2].aws_x.a[10]",
        "module.m[10].aws_x.a",
    ]
    # A string key may hold dots, brackets and escaped quotes; nonsense sorts last, as text.
    assert pc.address_key('aws_x.a["k.[1]\\"x"]')[2:5] == ("aws_x", "a", (2, 0, 'k.[1]\\"x'))
    assert sorted(["???", "aws_x.a"], key=pc.address_key) == ["aws_x.a", "???"]


def generated_plan() -> dict:
    """400 changes: count-indexed, for_each and module instances, given in shuffled order."""
    changes = [rc(f"aws_sqs_queue.generated[{i}]", ["create"]) for i in range(150)]
    changes += [rc(f'aws_sns_topic.topic["svc-{i}"]', ["create"]) for i in range(100)]
    changes += [
        rc(f"module.svc[{m}].aws_lambda_function.fn[{i}]", ["update"])
        for m in range(12)
        for i in range(10)
    ]
    changes += [
        rc(
            f"module.edge.aws_cloudwatch_log_group.lg[{i}]",
            ["delete"],
            action_reason="delete_because_count_index",
        )
        for i in range(27)
    ]
    changes += [rc(f"aws_iam_role.r[{i}]", ["delete", "create"]) for i in (10, 2, 1)]
    # Deterministic shuffle: the comment must not depend on Terraform's order.
    changes = changes[1::2] + changes[::2]
    assert len(changes) == 400
    return plan_doc(changes)


def rows_of(body: str) -> list[str]:
    """The resource addresses of the listed rows, in order."""
    return re.findall(r"^\| \S.*? \| `([^`]*\.[^`]*)` \|", body, flags=re.M)


def test_400_resources_are_counted_by_type_and_listed_in_natural_order():
    body = render(generated_plan())
    assert (
        "**Terraform plan: 400 resource(s) change** — **250** to add, **120** to change, "
        "**27** to destroy, **3** to replace" in body
    )
    for row in (
        "| ⚠️ replace | `aws_iam_role` | 3 |",
        "| 🔥 destroy | `aws_cloudwatch_log_group` | 27 |",
        "| ➕ add | `aws_sns_topic` | 100 |",
        "| ➕ add | `aws_sqs_queue` | 150 |",
        "| ✏️ change | `aws_lambda_function` | 120 |",
    ):
        assert row in body, row
    rows = rows_of(body)
    assert len(rows) == 400 and len(set(rows)) == 400
    # Dangerous first, then by type; inside a type numbers as numbers, strings as strings.
    assert rows[:3] == ["aws_iam_role.r[1]", "aws_iam_role.r[2]", "aws_iam_role.r[10]"]
    assert rows.index("aws_sqs_queue.generated[2]") < rows.index("aws_sqs_queue.generated[10]")
    assert rows.index("aws_sqs_queue.generated[10]") < rows.index("aws_sqs_queue.generated[100]")
    assert rows.index('aws_sns_topic.topic["svc-10"]') < rows.index('aws_sns_topic.topic["svc-2"]')
    fn = [r for r in rows if r.startswith("module.svc")]
    assert fn.index("module.svc[2].aws_lambda_function.fn[9]") < fn.index(
        "module.svc[10].aws_lambda_function.fn[0]"
    )
    assert fn[:2] == [
        "module.svc[0].aws_lambda_function.fn[0]",
        "module.svc[0].aws_lambda_function.fn[1]",
    ]


def test_400_resources_collapse_long_groups_and_keep_warnings_and_counts_on_top():
    body = render(generated_plan(), plan_text="  # plan text\n", run_url=RUN_URL)
    assert pc.utf16_len(body) < pc.GITHUB_BODY_LIMIT
    counts_at = body.index("**250** to add")
    caution_at = body.index("[!CAUTION]")
    table_at = body.index("| Action | Resource type | Count |")
    assert counts_at < caution_at < table_at
    warning = body[caution_at:table_at]
    assert "**27 resource(s) will be destroyed:**" in warning
    assert "`module.edge.aws_cloudwatch_log_group.lg[26]` — count index no longer exists" in warning
    # One block per action; the long ones closed, the short one open; all closed again.
    assert "<details open><summary>⚠️ replace: 3 resource(s) of 1 type(s)</summary>" in body
    assert "<details><summary>🔥 destroy: 27 resource(s) of 1 type(s)</summary>" in body
    assert "<details><summary>➕ add: 250 resource(s) of 2 type(s)</summary>" in body
    assert "<details><summary>✏️ change: 120 resource(s) of 1 type(s)</summary>" in body
    assert body.count("<details") == body.count("</details>") == 5  # + the plan text
    # A row is inside its action's block.
    add_block = body[body.index("➕ add: 250") :]
    add_block = add_block[: add_block.index("</details>")]
    assert "`aws_sqs_queue.generated[149]`" in add_block and "fn[" not in add_block


def test_small_plans_stay_one_table():
    plan = plan_doc([rc(f"aws_sqs_queue.q[{i}]", ["create"]) for i in (10, 1, 2)])
    body = render(plan)
    assert "Resource type" not in body and "<details" not in body
    assert rows_of(body) == ["aws_sqs_queue.q[1]", "aws_sqs_queue.q[2]", "aws_sqs_queue.q[10]"]


def test_400_resources_under_a_small_budget_cut_rows_not_the_counts():
    plan = generated_plan()
    text = "\n".join(f"  # {c['address']} will be created" for c in plan["resource_changes"])
    budget = 12_000
    body = pc.render(pc.Inputs(plan=plan, plan_text=text, run_url=RUN_URL), budget=budget)
    assert pc.utf16_len(body) <= budget
    assert "The plan output was left out" in body
    assert "| ➕ add | `aws_sqs_queue` | 150 |" in body  # the per-type counts stay whole
    cut = re.search(r"_(\d+) more row\(s\) cut to fit GitHub's comment size limit\._", body)
    assert cut and int(cut.group(1)) + len(rows_of(body)) == 400
    assert body.count("<details") == body.count("</details>")
    # all 27 destroyed resources are still named in the warning
    assert all(f"`module.edge.aws_cloudwatch_log_group.lg[{i}]`" in body for i in range(27))


# ------------------------------------------------------------------ failed plan


FAILED_TEXT = """\
aws_s3_bucket.b: Refreshing state... [id=b]
\x1b[31m╷\x1b[0m
│ Error: expected message_retention_seconds to be in the range (60 - 1209600), got 10
│
│   with aws_sqs_queue.dlq,
│   on main.tf line 28, in resource "aws_sqs_queue" "dlq":
│   28:   message_retention_seconds = 10
╵
"""


def test_failed_plan_renders_the_error():
    body = render(None, plan_text=FAILED_TEXT, run_url=RUN_URL)
    assert body.startswith(pc.MARKER)
    assert "❌ **Terraform plan failed.**" in body
    assert "Error: expected message_retention_seconds to be in the range" in body
    assert "  with aws_sqs_queue.dlq," in body
    assert "Refreshing state" not in body.split("<details>")[0]


def test_failed_plan_without_any_output_explains_what_happened():
    body = render(None, plan_text="")
    assert "did not get as far as planning" in body


def test_failed_plan_text_over_the_limit_is_cut():
    text = FAILED_TEXT + "\n".join("noise " * 30 for _ in range(5000))
    body = render(None, plan_text=text, run_url=RUN_URL)
    assert pc.utf16_len(body) < pc.GITHUB_BODY_LIMIT
    assert "Error: expected message_retention_seconds" in body
    assert "Plan output cut to fit" in body


# ------------------------------------------------------------- checkov and tests


CHECKOV_FAILED = {
    "check_type": "terraform",
    "results": {
        "passed_checks": [{"check_id": "CKV_AWS_18"}] * 5,
        "failed_checks": [
            {
                "check_id": "CKV_AWS_117",
                "check_name": "Ensure that AWS Lambda function is configured inside a VPC",
                "resource": "aws_lambda_function.app",
                "file_path": "/terraform/lambda.tf",
                "guideline": "https://docs.prismacloud.io/x",
            },
            {
                "check_id": "CKV2_AWS_62",
                "resource": "aws_s3_bucket.artifacts",
                "file_path": "/terraform/artifacts.tf",
            },
        ],
        "skipped_checks": [{"check_id": "CKV_AWS_50"}],
    },
    "summary": {"passed": 5, "failed": 2, "skipped": 1, "parsing_errors": 0},
}


def test_checkov_failures_name_check_resource_and_file():
    result = pc.parse_checkov(
        [CHECKOV_FAILED, {"check_type": "secrets", "results": {}, "summary": {}}]
    )
    body = render(plan_doc([]), checkov=result)
    assert "❌ **2 failed**, 5 passed, 1 skipped." in body
    assert (
        "| `CKV_AWS_117` Ensure that AWS Lambda function is configured inside a VPC "
        "| `aws_lambda_function.app` | `/terraform/lambda.tf` |" in body
    )
    assert "| `CKV2_AWS_62` | `aws_s3_bucket.artifacts` | `/terraform/artifacts.tf` |" in body


def test_checkov_all_passed_and_summary_only_output():
    ok = pc.parse_checkov(
        {**CHECKOV_FAILED, "results": {"passed_checks": [{}] * 3, "skipped_checks": []}}
    )
    assert "✅ 3 checks passed, none failed." in pc.checkov_section(ok)
    empty = pc.parse_checkov({"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 1})
    assert "1 file(s) could not be parsed" in pc.checkov_section(empty)


JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="4" failures="1" errors="1" skipped="1">
<testcase classname="tests.test_deploy" name="test_ok" time="0.1"/>
<testcase classname="tests.test_deploy" name="test_alias">
  <failure message="assert 1 == 2">trace</failure></testcase>
<testcase classname="tests.test_rollback" name="test_db">
  <error message="fixture broke&#10;more"/></testcase>
<testcase classname="tests.test_x" name="test_skip"><skipped message="no node"/></testcase>
</testsuite></testsuites>"""


def test_junit_totals_and_failing_test_names():
    results = pc.parse_junit(JUNIT)
    assert (results.total, results.passed, results.skipped, results.errors) == (4, 1, 1, 1)
    section = pc.tests_section(results)
    assert "❌ **2 failed**, 1 passed, 1 skipped (4 total)." in section
    assert "- `tests.test_deploy::test_alias` — assert 1 == 2" in section
    assert "- `tests.test_rollback::test_db` — fixture broke" in section


def test_junit_all_green_and_bad_xml():
    ok = pc.parse_junit('<testsuite><testcase classname="a" name="b"/></testsuite>')
    assert pc.tests_section(ok).endswith("✅ 1 passed (1 total).")
    with pytest.raises(pc.InputError, match="not valid XML"):
        pc.parse_junit("<testsuites>")
    with pytest.raises(pc.InputError, match="expected <testsuites>"):
        pc.parse_junit("<html/>")


# ---------------------------------------------------------------------------- CLI


def test_cli_render_reads_every_input(tmp_path, capsys):
    (tmp_path / "plan.json").write_text(json.dumps(ALL_KINDS))
    (tmp_path / "plan.txt").write_text("Plan: 2 to add\n")
    (tmp_path / "checkov.json").write_text(json.dumps(CHECKOV_FAILED))
    (tmp_path / "junit.xml").write_text(JUNIT)
    argv = [
        "render",
        "--plan-json",
        str(tmp_path / "plan.json"),
        "--plan-text",
        str(tmp_path / "plan.txt"),
    ]
    argv += [
        "--checkov-json",
        str(tmp_path / "checkov.json"),
        "--tests-junit",
        str(tmp_path / "junit.xml"),
    ]
    assert pc.main([*argv, "--run-url", RUN_URL]) == 0
    out = capsys.readouterr().out
    for piece in (
        "[!CAUTION]",
        "#### Policy (checkov)",
        "#### Tests",
        "Plan: 2 to add",
        f"]({RUN_URL})",
    ):
        assert piece in out


def test_cli_missing_plan_json_renders_the_failed_plan(tmp_path, capsys):
    (tmp_path / "plan.txt").write_text(FAILED_TEXT)
    argv = [
        "render",
        "--plan-json",
        str(tmp_path / "absent.json"),
        "--plan-text",
        str(tmp_path / "plan.txt"),
    ]
    assert pc.main(argv) == 0
    assert "Terraform plan failed" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("files", "extra", "message"),
    [
        ({"plan.json": "{not json"}, [], "is not valid JSON"),
        ({}, [], "no --plan-text was given"),
        ({"plan.json": "{}"}, [], "no format_version"),
        (
            {"plan.json": json.dumps(plan_doc([]))},
            ["--checkov-json", "nope.json"],
            "does not exist",
        ),
        (
            {"plan.json": json.dumps(plan_doc([]))},
            ["--run-url", "javascript:alert(1)"],
            "http(s) URL",
        ),
    ],
)
def test_cli_bad_input_is_one_clear_error(tmp_path, capsys, files, extra, message):
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    extra = [str(tmp_path / x) if x.endswith(".json") else x for x in extra]
    assert pc.main(["render", "--plan-json", str(tmp_path / "plan.json"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("plan_comment.py render: ") and message in err


def test_cli_render_shows_the_reviewed_digest_and_the_release_preview(tmp_path, capsys):
    manifest = {
        "commit": "0123456789abcdef0123456789abcdef01234567",
        "app_functions": ["app"],
        "artifacts": {"app": {"sha256": "a" * 64, "size": 2048}},
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    for name, doc in (("changes", ALL_KINDS), ("none", plan_doc([]))):
        (tmp_path / f"{name}.json").write_text(json.dumps(doc))
        record = plan_review.record(doc)
        (tmp_path / "review.json").write_text(json.dumps(record))
        argv = ["render", "--plan-json", str(tmp_path / f"{name}.json")]
        argv += ["--manifest", str(tmp_path / "manifest.json")]
        assert pc.main([*argv, "--plan-review", str(tmp_path / "review.json")]) == 0
        out = capsys.readouterr().out
        # Also when nothing changes: merging still releases the app.
        assert f"🔏 Reviewed plan `{record['digest']}`" in out
        assert "#### Release preview: what merging releases" in out
        assert f"| `app` | app | `{'a' * 64}` | 2.0 KiB |" in out
        if name == "changes":  # above the resource table, which is cut before them
            assert out.index("Release preview") < out.index("| Action | Resource | Note |")


def test_cli_render_refuses_an_altered_review_record_and_a_bad_manifest(tmp_path, capsys):
    (tmp_path / "plan.json").write_text(json.dumps(ALL_KINDS))
    record = plan_review.record(ALL_KINDS)
    record["salt"] = "0" * 32
    (tmp_path / "review.json").write_text(json.dumps(record))
    argv = ["render", "--plan-json", str(tmp_path / "plan.json")]
    assert pc.main([*argv, "--plan-review", str(tmp_path / "review.json")]) == 2
    assert "does not match its content" in capsys.readouterr().err
    # A record of another plan (left over from an earlier `make plan`) is refused too.
    (tmp_path / "review.json").write_text(json.dumps(plan_review.record(plan_doc([]))))
    assert pc.main([*argv, "--plan-review", str(tmp_path / "review.json")]) == 2
    assert "records another plan than --plan-json" in capsys.readouterr().err
    (tmp_path / "manifest.json").write_text("{")
    assert pc.main([*argv, "--manifest", str(tmp_path / "manifest.json")]) == 2
    assert "--manifest" in capsys.readouterr().err


def test_a_failed_plan_has_no_preview_or_digest(tmp_path, capsys):
    (tmp_path / "plan.txt").write_text(FAILED_TEXT)
    (tmp_path / "manifest.json").write_text(json.dumps({"commit": "c" * 40, "artifacts": {}}))
    argv = ["render", "--plan-json", str(tmp_path / "absent.json")]
    argv += ["--plan-text", str(tmp_path / "plan.txt")]
    assert pc.main([*argv, "--manifest", str(tmp_path / "manifest.json")]) == 0
    out = capsys.readouterr().out
    assert "Terraform plan failed" in out and "Release preview" not in out


# ------------------------------------------- errored plans, drift, failed conditions

# Hand-written after the shapes of `terraform show -json` in Terraform's own test data
# (internal/command/testdata/show-json/{plan-error,drift,moved-drift,conditions}) and of its
# json-format documentation: errored, resource_drift, checks, Terraform 1.2's condition_results.


def fixture(name: str, text: str | None = None) -> pc.Inputs:
    plan = json.loads((PLANS / f"{name}.json").read_text())
    plan_text = (PLANS / text).read_text() if text else None
    return pc.Inputs(plan=plan, plan_text=plan_text, run_url=RUN_URL)


NEVER_SAY_NO_PLAN = ("no plan json", "did not get as far as planning")


def test_errored_plan_without_changes_says_planning_ran_and_failed_with_the_error():
    body = pc.render(fixture("errored-no-changes", "errored-no-changes.log"))
    assert body.splitlines()[2].startswith(
        "❌ **Terraform plan failed.** Planning ran and stopped with an error"
    )
    for phrase in NEVER_SAY_NO_PLAN:
        assert phrase not in body.lower()
    block = body[: body.index("#### Failed conditions")]
    assert "Error: Resource precondition failed" in block
    assert "│ var.retention_seconds is 10" in block  # the box's inner rule stays
    assert "Retention must be at least 60 seconds." in block
    assert (
        "- resource condition `aws_sqs_queue.dlq` — Retention must be at least 60 seconds." in body
    )
    assert "resource(s) change" not in body and "no changes" not in body


@pytest.mark.parametrize(
    "plan",
    [
        # Terraform's own show-json/plan-error output: nothing but the flags.
        {"format_version": "1.2", "applyable": False, "complete": False, "errored": True},
        json.loads((PLANS / "errored-no-changes.json").read_text()),
    ],
)
def test_errored_plan_without_plan_text_points_at_the_log(plan):
    body = render(plan, run_url=RUN_URL)
    assert "❌ **Terraform plan failed.** Planning ran" in body
    assert (
        "No plan output came with the plan JSON; the error is in the log of the plan step "
        f"of [the workflow run]({RUN_URL})." in body
    )
    for phrase in NEVER_SAY_NO_PLAN:
        assert phrase not in body.lower()


def test_errored_plan_whose_text_has_no_error_block_points_at_the_log():
    text = "Planning failed. Terraform encountered an error while generating this plan.\n"
    body = render({"format_version": "1.2", "errored": True}, plan_text=text)
    assert "The plan output below names no `Error:`; the error is in the log" in body
    assert "Planning failed. Terraform encountered an error" in body  # in the plan output block


def test_errored_plan_with_changes_says_so_above_the_counts():
    body = pc.render(fixture("errored-with-changes", "errored-with-changes.log"))
    lines = body.splitlines()
    assert lines[2].startswith("❌ **Terraform plan errored.** Terraform planned the changes")
    assert lines[4].startswith("⚠️ **Terraform plan: 2 resource(s) change** — **1** to add")
    assert "**1** to destroy" in lines[4]
    caution = body.index("[!CAUTION]")
    error = body.index("Error: invalid value for name")
    assert caution < error < body.index("#### Changed resources")
    assert "`aws_sqs_queue.legacy` — removed from the configuration" in body


def test_drift_only_refresh_only_plan_is_shown():
    body = pc.render(fixture("refresh-only-drift"))
    lines = body.splitlines()
    assert lines[2].startswith("ℹ️ **Terraform plan: no changes.** Objects changed outside")
    assert (
        "ℹ️ 2 object(s) changed outside Terraform since the last apply: "
        "`aws_sns_topic.events` (deleted), `aws_sqs_queue.dlq`. This is a refresh-only plan" in body
    )
    assert "aws_s3_bucket" not in body  # a move without changes is not drift
    assert "#### Changed resources" not in body


def test_no_change_plan_with_refresh_differences_still_says_no_changes():
    plan = plan_doc(
        [rc("aws_sqs_queue.q", ["no-op"])], resource_drift=[rc("aws_sqs_queue.q", ["update"])]
    )
    assert plan["applyable"]
    body = render(plan)
    assert (
        "✅ **Terraform plan: no changes.** The infrastructure matches the configuration." in body
    )
    assert "<details><summary>ℹ️ 1 object(s) read back differently from the last apply" in body
    assert "- `aws_sqs_queue.q`" in body


def test_applyable_no_change_plan_with_passing_checks_is_one_line():
    plan = json.loads((PLANS / "failed-conditions.json").read_text())
    plan["resource_changes"][0]["change"]["actions"] = ["no-op"]
    plan["checks"] = [c for c in plan["checks"] if c["status"] == "pass"]
    assert plan["applyable"] and not plan["errored"]
    assert render(plan).splitlines() == [
        pc.MARKER,
        "",
        "✅ **Terraform plan: no changes.** The infrastructure matches the configuration.",
    ]


def test_failed_checks_preconditions_and_postconditions_are_listed_on_top():
    body = pc.render(fixture("failed-conditions"))
    section = body[body.index("#### Failed conditions") : body.index("#### Changed resources")]
    assert body.index("resource(s) change") < body.index("#### Failed conditions")
    assert (
        "❌ **4 condition(s) did not pass.** 1 more can only be evaluated during apply." in section
    )
    assert "- check block `check.health` — The health endpoint returned 503." in section
    assert (
        '- resource condition `module.queues["a"].aws_sqs_queue.work[1]` — '
        "Queue names must start with orders-." in section
    )
    assert "work[0]" not in section  # that instance passed
    assert (
        "- output precondition `output.api_url` could not be evaluated (see the error)" in section
    )
    # No instances: the object stands for itself (Checks Representation).
    assert "- resource condition `aws_s3_bucket.logs` could not be evaluated" in section
    assert "output.region" not in body


def test_failed_checks_on_a_plan_without_changes_are_not_a_green_no_changes():
    plan = json.loads((PLANS / "failed-conditions.json").read_text())
    plan["resource_changes"][0]["change"]["actions"] = ["no-op"]
    body = render(plan)
    assert body.splitlines()[2] == "⚠️ **Terraform plan: no changes.** Some conditions did not pass."
    assert "- check block `check.health`" in body


def test_terraform_1_2_condition_results_are_read():
    body = pc.render(fixture("failed-conditions-tf12"))
    assert "- precondition `aws_sqs_queue.dlq` — The queue name must end in -dlq." in body
    assert "❌ **1 condition(s) did not pass.** 1 more can only be evaluated during apply." in body
    assert "postcondition" not in body  # unknown at plan time is not a failure


def test_failed_conditions_and_drift_lists_are_bounded():
    checks = [
        {
            "address": {"kind": "check", "name": f"c{i}", "to_display": f"check.c{i}"},
            "status": "fail",
            "instances": [{"address": {"to_display": f"check.c{i}"}, "status": "fail"}],
        }
        for i in range(500)
    ]
    drift = [rc(f"aws_sqs_queue.q[{i}]", ["update"]) for i in range(500)]
    body = render(plan_doc([], checks=checks, resource_drift=drift))
    assert "… and 450 more" in body  # checks
    assert "and 480 more" in body  # drift, named inline up to 20
    assert pc.utf16_len(body) < 20_000


def test_long_condition_messages_are_clipped():
    checks = [
        {
            "address": {"kind": "check", "name": "x", "to_display": "check.x"},
            "status": "fail",
            "instances": [{"status": "fail", "problems": [{"message": "y" * 5000}]}],
        }
    ]
    body = render(plan_doc([], checks=checks))
    assert "- check block `check.x` — " + "y" * 299 + "…" in body


def test_incomplete_plan_says_to_plan_again():
    body = render(plan_doc([rc("aws_sqs_queue.q", ["create"])], complete=False))
    assert "This plan is incomplete: Terraform deferred some changes" in body
    assert "incomplete" not in render(plan_doc([rc("aws_sqs_queue.q", ["create"])]))


def test_condition_messages_and_drift_addresses_cannot_inject_markdown():
    checks = [
        {
            "address": {"kind": "check", "name": "x", "to_display": f"check.{HOSTILE}"},
            "status": "fail",
            "instances": [{"status": "fail", "problems": [{"message": HOSTILE}]}],
        }
    ]
    plan = plan_doc(
        [], checks=checks, resource_drift=[rc(f'aws_sqs_queue.q["{HOSTILE}"]', ["delete"])]
    )
    visible = outside_code_spans(render(plan).replace(pc.MARKER, ""))
    for needle in ("<!--", "@octocat", "<img", "](https://evil", "#1"):
        assert needle not in visible, needle


def test_cli_renders_an_errored_plan_json_with_its_log(tmp_path, capsys):
    argv = [
        "render",
        "--plan-json",
        str(PLANS / "errored-no-changes.json"),
        "--plan-text",
        str(PLANS / "errored-no-changes.log"),
    ]
    assert pc.main(argv) == 0
    out = capsys.readouterr().out
    assert "Planning ran and stopped with an error" in out
    assert "Error: Resource precondition failed" in out


# ---------------------------------------------------------- real terraform plans

# Produced by tests/fixtures/plans/generate.py: terraform 1.11 + AWS provider 5.100.0
# against a moto server. They pin Terraform's real JSON shape, not our idea of it.


def real(name: str) -> pc.Inputs:
    raw = (PLANS / f"real-{name}.json").read_text()
    plan = json.loads(raw) if raw.strip() else None
    return pc.Inputs(plan=plan, plan_text=(PLANS / f"real-{name}.txt").read_text(), run_url=RUN_URL)


def test_real_initial_create():
    body = pc.render(real("create"))
    assert "**4** to add, **0** to change, **0** to destroy, **0** to replace" in body
    assert "[!CAUTION]" not in body
    assert "Plan: 4 to add, 0 to change, 0 to destroy." in body


def test_real_no_changes():
    assert (
        pc.render(real("no-changes"))
        .splitlines()[2]
        .startswith("✅ **Terraform plan: no changes.**")
    )


def test_real_destroy():
    body = pc.render(real("destroy"))
    assert "**1** to destroy" in body
    assert "> - `aws_sns_topic.events` — removed from the configuration" in body


def test_real_replace():
    body = pc.render(real("replace"))
    assert "**1** to replace" in body and "**0** to destroy" in body
    assert "> - `aws_sqs_queue.dlq` — an argument forces replacement; forced by `name`" in body


def test_real_update_move_import_create():
    summary = pc.parse_plan(real("mixed").plan)
    counts = {
        cat: summary.count(cat) for cat in ("add", "change", "destroy", "replace", "import", "move")
    }
    assert counts == {"add": 1, "change": 2, "destroy": 0, "replace": 0, "import": 1, "move": 1}
    body = pc.render(real("mixed"))
    assert "moved from `aws_s3_bucket.artifacts`" in body
    assert "Preparing import" not in body


def test_real_failed_plan():
    inputs = real("failed")
    assert inputs.plan is None
    body = pc.render(inputs)
    assert "❌ **Terraform plan failed.**" in body
    assert (
        "Error: expected message_retention_seconds to be in the range (60 - 1209600), got 10"
        in body
    )


# Real plans of this repository's own terraform/ against the embedded AWS of release-tooling local,
# made by tests/fixtures/plans/generate_stack.py.


def test_stack_initial_create_is_all_adds_and_fits():
    inputs = real_stack("create")
    summary = pc.parse_plan(inputs.plan)
    assert summary.changes and {c.primary for c in summary.changes} == {"add"}
    body = pc.render(inputs)
    assert pc.utf16_len(body) < pc.GITHUB_BODY_LIMIT
    assert f"**{len(summary.changes)}** to add, **0** to change, **0** to destroy" in body
    assert "| ➕ add | `aws_lambda_function.app` |" in body
    assert "| ➕ add | `aws_sfn_state_machine.release` |" in body
    assert "[!CAUTION]" not in body


def test_stack_no_changes_after_apply_says_so_and_keeps_refresh_noise_collapsed():
    inputs = real_stack("no-changes")
    resources = inputs.plan["resource_changes"]
    assert resources and {tuple(r["change"]["actions"]) for r in resources} == {("no-op",)}
    # Reading back after apply fills in tags = {}, inline policies, ...: Terraform's own UI
    # shows none of it for a plan without changes; the comment lists it collapsed.
    assert len(inputs.plan["resource_drift"]) == 35
    body = pc.render(inputs)
    lines = body.splitlines()
    assert lines[:3] == [
        pc.MARKER,
        "",
        "✅ **Terraform plan: no changes.** The infrastructure matches the configuration.",
    ]
    assert lines[4].startswith("<details><summary>ℹ️ 35 object(s) read back differently")
    assert "- `aws_iam_role.app`" in body
    assert lines[-1] == f"[Workflow run]({RUN_URL})"


def test_stack_destroy_names_the_subscription():
    body = pc.render(real_stack("destroy"))
    assert "**1** to destroy" in body
    assert "> - `aws_sns_topic_subscription.email[0]` — count index no longer exists" in body


def test_stack_replace_by_request():
    body = pc.render(real_stack("replace"))
    assert "**1** to replace" in body and "**0** to destroy" in body
    assert "> - `aws_sns_topic_subscription.email[0]` — replacement requested (-replace)" in body


def real_stack(name: str) -> pc.Inputs:
    plan = json.loads((PLANS / f"stack-{name}.json").read_text())
    text = (PLANS / f"stack-{name}.txt").read_text()
    return pc.Inputs(plan=plan, plan_text=text, run_url=RUN_URL)


# ------------------------------------------------------------ Markdown injection


def outside_code_spans(body: str) -> str:
    """The body with fenced blocks and code spans removed (CommonMark: a span closes at a
    backtick run of exactly its opening length)."""
    body = re.sub(r"(?ms)^(`{3,}|~{3,}).*?^\1[`~]*$", "", body)
    return re.sub(r"(?<!`)(`+)(?!`).*?(?<!`)\1(?!`)", "", body, flags=re.S)


@pytest.mark.parametrize(
    "value",
    ["plain", "a`b", "a``b<!--", "```", "` x `", "x`", 'k["``|``"]', "a\nb"],
)
def test_code_spans_cannot_be_closed_by_their_content(value):
    span = pc.code(value)
    ticks = re.match(r"`+", span).group(0)
    assert span.endswith(ticks)
    inner = span[len(ticks) : -len(ticks)]
    assert len(ticks) not in {len(run) for run in re.findall(r"`+", inner)}
    assert "\n" not in span


HOSTILE = "x``<!-- @octocat #1 [link](https://evil.example) <img src=x>"


def test_plan_values_in_the_comment_cannot_inject_markdown_or_mentions():
    plan = plan_doc(
        [
            rc(f'aws_sns_topic.t["{HOSTILE}"]', ["delete", "create"], replace_paths=[[HOSTILE]]),
            rc("aws_sqs_queue.q", ["no-op"], importing={"id": HOSTILE}),
            rc("aws_s3_bucket.b", ["update"], previous_address=f"aws_s3_bucket.{HOSTILE}"),
        ],
        output_changes={HOSTILE: {"actions": ["create"]}},
    )
    body = render(plan, plan_text="  # plan\n")
    visible = outside_code_spans(body.replace(pc.MARKER, ""))
    for needle in ("<!--", "@octocat", "<img", "](https://evil", "#1"):
        assert needle not in visible, needle
    # The table still has exactly three cells per row.
    rows = [line for line in body.splitlines() if line.startswith("| ") and "aws_" in line]
    assert len(rows) == 3
    assert all(len(re.findall(r"(?<!\\)\|", outside_code_spans(r))) == 4 for r in rows)


def test_test_messages_and_check_names_render_as_text():
    junit = (
        '<testsuites><testsuite><testcase classname="t" name="x">'
        '<failure message="&lt;!-- hide @octocat fixes #12 **bold**"/></testcase>'
        "</testsuite></testsuites>"
    )
    section = pc.tests_section(pc.parse_junit(junit))
    assert "<!--" not in section and "@octocat" not in section and "#12" not in section
    assert "&lt;\\!-- hide @\u2060octocat fixes \\#\u206012 \\*\\*bold\\*\\*" in section
    checkov = pc.parse_checkov(
        {
            "results": {
                "failed_checks": [
                    {"check_id": "CKV_X", "check_name": "a | b <!-- @team", "resource": "r"}
                ]
            }
        }
    )
    section = pc.checkov_section(checkov)
    row = next(line for line in section.splitlines() if "CKV_X" in line)
    assert "a \\| b &lt;\\!-- @\u2060team" in row
    assert len(re.findall(r"(?<!\\)\|", row)) == 4


def test_run_url_cannot_break_out_of_the_link(tmp_path, capsys):
    (tmp_path / "p.json").write_text(json.dumps(plan_doc([])))
    argv = ["render", "--plan-json", str(tmp_path / "p.json")]
    assert pc.main([*argv, "--run-url", "https://x/)<!--"]) == 2
    assert "--run-url must be an http(s) URL" in capsys.readouterr().err


def test_job_summary_fence_outlasts_the_text(tmp_path, capsys):
    log = tmp_path / "plan.txt"
    log.write_text("Plan: 1 to add\n~~~~\n## not a heading\n~~~~~~~ text\n<!-- x\n")
    assert pc.main(["summary", "--title", "### Terraform plan", "--file", str(log)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("### Terraform plan\n~~~~~~~~text\n")
    assert out.rstrip("\n").endswith("\n~~~~~~~~")
    assert out.count("\n~~~~~~~~") == 2


def test_job_summary_is_cut_and_says_so(tmp_path, capsys):
    log = tmp_path / "plan.txt"
    log.write_text("a" * 50 + "\n" + "b" * 50)
    assert pc.main(["summary", "--title", "T", "--file", str(log), "--max-bytes", "20"]) == 0
    out = capsys.readouterr().out
    assert "a" * 20 + "\n~~~" in out and "b" not in out.split("_Cut")[0]
    assert "_Cut at 20 bytes" in out
    assert pc.main(["summary", "--title", "T", "--file", str(log), "--tail-lines", "1"]) == 0
    out = capsys.readouterr().out
    assert "a" not in out.split("text\n", 1)[1] and "b" * 50 in out
