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


def pytest_unconfigure(config):
    for scratch in _SCRATCH:
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture(autouse=True)
def aws_env(fake_aws_credentials) -> None:
    """Fake credentials for every test (the plugin's fixture), so none reaches real AWS."""


@pytest.fixture
def aws():
    """moto's in-memory AWS for the duration of one test."""
    from moto import mock_aws

    with mock_aws():
        yield
