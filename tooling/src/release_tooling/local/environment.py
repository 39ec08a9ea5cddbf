"""The local environment: the endpoint, both Terraform roots applied to it, CI role credentials.

up applies terraform/bootstrap as the administrator, then terraform/ as the GitHub apply role
(assumed through STS with a GitHub-shaped OIDC token, as the deploy workflow does); plan runs as the
read-only plan role; down stops the endpoint and removes .local/.

A cold up saves a snapshot of the applied environment; the next up of unchanged inputs restores
it instead of applying (snapshot.py): warm, in seconds. `up --cold` applies regardless; `down`
keeps the snapshots, `down --purge` deletes them.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..local_aws import process
from . import snapshot
from .common import (
    BUILD_DIR,
    PLAN_DIR,
    REGION_FALLBACK,
    STATE_DIR,
    LocalError,
    package_module,
    say,
    short,
)
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
    # manual_approval only: the Approve release workflow's job in the release-approval environment.
    "approve": ("approve_role_arn", "environment:release-approval"),
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
    outputs_file = OUTPUTS_FILE
    if endpoint is None or not outputs_file.exists():
        raise LocalError(
            "the local environment is not up: run `make local-up` (release-tooling local up) first"
        )
    return Env(endpoint, json.loads(outputs_file.read_text(encoding="utf-8")))


OUTPUTS_FILE = STATE_DIR / "outputs.json"
# What a snapshot keeps besides the endpoint's state: both roots' Terraform state and the outputs.
SNAPSHOT_FILES = {
    "terraform.tfstate": MAIN.state,
    "bootstrap.tfstate": BOOTSTRAP.state,
    "outputs.json": OUTPUTS_FILE,
}


def _clear_applied_state() -> None:
    for root in (MAIN, BOOTSTRAP):
        shutil.rmtree(root.data_dir, ignore_errors=True)
        root.state.unlink(missing_ok=True)
    OUTPUTS_FILE.unlink(missing_ok=True)
    (STATE_DIR / "iam-decisions.jsonl").unlink(missing_ok=True)


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
    _clear_applied_state()
    iam_mode = os.environ.get("LOCAL_IAM") or "enforce"
    # terraform/ reads the zips for the first deployment; with no commit named, the manifest
    # records the zips' working-tree id (the one meaning of "no commit" in the package).
    packaging = package_module()
    try:
        manifest = packaging.build(BUILD_DIR, None)
    except packaging.PackagingError as exc:
        raise LocalError(str(exc)) from None
    say(f"Built {len(manifest['artifacts'])} zips into {BUILD_DIR}")
    described = snapshot.inputs(manifest)
    key = snapshot.key_of(described)
    found = None
    if getattr(args, "cold", False):
        say("--cold: applying both Terraform roots from scratch")
    else:
        try:
            found = snapshot.lookup(key)
        except snapshot.SnapshotRefused as exc:
            say(f"Snapshot refused: {exc}; taking the cold path")
        if found is None:
            say(f"No snapshot of these inputs ({key[:12]}) yet: cold apply, snapshot saved after")
    if found is not None:
        try:
            endpoint = warm_up(found, init, args.minute_seconds, iam_mode)
        except (LocalError, process.EndpointError, OSError) as exc:
            process.stop(STATE_DIR)
            _clear_applied_state()
            say(f"Snapshot {key[:12]} not restored ({short(exc)}); taking the cold path")
        except BaseException:  # interrupted: never leave a half-restored environment behind
            process.stop(STATE_DIR)
            _clear_applied_state()
            raise
        else:
            say(
                f"Up in {time.monotonic() - started:.1f} s from snapshot {key[:12]} (warm; IAM "
                f"{iam_mode}; endpoint {endpoint.url}, pid {endpoint.pid}). "
                "Next: make local-release"
            )
            return 0
    endpoint = cold_up(init, args.minute_seconds, iam_mode)
    applied = time.monotonic() - started
    try:
        saved = snapshot.save(endpoint, key, described, SNAPSHOT_FILES)
        say(f"Saved snapshot {key[:12]} ({saved.meta['save_seconds']} s): the next up is warm")
    except (process.EndpointError, OSError) as exc:
        say(f"Snapshot not saved ({short(exc)}); the next up is cold again")
    say(f"Up in {applied:.1f} s (cold; IAM {iam_mode}). Next: make local-release")
    return 0


class BackgroundInit:
    """`terraform init` of one root on a thread: it reads neither the endpoint nor credentials
    (its override, with placeholders, exists only for the call)."""

    PLACEHOLDER = {"aws_access_key_id": "init", "aws_secret_access_key": "init"}

    def __init__(self, init: list[str], root) -> None:
        self.result: list = []
        self.thread = threading.Thread(
            target=self._run, args=(init, root), name=f"terraform-init-{root.name}", daemon=True
        )
        self.thread.start()

    def _run(self, init: list[str], root) -> None:
        try:
            self.result.append(terraform(init, "http://127.0.0.1:9", self.PLACEHOLDER, True, root))
        except BaseException as exc:  # noqa: BLE001 - reported by wait(), on the caller's thread
            self.result.append(exc)

    def wait(self, what: str) -> None:
        """Join; raise what init raised, or one line with its output when it failed."""
        self.thread.join()
        outcome = self.result[0] if self.result else LocalError(f"terraform {what} did not run")
        if isinstance(outcome, BaseException):
            raise outcome
        if outcome.returncode != 0:
            log = STATE_DIR / "terraform.log"
            with log.open("a", encoding="utf-8") as fh:
                fh.write((outcome.stdout or "") + (outcome.stderr or ""))
            raise LocalError(
                f"terraform {what} failed: {short(outcome.stderr or outcome.stdout)} "
                f"(full output: {log})"
            )


def cold_up(init: list[str], minute_seconds: float, iam_mode: str) -> process.Endpoint:
    """Start an empty endpoint and apply both roots to it."""
    say(f"Starting the embedded AWS endpoint (LOCAL_IAM={iam_mode})...")
    # Both roots initialise while the endpoint starts and the bootstrap applies: init reads
    # neither (a few seconds each off the cold path).
    bootstrap_initialised = BackgroundInit(init, BOOTSTRAP)
    main_initialised = BackgroundInit(init, MAIN)
    endpoint = process.start(STATE_DIR, minute_seconds=minute_seconds, iam=iam_mode)
    say(f"  endpoint {endpoint.url} (pid {endpoint.pid}); log {STATE_DIR / 'endpoint.log'}")
    try:
        say(provider_line())
        admin = endpoint.admin_credentials
        say(
            "terraform apply terraform/bootstrap as the administrator (CI roles, boundary, OIDC "
            "provider; the state bucket's configuration is left out locally)"
        )
        bootstrap_initialised.wait("init (bootstrap)")
        terraform_ok(APPLY, endpoint.url, admin, "apply (bootstrap)", BOOTSTRAP)
        bootstrap = terraform_outputs(endpoint.url, admin, BOOTSTRAP)
        region = (
            bootstrap.get("github_repository_variables", {}).get("AWS_REGION") or REGION_FALLBACK
        )
        apply_role = assume_ci_role(endpoint, bootstrap, "apply", region)
        say(f"terraform apply terraform/ as the GitHub apply role ({bootstrap['apply_role_arn']})")
        main_initialised.wait("init")
        terraform_ok(APPLY, endpoint.url, apply_role, "apply", MAIN)
        outputs = terraform_outputs(endpoint.url, apply_role, MAIN)
        outputs["bootstrap"] = bootstrap
        OUTPUTS_FILE.write_text(json.dumps(outputs, indent=2), encoding="utf-8")
    except BaseException:
        process.stop(STATE_DIR)
        raise
    return endpoint


def warm_up(
    found: snapshot.Snapshot, init: list[str], minute_seconds: float, iam_mode: str
) -> process.Endpoint:
    """Start the endpoint from a snapshot and put its Terraform state in place.

    All or nothing: the files are staged in a temporary directory and moved into .local/ only once
    the endpoint answers with the state loaded and terraform/ is initialised; on any failure the
    caller stops the endpoint and clears .local/ before taking the cold path.
    """
    snapshot.verify(found)
    say(f"Restoring snapshot {found.key[:12]} (made {found.meta['created']}; LOCAL_IAM={iam_mode})")
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".restoring-", dir=STATE_DIR))
    try:
        for name in (snapshot.STATE_FILE, *SNAPSHOT_FILES):
            shutil.copy2(found.file(name), staging / name)
        # terraform init runs while the endpoint loads the state.
        initialised = BackgroundInit(init, MAIN)
        endpoint = process.start(
            STATE_DIR,
            minute_seconds=minute_seconds,
            iam=iam_mode,
            restore=staging / snapshot.STATE_FILE,
        )
        initialised.wait("init")
        if endpoint.control("GET", "health").get("restored") is not True:
            raise LocalError("the endpoint did not report the snapshot as restored")
        for name, target in SNAPSHOT_FILES.items():
            if target != OUTPUTS_FILE:
                os.replace(staging / name, target)
        os.replace(staging / "outputs.json", OUTPUTS_FILE)  # last: the environment is now up
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return endpoint


def cmd_down(args) -> int:
    was_up = process.stop(STATE_DIR)
    shutil.rmtree(STATE_DIR, ignore_errors=True)
    remove_overrides()
    say(
        "Stopped the local environment and removed .local/"
        if was_up
        else "Nothing was running; removed .local/"
    )
    if getattr(args, "purge", False):
        removed = snapshot.purge()
        say(f"Purged {removed} snapshot(s) from {snapshot.root_dir()}: the next up is cold")
    elif snapshot.root_dir().is_dir():
        say(f"Kept the snapshots in {snapshot.root_dir()} (`local down --purge` removes them)")
    return 0


def cmd_apply(args) -> int:
    """Apply what changed in terraform/bootstrap and terraform/ to the running environment, as a
    cold `up` applies them (the bootstrap as the administrator, terraform/ as the GitHub apply
    role), keeping its releases: minutes faster than `down` + a cold `up` after adding a function
    or changing a policy. No snapshot is saved (this state carries releases, not a fresh apply)."""
    env = require_env()
    started = time.monotonic()
    init = init_args()
    packaging = package_module()
    try:
        packaging.build(BUILD_DIR, None)  # terraform/ reads the zips
    except packaging.PackagingError as exc:
        raise LocalError(str(exc)) from None
    bootstrap_initialised = BackgroundInit(init, BOOTSTRAP)
    main_initialised = BackgroundInit(init, MAIN)
    admin = env.endpoint.admin_credentials
    say("terraform apply terraform/bootstrap as the administrator")
    bootstrap_initialised.wait("init (bootstrap)")
    terraform_ok(APPLY, env.endpoint.url, admin, "apply (bootstrap)", BOOTSTRAP)
    bootstrap = terraform_outputs(env.endpoint.url, admin, BOOTSTRAP)
    apply_role = assume_ci_role(env.endpoint, bootstrap, "apply", env.region)
    say(f"terraform apply terraform/ as the GitHub apply role ({bootstrap['apply_role_arn']})")
    main_initialised.wait("init")
    terraform_ok(APPLY, env.endpoint.url, apply_role, "apply", MAIN)
    outputs = terraform_outputs(env.endpoint.url, apply_role, MAIN)
    outputs["bootstrap"] = bootstrap
    OUTPUTS_FILE.write_text(json.dumps(outputs, indent=2), encoding="utf-8")
    say(f"Applied in {time.monotonic() - started:.1f} s. Next: make local-release")
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
