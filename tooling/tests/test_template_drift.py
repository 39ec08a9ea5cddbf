"""template-drift against a real git template repository and the GitHub stand-in."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from test_github_post import REPO, FakeGitHub

from release_tooling import template_drift

GIT = [
    "git",
    "-c",
    "user.name=t",
    "-c",
    "user.email=t@example.com",
    "-c",
    "init.defaultBranch=main",
]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        [*GIT, *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def template(tmp_path) -> Path:
    repo = tmp_path / "template"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "README.md").write_text("v1\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "v1")
    return repo


def link(tmp_path: Path, template: Path, commit: str, checkout: str | None = None) -> Path:
    path = tmp_path / "service" / ".cruft.json"
    path.parent.mkdir(exist_ok=True)
    data = {"template": str(template), "commit": commit, "context": {}}
    if checkout:
        data["checkout"] = checkout
    path.write_text(json.dumps(data))
    return path


def test_up_to_date_then_behind_after_a_template_commit(tmp_path, template, capsys):
    made_from = git(template, "rev-parse", "HEAD")
    cruft = link(tmp_path, template, made_from)
    assert template_drift.main(["--cruft-file", str(cruft)], env={}) == 0
    assert "up to date" in capsys.readouterr().out

    (template / "README.md").write_text("v2\n")
    git(template, "commit", "-qam", "v2")
    latest = git(template, "rev-parse", "HEAD")
    report = tmp_path / "out" / "template.md"
    assert template_drift.main(["--cruft-file", str(cruft), "--report", str(report)], env={}) == 2
    text = report.read_text()
    assert text.startswith(template_drift.MARKER)
    assert made_from[:12] in text and latest[:12] in text
    assert "cruft update" in text and "cruft diff" in text


def test_a_followed_branch_or_tag_is_compared_not_the_default_branch(tmp_path, template):
    made_from = git(template, "rev-parse", "HEAD")
    git(template, "tag", "-a", "v1.0.0", "-m", "release")
    (template / "README.md").write_text("unreleased\n")
    git(template, "commit", "-qam", "work on main")
    cruft = link(tmp_path, template, made_from, checkout="v1.0.0")
    assert template_drift.main(["--cruft-file", str(cruft)], env={}) == 0


def test_not_made_with_cruft_or_unreachable_or_malformed(tmp_path, template, capsys):
    assert template_drift.main(["--cruft-file", str(tmp_path / "none.json")], env={}) == 0
    assert "cruft link" in capsys.readouterr().out

    gone = link(tmp_path, tmp_path / "no-such-template", "a" * 40)
    assert template_drift.main(["--cruft-file", str(gone)], env={}) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot read" in err

    gone.write_text("{not json")
    assert template_drift.main(["--cruft-file", str(gone)], env={}) == 1
    assert "is not JSON" in capsys.readouterr().err

    branchless = link(tmp_path, template, "a" * 40, checkout="no-such-branch")
    assert template_drift.main(["--cruft-file", str(branchless)], env={}) == 1
    assert "has no ref 'no-such-branch'" in capsys.readouterr().err


@pytest.fixture
def github():
    fake = FakeGitHub()
    fake.thread.start()
    yield fake
    fake.server.shutdown()


def test_behind_opens_one_issue_then_updates_it(tmp_path, template, github):
    cruft = link(tmp_path, template, "a" * 40)
    env = {"GITHUB_TOKEN": "test-token", "GITHUB_REPOSITORY": REPO, "GITHUB_API_URL": github.url}
    assert template_drift.main(["--cruft-file", str(cruft), "--issue"], env=env) == 2
    assert template_drift.main(["--cruft-file", str(cruft), "--issue"], env=env) == 2
    (issue,) = github.issues
    assert issue["title"] == "Template update available"
    assert issue["labels"] == ["template"]
    assert template_drift.MARKER in issue["body"]
