"""Unsupported input fails in the pre-generation hook with one field-named ERROR line and leaves nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import pytest

from conftest import TEMPLATE_ROOT, run_cookiecutter_cli

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
    # Accepted before, broke the generated files:
    "name-with-del": ("project_name=Orders\x7fService", "project_name"),  # breaks pyproject.toml
    "name-with-nel": ("project_name=Orders\x85Service", "project_name"),
    "name-with-zero-width-space": ("project_name=Orders\u200bService", "project_name"),
    "name-with-bidi-override": ("project_name=Orders \u202eecivreS", "project_name"),
    "name-invisible-only": ("project_name=\u3164\u3164", "project_name"),
    "email-with-hcl-interpolation": ("notification_email=${var.x}@example.com", "notification_email"),
    "email-with-hcl-directive": ("notification_email=ops%{if true}@example.com", "notification_email"),
    "slug-reserved-prefix-sthree": ("project_slug=sthree", "project_slug"),
    "slug-reserved-prefix-sthree-dash": ("project_slug=sthree-orders", "project_slug"),
    "slug-reserved-prefix-demo": ("project_slug=amzn-s3-demo-orders", "project_slug"),
    "slug-reserved-suffix-s3alias": ("project_slug=orders-s3alias", "project_slug"),
    "repository-with-git-suffix": ("github_repository=acme/orders.git", "github_repository"),
}


@pytest.mark.parametrize(("option", "field"), BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_is_rejected_before_anything_is_written(tmp_path, option, field):
    result = run_cookiecutter_cli(tmp_path, option)

    assert result.returncode != 0
    # Slugs that cannot name a directory are refused by local_extensions.py (on stdout, before
    # cookiecutter creates the project directory); everything else by the hook (on stderr).
    output = result.stdout + result.stderr
    errors = [line for line in output.splitlines() if line.startswith(f"ERROR: {field}: ")]
    assert len(errors) == 1, output
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

    # cookiecutter renders every value as Jinja before any hook runs; local_extensions.py turns its
    # syntax error into one line.
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert [line for line in output.splitlines() if line.startswith("ERROR: ")] == [
        "ERROR: the answer 'Orders {{ broken' is not valid: cookiecutter reads '{{', '{%' and "
        "'{#' in any answer as Jinja template syntax (unexpected end of template, expected 'end "
        "of print statement'.); remove them, or write a literal brace pair as {{ '{{' }}. "
        "Nothing was created."
    ]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "slug", ["../escaped", "../../escaped2", "a/b", "a\\b", "..", ".", "", "ABSOLUTE", "x/../../y"]
)
def test_slug_that_is_a_path_creates_nothing_anywhere(tmp_path, slug):
    """cookiecutter creates the project directory (and its parents) before the pre-gen hook runs."""
    cwd = tmp_path / "deep" / "cwd"
    cwd.mkdir(parents=True)
    slug = str(tmp_path / "absolute") if slug == "ABSOLUTE" else slug
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    result = subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", "-o", "out", str(TEMPLATE_ROOT),
         f"project_slug={slug}"],
        cwd=cwd, capture_output=True, text=True, check=False, timeout=120,
    )
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("ERROR: project_slug: ")]
    assert len(errors) == 1, output
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_slug_default_from_any_name_is_a_plain_directory(tmp_path):
    result = run_cookiecutter_cli(tmp_path, "project_name=Orders/../../Service")

    assert result.returncode == 0, result.stdout + result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["orders-service"]


# ------------------------------------------------------------ generated Makefile: approve/reject


@pytest.fixture(scope="module")
def approval_project(tmp_path_factory):
    out = tmp_path_factory.mktemp("approval")
    result = run_cookiecutter_cli(out, "manual_approval=yes")
    assert result.returncode == 0, result.stdout + result.stderr
    return out / "orders-service"


HOSTILE_TEXT = (
    "$(shell touch PWNED1) `touch PWNED2` $$(touch PWNED3) \"; touch PWNED4; \" "
    "'; touch PWNED5; ' --execution other\nline two"
)


@pytest.mark.parametrize("text", [HOSTILE_TEXT, HOSTILE_TEXT.split("\n")[0]], ids=["lines", "line"])
@pytest.mark.parametrize("via", ["command-line", "environment"])
def test_reject_reason_and_execution_reach_the_script_verbatim(
    approval_project, tmp_path, via, text
):
    recorder = tmp_path / "record.py"
    recorder.write_text(
        "import json, sys\n"
        f"open({str(tmp_path / 'argv.json')!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
    )
    env = {**os.environ}
    args = ["make", "-s", "-o", ".venv/.installed", "reject", f"TOOL={sys.executable} {recorder}"]
    if via == "command-line":
        args += ["EXECUTION=run-1 $(shell touch PWNED0)", f"REASON={text}"]
    else:
        env.update(EXECUTION="run-1 $(shell touch PWNED0)", REASON=text)
    result = subprocess.run(
        args, cwd=approval_project, env=env, capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert list(approval_project.glob("PWNED*")) == [] and list(tmp_path.glob("PWNED*")) == []
    argv = json.loads((tmp_path / "argv.json").read_text())
    assert argv == [
        "approve",
        "reject",
        "--execution=run-1 $(shell touch PWNED0)",
        "--reason=" + text.replace("\n", " "),
    ]


def test_reject_without_reason_names_it(approval_project):
    result = subprocess.run(
        ["make", "-s", "-o", ".venv/.installed", "reject", "EXECUTION=x", "REASON=", "TOOL=false"],
        cwd=approval_project, capture_output=True, text=True, check=False, timeout=60,
    )
    assert result.returncode != 0
    assert 'REASON is not set: pass REASON="why the release is rejected"' in result.stderr
