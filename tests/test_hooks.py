"""Unsupported input fails in the pre-generation hook with one field-named ERROR line and leaves nothing."""

from __future__ import annotations

import pytest

from conftest import run_cookiecutter_cli

BAD_INPUTS = {
    "slug-with-space": ("project_slug=orders service", "project_slug"),
    "slug-uppercase": ("project_slug=Orders", "project_slug"),
    "slug-leading-digit": ("project_slug=2fa-service", "project_slug"),
    "slug-quote": ("project_slug=orders'svc", "project_slug"),
    "slug-backslash": ("project_slug=orders\\svc", "project_slug"),
    "slug-trailing-hyphen": ("project_slug=orders-", "project_slug"),
    "slug-too-long": ("project_slug=" + "a" * 41, "project_slug"),
    "name-leads-to-long-slug": ("project_name=" + "Payments " * 6, "project_slug"),
    "name-with-leading-digit": ("project_name=3D Printing Service", "project_slug"),
    "empty-name": ("project_name= ", "project_name"),
    "region-made-up": ("aws_region=us-central-9", "aws_region"),
    "region-uppercase": ("aws_region=US-EAST-1", "aws_region"),
    "repository-without-owner": ("github_repository=orders-service", "github_repository"),
    "repository-extra-part": ("github_repository=a/b/c", "github_repository"),
    "repository-bad-owner": ("github_repository=-acme/orders", "github_repository"),
    "email-without-domain": ("notification_email=ops@", "notification_email"),
    "email-with-space": ("notification_email=ops team@example.com", "notification_email"),
}


@pytest.mark.parametrize(("option", "field"), BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_is_rejected_before_anything_is_written(tmp_path, option, field):
    result = run_cookiecutter_cli(tmp_path, option)

    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith(f"ERROR: {field}: ")]
    assert len(errors) == 1, result.stderr
    assert list(tmp_path.iterdir()) == []


def test_longest_accepted_slug_bakes(tmp_path):
    result = run_cookiecutter_cli(tmp_path, "project_slug=" + "a" * 40)

    assert result.returncode == 0, result.stderr
    assert (tmp_path / ("a" * 40) / "terraform").is_dir()


def test_unsupported_choice_is_refused(tmp_path):
    result = run_cookiecutter_cli(tmp_path, "python_runtime=python3.9")

    assert result.returncode != 0
    assert "python3.9" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_unescaped_template_syntax_in_name_fails_cleanly(tmp_path):
    result = run_cookiecutter_cli(tmp_path, "project_name=Orders {{ broken")

    # cookiecutter renders every value as Jinja before any hook runs, so it reports this itself.
    assert result.returncode != 0
    assert "TemplateSyntaxError" in result.stderr
    assert list(tmp_path.iterdir()) == []
