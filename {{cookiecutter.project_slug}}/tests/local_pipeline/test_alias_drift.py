"""Rehearsal: the drift job's alias check, as the GitHub plan role under IAM enforcement.

Terraform does not own which version an alias serves, so `terraform plan` cannot see a version set
by hand; `release-tooling alias-drift` (make alias-drift in the drift job, make local-drift here)
compares every release alias with the newest successful release.
"""

from __future__ import annotations

import io
import shutil
import zipfile

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("terraform") is None,
        reason="terraform is not installed (needed by release-tooling local up)",
    ),
]


def hand_built_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return {}\n")
    return buffer.getvalue()


def test_a_version_set_by_hand_is_drift_and_a_release_puts_it_back(project, released):
    clean = project.local("drift")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "Aliases match the last successful release" in clean.stdout

    # Someone hotfixes production in the console: new code, a version, the alias moved.
    lam = project.admin_client("lambda")
    function = project.outputs()["app_function_name"]
    before = lam.get_alias(FunctionName=function, Name="production")["FunctionVersion"]
    lam.update_function_code(FunctionName=function, ZipFile=hand_built_zip())
    hotfix = lam.publish_version(FunctionName=function, Description="console hotfix")["Version"]
    lam.update_alias(FunctionName=function, Name="production", FunctionVersion=hotfix)
    try:
        drifted = project.local("drift")
        assert drifted.returncode == 2, drifted.stdout + drifted.stderr
        hand_made = f"serves version {hotfix} (described 'console hotfix', not a release)"
        assert f"`{function}:production` {hand_made}" in drifted.stdout
        assert f"`{function}:staging`" not in drifted.stdout
    finally:
        lam.update_alias(FunctionName=function, Name="production", FunctionVersion=before)
    assert project.local("drift").returncode == 0
