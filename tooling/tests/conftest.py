"""The package's tests run against a repository baked from this template with its defaults.

The bake happens once, before any test module imports the package (which resolves the repository
it works on at import), and RELEASE_PROJECT_ROOT points the package at it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

TOOLING = Path(__file__).resolve().parent.parent
TEMPLATE = TOOLING.parent
REGION = "us-east-1"
_SCRATCH: list[Path] = []


def bake_template(output: Path, *options: str) -> Path:
    """A repository from the template next to this package, as a user bakes it."""
    subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(output), str(TEMPLATE)]
        + list(options),
        check=True,
        capture_output=True,
        text=True,
    )
    (baked,) = [path for path in output.iterdir() if path.is_dir()]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=baked, check=True)
    return baked


def pytest_configure(config):
    if not os.environ.get("RELEASE_PROJECT_ROOT"):
        scratch = Path(tempfile.mkdtemp(prefix="tooling-tests-"))
        _SCRATCH.append(scratch)
        # Every optional part on (the approval gate, notifications): the package serves them all.
        baked = bake_template(scratch, "manual_approval=yes", "notification_email=ops@example.com")
        os.environ["RELEASE_PROJECT_ROOT"] = str(baked)
    sys.path.insert(0, str(Path(__file__).resolve().parent / "local_aws"))
    # Tests that run terraform use the provider source the runner picks (a mirror, else registry).
    from release_tooling import terraform as runner

    if not os.environ.get("TF_PROVIDER_MIRROR"):
        mirror, _ = runner.provider_source(os.environ)
        if mirror:
            os.environ["TF_PROVIDER_MIRROR"] = mirror


def pytest_unconfigure(config):
    for scratch in _SCRATCH:
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials so no test can ever reach a real AWS account."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)


@pytest.fixture
def aws():
    """moto's in-memory AWS for the duration of one test."""
    from moto import mock_aws

    with mock_aws():
        yield
