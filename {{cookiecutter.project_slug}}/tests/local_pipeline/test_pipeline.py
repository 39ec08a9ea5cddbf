"""The whole pipeline on the embedded endpoint: one `local.py up` (session), many releases.

The project is copied to a scratch directory first, so scenarios can change lambdas/app freely and
the working tree (and any environment the developer has up) stays untouched. Releases of the same
code get distinct ids with --commit; the broken-app and two-release scenarios change the code.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import sys
import time

import pytest
from release_tooling.rehearsal import ROOT, commit_id, tooling_module

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("terraform") is None,
        reason="terraform is not installed (needed by local.py up)",
    ),
]


def aliases(project) -> dict:
    return project.status()["aliases"]


def test_release_before_up_and_up_twice_give_clear_messages(project):
    twice = project.local("up")
    assert twice.returncode == 2
    assert "already up" in twice.stdout and "Traceback" not in twice.stdout + twice.stderr


def test_plan_right_after_up_reports_no_changes(project):
    """The endpoint reads back exactly what Terraform applied (fidelity), so a second plan of the
    same terraform/ is empty. Placed before the releases; it holds after them too, since Terraform
    ignores what releases change (alias versions, app code) by design."""
    plan = project.local("plan", timeout=180)

    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "No changes." in plan.stdout
    plan_dir = project.path / ".local" / "plan"
    assert (plan_dir / "plan.exitcode").read_text().strip() == "0"
    shown = json.loads((plan_dir / "plan.json").read_text())
    changed = [
        rc["address"]
        for rc in shown["resource_changes"]
        if rc["change"]["actions"] not in (["no-op"], ["read"])
    ]
    assert changed == []
    state = json.loads((project.path / ".local" / "terraform.tfstate").read_text())
    applied = sum(len(r["instances"]) for r in state["resources"] if r["mode"] == "managed")
    assert len(shown["resource_changes"]) == applied  # every applied resource was compared


def test_live_plans_of_the_stack_render_as_the_pull_request_comment(project):
    """Plans made now, of this project's terraform/, rendered the way a pull request shows them."""

    def plan_comment(*plan_args: str) -> tuple[int, str]:
        plan = project.local("plan", *plan_args, timeout=180)
        assert plan.returncode in (0, 2), plan.stdout + plan.stderr
        plan_dir = project.path / ".local" / "plan"
        rendered = subprocess.run(
            [sys.executable, "-m", "release_tooling", "plan-comment", "render"]
            + ["--plan-json", str(plan_dir / "plan.json")]
            + ["--plan-text", str(plan_dir / "plan.txt")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert rendered.returncode == 0, rendered.stderr
        return plan.returncode, rendered.stdout

    code, unchanged = plan_comment()
    assert code == 0
    assert "**Terraform plan: no changes.**" in unchanged
    # A new address adds the email subscription, or replaces the one a project already has.
    code, changed = plan_comment("--var", "notification_email=release-watch@example.org")
    assert code == 2
    assert "aws_sns_topic_subscription.email" in changed
    assert "**Terraform plan: no changes.**" not in changed


def test_first_release_reaches_production_and_streams_progress(project, released):
    out = released.stdout
    for state in (
        "ValidateArtifact",
        "DeployStaging",
        "RunSmokeTests",
        "DeployProduction",
        "ReleaseSucceeded",
    ):
        assert f"-> {state}" in out and f"<- {state} (" in out
    assert "SUCCEEDED" in out and "wall time" in out
    assert aliases(project)["production"] == aliases(project)["staging"] != "$LATEST"


def test_the_release_runs_through_the_pipeline_named_as_aws_names_it(project, released):
    """Nothing local starts the execution: the upload's S3 event goes through the EventBridge rule
    to CodePipeline, whose Step Functions action names it <ExecutionNamePrefix>-<action id>."""
    status = project.status()
    assert status["iam"] == "enforce" and status["endpoint"].startswith("http://127.0.0.1:")
    execution = project.execution(commit_id("first"))
    assert re.fullmatch(r"release-[0-9a-f-]{36}", execution["name"]), execution["name"]
    runs = [r for r in status["pipeline_executions"] if r["commit"] == commit_id("first")]
    assert runs and runs[-1]["status"] == "Succeeded"
    # Found by the follower release-wait uses, from the pipeline's execution input (a later
    # scenario may re-run this commit, so the name is checked for its form, not compared).
    found = re.search(
        r"^Found execution arn:aws:states:\S+:execution:\S+:(\S+)$", released.stdout, re.M
    )
    assert found and re.fullmatch(r"release-[0-9a-f-]{36}", found.group(1)), released.stdout


def test_status_shows_the_newest_release_from_commit_to_execution(project, released):
    """#13's provenance locally: the same chain release-wait prints in the deploy job (for a
    release that failed, what its last finished state recorded)."""
    chain = project.status()["provenance"]
    newest = project.status()["executions"][0]
    assert any(line.startswith("- commit `") for line in chain), chain
    assert any(line.startswith("- artifact `app.zip` (") and "sha256 `" in line for line in chain)
    assert any(
        line.startswith("- production: `") and ":production` version " in line for line in chain
    ), chain
    assert chain[-1].startswith("- execution `arn:aws:states:") and newest["name"] in chain[-1]


def test_the_deployed_state_machine_carries_the_release_budget(project):
    sfn = project.admin_client("stepfunctions")
    outputs = project.outputs()
    definition = json.loads(
        sfn.describe_state_machine(stateMachineArn=outputs["state_machine_arn"])["definition"]
    )
    budget = outputs["release_budget"]
    assert definition["TimeoutSeconds"] == budget["state_machine_timeout_seconds"] != 3600
    # Each stage's poll budget comes from its own strategy (staging_deployment_strategy, AllAtOnce
    # by default, and deployment_strategy).
    for state, stage in (("CheckStaging", "staging"), ("CheckProduction", "production")):
        payload = definition["States"][state]["Parameters"]["Payload"]
        assert payload["timeout_seconds"] == budget["deployment_timeout_seconds"][stage] != 3600
    if "ApproveProduction" in definition["States"]:
        approval = definition["States"]["ApproveProduction"]["TimeoutSeconds"]
        assert approval == budget["approval_timeout_seconds"]


def test_the_rendered_policies_pass_parliament_and_cloudsplaining(project):
    """Every identity policy and boundary both roots rendered, with its real ARNs."""
    policy_lint = tooling_module("policy_lint", project.path)
    states = [project.path / ".local" / name for name in ("bootstrap.tfstate", "terraform.tfstate")]
    findings, count = policy_lint.lint(states, project.path / ".iam-policy-lint.yaml")
    assert count >= 20
    assert [f.line() for f in findings] == []


def test_same_commit_twice_reruns_without_a_second_deployment(project, released):
    """Re-uploading a commit re-runs its release (AWS: a new pipeline run), which must not deploy
    anything twice: the aliases are already on the release's version."""
    before = project.status()
    again = project.local("release", "--commit", commit_id("first"))
    assert again.returncode == 0, again.stdout
    after = project.status()
    assert after["aliases"] == before["aliases"]
    assert len(after["executions"]) == len(before["executions"]) + 1
    assert len(after["pipeline_executions"]) == len(before["pipeline_executions"]) + 1
    assert "already_deployed" in json.dumps(project.execution_output(commit_id("first")))


def test_two_consecutive_releases_are_both_promoted_and_the_second_is_live(project, released):
    project.edit_app("release v2")
    v2 = project.local("release")
    assert v2.returncode == 0, v2.stdout
    live_v2 = aliases(project)
    project.edit_app("release v3")
    v3 = project.local("release")
    assert v3.returncode == 0, v3.stdout
    live_v3 = aliases(project)
    assert live_v2["production"] == live_v2["staging"]
    assert live_v3["production"] == live_v3["staging"]
    assert int(live_v3["production"]) > int(live_v2["production"])


def test_a_successful_release_needs_no_permission_it_lacks(project, released):
    decisions = [
        json.loads(line)
        for line in (project.path / ".local" / "iam-decisions.jsonl").read_text().splitlines()
    ]
    principals = {d["principal"] for d in decisions if d.get("allowed")}
    # The AWS provider probes iam:GetUser for the caller and goes on when it is denied, as it does
    # on AWS (a role session is no IAM user): that probe is the one expected denial.
    decisions = [d for d in decisions if d.get("action") != "iam:GetUser"]
    # Every actor acted with its own role: the apply role (upload, follow), the pipeline and
    # trigger roles, the state machine role, each function's role and CodeDeploy's role.
    for role in ("github-apply", "codepipeline-role", "pipeline-trigger-role", "codedeploy-role"):
        assert any(f"/{project.slug}-{role}/" in p or role in p for p in principals), role
    assert not [d for d in decisions if not d["allowed"]], "denials in a green release"


# A release that fails before production takes the same path whatever the project's options (the
# approval gate, production's strategy and the notification come later): one variant of the
# template's own tests runs these, the others deselect them with -m 'not before_production'.
BEFORE_PRODUCTION = pytest.mark.before_production


@pytest.mark.parametrize(
    "fault, error, cause_part",
    [
        pytest.param(
            "validate", "ChecksumMismatchError", "does not match manifest", marks=BEFORE_PRODUCTION
        ),
        pytest.param(
            "deploy-staging",
            "DeploymentError",
            "deploying to staging failed",
            marks=BEFORE_PRODUCTION,
        ),
        pytest.param(
            "smoke-tests", "SmokeTestsFailed", "smoke tests passed", marks=BEFORE_PRODUCTION
        ),
        ("deploy-production", "DeploymentError", "deploying to production failed"),
        ("alarm-production", "DeploymentStoppedError", "ALARM_ACTIVE"),
        pytest.param("rollback", "SmokeTestsFailed", "smoke tests passed", marks=BEFORE_PRODUCTION),
    ],
)
def test_faults_leave_both_aliases_where_they_were(project, released, fault, error, cause_part):
    before = aliases(project)
    commit = commit_id(f"fault-{fault}")
    run = project.local("release", "--fail", fault, "--commit", commit)
    assert run.returncode == 1, run.stdout
    execution = project.execution(commit)
    assert execution["status"] == "FAILED"
    assert execution["error"] == error
    assert cause_part in execution["cause"]
    assert aliases(project) == before  # production untouched, staging rolled back
    if fault == "rollback":
        assert "Lambda.ServiceException" in run.stdout  # the retried rollback call


@BEFORE_PRODUCTION
def test_smoke_test_timeout_is_caught_and_rolled_back(project, released):
    before = aliases(project)
    commit = commit_id("fault-smoke-timeout")
    run = project.local("release", "--fail", "smoke-timeout", "--commit", commit)
    assert run.returncode == 1, run.stdout
    execution = project.execution(commit)
    assert execution["error"] == "SmokeTestsFailed"
    assert "timed out" in execution["cause"]
    assert aliases(project) == before


@BEFORE_PRODUCTION
def test_a_really_broken_app_is_caught_by_the_smoke_tests_without_any_flag(project, released):
    before = aliases(project)
    handler = project.path / "lambdas" / "app" / "handler.py"
    good = handler.read_text(encoding="utf-8")
    try:
        project.edit_app(
            "broken",
            body=good
            + "\n\ndef handler(event, context):\n    raise RuntimeError('broken release')\n",
        )
        run = project.local("release")
        assert run.returncode == 1, run.stdout
        assert "SmokeTestsFailed" in run.stdout
        assert aliases(project) == before
    finally:
        handler.write_text(good, encoding="utf-8")


# AWS's length limit for the name of every kind of named resource the stack creates. The pre-gen
# hook caps the slug so the longest derived name fits; this checks the names Terraform really made.
NAME_LIMITS = {
    ("aws_s3_bucket", "bucket"): 63,
    ("aws_lambda_function", "function_name"): 64,
    ("aws_lambda_alias", "name"): 128,
    ("aws_iam_role", "name"): 64,
    ("aws_iam_role_policy", "name"): 128,
    ("aws_sfn_state_machine", "name"): 80,
    ("aws_cloudwatch_event_rule", "name"): 64,
    ("aws_codepipeline", "name"): 100,
    ("aws_codedeploy_app", "name"): 100,
    ("aws_codedeploy_deployment_group", "deployment_group_name"): 100,
    ("aws_sns_topic", "name"): 256,
    ("aws_cloudwatch_metric_alarm", "alarm_name"): 255,
    ("aws_kms_alias", "name"): 256,
    ("aws_cloudwatch_log_group", "name"): 512,
}


def test_every_aws_name_fits_its_service_limit(project):
    state = json.loads((project.path / ".local" / "terraform.tfstate").read_text())
    names = [
        (resource["type"], instance["attributes"][attribute], limit)
        for resource in state["resources"]
        if resource["mode"] == "managed"
        for (kind, attribute), limit in NAME_LIMITS.items()
        if resource["type"] == kind
        for instance in resource["instances"]
    ]

    assert {kind for kind, _, _ in names} == {kind for kind, _ in NAME_LIMITS}
    too_long = [(kind, name, len(name), limit) for kind, name, limit in names if len(name) > limit]
    assert too_long == []


@pytest.mark.skipif(
    "ApproveProduction" not in (ROOT / "state_machine.asl.json").read_text(encoding="utf-8"),
    reason="this project has no approval gate",
)
def test_rejected_approval_rolls_back_staging_and_keeps_production(project, released):
    before = aliases(project)
    project.edit_app("rejected-release")

    rejected = project.local("release", "--approval", "reject")

    assert rejected.returncode == 1, rejected.stdout
    assert "ApproveProduction" in rejected.stdout
    assert "rejected" in rejected.stdout
    assert aliases(project) == before
    execution = project.status()["executions"][0]
    assert execution["status"] == "FAILED"
    assert "ReleaseRejected" in (execution["error"] or "") + (execution["cause"] or "")


# ---------------------------------------------------------------------------------------------
# IAM enforced: each permission a release needs is really needed, and named when missing.
# ---------------------------------------------------------------------------------------------
def admin_iam(project):
    return project.admin_client("iam")


def _actions(statement: dict) -> list[str]:
    actions = statement.get("Action", [])
    return [actions] if isinstance(actions, str) else list(actions)


@contextlib.contextmanager
def statement_removed(project, role_hint: str, action: str):
    """Remove from the project's role <slug>-<role_hint> the statement(s) granting `action`;
    yields the role name and every action those statements granted."""
    iam = admin_iam(project)
    role = f"{project.slug}-{role_hint}"
    saved, removed = {}, set()
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        document = json.loads(document) if isinstance(document, str) else document
        kept = [s for s in document["Statement"] if action not in _actions(s)]
        if len(kept) == len(document["Statement"]):
            continue
        saved[name] = document
        removed.update(
            a for s in document["Statement"] if action in _actions(s) for a in _actions(s)
        )
        if kept:
            iam.put_role_policy(
                RoleName=role,
                PolicyName=name,
                PolicyDocument=json.dumps({**document, "Statement": kept}),
            )
        else:  # IAM refuses a policy without statements
            iam.delete_role_policy(RoleName=role, PolicyName=name)
    assert saved, f"no statement of {role} grants {action}"
    try:
        yield role, removed
    finally:
        for name, document in saved.items():
            iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(document))


def wait_until_the_pipeline_is_idle(project, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while any(r["status"] == "InProgress" for r in project.status()["pipeline_executions"]):
        assert time.monotonic() < deadline, "a pipeline run did not end"
        time.sleep(1)


@pytest.mark.iam_scenarios
@pytest.mark.parametrize(
    "role_hint, action, release_goes_on",
    [
        ("github-apply", "s3:PutObject", False),  # the deploy job uploads the release
        # ...and follows it: the job fails, the release itself goes on in the pipeline.
        ("github-apply", "states:ListExecutions", True),
        ("codepipeline-role", "states:StartExecution", False),  # the pipeline starts the release
        ("pipeline-trigger-role", "codepipeline:StartPipelineExecution", False),  # EventBridge
        ("deploy-role", "lambda:PublishVersion", False),  # the deploy function publishes
        ("smoke-tests-role", "lambda:InvokeFunction", False),  # smoke tests call staging
        # ...with the checks the release's app.zip declares, which they read from S3.
        ("smoke-tests-role", "s3:GetObject", False),
        ("state-machine-role", "lambda:InvokeFunction", False),  # Step Functions runs functions
        ("codedeploy-role", "lambda:UpdateAlias", False),  # CodeDeploy shifts the alias
    ],
)
def test_a_release_missing_one_statement_fails_naming_it(
    project, released, role_hint, action, release_goes_on
):
    before = aliases(project)
    project.edit_app(f"needs {action} of {role_hint}")
    with statement_removed(project, role_hint, action) as (role, removed):
        run = project.local("release", "--timeout", "120")
        wait_until_the_pipeline_is_idle(project)
    assert run.returncode != 0, run.stdout
    assert role in run.stdout and "AccessDenied" in run.stdout, run.stdout
    assert any(a in run.stdout for a in removed), (removed, run.stdout)
    if not release_goes_on:
        assert aliases(project)["production"] == before["production"]


# ---------------------------------------------------------------------------------------------
# Two projects in one account whose slugs share a prefix (orders / orders-service).
# ---------------------------------------------------------------------------------------------
def neighbour_slug(slug: str) -> str:
    """A slug that is a prefix of this one, or that this one is a prefix of."""
    return slug.rsplit("-", 1)[0] if "-" in slug else f"{slug}-service"


def resource_arns(state: dict) -> dict[str, dict[str, str]]:
    """Every resource ARN in a state (with a bucket's objects and a function's aliases), each
    with its tags (aws:ResourceTag/<key> where a service evaluates it)."""
    arns = {}
    for resource in state["resources"]:
        if resource["mode"] != "managed":
            continue
        for instance in resource["instances"]:
            attributes = instance.get("attributes") or {}
            arn = attributes.get("arn")
            if isinstance(arn, str) and arn.startswith("arn:"):
                tags = attributes.get("tags_all") or {}
                arns[arn] = tags
                if resource["type"] == "aws_s3_bucket":
                    arns[f"{arn}/releases/x.zip"] = {}  # the bucket's objects too
                if resource["type"] == "aws_lambda_function":
                    arns[f"{arn}:production"] = tags  # and its aliases
    return arns


@pytest.fixture(scope="session")
def neighbour(project):
    """The neighbour project's bootstrap and IAM (and what its policies name) applied next to this
    project in the same local account, each root as the rehearsal applies it."""
    local = tooling_module("local", project.path)
    other = neighbour_slug(project.slug)
    endpoint = local.process.find(local.STATE_DIR)
    admin = endpoint.admin_credentials
    mirror, _ = local.tf_runner.provider_source(project.environ)
    init = ["init", "-input=false", "-no-color"] + ([f"-plugin-dir={mirror}"] if mirror else [])
    bootstrap = local.Root(local.BOOTSTRAP_DIR, f"bootstrap-{other}")
    main = local.Root(local.TF_DIR, f"main-{other}")
    bootstrap_vars = [
        f"-var=project={other}",
        f"-var=github_repository=my-org/{other}",
        "-var=create_oidc_provider=false",  # one GitHub OIDC provider per account
    ]
    local.terraform_ok(init, endpoint.url, admin, "init", bootstrap)
    local.terraform_ok(
        ["apply", "-auto-approve", "-input=false", "-no-color", *bootstrap_vars],
        endpoint.url,
        admin,
        "apply",
        bootstrap,
    )
    outputs = local.terraform_outputs(endpoint.url, admin, bootstrap)
    region = json.loads((local.STATE_DIR / "outputs.json").read_text())["aws_region"]
    apply_role = local.assume_ci_role(endpoint, outputs, "apply", region)
    # Every role and policy of the main stack, with what they name (Terraform adds dependencies).
    targets = [
        f"-target={kind}.{name}"
        for tf_file in sorted(local.TF_DIR.glob("*.tf"))
        for kind, name in re.findall(
            r'^resource\s+"(aws_iam_role(?:_policy)?)"\s+"([^"]+)"',
            tf_file.read_text(encoding="utf-8"),
            re.M,
        )
    ]
    main_vars = [
        f"-var=project={other}",
        f"-var=permissions_boundary_name={other}-workload-boundary",
    ]
    local.terraform_ok(init, endpoint.url, apply_role, "init", main)
    local.terraform_ok(
        ["apply", "-auto-approve", "-input=false", "-no-color", *main_vars, *targets],
        endpoint.url,
        apply_role,
        "apply",
        main,
    )
    states = {}
    for slug, files in (
        (project.slug, ("bootstrap.tfstate", "terraform.tfstate")),
        (other, (f"bootstrap-{other}.tfstate", f"main-{other}.tfstate")),
    ):
        states[slug] = [json.loads((local.STATE_DIR / name).read_text()) for name in files]
    return {
        "slug": other,
        "states": states,
        "endpoint": endpoint,
        "apply_role": apply_role,
        "region": region,
    }


def project_roles(iam, slug: str) -> list[str]:
    names = {f"{slug}-github-apply", f"{slug}-github-plan", f"{slug}-codedeploy-role"}
    names |= {f"{slug}-{suffix}-role" for suffix in ("deploy", "rollback", "state-machine")}
    names |= {f"{slug}-codepipeline-role", f"{slug}-pipeline-trigger-role", f"{slug}-app-role"}
    return [r["Arn"] for r in iam.list_roles()["Roles"] if r["RoleName"] in names]


@pytest.mark.iam_scenarios
def test_projects_whose_slugs_share_a_prefix_cannot_reach_each_other(project, neighbour):
    """Neither project's roles may read, change, pass or delete anything of the other's, except
    through the few actions AWS authorizes only on "*" (no resource-level permission exists)."""
    from policy_sentry.querying.actions import get_action_data
    from release_tooling.local_aws import iam_policy

    iam = admin_iam(project)
    region = project.outputs()["aws_region"]
    slugs = [project.slug, neighbour["slug"]]
    # Every condition value the stack's policies test, at once (multi-valued keys match if any
    # value does), so a statement cannot hide behind a condition the test did not satisfy.
    context = {
        "kms:ViaService": [f"{svc}.{region}.amazonaws.com" for svc in ("s3", "lambda", "sns")],
        "kms:CallerAccount": "123456789012",
        "kms:GrantIsForAWSResource": "true",
        "s3:prefix": ["releases/", "pipeline/"],
        "iam:PassedToService": [
            f"{svc}.amazonaws.com"
            for svc in ("lambda", "states", "codepipeline", "codedeploy", "events")
        ],
        "iam:PermissionsBoundary": [
            f"arn:aws:iam::123456789012:policy/{slug}-workload-boundary" for slug in slugs
        ],
        "aws:RequestTag/Project": slugs,
        "aws:TagKeys": ["Project", "ManagedBy"],
    }
    unscopable_used = set()
    crossings = []
    for mine, theirs in ((project.slug, neighbour["slug"]), (neighbour["slug"], project.slug)):
        targets = {k: v for s in neighbour["states"][theirs] for k, v in resource_arns(s).items()}
        assert len(targets) > 10, theirs
        roles = project_roles(iam, mine)
        assert len(roles) >= 8, (mine, roles)
        for role_arn in roles:
            identity, boundary = _live_policies(iam, role_arn)
            actions = {a for _, doc in identity for s in doc["Statement"] for a in _actions(s)}
            for action in sorted(actions):
                service, name = action.split(":", 1)
                data = get_action_data(service, name).get(service) or []
                if data and all(entry["resource_arn_format"] == "*" for entry in data):
                    unscopable_used.add(action)
                    continue
                for arn, tags in targets.items():
                    tagged = {**context, **{f"aws:ResourceTag/{k}": v for k, v in tags.items()}}
                    decision = iam_policy.evaluate(
                        iam_policy.AuthzRequest(action, arn, tagged, principal_arn=role_arn),
                        identity,
                        boundary,
                    )
                    if decision.allowed:
                        crossings.append(f"{role_arn} may {action} on {arn}: {decision.reason}")
    assert crossings == [], "\n".join(crossings)
    # The exceptions are exactly these: if this set grows, a new "*" grant reaches the neighbour.
    assert unscopable_used <= {
        "codedeploy:StopDeployment",
        "sns:GetSubscriptionAttributes",
        "sns:SetSubscriptionAttributes",
        "sns:Unsubscribe",
        "kms:CreateKey",
        "kms:ListAliases",
        "logs:DescribeLogGroups",
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "states:ValidateStateMachineDefinition",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
    }, sorted(unscopable_used)


def _live_policies(iam, role_arn: str):
    name = role_arn.rsplit("/", 1)[-1]
    identity = []
    for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
        identity.append((policy, json.loads(document) if isinstance(document, str) else document))
    role = iam.get_role(RoleName=name)["Role"]
    boundary = None
    if role.get("PermissionsBoundary"):
        arn = role["PermissionsBoundary"]["PermissionsBoundaryArn"]
        version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
        document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]
        text = document["Document"]
        boundary = (arn, json.loads(text) if isinstance(text, str) else text)
    return identity, boundary


@pytest.mark.iam_scenarios
def test_the_neighbour_apply_role_is_refused_by_the_endpoint(project, neighbour):
    """A live call: the neighbour's apply role may not touch this project's app function."""
    import boto3
    from botocore.exceptions import ClientError

    client = boto3.client(
        "lambda",
        endpoint_url=neighbour["endpoint"].url,
        region_name=neighbour["region"],
        **neighbour["apply_role"],
    )
    with pytest.raises(ClientError) as denied:
        client.update_function_configuration(
            FunctionName=f"{project.slug}-app", Description="taken over"
        )
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert f"{neighbour['slug']}-github-apply" in str(denied.value)
