"""The rehearsal fixtures this repository's scenarios share (release-tooling's `rehearsal` is the
scratch copy brought up once per session; these add what every scenario starts from)."""

from __future__ import annotations

import pytest
from release_tooling.rehearsal import commit_id


@pytest.fixture(scope="session")
def project(rehearsal, rehearsal_environment):
    """This repository's scratch copy, up (release-tooling's `rehearsal` fixture)."""
    before_up = rehearsal_environment.before_up["release"]
    assert before_up.returncode == 2 and "not up" in before_up.stdout, (
        before_up.stdout + before_up.stderr
    )
    plan_before_up = rehearsal_environment.before_up["plan"]  # 1: for plan, 2 means "changes"
    assert plan_before_up.returncode == 1 and "not up" in plan_before_up.stdout, (
        plan_before_up.stdout + plan_before_up.stderr
    )
    return rehearsal


@pytest.fixture(scope="session")
def released(project):
    """A first successful release (v1 everywhere), which the fault scenarios start from."""
    first = project.local("release", "--commit", commit_id("first"))
    assert first.returncode == 0, first.stdout
    return first
