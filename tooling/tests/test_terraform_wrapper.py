"""`release-tooling terraform` against a fake `terraform` on PATH that records every call.

Each test runs it in a scratch repository (the baked project's Lambdas, empty Terraform roots), so
build/ outputs land in tmp_path and the real repository is never touched.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from release_tooling import package
from release_tooling import project as project_paths

FAKE_TERRAFORM = """\
#!PYTHON
import json, os, sys
from pathlib import Path

args = sys.argv[1:]
with open(os.environ["FAKE_TF_LOG"], "a", encoding="utf-8") as log:
    log.write(json.dumps(args) + "\\n")
command = next(arg for arg in args if not arg.startswith("-chdir="))
if command == "plan":
    out = next(arg.split("=", 1)[1] for arg in args if arg.startswith("-out="))
    code = int(os.environ.get("FAKE_TF_PLAN_EXIT", "2"))
    if code != 1:
        Path(out).write_bytes(b"saved plan")
    sys.exit(code)
if command == "init" and os.environ.get("FAKE_TF_INIT_OUTPUT"):
    print(os.environ["FAKE_TF_INIT_OUTPUT"])
if command == "show":
    text = "Plan: 1 to add, 0 to change, 0 to destroy."
    print(json.dumps({"format_version": "1.2"}) if "-json" in args else text)
sys.exit(int(os.environ.get("FAKE_TF_" + command.upper() + "_EXIT", "0")))
"""


class Project:
    """A scratch copy of the repository layout the wrapper expects, plus the fake terraform."""

    def __init__(self, root: Path, deps_cache: Path | None = None) -> None:
        self.root = root
        self.bin = root / "fake-bin"
        self.log = root / "terraform-calls.jsonl"
        self.build = root / "build"
        (root / "terraform" / "bootstrap").mkdir(parents=True)
        (root / "state_machine.asl.json").write_text("{}", encoding="utf-8")
        shutil.copytree(project_paths.ROOT / "lambdas", root / "lambdas")
        # Packaging reads the python_runtime default here (for lambdas/*/requirements.txt).
        shutil.copy2(project_paths.ROOT / "terraform" / "variables.tf", root / "terraform")
        if deps_cache is not None:  # the app's requirements, installed once per session
            shutil.copytree(deps_cache, root / "build" / package.DEPS_CACHE)
        self.bin.mkdir()
        terraform = self.bin / "terraform"
        terraform.write_text(FAKE_TERRAFORM.replace("PYTHON", sys.executable, 1), encoding="utf-8")
        terraform.chmod(terraform.stat().st_mode | stat.S_IXUSR)

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        environment = {
            "PATH": str(self.bin),
            "FAKE_TF_LOG": str(self.log),
            project_paths.ROOT_ENV: str(self.root),
            **env,
        }
        return subprocess.run(
            [sys.executable, "-m", "release_tooling", "terraform", *args],
            cwd=self.root,
            env=environment,
            capture_output=True,
            text=True,
            check=False,
        )

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text(encoding="utf-8").splitlines()]

    def terraform_calls(self, command: str) -> list[list[str]]:
        return [
            call for call in self.calls() if call[0].startswith("-chdir=") and call[1] == command
        ]


@pytest.fixture(scope="session")
def deps_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """build/.deps-cache as a first build leaves it, so each scratch repository's builds reuse
    the installed requirements instead of installing them again."""
    scratch = tmp_path_factory.mktemp("deps")
    package.build(scratch / "build", "0" * 40, deps_cache=scratch / "cache")
    return scratch / "cache"


@pytest.fixture
def project(tmp_path: Path, deps_cache: Path) -> Project:
    return Project(tmp_path / "repo", deps_cache)


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    path = tmp_path / "mirror"
    path.mkdir()
    return path


STATE_KEY_ARN = "arn:aws:kms:us-east-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
BACKEND_ENV = {
    "TF_STATE_BUCKET": "orders-service-tfstate-123456789012",
    "AWS_REGION": "us-east-2",
    "TF_STATE_KMS_KEY_ARN": STATE_KEY_ARN,
}


def test_help_lists_every_command(project: Project) -> None:
    result = project.run("--help")
    assert result.returncode == 0
    for command in ("init", "validate", "plan", "apply", "drift"):
        assert command in result.stdout


def test_mirror_becomes_plugin_dir_on_every_init(project: Project, mirror: Path) -> None:
    result = project.run("validate", TF_PROVIDER_MIRROR=str(mirror))
    assert result.returncode == 0, result.stderr
    inits = project.terraform_calls("init")
    assert [call[0] for call in inits] == [
        f"-chdir={project.root / 'terraform'}",
        f"-chdir={project.root / 'terraform' / 'bootstrap'}",
    ]
    for call in inits:
        assert f"-plugin-dir={mirror}" in call
        assert "-backend=false" in call
    assert len(project.terraform_calls("validate")) == 2


def test_without_mirror_terraform_uses_the_registry(project: Project, tmp_path: Path) -> None:
    result = project.run("init", TF_PROVIDER_MIRROR_SEARCH=str(tmp_path / "no-mirror-here"))
    assert result.returncode == 0, result.stderr
    inits = project.terraform_calls("init")
    assert len(inits) == 2
    assert not any(arg.startswith("-plugin-dir") for call in inits for arg in call)
    assert "terraform providers: public registry" in result.stderr


def test_a_mirror_in_a_known_place_is_found_and_named(project: Project, tmp_path: Path) -> None:
    empty, found = tmp_path / "empty", tmp_path / "plugins"
    empty.mkdir()
    (found / "registry.terraform.io" / "hashicorp" / "aws").mkdir(parents=True)
    search = os.pathsep.join([str(empty), str(found)])
    result = project.run("init", TF_PROVIDER_MIRROR_SEARCH=search)
    assert result.returncode == 0, result.stderr
    for call in project.terraform_calls("init"):
        assert f"-plugin-dir={found.resolve()}" in call
    assert f"terraform providers: mirror {found.resolve()} (found" in result.stderr


def test_no_mirror_and_no_registry_is_one_line_naming_the_variable(
    project: Project, tmp_path: Path
) -> None:
    result = project.run(
        "init",
        TF_PROVIDER_MIRROR_SEARCH=str(tmp_path / "none"),
        FAKE_TF_INIT_EXIT="1",
        FAKE_TF_INIT_OUTPUT="Error: Failed to query available provider packages: no such host",
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert "TF_PROVIDER_MIRROR" in last and "registry is unreachable" in last
    assert "Traceback" not in result.stderr


def test_missing_mirror_directory_is_a_clear_error(project: Project, tmp_path: Path) -> None:
    result = project.run("validate", TF_PROVIDER_MIRROR=str(tmp_path / "nowhere"))
    assert result.returncode == 1
    assert "TF_PROVIDER_MIRROR" in result.stderr and "not a directory" in result.stderr
    assert project.calls() == []


PACKAGING = "+ release-tooling package build"


def test_validate_builds_zips_only_when_missing(project: Project) -> None:
    first = project.run("validate")
    assert first.returncode == 0, first.stderr
    assert first.stderr.count(PACKAGING) == 1
    assert (project.build / "manifest.json").is_file()

    again = project.run("validate")
    assert again.returncode == 0
    assert again.stderr.count(PACKAGING) == 0


def test_backend_config_comes_from_the_environment(project: Project) -> None:
    result = project.run("init", "--backend", **BACKEND_ENV)
    assert result.returncode == 0, result.stderr
    (call,) = project.terraform_calls("init")
    assert call[0] == f"-chdir={project.root / 'terraform'}"
    backend = [arg for arg in call if arg.startswith("-backend-config=")]
    assert backend == [
        "-backend-config=bucket=orders-service-tfstate-123456789012",
        "-backend-config=key=release-pipeline/terraform.tfstate",
        "-backend-config=region=us-east-2",
        "-backend-config=use_lockfile=true",
        "-backend-config=encrypt=true",
        f"-backend-config=kms_key_id={STATE_KEY_ARN}",
    ]
    assert "-backend=false" not in call


def test_state_key_can_be_overridden(project: Project) -> None:
    result = project.run("init", "--backend", TF_STATE_KEY="team/pipeline.tfstate", **BACKEND_ENV)
    assert result.returncode == 0, result.stderr
    (call,) = project.terraform_calls("init")
    assert "-backend-config=key=team/pipeline.tfstate" in call


def test_missing_backend_env_names_both_variables(project: Project) -> None:
    result = project.run("init", "--backend")
    assert result.returncode == 1
    assert "TF_STATE_BUCKET and AWS_REGION are not set" in result.stderr
    assert project.calls() == []


def test_missing_region_names_only_the_region(project: Project) -> None:
    result = project.run("plan", TF_STATE_BUCKET="orders-service-tfstate-123456789012")
    assert result.returncode == 1
    assert "AWS_REGION is not set" in result.stderr
    assert "TF_STATE_BUCKET and" not in result.stderr
    assert (project.build / "plan.exitcode").read_text() == "1\n"
    assert project.terraform_calls("plan") == []


def test_plan_writes_plan_json_text_and_exit_code(project: Project) -> None:
    result = project.run("plan", **BACKEND_ENV)
    assert result.returncode == 2, result.stderr
    assert (project.build / "terraform.tfplan").read_bytes() == b"saved plan"
    assert json.loads((project.build / "plan.json").read_text()) == {"format_version": "1.2"}
    assert "Plan: 1 to add" in (project.build / "plan.txt").read_text()
    assert (project.build / "plan.exitcode").read_text() == "2\n"

    (plan_call,) = project.terraform_calls("plan")
    assert "-detailed-exitcode" in plan_call
    assert f"-out={project.build / 'terraform.tfplan'}" in plan_call
    shows = project.terraform_calls("show")
    assert [call[2] for call in shows] == ["-json", "-no-color"]
    # The zips are rebuilt before every plan so it reflects the checked-out sources.
    # Echoed as `+ terraform -chdir=terraform plan ...` and `+ release-tooling package build ...`.
    steps = [line.split()[1:4] for line in result.stderr.splitlines() if line.startswith("+ ")]
    commands = [step[1] if step[0] == "release-tooling" else step[2] for step in steps]
    assert commands == ["init", "package", "plan", "show", "show"]


def test_plan_without_changes_exits_zero(project: Project) -> None:
    result = project.run("plan", FAKE_TF_PLAN_EXIT="0", **BACKEND_ENV)
    assert result.returncode == 0, result.stderr
    assert (project.build / "plan.exitcode").read_text() == "0\n"


def test_failed_plan_removes_the_stale_plan(project: Project) -> None:
    assert project.run("plan", **BACKEND_ENV).returncode == 2
    result = project.run("plan", FAKE_TF_PLAN_EXIT="1", **BACKEND_ENV)
    assert result.returncode == 1
    assert (project.build / "plan.exitcode").read_text() == "1\n"
    for stale in ("terraform.tfplan", "plan.json", "plan.txt"):
        assert not (project.build / stale).exists()


def test_var_files_from_option_and_environment(project: Project, tmp_path: Path) -> None:
    first, second = tmp_path / "a.tfvars", tmp_path / "b.tfvars"
    first.write_text('log_level = "DEBUG"\n')
    second.write_text("app_memory_mb = 512\n")
    result = project.run("--var-file", str(first), "plan", "--skip-init", TF_VAR_FILES=str(second))
    assert result.returncode == 2, result.stderr
    (plan_call,) = project.terraform_calls("plan")
    assert [arg for arg in plan_call if arg.startswith("-var-file=")] == [
        f"-var-file={first}",
        f"-var-file={second}",
    ]
    assert project.terraform_calls("init") == []


def test_missing_var_file_is_named(project: Project) -> None:
    result = project.run("plan", "--skip-init", TF_VAR_FILES="missing.tfvars")
    assert result.returncode == 1
    assert "'missing.tfvars' (from TF_VAR_FILES) does not exist" in result.stderr


def test_extra_plan_arguments_after_double_dash(project: Project) -> None:
    result = project.run("drift", "--skip-init", "--", "-refresh=true")
    assert result.returncode == 2, result.stderr
    (plan_call,) = project.terraform_calls("plan")
    assert plan_call[-1] == "-refresh=true"
    assert f"-out={project.build / 'drift.tfplan'}" in plan_call
    assert (project.build / "drift.exitcode").read_text() == "2\n"


def test_apply_refuses_without_a_saved_plan(project: Project) -> None:
    result = project.run("apply", **BACKEND_ENV)
    assert result.returncode == 1
    assert "no saved plan at build/terraform.tfplan" in result.stderr
    assert project.calls() == []


def test_apply_applies_exactly_the_saved_plan(project: Project) -> None:
    assert project.run("plan", **BACKEND_ENV).returncode == 2
    result = project.run("apply", **BACKEND_ENV)
    assert result.returncode == 0, result.stderr
    (apply_call,) = project.terraform_calls("apply")
    assert apply_call[1:] == ["apply", "-input=false", str(project.build / "terraform.tfplan")]


def test_terraform_failure_is_reported(project: Project) -> None:
    result = project.run("validate", FAKE_TF_VALIDATE_EXIT="1")
    assert result.returncode == 1
    assert "terraform -chdir=terraform validate exited with 1" in result.stderr


def test_missing_terraform_binary(project: Project, tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    result = project.run("validate", PATH=str(empty))
    assert result.returncode == 1
    assert "terraform executable 'terraform' not found on PATH" in result.stderr
