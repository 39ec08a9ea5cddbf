"""A release as the deploy workflow makes it, followed to the end, with faults on request.

Packages the working tree once, uploads it as the GitHub apply role, and follows the execution the
pipeline starts by itself (S3 upload -> EventBridge -> CodePipeline -> Step Functions), streaming
its states, answering the approval gate, and naming any IAM denial on the way.
"""

from __future__ import annotations

import json
import subprocess
import time
from datetime import UTC, datetime, timedelta

from .. import contract, wait_for_release
from .common import ALIASES, BUILD_DIR, ROOT, STATE_DIR, LocalError, package_module, say, short
from .environment import Env, require_env

FAULTS = (
    "validate",
    "deploy-staging",
    "smoke-tests",
    "smoke-timeout",
    "deploy-production",
    "alarm-production",
    "rollback",
)
# How long a release waits for the pipeline to start its execution before saying why it did not.
NO_PIPELINE_RUN_SECONDS = 60
# ...or sooner once IAM has denied a call of this release and still nothing started.
DENIED_START_GRACE_SECONDS = 5


def clean_commit() -> str | None:
    """HEAD when lambdas/ has no uncommitted change (the release is that commit), else None."""
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
    except FileNotFoundError:
        return None
    if head.returncode == 0 and dirty.returncode == 0 and not dirty.stdout.strip():
        return head.stdout.strip()
    return None


def package_release(commit: str | None = None) -> tuple[dict, str]:
    """Build the zips once for this release: (manifest, where its id comes from).

    The id is --commit, else the commit of a clean checkout, else one derived from the zips (the
    manifest records it); the upload reuses these very files.
    """
    origin = "--commit" if commit else "commit"
    commit = commit or clean_commit()
    if commit is None:
        origin = "working tree (id derived from the artifacts)"
    pkg = package_module()
    try:
        manifest = pkg.build(BUILD_DIR, commit)
    except pkg.PackagingError as exc:  # e.g. a lambdas/ folder terraform/names does not declare
        raise LocalError(str(exc)) from None
    return manifest, origin


def upload_release(manifest: dict, bucket: str, *, max_polls: int, s3, before_trigger=None) -> str:
    """Upload the zips built for this release as `release-tooling package upload` does: app.zip
    (immutable), manifest.json, then pipeline/source.zip, whose creation starts the pipeline.
    Returns the app's sha256."""
    pkg = package_module()
    try:
        uploaded = pkg.upload(
            bucket,
            manifest["commit"],
            BUILD_DIR,
            poll_interval=1,
            max_polls=max_polls,
            s3=s3,
            before_trigger=before_trigger,
            manifest=manifest,
        )
    except pkg.PackagingError as exc:
        raise LocalError(str(exc)) from None
    return uploaded["app_sha256"]


def app_functions(env: Env) -> dict[str, str]:
    """Every app function of the stack by key, the primary first (terraform output
    app_function_names; a stack applied before it existed has only app_function_name)."""
    primary = env.outputs["app_function_name"]
    names = env.outputs.get("app_function_names") or {}
    return {
        **{k: v for k, v in names.items() if v == primary},
        **{k: v for k, v in names.items() if v != primary},
    } or {contract.APP: primary}


def alias_versions(env: Env, function_name: str | None = None) -> dict[str, str]:
    """Where each alias of an app function (the primary one by default) points."""
    lam = env.client("lambda")
    fn = function_name or env.outputs["app_function_name"]
    return {a: lam.get_alias(FunctionName=fn, Name=a)["FunctionVersion"] for a in ALIASES}


def function_alias_versions(env: Env) -> dict[str, dict[str, str]]:
    """{key: {alias: version}} for every app function."""
    return {key: alias_versions(env, name) for key, name in app_functions(env).items()}


def version_commit(env: Env, version: str, function_name: str | None = None) -> str | None:
    if version == "$LATEST":
        return None
    conf = env.client("lambda").get_function_configuration(
        FunctionName=function_name or env.outputs["app_function_name"], Qualifier=version
    )
    return conf.get("Description") or None


def fault_rules(fault: str, env: Env) -> list[dict]:
    fns = env.outputs["pipeline_function_names"]
    app = env.outputs["app_function_name"]
    note = f"injected by release-tooling local --fail {fault}"
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
    """Prints execution history events as the follower reads them: states entered/left,
    durations, errors (the follower's on_event hook)."""

    def __init__(self) -> None:
        self.entered: dict[str, datetime] = {}  # when each state was last entered (durations)

    def show(self, event: dict) -> None:
        kind, ts = event["type"], event["timestamp"]
        if kind.endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            self.entered[name] = ts
            say(f"  -> {name}")
        elif kind.endswith("StateExited"):
            name = event["stateExitedEventDetails"]["name"]
            took = (ts - self.entered.get(name, ts)).total_seconds()
            say(f"  <- {name} ({took:.2f} s)")
        elif kind in ("TaskFailed", "LambdaFunctionFailed", "ExecutionFailed", "TaskTimedOut"):
            details = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
            say(f"     ! {kind}: {details.get('error', '')}: {short(details.get('cause', ''))}")


class ApprovalGate:
    """Answers the ApproveProduction gate (projects made with manual_approval=yes) as the Approve
    release workflow does: `release-tooling approve` with the GitHub approve role's credentials,
    once it waits (the follower's on_poll hook)."""

    STATE = "ApproveProduction"

    def __init__(self, approver, decision: str) -> None:
        # The approve role exists only with manual_approval: its client is made when the gate waits.
        self.approver, self.decision = approver, decision
        self.sfn = None
        self.answered = False

    def answer_when_waiting(self, execution_arn: str, history) -> None:
        if self.answered or self.STATE not in history.entered():
            return
        from .. import approve

        reason = f"release-tooling local release --approval {self.decision}"
        self.sfn = self.sfn or self.approver()
        try:
            said = approve.answer(
                self.sfn, self.decision, execution_arn, reason, actor="release-tooling local"
            )
        except approve.ApprovalError:
            return  # entered, but the task token is not issued yet: ask again on the next poll
        self.answered = True
        say(f"     {said.split(' arn:', 1)[0]} ({reason})")


def cmd_release(args) -> int:
    """Upload as the deploy workflow does, then follow the run the pipeline starts by itself.

    The S3 "Object Created" event of pipeline/source.zip goes through the EventBridge rule of
    terraform/ to CodePipeline, whose Step Functions action starts the execution: nothing here
    starts it. Uploading and following use the GitHub apply role's credentials.
    """
    env = require_env()
    started, started_wall = time.monotonic(), time.time()
    bucket = env.outputs["artifact_bucket"]
    manifest, origin = package_release(args.commit)
    commit = manifest["commit"]
    before_all = function_alias_versions(env)
    before = next(iter(before_all.values()))

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
        (lambda: corrupt_artifact(env, bucket, contract.artifact_key(commit)))
        if args.fail == "validate"
        else None
    )
    # Executions started from now on are candidates (clock skew: none, one process's clock).
    since = datetime.now(UTC) - timedelta(seconds=1)
    say(f"Releasing {commit} ({origin}) as the GitHub apply role")
    try:
        try:
            app_sha256 = upload_release(
                manifest,
                bucket,
                max_polls=args.max_polls,
                s3=env.client_as("apply", "s3"),
                before_trigger=corrupt,
            )
        except LocalError:
            raise
        except Exception:
            say_denials(started_wall)
            raise
        say(
            f"  uploaded s3://{bucket}/releases/{commit}/ (app sha256 "
            f"{app_sha256[:12]}...); the pipeline takes it from here"
        )
        # Found and followed by the deploy job's follower (release-tooling release-wait), with
        # the apply role's credentials; only the printing and the approval answer are local.
        settings = wait_for_release.Settings(
            commit=commit,
            state_machine_arn=env.outputs["state_machine_arn"],
            pipeline_name=env.outputs["pipeline_name"],
            region=env.region,
            since=since,
            timeout=args.timeout,
            find_timeout=NO_PIPELINE_RUN_SECONDS,
            poll_interval=0.2,
        )

        def start_failure() -> str | None:
            # A run that cannot start its execution (denied, or no run at all when EventBridge
            # could not start the pipeline) would otherwise be waited for until the find timeout.
            failed = failed_pipeline_run(env, since)
            if failed is not None:
                return (
                    f"pipeline run {failed['id']} failed in {failed['action']}: {failed['error']}"
                )
            if time.monotonic() - started > DENIED_START_GRACE_SECONDS and iam_denials(
                started_wall
            ):
                return f"no execution for commit {commit} started and IAM denied a call (above)"
            return None

        streamer = Streamer()
        gate = ApprovalGate(lambda: env.client_as("approve", "stepfunctions"), args.approval)
        watcher = wait_for_release.ReleaseWatcher(
            settings,
            sfn=env.client_as("apply", "stepfunctions"),
            codepipeline=env.client_as("apply", "codepipeline"),
            log=say,
            on_event=streamer.show,
            on_poll=gate.answer_when_waiting,
            start_failure=start_failure,
            console_links=False,
        )
        try:
            outcome = watcher.wait()
        except wait_for_release.ReleaseNotFound as exc:
            say_denials(started_wall)
            raise LocalError(
                f"{exc}; see `make local-status` (pipeline_executions) and .local/endpoint.log"
            ) from None
        except wait_for_release.WaitTimeout as exc:
            say(
                f"Gave up waiting after {args.timeout:.0f} s: {exc}. "
                "Follow it with `make local-status`."
            )
            return 1
        arn = outcome.execution_arn
    finally:
        if rules:
            env.endpoint.clear_faults()
        if args.fail == "alarm-production":
            for rule in rules:
                for alarm in rule["alarms"]:
                    env.client("cloudwatch").set_alarm_state(
                        AlarmName=alarm,
                        StateValue="OK",
                        StateReason="release-tooling local: fault cleared",
                    )
    return summarize(env, arn, before_all, commit, started, env.client("stepfunctions"))


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


def summarize(env: Env, arn: str, before_all: dict, commit: str, started: float, sfn) -> int:
    """Print where every app function's aliases ended; 0 only when production serves the commit
    for every one of them. `before_all`: function_alias_versions before the release."""
    desc = sfn.describe_execution(executionArn=arn)
    functions = app_functions(env)
    say("")
    say(f"Release {commit[:12]}: {desc['status']}")
    if desc.get("error") or desc.get("cause"):
        say(f"  error: {desc.get('error', '')}")
        say(f"  cause: {short(desc.get('cause', ''), 600)}")
    say_denials(time.time() - (time.monotonic() - started))
    promoted = desc["status"] == "SUCCEEDED"
    for key, name in functions.items():
        before = before_all.get(key) or dict.fromkeys(ALIASES, "$LATEST")
        after = alias_versions(env, name)
        if len(functions) > 1:
            say(f"  {key} ({name})")
        for alias in ALIASES:
            version = after[alias]
            line = f"  {alias:<10} version {version}"
            if version != "$LATEST":
                line += f" (commit {(version_commit(env, version, name) or '?')[:12]})"
            if (
                before[alias] == "$LATEST"
                and version == "$LATEST"
                and desc["status"] != "SUCCEEDED"
            ):
                line += "  left alone: first release, there is no previous version to roll back to"
            elif before[alias] != after[alias]:
                line += f"  (was {before[alias]})"
            say(("  " if len(functions) > 1 else "") + line)
        promoted = promoted and version_commit(env, after["production"], name) == commit
    say(f"  wall time {time.monotonic() - started:.1f} s")
    return 0 if promoted else 1
