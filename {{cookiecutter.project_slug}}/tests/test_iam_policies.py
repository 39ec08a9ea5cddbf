"""The IAM policies both Terraform roots render: CI roles, boundary, key policy, trust policies.

terraform/bootstrap is applied to a moto server on 127.0.0.1 (an override file points the provider
there; no AWS account, no network), so every policy it writes is read back fully rendered from
`terraform show -json`. terraform/ is planned against the same server, which gives the names it
creates (the approval notifier only with manual_approval; the bootstrap grants it either way, so a
project can switch approval on without re-running the bootstrap). Both roots take their names from
terraform/names, and these tests hold the bootstrap's grants to exactly those names.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "{{ cookiecutter.project_slug }}"
REGION = "{{ cookiecutter.aws_region }}"
ACCOUNT = "123456789012"  # moto's account
SERVICES = (
    "iam",
    "kms",
    "s3",
    "sts",
    "lambda",
    "logs",
    "sns",
    "sfn",
    "events",
    "codepipeline",
    "codedeploy",
    "cloudwatch",
)

OVERRIDE = """
provider "aws" {
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  s3_use_path_style           = true
  endpoints {
ENDPOINTS
  }
}
"""
LOCAL_BACKEND = 'terraform {\n  backend "local" {}\n}\n'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def statements(document: str | dict) -> list[dict]:
    doc = json.loads(document) if isinstance(document, str) else document
    return as_list(doc["Statement"])


@pytest.fixture(scope="module")
def renders(tmp_path_factory) -> dict:
    """Both roots rendered as generated, then again with a second app function, `worker`, declared
    as the README's "Adding a function" says (its key in terraform/names/main.tf; its zip beside
    the app's). The second render re-applies the bootstrap on the same endpoint: only its grants
    change, so it takes seconds instead of the first apply's S3 lifecycle and KMS waits."""
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform is not on PATH (install Terraform >= 1.10 to render the policies)")
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # moto keeps one in-process state for every server in this pytest process: start empty, or
    # what another test module created (e.g. the account's OIDC provider) leaks in.
    reset = f"{endpoint}/moto-api/reset"  # the loopback server started above: S310 does not apply
    urllib.request.urlopen(urllib.request.Request(reset, method="POST"), timeout=30)  # noqa: S310
    work = tmp_path_factory.mktemp("roots")
    shutil.copytree(
        ROOT / "terraform",
        work / "terraform",
        ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", "*_override.tf"),
    )
    shutil.copy(ROOT / "state_machine.asl.json", work / "state_machine.asl.json")
    endpoints = "\n".join(f'    {name} = "{endpoint}"' for name in SERVICES)
    override = OVERRIDE.replace("ENDPOINTS", endpoints)
    for root in ("terraform", "terraform/bootstrap"):
        (work / root / "test_override.tf").write_text(override)
    (work / "terraform" / "backend_override.tf").write_text(LOCAL_BACKEND)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TF_VAR_"))}
    env.update({"TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1", "AWS_REGION": REGION})

    def run(cwd: Path, *args: str) -> str:
        proc = subprocess.run(
            [terraform, *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert proc.returncode == 0, f"terraform {args[0]} failed:\n{proc.stdout}\n{proc.stderr}"
        return proc.stdout

    boot, main = work / "terraform" / "bootstrap", work / "terraform"

    def apply_and_plan() -> dict:
        run(boot, "apply", "-auto-approve", "-input=false", "-no-color")
        state = json.loads(run(boot, "show", "-json"))
        run(main, "plan", "-input=false", "-no-color", "-out=main.tfplan")
        return read_render(state, json.loads(run(main, "show", "-json", "main.tfplan")))

    init = ["init", "-input=false", "-no-color"]
    if os.environ.get("TF_PROVIDER_MIRROR"):
        init.append(f"-plugin-dir={os.environ['TF_PROVIDER_MIRROR']}")
    try:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "release_tooling",
                "package",
                "build",
                "--out",
                str(work / "build"),
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
        run(boot, *init, "-backend=false")
        run(main, *init, "-reconfigure")
        as_generated = apply_and_plan()
        names = main / "names" / "main.tf"
        text = names.read_text(encoding="utf-8")
        assert text.count('app_function_keys = ["app"]') == 1
        declared = 'app_function_keys = ["app", "worker"]'
        names.write_text(text.replace('app_function_keys = ["app"]', declared), encoding="utf-8")
        # The stack creates it from its own zip, as from lambdas/<key>/.
        shutil.copy(work / "build" / "app.zip", work / "build" / "worker.zip")
        with_worker = apply_and_plan()
    finally:
        server.stop()
    return {"as_generated": as_generated, "with_worker": with_worker}


@pytest.fixture(scope="module")
def rendered(renders) -> dict:
    return renders["as_generated"]


@pytest.fixture(scope="module")
def rendered_with_worker(renders) -> dict:
    return renders["with_worker"]


def read_render(state: dict, plan: dict) -> dict:
    """The bootstrap's applied policies and resources, and the main stack's planned resources."""
    resources = {}

    def walk(module: dict) -> None:
        for res in module.get("resources", []):
            resources[res["address"]] = res["values"]
        for child in module.get("child_modules", []):
            walk(child)

    walk(state["values"]["root_module"])
    policies = {
        "plan": resources["aws_iam_role_policy.plan"]["policy"],
        "apply": resources["aws_iam_role_policy.apply"]["policy"],
        "boundary": resources["aws_iam_policy.workload_boundary"]["policy"],
        "plan-trust": resources["aws_iam_role.plan"]["assume_role_policy"],
        "apply-trust": resources["aws_iam_role.apply"]["assume_role_policy"],
        "state-key": resources["aws_kms_key.state"]["policy"],
        "state-bucket": resources["aws_s3_bucket_policy.state"]["policy"],
    }
    if APPROVAL:
        policies["approve"] = resources["aws_iam_role_policy.approve[0]"]["policy"]
    changes = {
        rc["address"]: rc["change"]["after"]
        for rc in plan["resource_changes"]
        if rc["mode"] == "managed"
    }
    return {
        "policies": {k: json.loads(v) for k, v in policies.items()},
        "bootstrap": resources,
        "main": changes,
    }


def allows(policy: dict, action: str, resource: str) -> list[dict]:
    return [
        s
        for s in statements(policy)
        if s["Effect"] == "Allow"
        and action in as_list(s["Action"])
        and resource in as_list(s["Resource"])
    ]


# manual_approval=yes: the bootstrap also makes the Approve release workflow's role.
APPROVAL = (ROOT / "lambdas" / "approval_notifier").is_dir()
CI_ROLE_NAMES = ("plan", "apply", "approve") if APPROVAL else ("plan", "apply")


def bucket_arn() -> str:
    return f"arn:aws:s3:::{PROJECT}-artifacts-{ACCOUNT}"


def sm_arn() -> str:
    return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{PROJECT}-release"


# --------------------------------------------------------------------------- 1. release upload


@pytest.mark.parametrize("key", ["releases/*", "pipeline/source.zip"])
@pytest.mark.parametrize("action", ["s3:PutObject", "s3:GetObject"])
def test_apply_role_uploads_releases_on_exact_objects(rendered, key, action):
    assert allows(rendered["policies"]["apply"], action, f"{bucket_arn()}/{key}")


def test_apply_role_follows_the_release(rendered):
    apply = rendered["policies"]["apply"]
    assert allows(apply, "states:ListExecutions", sm_arn())
    executions = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{PROJECT}-release:*"
    for action in ("states:DescribeExecution", "states:GetExecutionHistory"):
        assert allows(apply, action, executions)
    pipeline = f"arn:aws:codepipeline:{REGION}:{ACCOUNT}:{PROJECT}-release"
    for action in ("codepipeline:ListPipelineExecutions", "codepipeline:ListActionExecutions"):
        assert allows(apply, action, pipeline)


def test_plan_role_reads_the_release_history_for_the_alias_drift_check(rendered):
    plan = rendered["policies"]["plan"]
    assert allows(plan, "states:ListExecutions", sm_arn())
    executions = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{PROJECT}-release:*"
    assert allows(plan, "states:DescribeExecution", executions)
    function = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{PROJECT}-app"
    for action in ("lambda:GetAlias", "lambda:ListVersionsByFunction"):
        assert allows(plan, action, function)
    # Reading only: never an answer to a waiting release.
    assert not [s for s in statements(plan) if "states:SendTaskSuccess" in as_list(s["Action"])]


def test_plan_role_writes_nothing(rendered):
    for statement in statements(rendered["policies"]["plan"]):
        actions = as_list(statement["Action"])
        assert not [a for a in actions if a.startswith("s3:") and ("Put" in a or "Delete" in a)], (
            statement
        )
        assert "kms:Encrypt" not in actions and "kms:GenerateDataKey" not in actions, statement


# --------------------------------------------------------------------------- 2. exact names


def granted_resources(policy: dict) -> set[str]:
    return {r for s in statements(policy) if s["Effect"] == "Allow" for r in as_list(s["Resource"])}


@pytest.mark.skipif(not APPROVAL, reason="made without manual_approval")
def test_approve_role_only_reads_this_pipelines_executions_and_answers_tokens(rendered):
    approve = rendered["policies"]["approve"]
    executions = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{PROJECT}-release:*"
    for action in ("states:DescribeExecution", "states:GetExecutionHistory"):
        assert allows(approve, action, executions)
    granted = {
        (action, resource)
        for statement in statements(approve)
        for action in as_list(statement["Action"])
        for resource in as_list(statement["Resource"])
    }
    assert granted == {
        ("states:DescribeExecution", executions),
        ("states:GetExecutionHistory", executions),
        # No resource type exists for these (Service Authorization Reference, Step Functions).
        ("states:ListStateMachines", "*"),
        ("states:SendTaskSuccess", "*"),
        ("states:SendTaskFailure", "*"),
    }
    assert all(s["Effect"] == "Allow" for s in statements(approve))


@pytest.mark.parametrize("name", ["plan", "apply", "boundary", *(["approve"] if APPROVAL else [])])
def test_no_project_name_prefix_wildcards(rendered, name):
    loose = [
        r
        for r in granted_resources(rendered["policies"][name])
        if f"{PROJECT}-*" in r or r.endswith(f"{PROJECT}*")
    ]
    assert loose == [], f"{name} grants by name prefix (matches other projects): {loose}"


@pytest.mark.parametrize("stack", ["rendered", "rendered_with_worker"])
def test_bootstrap_grants_exactly_the_functions_and_roles_the_stack_creates(request, stack):
    rendered = request.getfixturevalue(stack)
    main = rendered["main"]
    functions = {
        v["function_name"] for a, v in main.items() if a.startswith("aws_lambda_function.")
    }
    roles = {v["name"] for a, v in main.items() if a.startswith("aws_iam_role.")}
    log_groups = {v["name"] for a, v in main.items() if a.startswith("aws_cloudwatch_log_group.")}
    # The approval notifier exists only with manual approval; the bootstrap always grants it.
    notifier = f"{PROJECT}-approval-notifier"
    functions |= {notifier}
    roles |= {f"{notifier}-role"}
    log_groups |= {f"/aws/lambda/{notifier}"}
    apply = granted_resources(rendered["policies"]["apply"])
    fn_prefix = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:"
    role_prefix = f"arn:aws:iam::{ACCOUNT}:role/"
    lg_prefix = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:"
    assert {
        r[len(fn_prefix) :]
        for r in apply
        if r.startswith(fn_prefix) and ":" not in r[len(fn_prefix) :]
    } == functions
    ci_roles = {f"{PROJECT}-github-{name}" for name in CI_ROLE_NAMES}
    assert {r[len(role_prefix) :] for r in apply if r.startswith(role_prefix)} - ci_roles == roles
    assert {
        r[len(lg_prefix) :] for r in apply if r.startswith(lg_prefix) and not r.endswith(":*")
    } == log_groups
    singles = {
        f"arn:aws:s3:::{main['aws_s3_bucket.artifacts']['bucket']}",
        f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{main['aws_sfn_state_machine.release']['name']}",
        f"arn:aws:codepipeline:{REGION}:{ACCOUNT}:{main['aws_codepipeline.release']['name']}",
        f"arn:aws:sns:{REGION}:{ACCOUNT}:{main['aws_sns_topic.release_events']['name']}",
        f"arn:aws:kms:{REGION}:{ACCOUNT}:{main['aws_kms_alias.pipeline']['name']}",
    }
    for address, values in main.items():
        if address.startswith("aws_cloudwatch_event_rule."):
            singles.add(f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{values['name']}")
        if address.startswith("aws_cloudwatch_metric_alarm."):
            singles.add(f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{values['alarm_name']}")
    assert singles <= apply, singles - apply


def test_ci_roles_and_boundary_are_never_editable(rendered):
    apply = rendered["policies"]["apply"]
    boundary = rendered["bootstrap"]["aws_iam_policy.workload_boundary"]["arn"]
    ci = {
        values["arn"]
        for address, values in rendered["bootstrap"].items()
        if address.startswith("aws_iam_role.")
    }
    assert len(ci) == len(CI_ROLE_NAMES)
    denies = [
        s for s in statements(apply) if s["Effect"] == "Deny" and "iam:*" in as_list(s["Action"])
    ]
    assert denies and ci | {boundary} <= set(as_list(denies[0]["Resource"]))
    for statement in statements(apply):
        if statement["Effect"] == "Allow" and any(
            a.startswith("iam:") for a in as_list(statement["Action"])
        ):
            assert not (ci | {boundary}) & set(as_list(statement["Resource"])), statement


# --------------------------------------------------------------------------- 3. KMS


def test_no_tag_conditioned_kms_and_create_key_is_constrained(rendered):
    for name in ("plan", "apply", "boundary"):
        for statement in statements(rendered["policies"][name]):
            for operator, keys in statement.get("Condition", {}).items():
                tagged = [k for k in keys if k.startswith("aws:ResourceTag/")]
                # Only ever "this resource has no such tag yet" (a key being created): no grant
                # depends on a tag someone could set.
                assert not tagged or (operator == "Null" and keys[tagged[0]] == "true"), (
                    f"{name} grants by resource tag: {statement}"
                )
    create = [
        s
        for s in statements(rendered["policies"]["apply"])
        if "kms:CreateKey" in as_list(s["Action"])
    ]
    assert len(create) == 1 and as_list(create[0]["Action"]) == ["kms:CreateKey"]
    # ...IfExists: an omitted parameter takes exactly the allowed default (CreateKey API Reference).
    assert create[0]["Condition"]["BoolIfExists"] == {"kms:BypassPolicyLockoutSafetyCheck": "false"}
    assert create[0]["Condition"]["StringEqualsIfExists"] == {
        "kms:KeySpec": "SYMMETRIC_DEFAULT",
        "kms:KeyUsage": "ENCRYPT_DECRYPT",
        "kms:KeyOrigin": "AWS_KMS",
    }
    for statement in statements(rendered["policies"]["apply"]):
        if (
            any(a.startswith("kms:") for a in as_list(statement["Action"]))
            and statement["Resource"] == "*"
        ):
            kms = {a for a in as_list(statement["Action"]) if a.startswith("kms:")}
            assert kms <= {"kms:CreateKey", "kms:ListAliases"}, statement


def test_state_key_only_through_the_state_bucket(rendered):
    key = rendered["bootstrap"]["aws_kms_key.state"]["arn"]
    for name in ("plan", "apply"):
        uses = [s for s in statements(rendered["policies"][name]) if key in as_list(s["Resource"])]
        assert uses
        for statement in uses:
            condition = statement["Condition"]["StringEquals"]
            assert condition["kms:ViaService"] == f"s3.{REGION}.amazonaws.com"
            assert condition["kms:EncryptionContext:aws:s3:arn"].startswith(
                f"arn:aws:s3:::{PROJECT}-tfstate-"
            )


def key_policy(rendered) -> list[dict]:
    return statements(rendered["main"]["aws_kms_key.pipeline"]["policy"])


def test_pipeline_key_policy_names_ci_roles_exactly(rendered):
    apply_arn = f"arn:aws:iam::{ACCOUNT}:role/{PROJECT}-github-apply"
    plan_arn = f"arn:aws:iam::{ACCOUNT}:role/{PROJECT}-github-plan"
    by_sid = {s["Sid"]: s for s in key_policy(rendered)}
    grant = by_sid["CiApplyRoleGrantsOnlyToAwsServices"]
    assert grant["Principal"]["AWS"] == apply_arn
    assert grant["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}
    decrypt = by_sid["CiPlanRoleReadsFunctionEnvironments"]  # 6. plan decrypts Lambda env
    assert decrypt["Principal"]["AWS"] == plan_arn and decrypt["Action"] == "kms:Decrypt"
    assert decrypt["Condition"] == {
        "StringEquals": {"kms:ViaService": f"lambda.{REGION}.amazonaws.com"}
    }
    upload = by_sid["CiApplyRoleUsesKeyThroughS3AndLambda"]
    assert f"s3.{REGION}.amazonaws.com" in upload["Condition"]["StringEquals"]["kms:ViaService"]


# ------------------------------------------------------------------ 4, 5, 8, 10: main stack


def test_reserved_concurrency_is_opt_in(rendered):
    for address, values in rendered["main"].items():
        if address.startswith("aws_lambda_function."):
            assert values["reserved_concurrent_executions"] in (None, -1), address


def test_boundary_allows_codepipeline_acl_minimum(rendered):
    boundary = rendered["policies"]["boundary"]
    assert allows(boundary, "s3:GetBucketAcl", bucket_arn())
    assert allows(boundary, "s3:PutObjectAcl", f"{bucket_arn()}/*")


@pytest.mark.parametrize("role", ["codepipeline", "codedeploy"])
def test_service_trust_has_only_documented_conditions(rendered, role):
    (statement,) = statements(rendered["main"][f"aws_iam_role.{role}"]["assume_role_policy"])
    assert "Condition" not in statement


def test_pipeline_trigger_pins_the_uploaded_object_version(rendered):
    target = rendered["main"]["aws_cloudwatch_event_target.artifact_uploaded"]
    (transformer,) = target["input_transformer"]
    assert transformer["input_paths"] == {"revisionValue": "$.detail.object.version-id"}
    # Literally "<revisionValue>": EventBridge substitutes only the unescaped placeholder, and
    # jsonencode() would write \u003crevisionValue\u003e (json.loads below cannot tell).
    assert '"revisionValue": "<revisionValue>"' in transformer["input_template"]
    template = json.loads(transformer["input_template"])
    source = rendered["main"]["aws_codepipeline.release"]["stage"][0]["action"][0]["name"]
    assert template == {
        "sourceRevisions": [
            {
                "actionName": source,
                "revisionType": "S3_OBJECT_VERSION_ID",
                "revisionValue": "<revisionValue>",
            }
        ]
    }


def test_state_machine_logs_no_execution_data(rendered):
    (logging,) = rendered["main"]["aws_sfn_state_machine.release"]["logging_configuration"]
    assert logging["include_execution_data"] is False
    assert logging["level"] in ("ERROR", "FATAL")


# --------------------------------------------------------------------------- 7, 9: backend and lock


def load_wrapper():
    from release_tooling import terraform

    return terraform


def test_backend_uses_the_state_key():
    wrapper = load_wrapper()
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    args = wrapper.backend_config(
        {"TF_STATE_BUCKET": "b", "AWS_REGION": REGION, "TF_STATE_KMS_KEY_ARN": key}
    )
    assert f"-backend-config=kms_key_id={key}" in args and "-backend-config=encrypt=true" in args
    with pytest.raises(wrapper.WrapperError, match="TF_STATE_KMS_KEY_ARN is not set"):
        wrapper.backend_config({"TF_STATE_BUCKET": "b", "AWS_REGION": REGION})
    with pytest.raises(wrapper.WrapperError, match="not a KMS key ARN"):
        wrapper.backend_config(
            {"TF_STATE_BUCKET": "b", "AWS_REGION": REGION, "TF_STATE_KMS_KEY_ARN": "alias/x"}
        )


def make_dry_run(*args: str) -> str:
    proc = subprocess.run(
        ["make", "-n", *args], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return proc.stdout


def test_pull_request_plans_and_drift_do_not_take_the_lock():
    assert "-lock=false" in make_dry_run("plan", "GITHUB_EVENT_NAME=pull_request")
    assert "-lock=false" in make_dry_run("drift")
    assert "-lock=false" not in make_dry_run("plan", "GITHUB_EVENT_NAME=push")


def test_a_second_app_function_gets_its_own_groups_alarms_and_exact_grants(rendered_with_worker):
    """The worker gets its own deployment groups and alarms, and the bootstrap grants the apply
    role exactly those (the main stack's own policies name them by resource attribute, known
    only once applied: the rehearsal exercises them under IAM enforcement)."""
    main = rendered_with_worker["main"]
    groups = {
        v["deployment_group_name"]
        for a, v in main.items()
        if a.startswith("aws_codedeploy_deployment_group.")
    }
    assert groups == {"staging", "production", "worker-staging", "worker-production"}
    alarms = {
        v["alarm_name"] for a, v in main.items() if a.startswith("aws_cloudwatch_metric_alarm.")
    }
    assert alarms == {
        f"{PROJECT}-{key}-errors-{alias}"
        for key in ("app", "worker")
        for alias in ("staging", "production")
    }
    apply = rendered_with_worker["policies"]["apply"]
    codedeploy = f"arn:aws:codedeploy:{REGION}:{ACCOUNT}:deploymentgroup:{PROJECT}-app"
    for group in sorted(groups):
        assert allows(apply, "codedeploy:GetDeploymentGroup", f"{codedeploy}/{group}"), group
    for alarm in sorted(alarms):
        assert allows(
            apply,
            "cloudwatch:DescribeAlarms",
            f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{alarm}",
        ), alarm
    worker = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{PROJECT}-worker"
    assert allows(apply, "lambda:CreateFunction", worker)
    assert allows(apply, "lambda:CreateAlias", f"{worker}:*")
