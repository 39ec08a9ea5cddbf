"""scripts/install_tooling.py: which source `make setup` installs the release tooling from.

A fake interpreter stands in for .venv/bin/python: it records every pip call and answers the
version probe, so the order of sources and the messages are checked without touching an index.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "install_tooling.py"
PINNED = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
    "release-tooling"
]

INDEX = "serverless-release-tooling=="

FAKE_PYTHON = """#!{python}
import json, os, sys
args = sys.argv[1:]
if args[:1] == ["-c"]:
    version = os.environ.get("FAKE_INSTALLED")
    if version:
        print(version)
    sys.exit(0 if version else 1)
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
requirement = args[-1]
failing = [part for part in os.environ.get("FAKE_FAIL", "").split(",") if part]
if any(part in requirement for part in failing):
    print("ERROR: No matching distribution found for " + requirement, file=sys.stderr)
    sys.exit(1)
"""


@pytest.fixture
def fake_python(tmp_path):
    path = tmp_path / "python"
    path.write_text(FAKE_PYTHON.format(python=sys.executable), encoding="utf-8")
    path.chmod(0o755)
    return path


def install(fake_python, tmp_path, *args, **env):
    log = tmp_path / "pip.jsonl"
    log.unlink(missing_ok=True)  # one install per log
    environment = {
        k: v for k, v in os.environ.items() if k not in ("RELEASE_TOOLING_PATH", "FAKE_FAIL")
    }
    environment.update({"FAKE_LOG": str(log), "FAKE_INSTALLED": PINNED["version"], **env})
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *args, str(fake_python)],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return result, [call[-1] for call in calls], calls


def test_the_index_comes_first_and_names_the_exact_version(fake_python, tmp_path):
    result, requirements, _ = install(fake_python, tmp_path)

    assert result.returncode == 0, result.stderr
    assert requirements == [f"serverless-release-tooling=={PINNED['version']}"]
    assert "from the package index" in result.stdout


def test_without_the_version_on_the_index_the_template_commit_is_used(fake_python, tmp_path):
    if not PINNED["git"]:
        pytest.skip("this repository was generated from a template that is not a git checkout")
    result, requirements, _ = install(fake_python, tmp_path, FAKE_FAIL=INDEX)

    assert result.returncode == 0, result.stderr
    assert requirements[-1] == PINNED["git"]
    assert "from the template repository" in result.stdout


def test_a_local_checkout_wins_and_is_checked(fake_python, tmp_path):
    checkout = tmp_path / "tooling"
    checkout.mkdir()
    (checkout / "pyproject.toml").write_text("[project]\n", encoding="utf-8")
    result, requirements, _ = install(fake_python, tmp_path, RELEASE_TOOLING_PATH=str(checkout))
    assert result.returncode == 0, result.stderr
    assert requirements == [str(checkout)]
    assert "RELEASE_TOOLING_PATH" in result.stdout

    result, requirements, _ = install(fake_python, tmp_path, RELEASE_TOOLING_PATH=str(tmp_path))
    assert result.returncode == 1 and requirements == []
    assert "has no pyproject.toml" in result.stderr


def test_nothing_installable_says_how_to_fix_it_in_one_line(fake_python, tmp_path):
    result, requirements, _ = install(fake_python, tmp_path, FAKE_FAIL=f"{INDEX},git+")

    assert len(requirements) == (2 if PINNED["git"] else 1)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "RELEASE_TOOLING_PATH" in result.stderr


def test_a_different_installed_version_is_refused(fake_python, tmp_path):
    result, _, _ = install(fake_python, tmp_path, FAKE_INSTALLED="9.9.9")

    assert result.returncode == 1
    assert f"9.9.9, but pyproject.toml pins {PINNED['version']}" in result.stderr


def test_ci_installs_without_dependencies(fake_python, tmp_path):
    result, _, calls = install(fake_python, tmp_path, "--no-deps")

    assert result.returncode == 0, result.stderr
    assert all("--no-deps" in call for call in calls)
    assert all("--no-build-isolation" in call for call in calls)
