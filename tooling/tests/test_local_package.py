"""release_tooling.local as other code uses it: its names, its CLI, and re-pointing it at a copy."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from release_tooling import local, package, project, rehearsal


def test_the_cli_without_an_environment_says_how_to_start_one(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    shutil.copytree(project.ROOT, copy, ignore=local.common.SCRATCH_EXCLUDE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    for command in ("release", "status", "plan"):
        proc = subprocess.run(
            [sys.executable, "-m", "release_tooling", "local", command],
            cwd=copy,
            env={**env, project.ROOT_ENV: str(copy)},
            capture_output=True,
            text=True,
            check=False,
        )
        # plan keeps -detailed-exitcode's meaning, so its errors exit 1; the others exit 2.
        assert proc.returncode == (1 if command == "plan" else 2), proc.stdout + proc.stderr
        assert proc.stdout.startswith(f"release-tooling local {command}: the local environment")
        assert "`make local-up`" in proc.stdout and "Traceback" not in proc.stderr


def test_a_commit_that_is_not_40_hex_is_refused(capsys) -> None:
    assert local.main(["release", "--commit", "abc"]) == 2
    assert "--commit must be 40 lowercase hex characters, got 'abc'" in capsys.readouterr().out


@pytest.fixture
def repointed(tmp_path: Path):
    """rehearsal.tooling_module("local", copy), then the package pointed back at the bake."""
    original = os.environ[project.ROOT_ENV]
    copy = tmp_path / "copy"
    yield rehearsal.tooling_module("local", copy), copy
    os.environ[project.ROOT_ENV] = original
    importlib.reload(project)
    importlib.reload(local)


def test_reloading_the_package_repoints_every_part(repointed) -> None:
    """The repositories' own tests re-point release_tooling.local at a scratch copy by reloading
    it; the parts (not only the package's names) must follow, or terraform would run elsewhere."""
    module, copy = repointed
    assert copy / ".local" == module.STATE_DIR
    assert copy / "terraform" == module.TF_DIR
    assert copy / "terraform" / "bootstrap" == module.BOOTSTRAP_DIR
    bootstrap = module.Root(module.BOOTSTRAP_DIR, "bootstrap-x")
    assert bootstrap.state == copy / ".local" / "bootstrap-x.tfstate"
    assert module.terraform_roots.MAIN.path == copy / "terraform"
    assert copy / ".local" == module.environment.STATE_DIR
    assert copy / "build" == module.release.BUILD_DIR
    assert module.status.require_env is module.environment.require_env


def test_a_scratch_copy_leaves_out_environments_and_builds_but_keeps_installed_requirements(
    tmp_path: Path,
) -> None:
    source = tmp_path / "repo"
    (source / "lambdas" / "app").mkdir(parents=True)
    (source / "lambdas" / "app" / "handler.py").write_text("x = 1\n")
    for leftover in (".local/endpoint.json", "build/app.zip", ".git/HEAD", ".venv/bin/python"):
        (source / leftover).parent.mkdir(parents=True, exist_ok=True)
        (source / leftover).write_text("left out")
    installed = source / "build" / package.DEPS_CACHE / "key" / "lib.py"
    installed.parent.mkdir(parents=True)
    installed.write_text("kept")

    copy = local.ScratchCopy("test-copy-", source)
    try:
        assert copy.handler.read_text() == "x = 1\n"
        assert (copy.path / "build" / package.DEPS_CACHE / "key" / "lib.py").read_text() == "kept"
        for leftover in (".local", "build/app.zip", ".git", ".venv"):
            assert not (copy.path / leftover).exists()
        # Scenarios edit the copy's handler; the source's tree (its snapshots') comes back whole.
        copy.handler.write_text("x = 1\n# release 2\n")
        copy.restore_handler()
        assert copy.handler.read_text() == "x = 1\n"
        assert (source / "lambdas" / "app" / "handler.py").read_text() == "x = 1\n"
    finally:
        copy.remove()
    assert not copy.scratch.exists()
