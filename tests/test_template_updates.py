"""Projects made with cruft can see and take template updates."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

from conftest import TEMPLATE_ROOT

CRUFT = Path(sys.executable).with_name("cruft")


def run(*command: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command], cwd=cwd, capture_output=True, text=True, check=False, timeout=300
    )


def git(cwd: Path, *args: str) -> str:
    result = run("git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def committed_cruft_project(tmp_path: Path) -> tuple[Path, Path]:
    """A clone of this template (so a test can commit to it) and a cruft project made from it."""
    template = tmp_path / "template"
    git(tmp_path, "clone", "--quiet", str(TEMPLATE_ROOT), str(template))
    result = run(CRUFT, "create", "--no-input", "--output-dir", tmp_path / "out", template, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    project = tmp_path / "out" / "orders-service"
    git(project, "init", "--quiet", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "--quiet", "-m", "generated")
    return template, project


def test_cruft_project_is_up_to_date_after_generation(tmp_path):
    result = run(CRUFT, "create", "--no-input", "--output-dir", tmp_path, TEMPLATE_ROOT, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    project = tmp_path / "orders-service"

    recorded = json.loads((project / ".cruft.json").read_text())
    assert recorded["commit"] == git(TEMPLATE_ROOT, "rev-parse", "HEAD")
    assert recorded["context"]["cookiecutter"]["project_slug"] == "orders-service"
    check = run(CRUFT, "check", cwd=project)
    assert check.returncode == 0, check.stdout + check.stderr


def test_template_change_is_reported_and_applied_by_cruft_update(tmp_path):
    template, project = committed_cruft_project(tmp_path)

    # Upstream improves the generated .gitignore.
    ignore = template / "{{cookiecutter.project_slug}}" / ".gitignore"
    ignore.write_text(ignore.read_text() + "# upstream improvement\n.idea/\n")
    git(template, "commit", "--quiet", "-am", "Ignore IDE folders")

    outdated = run(CRUFT, "check", cwd=project)
    assert outdated.returncode != 0
    assert "out of date" in (outdated.stdout + outdated.stderr).lower()

    # The weekly template-drift job's check agrees with cruft's, and names the update command.
    drift = run(sys.executable, "-m", "release_tooling", "template-drift", cwd=project)
    assert drift.returncode == 2, drift.stdout + drift.stderr
    assert git(template, "rev-parse", "HEAD")[:12] in drift.stdout and "cruft update" in drift.stdout

    update = run(CRUFT, "update", "--skip-apply-ask", "--allow-untracked-files", cwd=project)
    assert update.returncode == 0, update.stdout + update.stderr
    assert ".idea/" in (project / ".gitignore").read_text()
    assert run(CRUFT, "check", cwd=project).returncode == 0
    assert run(sys.executable, "-m", "release_tooling", "template-drift", cwd=project).returncode == 0


def test_a_new_tooling_version_reaches_a_project_as_a_small_diff(tmp_path):
    """Upgrading the release tooling is `cruft update`: the pin moves, nothing else of the project."""
    template, project = committed_cruft_project(tmp_path)
    pinned_before = tomllib.loads((project / "pyproject.toml").read_text())["tool"]["release-tooling"]

    # Upstream releases a new tooling version (same release contract).
    version_file = template / "tooling" / "src" / "release_tooling" / "__init__.py"
    version_file.write_text(
        version_file.read_text().replace(f'"{pinned_before["version"]}"', '"99.0.0"')
    )
    git(template, "commit", "--quiet", "-am", "serverless-release-tooling 99.0.0")

    # The weekly template-drift job's check agrees with cruft's, and names the update command.
    drift = run(sys.executable, "-m", "release_tooling", "template-drift", cwd=project)
    assert drift.returncode == 2, drift.stdout + drift.stderr
    assert git(template, "rev-parse", "HEAD")[:12] in drift.stdout and "cruft update" in drift.stdout

    update = run(CRUFT, "update", "--skip-apply-ask", "--allow-untracked-files", cwd=project)
    assert update.returncode == 0, update.stdout + update.stderr

    pinned = tomllib.loads((project / "pyproject.toml").read_text())["tool"]["release-tooling"]
    assert pinned["version"] == "99.0.0"
    assert pinned["schema"] == pinned_before["schema"]
    assert pinned["git"] == pinned_before["git"].replace(
        pinned_before["git"].split("@")[-1].split("#")[0], git(template, "rev-parse", "HEAD")
    )
    changed = git(project, "status", "--porcelain").splitlines()
    assert sorted(line.split()[-1] for line in changed) == [".cruft.json", "pyproject.toml"]
    diff = git(project, "diff", "HEAD", "--unified=0", "pyproject.toml")
    assert len([line for line in diff.splitlines() if line.startswith(("+version", "+git"))]) == 2
