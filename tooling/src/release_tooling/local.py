#!/usr/bin/env python3
"""Run the real delivery pipeline on an embedded AWS endpoint: no account, no Docker.

  local.py up                 start the endpoint (background), terraform init + apply terraform/
  local.py release [--fail F] package the working tree, upload it like the deploy workflow, run
                              the release state machine and stream its progress; exit 0 only
                              when production got the release
  local.py status [--json]    aliases and the last executions
  local.py plan [--var K=V]   terraform plan of terraform/ against the running endpoint; exit code
                              as -detailed-exitcode: 0 no changes, 2 changes, 1 error (plan
                              files in .local/plan/)
  local.py down               stop the endpoint and delete .local/
  local.py run [--fail F]     up, release, down in one go
  local.py bench              measure up, releases, zip sizes and import times (in a scratch copy)
  local.py demo               up, a good release, a deliberately broken release that is rolled back,
                              down; prints where each alias ended

Faults (--fail) are injected by the harness and the endpoint, never inside Lambda code:
  validate           the uploaded app.zip is corrupted after upload (manifest checksum mismatch)
  deploy-staging     the deploy function fails when called for staging
  smoke-tests        the app behind the staging alias fails, so the smoke tests fail
  smoke-timeout      the app behind the staging alias hangs once: Lambda times it out in the
                     smoke tests
  deploy-production  the deploy function fails when called for production
  alarm-production   the production error alarm fires as soon as CodeDeploy shifts traffic
  rollback           smoke tests fail and the Lambda service rejects the first two rollback calls
                     (Step Functions' Retry has to recover)
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from . import project, wait_for_release
from . import terraform as tf_runner
from .local_aws import process

ROOT = project.ROOT

STATE_DIR = ROOT / ".local"
TF_DIR = ROOT / "terraform"
BUILD_DIR = ROOT / "build"
PLAN_DIR = STATE_DIR / "plan"
REGION_FALLBACK = "us-east-1"
FAULTS = (
    "validate",
    "deploy-staging",
    "smoke-tests",
    "smoke-timeout",
    "deploy-production",
    "alarm-production",
    "rollback",
)
ALIASES = ("staging", "production")
BOOTSTRAP_DIR = TF_DIR / "bootstrap"
# How long a release waits for the pipeline to start its execution before saying why it did not.
NO_PIPELINE_RUN_SECONDS = 60
# ...or sooner once IAM has denied a call of this release and still nothing started.
DENIED_START_GRACE_SECONDS = 5
# Left out of the local bootstrap: the state bucket's configuration (terraform/ keeps its state in a
# local file here), whose lifecycle rule alone costs the AWS provider about a minute of waiting. The
# bucket and its key stay, as the CI roles' policies name them.
BOOTSTRAP_LEFT_OUT_FILE = "state.tf"
BOOTSTRAP_LEFT_OUT_TYPE = re.compile(r"aws_s3_bucket_\w+")
OIDC_ISSUER = "token.actions.githubusercontent.com"
# Every service terraform/ uses; the provider sends all of them to the embedded endpoint.
TF_ENDPOINTS = (
    "cloudwatch",
    "codedeploy",
    "codepipeline",
    "events",
    "iam",
    "kms",
    "lambda",
    "logs",
    "s3",
    "sfn",
    "sns",
    "sqs",
    "sts",
)

# Local-only Terraform settings, written as <root>/local_override.tf while local terraform runs
# (Terraform merges *_override.tf files over the configuration; they are git-ignored). The main
# configuration stays the one and only description of the infrastructure.
OVERRIDE_TEMPLATE = """# Written by release-tooling local; deleted when terraform exits.
terraform {
  backend "local" {
    path = "@STATE@"
  }
}

provider "aws" {
  access_key                  = "@ACCESS_KEY@"
  secret_key                  = "@SECRET_KEY@"
  token                       = "@TOKEN@"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  s3_use_path_style           = true

  endpoints {
@ENDPOINTS@
  }
}
"""


@dataclass(frozen=True)
class Root:
    """A Terraform root as the local environment runs it: its own state file and data dir."""

    path: Path
    name: str

    @property
    def state(self) -> Path:
        return STATE_DIR / ("terraform.tfstate" if self.name == "main" else f"{self.name}.tfstate")

    @property
    def data_dir(self) -> Path:
        return STATE_DIR / (
            "terraform-data" if self.name == "main" else f"terraform-data-{self.name}"
        )


MAIN = Root(TF_DIR, "main")
BOOTSTRAP = Root(BOOTSTRAP_DIR, "bootstrap")


class LocalError(Exception):
    """A problem the user can fix; the message says how. Printed without a traceback."""


def say(message: str = "") -> None:
    print(message, flush=True)


# ---------------------------------------------------------------------------------------------
# Terraform
# ---------------------------------------------------------------------------------------------
def override_text(
    endpoint_url: str, state_file: Path, credentials: dict[str, str], root: Root = MAIN
) -> str:
    lines = "\n".join(f'    {name:<12} = "{endpoint_url}"' for name in TF_ENDPOINTS)
    text = (
        OVERRIDE_TEMPLATE.replace("@STATE@", state_file.as_posix())
        .replace("@ENDPOINTS@", lines)
        .replace("@ACCESS_KEY@", credentials["aws_access_key_id"])
        .replace("@SECRET_KEY@", credentials["aws_secret_access_key"])
        .replace("@TOKEN@", credentials.get("aws_session_token", ""))
    )
    if root.path == BOOTSTRAP_DIR:
        text += bootstrap_left_out_text()
    return text


def bootstrap_left_out_text() -> str:
    """count = 0 for the state bucket's configuration resources (an override may set count).

    A whole-root apply with these left out records every output, which a -target apply would not.
    """
    blocks = []
    source = (BOOTSTRAP_DIR / BOOTSTRAP_LEFT_OUT_FILE).read_text(encoding="utf-8")
    for kind, name in re.findall(r'^resource\s+"([^"]+)"\s+"([^"]+)"', source, re.M):
        if BOOTSTRAP_LEFT_OUT_TYPE.fullmatch(kind):
            blocks.append(f'\nresource "{kind}" "{name}" ' + "{\n  count = 0\n}\n")
    return "".join(blocks)


def terraform(
    args: list[str],
    endpoint_url: str,
    credentials: dict[str, str],
    capture: bool = False,
    root: Root = MAIN,
) -> subprocess.CompletedProcess:
    if shutil.which("terraform") is None:
        raise LocalError(
            "terraform is not on PATH; install Terraform >= 1.10 (https://developer.hashicorp.com/terraform/install)"
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}  # never a real account
    env["TF_DATA_DIR"] = str(root.data_dir)  # keeps the real .terraform/ untouched
    env["TF_IN_AUTOMATION"] = "1"
    env["TF_INPUT"] = "0"
    override = root.path / "local_override.tf"
    fd = os.open(override, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds credentials
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(override_text(endpoint_url, root.state, credentials, root))
    try:
        return subprocess.run(
            ["terraform", *args],
            cwd=root.path,
            env=env,
            text=True,
            capture_output=capture,
            check=False,
        )
    finally:
        override.unlink(missing_ok=True)


def terraform_ok(
    args: list[str], endpoint_url: str, credentials: dict[str, str], what: str, root: Root = MAIN
) -> str:
    proc = terraform(args, endpoint_url, credentials, capture=True, root=root)
    log = STATE_DIR / "terraform.log"
    with log.open("a", encoding="utf-8") as fh:
        fh.write(f"$ terraform {' '.join(args)}  ({root.name})\n{proc.stdout}\n{proc.stderr}\n")
    if proc.returncode != 0:
        if args[0] == "init" and tf_runner.provider_unreachable(proc.stdout + proc.stderr):
            raise LocalError(tf_runner.NO_PROVIDER_HINT)
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-25:])
        raise LocalError(
            f"terraform {what} failed against the local endpoint:\n{tail}\n(full output: {log})"
        )
    return proc.stdout


def terraform_outputs(endpoint_url: str, credentials: dict[str, str], root: Root) -> dict:
    text = terraform_ok(["output", "-json", "-no-color"], endpoint_url, credentials, "output", root)
    return {k: v["value"] for k, v in json.loads(text).items()}


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


# ---------------------------------------------------------------------------------------------
# Environment
# ---------------------------------------------------------------------------------------------
# The GitHub job each CI role is assumed by (terraform/bootstrap/iam.tf trusts these subjects).
CI_ROLES = {
    "apply": ("apply_role_arn", "environment:production"),
    "plan": ("plan_role_arn", "pull_request"),
}


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


def package_module():
    from . import package

    return package


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
        pkg = package_module()
        manifest = pkg.build(
            BUILD_DIR, "0" * 40
        )  # terraform/ reads the zips for the first deployment
        say(f"Built {len(manifest['artifacts'])} zips into {BUILD_DIR}")
        try:
            mirror, said = tf_runner.provider_source(os.environ)
        except tf_runner.WrapperError as exc:
            raise LocalError(str(exc)) from None
        say(said)
        init = ["init", "-input=false", "-reconfigure", "-no-color"]
        if mirror:
            init.append(f"-plugin-dir={mirror}")
        admin = endpoint.admin_credentials
        say(
            "terraform apply terraform/bootstrap as the administrator (CI roles, boundary, OIDC "
            "provider; the state bucket's configuration is left out locally)"
        )
        terraform_ok(init, endpoint.url, admin, "init (bootstrap)", BOOTSTRAP)
        terraform_ok(
            ["apply", "-auto-approve", "-input=false", "-no-color"],
            endpoint.url,
            admin,
            "apply (bootstrap)",
            BOOTSTRAP,
        )
        bootstrap = terraform_outputs(endpoint.url, admin, BOOTSTRAP)
        region = (
            bootstrap.get("github_repository_variables", {}).get("AWS_REGION") or REGION_FALLBACK
        )
        apply_role = assume_ci_role(endpoint, bootstrap, "apply", region)
        say(f"terraform apply terraform/ as the GitHub apply role ({bootstrap['apply_role_arn']})")
        terraform_ok(init, endpoint.url, apply_role, "init", MAIN)
        terraform_ok(
            ["apply", "-auto-approve", "-input=false", "-no-color"],
            endpoint.url,
            apply_role,
            "apply",
        )
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
    for root in (MAIN, BOOTSTRAP):
        (root.path / "local_override.tf").unlink(missing_ok=True)
    say(
        "Stopped the local environment and removed .local/"
        if was_up
        else "Nothing was running; removed .local/"
    )
    return 0


# ---------------------------------------------------------------------------------------------
# Release
# ---------------------------------------------------------------------------------------------
def release_id(manifest: dict) -> tuple[str, str]:
    """The commit of a clean checkout, else a stable id derived from the packaged artifacts."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "lambdas"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if head.returncode == 0 and dirty.returncode == 0 and not dirty.stdout.strip():
            return head.stdout.strip(), "commit"
    except FileNotFoundError:
        pass
    working_tree_id = package_module().working_tree_id(manifest["artifacts"])
    return working_tree_id, "working tree (id derived from the artifacts)"


def alias_versions(env: Env) -> dict[str, str]:
    lam = env.client("lambda")
    fn = env.outputs["app_function_name"]
    return {a: lam.get_alias(FunctionName=fn, Name=a)["FunctionVersion"] for a in ALIASES}


def version_commit(env: Env, version: str) -> str | None:
    if version == "$LATEST":
        return None
    conf = env.client("lambda").get_function_configuration(
        FunctionName=env.outputs["app_function_name"], Qualifier=version
    )
    return conf.get("Description") or None


def fault_rules(fault: str, env: Env) -> list[dict]:
    fns = env.outputs["pipeline_function_names"]
    app = env.outputs["app_function_name"]
    note = f"injected by local.py --fail {fault}"
    if fault in ("deploy-staging", "deploy-production"):
        stage = fault.split("-", 1)[1]
        return [
            {
                "name": fault,
                "function": fns["deploy"],
                "event_match": {"stage": stage},
                "action": "error",
                "error_type": "DeploymentError",
                "error_message": f"deploying to {stage} failed ({note})",
            }
        ]
    smoke = {
        "name": "smoke-tests",
        "function": app,
        "qualifier": "staging",
        "action": "error",
        "error_type": "RuntimeError",
        "error_message": f"the new version is broken ({note})",
    }
    if fault == "smoke-tests":
        return [smoke]
    if fault == "smoke-timeout":
        return [
            {"name": fault, "function": app, "qualifier": "staging", "action": "hang", "times": 1}
        ]
    if fault == "alarm-production":
        group = env.outputs["deployment_groups"]["production"]
        info = env.client("codedeploy").get_deployment_group(
            applicationName=env.outputs["codedeploy_application"], deploymentGroupName=group
        )
        alarms = [
            a["name"]
            for a in info["deploymentGroupInfo"].get("alarmConfiguration", {}).get("alarms", [])
        ]
        if not alarms:
            raise LocalError(
                f"deployment group {group} watches no alarm, so alarm-production cannot work; "
                "check terraform/codedeploy.tf"
            )
        return [{"name": fault, "kind": "alarm", "deployment_group": group, "alarms": alarms}]
    if fault == "rollback":
        return [
            smoke,
            {
                "name": fault,
                "function": fns["rollback"],
                "action": "service-error",
                "times": 2,
                "error_message": f"Lambda is unavailable ({note})",
            },
        ]
    return []


def corrupt_artifact(env: Env, bucket: str, key: str) -> None:
    s3 = env.client("s3")
    head = s3.head_object(Bucket=bucket, Key=key)
    body = bytearray(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    body[len(body) // 2] ^= 0xFF  # one flipped byte: the manifest's sha256 no longer matches
    s3.put_object(Bucket=bucket, Key=key, Body=bytes(body), Metadata=head.get("Metadata", {}))


class Streamer:
    """Prints execution history events as they arrive: states entered/left, durations, errors."""

    def __init__(self, sfn, execution_arn: str) -> None:
        self.sfn, self.arn = sfn, execution_arn
        self.seen = 0
        self.entered: dict[str, datetime] = {}
        self.transitions = 0

    def poll(self) -> None:
        events = []
        kwargs = {"executionArn": self.arn, "maxResults": 1000}
        while True:
            page = self.sfn.get_execution_history(**kwargs)
            events.extend(page["events"])
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
        for event in events[self.seen :]:
            self.show(event)
        self.seen = len(events)

    def show(self, event: dict) -> None:
        kind, ts = event["type"], event["timestamp"]
        if kind.endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            self.entered[name] = ts
            self.transitions += 1
            say(f"  -> {name}")
        elif kind.endswith("StateExited"):
            name = event["stateExitedEventDetails"]["name"]
            took = (ts - self.entered.get(name, ts)).total_seconds()
            say(f"  <- {name} ({took:.2f} s)")
        elif kind in ("TaskFailed", "LambdaFunctionFailed", "ExecutionFailed", "TaskTimedOut"):
            details = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
            say(f"     ! {kind}: {details.get('error', '')}: {_short(details.get('cause', ''))}")


class ApprovalGate:
    """Answers the ApproveProduction gate (projects made with manual_approval=yes) the way a person
    would with `make approve`/`make reject`: through `release-tooling approve`, once it waits."""

    STATE = "ApproveProduction"

    def __init__(self, sfn, execution_arn: str, decision: str) -> None:
        self.sfn, self.arn, self.decision = sfn, execution_arn, decision
        self.answered = False

    def answer_when_waiting(self, streamer: Streamer) -> None:
        if self.answered or self.STATE not in streamer.entered:
            return
        from . import approve

        reason = f"local.py release --approval {self.decision}"
        try:
            said = approve.answer(self.sfn, self.decision, self.arn, reason, actor="local.py")
        except approve.ApprovalError:
            return  # entered, but the task token is not issued yet: ask again on the next poll
        self.answered = True
        say(f"     {said.split(' arn:', 1)[0]} ({reason})")


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def cmd_release(args) -> int:
    """Upload as the deploy workflow does, then follow the run the pipeline starts by itself.

    The S3 "Object Created" event of pipeline/source.zip goes through the EventBridge rule of
    terraform/ to CodePipeline, whose Step Functions action starts the execution: nothing here
    starts it. Uploading and following use the GitHub apply role's credentials.
    """
    env = require_env()
    started, started_wall = time.monotonic(), time.time()
    pkg = package_module()
    bucket = env.outputs["artifact_bucket"]
    manifest = pkg.build(BUILD_DIR, "0" * 40)
    commit, origin = (args.commit, "--commit") if args.commit else release_id(manifest)
    before = alias_versions(env)

    if args.fail == "alarm-production" and before["production"] == "$LATEST":
        raise LocalError(
            "--fail alarm-production needs a production alias already at a released version: "
            "CodeDeploy "
            "(and so its alarm rollback) only runs between two versions. Run one release without "
            "faults first."
        )
    rules = fault_rules(args.fail, env) if args.fail else []
    if rules:
        env.endpoint.set_faults(rules)
    if args.fail:
        say(f"  fault armed: {args.fail}")
    corrupt = (
        (lambda: corrupt_artifact(env, bucket, f"releases/{commit}/app.zip"))
        if args.fail == "validate"
        else None
    )
    # Executions started from now on are candidates (clock skew: none, one process's clock).
    since = datetime.now(UTC) - timedelta(seconds=1)
    say(f"Releasing {commit} ({origin}) as the GitHub apply role")
    try:
        try:
            result = pkg.upload(
                bucket,
                commit,
                BUILD_DIR,
                poll_interval=1,
                max_polls=args.max_polls,
                s3=env.client_as("apply", "s3"),
                before_trigger=corrupt,
            )
        except pkg.PackagingError as exc:
            raise LocalError(str(exc)) from None
        except Exception:
            say_denials(started_wall)
            raise
        say(
            f"  uploaded s3://{bucket}/releases/{commit}/ (app sha256 "
            f"{result['app_sha256'][:12]}...); the pipeline takes it from here"
        )
        # Found and followed as the deploy job does (release-tooling release-wait), with its role.
        follower = env.client_as("apply", "stepfunctions")
        pipeline_reader = env.client_as("apply", "codepipeline")
        deadline = time.monotonic() + args.timeout
        # A run that cannot start its execution (denied, or no run at all when EventBridge could
        # not start the pipeline) would otherwise be waited for until the timeout.
        no_run_deadline = time.monotonic() + NO_PIPELINE_RUN_SECONDS
        seen: dict[str, str | None] = {}
        arn = None
        said_waiting = False
        while arn is None:
            found = wait_for_release.find_release(
                follower,
                pipeline_reader,
                env.outputs["state_machine_arn"],
                env.outputs["pipeline_name"],
                commit,
                since=since,
                cache=seen,
            )
            if isinstance(found, wait_for_release.ReleaseRef):
                arn = found.execution_arn
                break
            if isinstance(found, wait_for_release.Waiting):
                if not said_waiting:
                    say(f"  waiting: {found.reason}")
                    said_waiting = True
                no_run_deadline = time.monotonic() + NO_PIPELINE_RUN_SECONDS  # queued: not stuck
            failed = failed_pipeline_run(env, since)
            # Denied and nothing started (EventBridge could not start the pipeline): say so now.
            blocked = time.monotonic() - started > DENIED_START_GRACE_SECONDS and bool(
                iam_denials(started_wall)
            )
            if failed is not None or blocked or time.monotonic() > min(deadline, no_run_deadline):
                say_denials(started_wall)
                raise LocalError(
                    f"pipeline run {failed['id']} failed in {failed['action']}: {failed['error']}"
                    if failed
                    else f"no execution for commit {commit} started"
                    + (" and IAM denied a call (above)" if blocked else "")
                    + "; see `make local-status` (pipeline_executions) and .local/endpoint.log"
                )
            time.sleep(0.2)
        say(f"Execution {arn.rsplit(':', 1)[-1]} (started by the pipeline)")
        streamer = Streamer(follower, arn)
        gate = ApprovalGate(env.client("stepfunctions"), arn, args.approval)
        while follower.describe_execution(executionArn=arn)["status"] == "RUNNING":
            streamer.poll()
            gate.answer_when_waiting(streamer)
            if time.monotonic() > deadline:
                say(
                    f"Gave up waiting after {args.timeout:.0f} s; execution {arn} is still "
                    "running. Follow it with `make local-status`."
                )
                return 1
            time.sleep(0.2)
        streamer.poll()
    finally:
        if rules:
            env.endpoint.clear_faults()
        if args.fail == "alarm-production":
            for rule in rules:
                for alarm in rule["alarms"]:
                    env.client("cloudwatch").set_alarm_state(
                        AlarmName=alarm, StateValue="OK", StateReason="local.py: fault cleared"
                    )
    return summarize(env, arn, before, commit, started, env.client("stepfunctions"))


def iam_denials(since: float) -> list[dict]:
    """Denied IAM decisions the endpoint logged since a time.time() stamp, oldest first."""
    path = STATE_DIR / "iam-decisions.jsonl"
    if not path.exists():
        return []
    denied = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("time", 0) >= since and entry.get("allowed") is False:
            denied.append(entry)
    return denied


def say_denials(since: float) -> None:
    denials = iam_denials(since)
    if not denials:
        return
    say(f"  IAM denied {len(denials)} call(s) during this release (.local/iam-decisions.jsonl):")
    seen = set()
    for entry in denials:
        key = (entry.get("principal"), entry.get("action"), entry.get("resource"))
        if key in seen:
            continue
        seen.add(key)
        say(
            f"    AccessDenied: {entry.get('principal')} may not {entry.get('action')} on "
            f"{entry.get('resource', '*')} ({entry.get('reason')})"
        )


def failed_pipeline_run(env: Env, since: datetime) -> dict | None:
    """The newest pipeline run started since `since` if it failed before starting an execution."""
    codepipeline = env.client("codepipeline")
    summaries = codepipeline.list_pipeline_executions(
        pipelineName=env.outputs["pipeline_name"], maxResults=5
    ).get("pipelineExecutionSummaries", [])
    for summary in summaries:
        if summary.get("startTime") and summary["startTime"] < since:
            break
        if summary["status"] in ("Failed", "Stopped"):
            actions = codepipeline.list_action_executions(
                pipelineName=env.outputs["pipeline_name"],
                filter={"pipelineExecutionId": summary["pipelineExecutionId"]},
            ).get("actionExecutionDetails", [])
            failed = next((a for a in actions if a.get("status") == "Failed"), {})
            return {
                "id": summary["pipelineExecutionId"],
                "action": failed.get("actionName"),
                "error": (failed.get("output") or {})
                .get("executionResult", {})
                .get("externalExecutionSummary")
                or summary.get("statusSummary")
                or "",
            }
    return None


def summarize(env: Env, arn: str, before: dict, commit: str, started: float, sfn) -> int:
    desc = sfn.describe_execution(executionArn=arn)
    after = alias_versions(env)
    say("")
    say(f"Release {commit[:12]}: {desc['status']}")
    if desc.get("error") or desc.get("cause"):
        say(f"  error: {desc.get('error', '')}")
        say(f"  cause: {_short(desc.get('cause', ''), 600)}")
    say_denials(time.time() - (time.monotonic() - started))
    for alias in ALIASES:
        version = after[alias]
        line = f"  {alias:<10} version {version}"
        if version != "$LATEST":
            line += f" (commit {(version_commit(env, version) or '?')[:12]})"
        if before[alias] == "$LATEST" and version == "$LATEST" and desc["status"] != "SUCCEEDED":
            line += "  left alone: first release, there is no previous version to roll back to"
        elif before[alias] != after[alias]:
            line += f"  (was {before[alias]})"
        say(line)
    say(f"  wall time {time.monotonic() - started:.1f} s")
    promoted = desc["status"] == "SUCCEEDED" and version_commit(env, after["production"]) == commit
    return 0 if promoted else 1


def cmd_status(args) -> int:
    env = require_env()
    sfn = env.client("stepfunctions")
    executions = sorted(
        sfn.list_executions(stateMachineArn=env.outputs["state_machine_arn"])["executions"],
        key=lambda e: e["startDate"],
        reverse=True,
    )
    rows = []
    for e in executions[: args.last]:
        d = sfn.describe_execution(executionArn=e["executionArn"])
        rows.append(
            {
                "name": e["name"],
                "status": e["status"],
                # The release's identity is its input: CodePipeline names the execution.
                "commit": release_input(d).get("commit_sha"),
                "error": d.get("error"),
                "cause": d.get("cause"),
                "output": d.get("output"),
            }
        )
    aliases = alias_versions(env)
    pipeline_runs = pipeline_executions(env, args.last)
    if args.json:
        print(
            json.dumps(
                {
                    "endpoint": env.endpoint.url,
                    "iam": env.endpoint.iam,
                    "aliases": aliases,
                    "executions": rows,
                    "pipeline_executions": pipeline_runs,
                },
                indent=2,
            )
        )
        return 0
    say(f"Endpoint {env.endpoint.url} (pid {env.endpoint.pid}, IAM {env.endpoint.iam})")
    for alias, version in aliases.items():
        commit = version_commit(env, version)
        say(f"  {alias:<10} version {version}" + (f" (commit {commit[:12]})" if commit else ""))
    say("Pipeline runs (newest first):" if pipeline_runs else "No pipeline runs yet")
    for run in pipeline_runs:
        say(f"  {run['id']}  {run['status']:<10} commit {(run['commit'] or '-')[:12]}")
    say("Executions (newest first):" if rows else "No executions yet: make local-release")
    for r in rows:
        cause = _short(r["cause"] or "", 120)
        say(f"  {r['name']:<22} {r['status']:<10} {r['error'] or ''} {cause}")
    return 0


def release_input(described: dict) -> dict:
    try:
        value = json.loads(described.get("input") or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def pipeline_executions(env: Env, last: int) -> list[dict]:
    """The pipeline's runs, newest first, each with the commit its execution input names."""
    codepipeline = env.client("codepipeline")
    s3 = env.client("s3")
    runs = []
    summaries = codepipeline.list_pipeline_executions(
        pipelineName=env.outputs["pipeline_name"], maxResults=max(1, min(last, 100))
    ).get("pipelineExecutionSummaries", [])
    for summary in summaries:
        runs.append(
            {
                "id": summary["pipelineExecutionId"],
                "status": summary["status"],
                "commit": source_commit(s3, env.outputs["artifact_bucket"], summary),
            }
        )
    return runs


def source_commit(s3, bucket: str, summary: dict) -> str | None:
    """The commit of a run: the object version its source action took holds the commit."""
    version = next(
        (r.get("revisionId") for r in summary.get("sourceRevisions", []) if r.get("revisionId")),
        None,
    )
    if not version:
        return None
    try:
        head = s3.head_object(Bucket=bucket, Key=package_module().SOURCE_KEY, VersionId=version)
    except Exception:  # noqa: BLE001 - an expired version: the run shows without its commit
        return None
    return head.get("Metadata", {}).get("commit")


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


def cmd_run(args) -> int:
    cmd_up(args)
    try:
        return cmd_release(args)
    finally:
        cmd_down(args)


# ---------------------------------------------------------------------------------------------
# Demo: what the template's `make demo` runs in a freshly baked project
# ---------------------------------------------------------------------------------------------
BROKEN_APP = """

def handler(event, context):  # demo: a release that fails on every call
    raise RuntimeError("demo: this release is broken")
"""


def cmd_demo(args) -> int:
    args.fail = args.commit = None
    args.max_polls, args.approval, args.timeout = 60, "approve", 900
    cmd_up(args)
    handler = ROOT / "lambdas" / "app" / "handler.py"
    good = handler.read_text(encoding="utf-8")
    try:
        say("\n== 1. Release the generated service: it must reach production")
        if cmd_release(args) != 0:
            raise LocalError("the first release did not reach production; see the output above")
        say("\n== 2. Release a broken change (the handler raises): smoke tests catch it, rollback")
        handler.write_text(good + BROKEN_APP, encoding="utf-8")
        broken = cmd_release(args)
        env = require_env()
        ended = alias_versions(env)
    finally:
        handler.write_text(good, encoding="utf-8")
        cmd_down(args)
    say("\n== Where each alias ended")
    for alias, version in ended.items():
        say(f"  {alias:<10} version {version}")
    if broken == 0:
        raise LocalError("the broken release reached production; the pipeline did not protect it")
    say("The broken release was stopped and rolled back; production kept the good version.")
    return 0


# ---------------------------------------------------------------------------------------------
# Benchmark (in a scratch copy, so the working tree and a running environment are untouched)
# ---------------------------------------------------------------------------------------------
def cmd_bench(args) -> int:
    scratch = Path(tempfile.mkdtemp(prefix="local-bench-"))
    copy = scratch / ROOT.name
    shutil.copytree(
        ROOT,
        copy,
        ignore=shutil.ignore_patterns(
            ".venv", ".local", "build", ".terraform", ".git", "__pycache__"
        ),
    )
    script = [sys.executable, str(copy / "scripts" / "local.py")]
    rows: list[tuple[str, str]] = []

    def timed(label: str, *cmd: str) -> float:
        t = time.monotonic()
        proc = subprocess.run([*script, *cmd], capture_output=True, text=True, check=False)
        took = time.monotonic() - t
        if proc.returncode != 0:
            raise LocalError(
                f"bench step {label!r} failed:\n{proc.stdout[-1500:]}\n{proc.stderr[-1500:]}"
            )
        rows.append((label, f"{took:.1f} s"))
        return took

    try:
        timed("cold start (local-up)", "up")
        timed("release", "release")
        handler = copy / "lambdas" / "app" / "handler.py"
        handler.write_text(
            handler.read_text(encoding="utf-8") + "\n# bench: one-line change\n", encoding="utf-8"
        )
        timed("release after a one-line change", "release")
        status = json.loads(
            subprocess.run(
                [*script, "status", "--json"], capture_output=True, text=True, check=True
            ).stdout
        )
        outputs = json.loads((copy / ".local" / "outputs.json").read_text(encoding="utf-8"))
        import boto3

        endpoint = json.loads((copy / ".local" / "endpoint.json").read_text(encoding="utf-8"))
        sfn = boto3.client(
            "stepfunctions",
            endpoint_url=endpoint["url"],
            region_name=outputs["aws_region"],
            aws_access_key_id=endpoint["access_key_id"],
            aws_secret_access_key=endpoint["secret_access_key"],
        )
        last = status["executions"][0]["name"]
        ex = next(
            e
            for e in sfn.list_executions(stateMachineArn=outputs["state_machine_arn"])["executions"]
            if e["name"] == last
        )
        desc = sfn.describe_execution(executionArn=ex["executionArn"])
        rows.append(
            (
                "execution alone (last release)",
                f"{(desc['stopDate'] - desc['startDate']).total_seconds():.1f} s",
            )
        )
        history = sfn.get_execution_history(executionArn=ex["executionArn"], maxResults=1000)[
            "events"
        ]
        rows.append(
            (
                "state transitions per successful release",
                str(sum(e["type"].endswith("StateEntered") for e in history)),
            )
        )
        manifest = json.loads((copy / "build" / "manifest.json").read_text(encoding="utf-8"))
        for name, entry in sorted(manifest["artifacts"].items()):
            rows.append((f"zip {name}", f"{entry['size'] / 1024:.1f} KiB"))
            rows.append(
                (
                    f"import {name}.handler",
                    f"{import_time(copy / 'build' / entry['file']) * 1000:.0f} ms",
                )
            )
    finally:
        subprocess.run([*script, "down"], capture_output=True, check=False)
        shutil.rmtree(scratch, ignore_errors=True)
    width = max(len(label) for label, _ in rows)
    say(f"{'measure':<{width}}  value")
    say(f"{'-' * width}  -----")
    for label, value in rows:
        say(f"{label:<{width}}  {value}")
    say(
        "\nTargets on a 2-core machine: local-up <= 60 s, a release <= 15 s, every pipeline "
        "Lambda zip <= 64 KiB."
    )
    return 0


def import_time(zip_path: Path) -> float:
    import zipfile

    with tempfile.TemporaryDirectory() as tmp:
        zipfile.ZipFile(zip_path).extractall(tmp)
        code = (
            "import sys,time;sys.path.insert(0,sys.argv[1]);t=time.perf_counter();"
            "import handler;print(time.perf_counter()-t)"
        )
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
            "AWS_DEFAULT_REGION": REGION_FALLBACK,
        }
        proc = subprocess.run(
            [sys.executable, "-I", "-c", code, tmp],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        return float(proc.stdout.strip() or "nan")


# ---------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="local.py",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    clock = argparse.ArgumentParser(add_help=False)
    clock.add_argument(
        "--minute-seconds",
        type=float,
        default=0.2,
        help="real seconds per CodeDeploy minute (default 0.2)",
    )
    rel = argparse.ArgumentParser(add_help=False)
    rel.add_argument("--fail", choices=FAULTS, help="inject a fault (see above)")
    rel.add_argument(
        "--commit", help="release id to use instead of the git commit / derived id (40 hex)"
    )
    rel.add_argument(
        "--max-polls",
        type=int,
        default=60,
        help="deployment status polls before giving up (1 s apart)",
    )
    rel.add_argument(
        "--approval",
        choices=["approve", "reject"],
        default="approve",
        help="answer to the ApproveProduction gate, when the project has one (default approve)",
    )
    rel.add_argument(
        "--timeout",
        type=float,
        default=900,
        help="seconds to follow the execution before giving up (default 900)",
    )
    sub.add_parser("up", parents=[clock], help="start the endpoint and apply terraform/")
    sub.add_parser("release", parents=[rel], help="package, upload and run a release")
    st = sub.add_parser("status", help="aliases and last executions")
    st.add_argument("--json", action="store_true", help="machine-readable output")
    st.add_argument("--last", type=int, default=10, help="how many executions to show")
    pl = sub.add_parser(
        "plan",
        help="terraform plan against the running endpoint (exit 0 no changes, 2 changes, 1 error)",
    )
    pl.add_argument(
        "--var",
        action="append",
        metavar="NAME=VALUE",
        help="a Terraform variable for this plan (repeatable), e.g. notification_email=a@b.example",
    )
    sub.add_parser("down", help="stop and clean up")
    sub.add_parser("run", parents=[clock, rel], help="up, release, down")
    sub.add_parser("bench", help="benchmark in a scratch copy")
    sub.add_parser("demo", parents=[clock], help="good release, broken release rolled back, down")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "commit", None) and not (
        len(args.commit) == 40 and all(c in "0123456789abcdef" for c in args.commit)
    ):
        say(f"local.py: --commit must be 40 lowercase hex characters, got {args.commit!r}")
        return 2
    handlers = {
        "up": cmd_up,
        "release": cmd_release,
        "status": cmd_status,
        "plan": cmd_plan,
        "down": cmd_down,
        "run": cmd_run,
        "bench": cmd_bench,
        "demo": cmd_demo,
    }
    # plan keeps -detailed-exitcode's meaning (2 = changes pending), so its failures exit 1.
    failed = 1 if args.command == "plan" else 2
    try:
        return handlers[args.command](args)
    except (LocalError, process.EndpointError) as exc:
        say(f"local.py {args.command}: {exc}")
        return failed
    except Exception as exc:  # noqa: BLE001 - AWS SDK errors: one clear line, not a traceback
        if type(exc).__module__.startswith("botocore"):
            say(f"local.py {args.command}: AWS call to the local endpoint failed: {exc}")
            return failed
        raise
    except KeyboardInterrupt:
        say(f"local.py {args.command}: interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
