"""The local environment: the endpoint, both Terraform roots applied to it, CI role credentials.

up applies terraform/bootstrap as the administrator, then terraform/ as the GitHub apply role
(assumed through STS with a GitHub-shaped OIDC token, as the deploy workflow does); plan runs as the
read-only plan role; down stops the endpoint and removes .local/.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass

from ..local_aws import process
from .common import BUILD_DIR, PLAN_DIR, REGION_FALLBACK, STATE_DIR, LocalError, package_module, say
from .terraform_roots import (
    BOOTSTRAP,
    MAIN,
    init_args,
    provider_line,
    remove_overrides,
    terraform,
    terraform_ok,
    terraform_outputs,
)

OIDC_ISSUER = "token.actions.githubusercontent.com"
# The GitHub job each CI role is assumed by (terraform/bootstrap/iam.tf trusts these subjects).
CI_ROLES = {
    "apply": ("apply_role_arn", "environment:production"),
    "plan": ("plan_role_arn", "pull_request"),
}
APPLY = ["apply", "-auto-approve", "-input=false", "-no-color"]


def github_oidc_token(repository: str, subject_suffix: str) -> str:
    """A token shaped like GitHub's OIDC token for one job (unsigned: nothing here can sign it).

    Claims per GitHub's "About security hardening with OpenID Connect": iss, aud (sts.amazonaws.com
    for aws-actions/configure-aws-credentials) and sub, e.g. repo:OWNER/REPO:environment:production.
    """

    def b64(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    claims = {
        "iss": f"https://{OIDC_ISSUER}",
        "aud": "sts.amazonaws.com",
        "sub": f"repo:{repository}:{subject_suffix}",
        "repository": repository,
    }
    return f"{b64({'alg': 'RS256', 'typ': 'JWT'})}.{b64(claims)}.unsigned-local-rehearsal"


@dataclass
class Env:
    endpoint: process.Endpoint
    outputs: dict

    @property
    def region(self) -> str:
        return self.outputs.get("aws_region") or REGION_FALLBACK

    def client(self, service: str):
        """A client with the administrator's credentials: a person looking at the console."""
        import boto3

        session = boto3.Session(region_name=self.region, **self.endpoint.admin_credentials)
        return session.client(service, endpoint_url=self.endpoint.url)

    def role_credentials(self, role: str) -> dict[str, str]:
        """Credentials of a GitHub CI role, obtained from STS as the workflow job does."""
        return assume_ci_role(self.endpoint, self.outputs["bootstrap"], role, self.region)

    def client_as(self, role: str, service: str):
        import boto3

        session = boto3.Session(region_name=self.region, **self.role_credentials(role))
        return session.client(service, endpoint_url=self.endpoint.url)


def assume_ci_role(
    endpoint: process.Endpoint, bootstrap: dict, role: str, region: str
) -> dict[str, str]:
    import boto3

    output, subject = CI_ROLES[role]
    sts = boto3.client(
        "sts", endpoint_url=endpoint.url, region_name=region, **endpoint.admin_credentials
    )
    token = github_oidc_token(bootstrap["github_repository"], subject)
    try:
        creds = sts.assume_role_with_web_identity(
            RoleArn=bootstrap[output],
            RoleSessionName=f"github-{role}",
            WebIdentityToken=token,
        )["Credentials"]
    except Exception as exc:  # noqa: BLE001 - botocore's ClientError: one line with the reason
        raise LocalError(
            f"assuming the GitHub {role} role {bootstrap[output]} as repo:"
            f"{bootstrap['github_repository']}:{subject} failed: {exc}"
        ) from None
    return {
        "aws_access_key_id": creds["AccessKeyId"],
        "aws_secret_access_key": creds["SecretAccessKey"],
        "aws_session_token": creds["SessionToken"],
    }


def require_env() -> Env:
    endpoint = process.find(STATE_DIR)
    outputs_file = STATE_DIR / "outputs.json"
    if endpoint is None or not outputs_file.exists():
        raise LocalError(
            "the local environment is not up: run `make local-up` (release-tooling local up) first"
        )
    return Env(endpoint, json.loads(outputs_file.read_text(encoding="utf-8")))


def cmd_up(args) -> int:
    existing = process.find(STATE_DIR)
    if existing is not None:
        raise LocalError(
            f"the local environment is already up (endpoint {existing.url}, pid {existing.pid}); "
            "use `make local-status`, or `make local-down` first to start afresh"
        )
    try:
        import moto  # noqa: F401
    except ImportError:
        raise LocalError(
            "moto is not installed in this Python; run `make setup` and use .venv/bin/python"
        ) from None
    init = init_args()  # checks terraform and the provider source before starting anything
    started = time.monotonic()
    process.stop(STATE_DIR)  # a crashed earlier run may have left a record behind
    for root in (MAIN, BOOTSTRAP):
        shutil.rmtree(root.data_dir, ignore_errors=True)
        root.state.unlink(missing_ok=True)
    (STATE_DIR / "iam-decisions.jsonl").unlink(missing_ok=True)
    iam_mode = os.environ.get("LOCAL_IAM") or "enforce"
    say(f"Starting the embedded AWS endpoint (LOCAL_IAM={iam_mode})...")
    endpoint = process.start(STATE_DIR, minute_seconds=args.minute_seconds, iam=iam_mode)
    say(f"  endpoint {endpoint.url} (pid {endpoint.pid}); log {STATE_DIR / 'endpoint.log'}")
    try:
        # terraform/ reads the zips for the first deployment; with no commit named, the manifest
        # records the zips' working-tree id (the one meaning of "no commit" in the package).
        manifest = package_module().build(BUILD_DIR, None)
        say(f"Built {len(manifest['artifacts'])} zips into {BUILD_DIR}")
        say(provider_line())
        admin = endpoint.admin_credentials
        say(
            "terraform apply terraform/bootstrap as the administrator (CI roles, boundary, OIDC "
            "provider; the state bucket's configuration is left out locally)"
        )
        terraform_ok(init, endpoint.url, admin, "init (bootstrap)", BOOTSTRAP)
        terraform_ok(APPLY, endpoint.url, admin, "apply (bootstrap)", BOOTSTRAP)
        bootstrap = terraform_outputs(endpoint.url, admin, BOOTSTRAP)
        region = (
            bootstrap.get("github_repository_variables", {}).get("AWS_REGION") or REGION_FALLBACK
        )
        apply_role = assume_ci_role(endpoint, bootstrap, "apply", region)
        say(f"terraform apply terraform/ as the GitHub apply role ({bootstrap['apply_role_arn']})")
        terraform_ok(init, endpoint.url, apply_role, "init", MAIN)
        terraform_ok(APPLY, endpoint.url, apply_role, "apply", MAIN)
        outputs = terraform_outputs(endpoint.url, apply_role, MAIN)
        outputs["bootstrap"] = bootstrap
        (STATE_DIR / "outputs.json").write_text(json.dumps(outputs, indent=2), encoding="utf-8")
    except BaseException:
        process.stop(STATE_DIR)
        raise
    say(f"Up in {time.monotonic() - started:.1f} s (IAM {iam_mode}). Next: make local-release")
    return 0


def cmd_down(args) -> int:
    was_up = process.stop(STATE_DIR)
    shutil.rmtree(STATE_DIR, ignore_errors=True)
    remove_overrides()
    say(
        "Stopped the local environment and removed .local/"
        if was_up
        else "Nothing was running; removed .local/"
    )
    return 0


def cmd_plan(args) -> int:
    """Plan terraform/ against the running endpoint. Right after `up` this must say "no changes":
    anything else is the endpoint reading back differently from AWS, or a real configuration change.
    """
    env = require_env()
    PLAN_DIR.mkdir(parents=True, exist_ok=True)
    for stale in PLAN_DIR.iterdir():  # never leave an older plan next to this run's outcome
        stale.unlink()
    plan_file = PLAN_DIR / "terraform.tfplan"
    variables = [f"-var={v}" for v in args.var or []]
    # As a pull request's plan job: the read-only plan role, and no state lock (a read-only plan
    # must not block, or be blocked by, a deploy).
    plan_role = env.role_credentials("plan")
    proc = terraform(
        [
            "plan",
            "-detailed-exitcode",
            "-input=false",
            "-no-color",
            "-lock=false",
            f"-out={plan_file}",
            *variables,
        ],
        env.endpoint.url,
        plan_role,
        capture=True,
    )
    (PLAN_DIR / "plan.txt").write_text(proc.stdout, encoding="utf-8")
    (PLAN_DIR / "plan.exitcode").write_text(f"{proc.returncode}\n", encoding="utf-8")
    sys.stdout.write(proc.stdout)
    if proc.returncode not in (0, 2):
        raise LocalError(
            f"terraform plan failed (exit {proc.returncode}):\n{proc.stderr.strip()}\n"
            f"(plan output: {PLAN_DIR / 'plan.txt'})"
        )
    shown = terraform(
        ["show", "-json", "-no-color", str(plan_file)], env.endpoint.url, plan_role, capture=True
    )
    if shown.returncode != 0:
        raise LocalError(f"terraform show -json failed: {shown.stderr.strip()}")
    (PLAN_DIR / "plan.json").write_text(shown.stdout, encoding="utf-8")
    if proc.returncode == 0:
        say("No changes: the local endpoint matches terraform/.")
    else:
        say(
            "Changes pending (exit 2): applying terraform/ would change the local environment "
            f"(see above). Plan: {plan_file}, {PLAN_DIR / 'plan.json'}"
        )
    return proc.returncode
