"""Every option combination renders a complete, well-formed project."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from conftest import COMBINATIONS

TOP_LEVEL = {
    ".github",
    "terraform",
    "lambdas",
    "state_machine.asl.json",
    "scripts",
    "requirements",
    "tests",
    "README.md",
    "Makefile",
    "pyproject.toml",
    ".pre-commit-config.yaml",
    ".tflint.hcl",
    ".checkov.yaml",
    ".iam-policy-lint.yaml",
    ".gitignore",
}
TERRAFORM_FILES = {
    "versions.tf",
    "providers.tf",
    "variables.tf",
    "outputs.tf",
    "artifacts.tf",
    "iam.tf",
    "lambda.tf",
    "codedeploy.tf",
    "pipeline.tf",
    "step-functions.tf",
    "monitoring.tf",
    ".terraform.lock.hcl",
}
PIPELINE_LAMBDAS = {"validate_artifact", "deploy", "deployment_status", "smoke_tests", "rollback"}
APPROVAL_ONLY = {
    "lambdas/approval_notifier/handler.py",
    "tests/test_approval_notifier.py",
    ".github/workflows/approve-release.yml",
}
UNRENDERED = re.compile(r"\{\{\s*cookiecutter|\{%|\{#|cookiecutter\.")


def project_files(project: Path) -> list[Path]:
    return [path for path in project.rglob("*") if path.is_file()]


@pytest.mark.parametrize("options", COMBINATIONS.values(), ids=COMBINATIONS.keys())
def test_layout(bake, options):
    project = bake(**options)

    assert {path.name for path in project.iterdir()} == TOP_LEVEL
    assert TERRAFORM_FILES <= {path.name for path in (project / "terraform").iterdir()}
    assert (project / "terraform/bootstrap/.terraform.lock.hcl").is_file()
    assert (project / "lambdas/app/handler.py").is_file()
    for name in PIPELINE_LAMBDAS:
        assert (project / "lambdas" / name / "handler.py").is_file(), name
    for workflow in ("pull-request.yml", "deploy.yml", "drift.yml", "template-drift.yml"):
        assert (project / ".github/workflows" / workflow).is_file(), workflow
    approval = options.get("manual_approval") == "yes"
    for relative in APPROVAL_ONLY:
        assert (project / relative).exists() is approval, relative


@pytest.mark.parametrize("options", COMBINATIONS.values(), ids=COMBINATIONS.keys())
def test_nothing_left_unrendered_and_data_files_parse(bake, options):
    project = bake(**options)

    for path in project_files(project):
        text = path.read_text(encoding="utf-8")
        match = UNRENDERED.search(text)
        assert match is None, f"{path.relative_to(project)} still holds template syntax: {match.group(0)!r}"
        relative = path.relative_to(project)
        # An empty plan fixture stands for a failed `terraform show -json`; everything else must parse.
        if relative.parts[:2] == ("tests", "fixtures") and not text:
            continue
        try:
            if path.suffix == ".json":
                json.loads(text)
            elif path.suffix in (".yml", ".yaml"):
                yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as error:
            raise AssertionError(f"{relative} does not parse: {error}") from error


@pytest.mark.parametrize("options", COMBINATIONS.values(), ids=COMBINATIONS.keys())
def test_options_reach_terraform_defaults(bake, options):
    project = bake(**options)
    variables = (project / "terraform/variables.tf").read_text()
    context = {
        "aws_region": "us-east-2",
        "python_runtime": "python3.12",
        "deployment_strategy": "Canary10Percent5Minutes",
        "notification_email": "",
        **options,
    }

    for name in ("aws_region", "python_runtime", "deployment_strategy", "notification_email"):
        block = re.search(rf'variable "{name}" \{{.*?\n\}}', variables, re.S)
        assert block, f"variable {name} missing"
        assert f'default     = "{context[name]}"' in block.group(0) or f'default = "{context[name]}"' in block.group(
            0
        ), block.group(0)
    approval = re.search(r'variable "manual_approval" \{.*?\n\}', variables, re.S).group(0)
    expected = "true" if options.get("manual_approval") == "yes" else "false"
    assert re.search(rf"default\s+=\s+{expected}\b", approval), approval


def test_state_machine_gate_follows_manual_approval(bake):
    without = json.loads((bake() / "state_machine.asl.json").read_text())
    with_gate = json.loads((bake(manual_approval="yes") / "state_machine.asl.json").read_text())

    assert "ApproveProduction" not in without["States"]
    assert "ApproveProduction" in with_gate["States"]
    assert with_gate["States"]["ApproveProduction"]["Resource"].endswith(".waitForTaskToken")


def test_slug_is_derived_from_name(bake):
    project = bake(project_name="Café Zürich Payments")

    assert project.name == "cafe-zurich-payments"
    assert "# Café Zürich Payments" in (project / "README.md").read_text(encoding="utf-8")


def test_awkward_project_name_is_kept_verbatim(bake):
    # Quotes, backslashes and non-ASCII pass through to the docs untouched; '{{' reaches the
    # project only when escaped, since cookiecutter renders every value as Jinja first.
    name = 'Bob\'s "Ørders" \\ {{ "{{" }} API'
    project = bake(project_name=name, project_slug="bobs-orders-api")

    readme = (project / "README.md").read_text(encoding="utf-8")
    assert 'Bob\'s "Ørders" \\ {{ API' in readme
