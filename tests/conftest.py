"""Fixtures for testing the template: bake projects with chosen options and inspect them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TEMPLATE_ROOT = Path(__file__).resolve().parent.parent

# Named combinations of options every test that loops over "all variants" uses.
COMBINATIONS = {
    "defaults": {},
    "canary": {"deployment_strategy": "Canary10Percent5Minutes"},
    "linear": {"deployment_strategy": "Linear10PercentEvery1Minute"},
    "all-at-once": {"deployment_strategy": "AllAtOnce"},
    "approval": {"manual_approval": "yes"},
    "python3.12": {"python_runtime": "python3.12"},
    "python3.13": {"python_runtime": "python3.13"},
    "email": {"notification_email": "ops@example.com"},
    # Every optional part on, and the longest slug the hook accepts (40): the baked project's own
    # tests apply it locally and check every AWS name against its service's limit.
    "everything": {
        "project_name": "Café Zürich Payments",
        "project_slug": "cafe-zurich-payments-settlements-ledgers",
        "manual_approval": "yes",
        "notification_email": "payments-team@example.org",
        "deployment_strategy": "Linear10PercentEvery1Minute",
        "python_runtime": "python3.13",
        "aws_region": "eu-central-1",
        "github_repository": "acme-corp/cafe-zurich-payments",
    },
}


@pytest.fixture
def bake(cookies):
    """Generate a project with the given options; fail the test with cookiecutter's error if it can't."""

    def _bake(**options: str) -> Path:
        result = cookies.bake(extra_context=options)
        if result.exception is not None:
            raise AssertionError(f"baking {options} failed: {result.exception!r}")
        assert result.exit_code == 0
        return Path(result.project_path)

    return _bake


def run_cookiecutter_cli(output_dir: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """Run cookiecutter the way a user does, without prompts, capturing what they would see."""
    return subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(output_dir), str(TEMPLATE_ROOT), *options],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
