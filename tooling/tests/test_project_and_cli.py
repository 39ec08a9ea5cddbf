"""The repository the tooling works on, its release contract, and the command dispatcher."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from release_tooling import SCHEMA_VERSION, __version__, cli, project


def make_repository(root: Path, schema: int | None = SCHEMA_VERSION, name: str = "svc") -> Path:
    (root / "terraform").mkdir(parents=True)
    (root / "state_machine.asl.json").write_text("{}", encoding="utf-8")
    tooling = "" if schema is None else f"\n[tool.release-tooling]\nschema = {schema}\n"
    (root / "pyproject.toml").write_text(f'[project]\nname = "{name}"\n{tooling}', "utf-8")
    return root


def test_the_repository_is_found_from_a_subdirectory(tmp_path, monkeypatch):
    repo = make_repository(tmp_path / "repo")
    (repo / "lambdas" / "app").mkdir(parents=True)
    monkeypatch.delenv(project.ROOT_ENV, raising=False)

    assert project.find_root(repo / "lambdas" / "app") == repo.resolve()
    assert project.find_root(tmp_path) is None


def test_the_environment_names_the_repository(tmp_path, monkeypatch):
    monkeypatch.setenv(project.ROOT_ENV, str(tmp_path / "elsewhere"))
    assert project.find_root(tmp_path) == (tmp_path / "elsewhere").resolve()


@pytest.mark.parametrize(
    ("schema", "fix"),
    [(SCHEMA_VERSION + 1, "make setup"), (SCHEMA_VERSION - 1, "cruft update")],
    ids=["repository newer", "repository older"],
)
def test_another_release_contract_stops_with_what_to_upgrade(tmp_path, schema, fix):
    repo = make_repository(tmp_path / "repo", schema=schema)

    with pytest.raises(project.ProjectError) as raised:
        project.check_schema(repo)

    message = str(raised.value)
    assert f"contract {schema}" in message and f"contract {SCHEMA_VERSION}" in message
    assert __version__ in message and fix in message
    assert "\n" not in message


def test_the_same_contract_or_none_declared_passes(tmp_path):
    project.check_schema(make_repository(tmp_path / "same"))
    project.check_schema(make_repository(tmp_path / "undeclared", schema=None))


def test_the_service_name_comes_from_pyproject(tmp_path):
    assert project.service_name(make_repository(tmp_path / "repo", name="orders")) == "orders"
    (tmp_path / "bare").mkdir()
    with pytest.raises(project.ProjectError, match=r"\[project\] name"):
        project.service_name(tmp_path / "bare")


def run_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "release_tooling", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_every_command_is_listed_and_an_unknown_one_is_refused(tmp_path):
    listed = run_cli(tmp_path, "--help")
    assert listed.returncode == 0
    for name in cli.COMMANDS:
        assert name in listed.stdout

    unknown = run_cli(tmp_path, "deploy-everything")
    assert unknown.returncode == 2
    assert "unknown command 'deploy-everything'" in unknown.stderr


def test_a_command_in_a_repository_of_another_contract_stops_before_running(tmp_path):
    repo = make_repository(tmp_path / "repo", schema=SCHEMA_VERSION + 1)

    result = run_cli(repo, "check-asl")

    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "make setup" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_command_outside_any_repository_says_where_to_run_it(tmp_path):
    result = run_cli(tmp_path, "package")

    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "no service repository at" in result.stderr and project.ROOT_ENV in result.stderr


def test_a_root_named_by_the_environment_must_be_a_repository(tmp_path):
    with pytest.raises(project.ProjectError, match="is not a service repository"):
        project.require_repository(tmp_path)
    assert project.require_repository(make_repository(tmp_path / "repo")) == tmp_path / "repo"
