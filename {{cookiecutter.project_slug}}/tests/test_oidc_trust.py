"""The OIDC trust policies terraform/bootstrap renders: who may assume the CI roles.

Renders the real policy documents with `terraform plan` of a copy of terraform/bootstrap
against a moto server on 127.0.0.1 (an override file points the provider there), then reads
each role's planned assume_role_policy from `terraform show -json`. No AWS account needed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import urllib.request
from pathlib import Path

import boto3
import pytest

ROOT = Path(__file__).resolve().parent.parent
BOOTSTRAP = ROOT / "terraform" / "bootstrap"
REPOSITORY = "{{ cookiecutter.github_repository }}"
PROJECT = "{{ cookiecutter.project_slug }}"
OIDC_HOST = "token.actions.githubusercontent.com"

OVERRIDE = """
provider "aws" {
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  s3_use_path_style           = true
  endpoints {
    iam = "ENDPOINT"
    kms = "ENDPOINT"
    s3  = "ENDPOINT"
    sts = "ENDPOINT"
  }
}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def planned_roles(tmp_path_factory) -> dict[str, dict]:
    return plan_roles(tmp_path_factory)


@pytest.fixture(scope="module")
def planned_roles_by_id(tmp_path_factory) -> dict[str, dict]:
    return plan_roles(
        tmp_path_factory, '-var=github_oidc_subject_ids={owner_id="1111",repository_id="2222"}'
    )


def plan_roles(tmp_path_factory, *variables: str) -> dict[str, dict]:
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform is not on PATH (install Terraform >= 1.10 to render the policies)")
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # moto keeps one in-process state for every server in this pytest process: start empty, or
    # what another test module created (e.g. the account's OIDC provider) leaks in.
    reset = f"{endpoint}/moto-api/reset"  # the loopback server started above: S310 does not apply
    urllib.request.urlopen(urllib.request.Request(reset, method="POST"), timeout=30)  # noqa: S310
    try:
        # An existing provider is looked up (create_oidc_provider=false), so its ARN is known at
        # plan time and the trust documents are fully rendered in the plan.
        iam = boto3.client(
            "iam",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        # moto's backends are per process: a second plan in this module finds the provider.
        with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
            iam.create_open_id_connect_provider(
                Url=f"https://{OIDC_HOST}",
                ClientIDList=["sts.amazonaws.com"],
                ThumbprintList=["6938fd4d98bab03faadb97b34396831e3780aea1"],
            )
        # The bootstrap takes its names from ../names (shared with terraform/): copy both.
        work = tmp_path_factory.mktemp("roots") / "bootstrap"
        work.mkdir()
        shutil.copytree(BOOTSTRAP.parent / "names", work.parent / "names")
        for path in BOOTSTRAP.iterdir():
            if path.is_file() and (path.suffix == ".tf" or path.name == ".terraform.lock.hcl"):
                shutil.copy(path, work / path.name)
        (work / "moto_override.tf").write_text(OVERRIDE.replace("ENDPOINT", endpoint))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TF_VAR_"))}
        env.update({"TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"})
        init = [terraform, "init", "-input=false", "-no-color", "-backend=false"]
        if os.environ.get("TF_PROVIDER_MIRROR"):
            init.append(f"-plugin-dir={os.environ['TF_PROVIDER_MIRROR']}")

        def run(*args: str) -> str:
            proc = subprocess.run(
                list(args),
                cwd=work,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            assert proc.returncode == 0, (
                f"{' '.join(args[:2])} failed:\n{proc.stdout}\n{proc.stderr}"
            )
            return proc.stdout

        run(*init)
        run(
            terraform,
            "plan",
            "-input=false",
            "-no-color",
            "-var=create_oidc_provider=false",
            *variables,
            "-out=bootstrap.tfplan",
        )
        plan = json.loads(run(terraform, "show", "-json", "bootstrap.tfplan"))
    finally:
        server.stop()
    roles = {
        rc["name"]: rc["change"]["after"]
        for rc in plan["resource_changes"]
        if rc["type"] == "aws_iam_role" and rc["mode"] == "managed"
    }
    assert set(roles) == set(EXPECTED_SUBJECTS), f"unexpected roles {sorted(roles)}"
    return roles


def trust(roles: dict[str, dict], name: str) -> list[dict]:
    document = roles[name]["assume_role_policy"]
    assert isinstance(document, str), f"{name} trust policy not known at plan time"
    statements = json.loads(document)["Statement"]
    return statements if isinstance(statements, list) else [statements]


def conditions(statement: dict) -> dict[tuple[str, str], list[str]]:
    flat = {}
    for operator, pairs in statement.get("Condition", {}).items():
        for key, values in pairs.items():
            flat[(operator, key)] = values if isinstance(values, list) else [values]
    return flat


def test_roles_are_named_after_the_project(planned_roles):
    assert planned_roles["plan"]["name"] == f"{PROJECT}-github-plan"
    assert planned_roles["apply"]["name"] == f"{PROJECT}-github-apply"
    if APPROVAL:
        assert planned_roles["approve"]["name"] == f"{PROJECT}-github-approve"


# Exact subjects each role may be assumed from: the read-only plan role serves pull requests and
# the scheduled drift check on main (repo:OWNER/REPO:ref:refs/heads/main); only the production
# environment, with its required reviewers, reaches the apply role.
# With manual approval, the Approve release workflow's release-approval environment (its reviewers
# are the approvers) reaches the approve role, and nothing else does.
APPROVAL = (ROOT / "lambdas" / "approval_notifier").is_dir()
EXPECTED_SUBJECTS = {
    "plan": {f"repo:{REPOSITORY}:pull_request", f"repo:{REPOSITORY}:ref:refs/heads/main"},
    "apply": {f"repo:{REPOSITORY}:environment:production"},
    **({"approve": {f"repo:{REPOSITORY}:environment:release-approval"}} if APPROVAL else {}),
}


@pytest.mark.parametrize("role", sorted(EXPECTED_SUBJECTS))
def test_trust_is_web_identity_from_github_for_exact_subjects(planned_roles, role):
    statements = [s for s in trust(planned_roles, role) if s["Sid"] != "GitHubActionsMergeQueue"]
    assert len(statements) == 1
    statement = statements[0]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"]["Federated"].endswith(f":oidc-provider/{OIDC_HOST}")
    found = conditions(statement)
    assert found[("StringEquals", f"{OIDC_HOST}:aud")] == ["sts.amazonaws.com"]
    subjects = set(found[("StringEquals", f"{OIDC_HOST}:sub")])
    assert subjects == EXPECTED_SUBJECTS[role]
    # Nothing looser next to it: no StringLike wildcards that would admit forks or branches.
    assert not [key for key in found if key[0] != "StringEquals"]
    assert not any("*" in value for values in found.values() for value in values)


def test_only_the_plan_role_trusts_the_merge_queue_and_only_its_main_branches(planned_roles):
    """merge_group runs plan the merged result on gh-readonly-queue/main/... branches."""
    for role in EXPECTED_SUBJECTS:
        queue = [s for s in trust(planned_roles, role) if s["Sid"] == "GitHubActionsMergeQueue"]
        assert bool(queue) is (role == "plan"), role
    (statement,) = [
        s for s in trust(planned_roles, "plan") if s["Sid"] == "GitHubActionsMergeQueue"
    ]
    found = conditions(statement)
    assert found[("StringEquals", f"{OIDC_HOST}:aud")] == ["sts.amazonaws.com"]
    assert found[("StringLike", f"{OIDC_HOST}:sub")] == [
        f"repo:{REPOSITORY}:ref:refs/heads/gh-readonly-queue/main/*"
    ]
    assert set(found) == {("StringEquals", f"{OIDC_HOST}:aud"), ("StringLike", f"{OIDC_HOST}:sub")}


def test_apply_role_is_not_reachable_from_pull_requests(planned_roles):
    subjects = conditions(trust(planned_roles, "apply")[0])[("StringEquals", f"{OIDC_HOST}:sub")]
    assert all(":pull_request" not in subject for subject in subjects)
    plan_subjects = conditions(trust(planned_roles, "plan")[0])[
        ("StringEquals", f"{OIDC_HOST}:sub")
    ]
    assert all(":environment:production" not in subject for subject in plan_subjects)


def test_subjects_can_name_the_immutable_owner_and_repository_ids(planned_roles_by_id):
    """A renamed or deleted owner's name can be registered again by someone else; its ids cannot.
    With github_oidc_subject_ids set, the roles trust the subject GitHub issues once the
    repository's OIDC subject template includes repository_owner_id and repository_id."""
    prefix = "repository_owner_id:1111:repository_id:2222"
    expected = {
        "plan": {f"{prefix}:pull_request", f"{prefix}:ref:refs/heads/main"},
        "apply": {f"{prefix}:environment:production"},
        **({"approve": {f"{prefix}:environment:release-approval"}} if APPROVAL else {}),
    }
    for role, subjects in expected.items():
        found = conditions(trust(planned_roles_by_id, role)[0])
        assert set(found[("StringEquals", f"{OIDC_HOST}:sub")]) == subjects
        assert not any(REPOSITORY in value for values in found.values() for value in values)
