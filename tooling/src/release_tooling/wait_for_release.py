#!/usr/bin/env python3
"""Wait for the release of one commit and report how it went.

    wait_for_release.py --commit SHA [--state-machine-arn ARN] [--pipeline-name NAME]
        [--region R] [--since ISO8601] [--timeout SECONDS] [--find-timeout SECONDS]
        [--follow-limit SECONDS] [--stop-at-state NAME]

After `make release-upload`, CodePipeline starts the release state machine with
execution-input.json, whose `commit_sha` names the commit. CodePipeline names the execution
`release-<action execution id>`, never after the commit, so the release is found by the
`commit_sha` of the execution input (find_release; the newest execution for the commit wins, so
a re-uploaded commit is followed in its new run). While the pipeline has an execution in
progress and no Step Functions execution for the commit exists yet, the release is queued
(V2 pipelines in QUEUED mode run one at a time) and this script keeps waiting.
It follows the execution until it ends and prints the state reached, the error/cause of a
failure and console links.

Exit codes: 0 released (or reached --stop-at-state); 1 the release failed,
rolled back, timed out or was aborted, or never started within --find-timeout;
2 bad arguments/configuration; 3 stopped following while the release is still queued or
running: the release goes on without this job (follow it in the console or run
`make release-wait` again).

The state machine ARN and pipeline name come from the options, else from the
environment (STATE_MACHINE_ARN, PIPELINE_NAME), else from `terraform output`.
--timeout (how long a release may take) defaults to terraform output
release_budget.release_wait_seconds, which terraform/release_budget derives from the
deployment strategy and the approval window (outlasting the state machine's own timeout);
RELEASE_WAIT_TIMEOUT overrides it, 3300 s is the fallback.
--follow-limit (RELEASE_FOLLOW_LIMIT) caps how long this process can watch: on GitHub Actions
it defaults to 3300 s, because the job's AWS credentials come from a role session of at most
max_session_duration (1 hour, terraform/bootstrap) and a GitHub-hosted job runs at most 6 hours
("Usage limits", GitHub Actions docs). When the release may outlast the limit this is said
up front, and reaching the limit exits 3 while the release goes on.
--stop-at-state also reads RELEASE_STOP_AT_STATE.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import contract, project, provenance

ROOT = project.ROOT
SHA_RE = re.compile(r"^[0-9a-f]{40}$")
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


class ConfigError(Exception):
    """Arguments or environment are missing or malformed."""


class ReleaseNotFound(Exception):
    """No execution for the commit appeared within the find timeout."""


class WaitTimeout(Exception):
    """The release was still queued or running when this process stopped following it."""


GITHUB_FOLLOW_LIMIT = 3300.0  # one 1-hour OIDC role session, less five minutes


@dataclass(frozen=True)
class ReleaseRef:
    """The Step Functions execution running a commit's release."""

    execution_arn: str
    start_date: dt.datetime


@dataclass(frozen=True)
class Waiting:
    """The commit's release has not started its Step Functions execution yet."""

    reason: str


def _execution_commit(sfn: Any, execution_arn: str, cache: dict[str, str | None]) -> str | None:
    # Inputs never change, so each execution is described once.
    if execution_arn not in cache:
        described = sfn.describe_execution(executionArn=execution_arn)
        cache[execution_arn] = contract.commit_of(described.get("input"))
    return cache[execution_arn]


def find_release(
    sfn: Any,
    codepipeline: Any | None,
    state_machine_arn: str,
    pipeline_name: str | None,
    commit: str,
    since: dt.datetime | None = None,
    cache: dict[str, str | None] | None = None,
) -> ReleaseRef | Waiting | None:
    """Find the release of `commit`: the newest execution whose input's commit_sha is the commit.

    CodePipeline names executions `<prefix>-<action execution id>`, so the name never tells the
    commit; the execution input (release-tooling package execution_input) does. Only executions
    started at or after `since` count. With none yet, a pipeline execution in progress means the
    release is queued or starting (Waiting); otherwise None (nothing started).
    """
    cache = {} if cache is None else cache
    listed = sfn.list_executions(stateMachineArn=state_machine_arn, maxResults=50)
    # ListExecutions returns the most recent execution first, so the first match is the newest.
    for item in listed.get("executions", []):
        if since is not None and item["startDate"] < since:
            break
        if _execution_commit(sfn, item["executionArn"], cache) == commit:
            return ReleaseRef(item["executionArn"], item["startDate"])
    if codepipeline is None or not pipeline_name:
        return None
    summaries = codepipeline.list_pipeline_executions(
        pipelineName=pipeline_name, maxResults=10
    ).get("pipelineExecutionSummaries", [])
    busy = [
        x
        for x in summaries
        if x.get("status") in ("InProgress", "Stopping")
        and (since is None or x.get("startTime") is None or x["startTime"] >= since)
    ]
    if busy:
        ids = ", ".join(x["pipelineExecutionId"] for x in busy)
        return Waiting(
            f"pipeline {pipeline_name} has {len(busy)} execution(s) in progress ({ids}); the "
            "release of this commit is queued behind them or starting"
        )
    return None


@dataclass
class Settings:
    commit: str
    state_machine_arn: str
    pipeline_name: str | None
    region: str
    since: dt.datetime
    timeout: float = 3300.0
    find_timeout: float = 900.0
    poll_interval: float = 15.0
    stop_at_state: str | None = None
    follow_limit: float | None = None


@dataclass
class Outcome:
    status: str
    execution_arn: str
    state: str | None
    error: str | None = None
    cause: str | None = None
    pipeline_execution_id: str | None = None
    rolled_back: bool = False
    # The execution's own input and output (the release contract; each step's result).
    input: str | None = None
    output: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status in ("SUCCEEDED", "PAUSED")


def execution_console_url(region: str, execution_arn: str) -> str:
    return (
        f"https://{region}.console.aws.amazon.com/states/home?region={region}"
        f"#/v2/executions/details/{execution_arn}"
    )


def pipeline_console_url(region: str, pipeline: str, execution_id: str) -> str:
    return (
        f"https://{region}.console.aws.amazon.com/codesuite/codepipeline/pipelines/{pipeline}"
        f"/executions/{execution_id}/timeline?region={region}"
    )


class ExecutionHistory:
    """The history of one execution, read forward: each read returns only the events not seen yet.

    GetExecutionHistory pages forward from the first event and gives no token past the last one,
    so each read pages from the start and keeps what is new (a release has tens of events).
    """

    def __init__(self, sfn: Any, execution_arn: str, max_pages: int = 20) -> None:
        self.sfn, self.execution_arn, self.max_pages = sfn, execution_arn, max_pages
        self.events: list[dict[str, Any]] = []

    def read_new(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"executionArn": self.execution_arn, "maxResults": 1000}
        for _ in range(self.max_pages):
            page = self.sfn.get_execution_history(**kwargs)
            events.extend(page.get("events", []))
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
        new = events[len(self.events) :]
        self.events = events
        return new

    def entered(self) -> list[str]:
        """Names of the states entered so far, in order (a state entered twice appears twice)."""
        return [
            event["stateEnteredEventDetails"].get("name")
            for event in self.events
            if event.get("stateEnteredEventDetails")
        ]

    @property
    def state(self) -> str | None:
        """The state entered last."""
        names = self.entered()
        return names[-1] if names else None


@dataclass
class ReleaseWatcher:
    """Finds and follows the Step Functions execution of one commit: the one follower used by
    `release-wait` on GitHub Actions and by `release-tooling local release`.

    Hooks let a caller show more without a second follow loop: `on_event` receives every new
    history event (otherwise state changes are logged), `on_poll` runs after each poll of the
    running execution with its history, and `start_failure` may name why the release cannot
    start (then the wait ends at once instead of after --find-timeout).
    """

    settings: Settings
    sfn: Any
    codepipeline: Any | None = None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    log: Callable[[str], None] = field(default=lambda msg: print(msg, flush=True))
    on_event: Callable[[dict[str, Any]], None] | None = None
    on_poll: Callable[[str, ExecutionHistory], None] | None = None
    start_failure: Callable[[], str | None] | None = None
    console_links: bool = True
    _commit_by_arn: dict[str, str | None] = field(default_factory=dict)

    def find_execution(self) -> str | None:
        """Newest execution started since `since` whose input names the commit."""
        found = self.find()
        return found.execution_arn if isinstance(found, ReleaseRef) else None

    def find(self) -> ReleaseRef | Waiting | None:
        s = self.settings
        return find_release(
            self.sfn,
            self.codepipeline,
            s.state_machine_arn,
            s.pipeline_name,
            s.commit,
            since=s.since,
            cache=self._commit_by_arn,
        )

    def pipeline_execution_for(self, execution_arn: str) -> str | None:
        """The CodePipeline execution whose Step Functions action started this execution."""
        if not (self.codepipeline and self.settings.pipeline_name):
            return None
        name = self.settings.pipeline_name
        try:
            recent = self.codepipeline.list_pipeline_executions(pipelineName=name, maxResults=10)
            for summary in recent.get("pipelineExecutionSummaries", []):
                pid = summary["pipelineExecutionId"]
                actions = self.codepipeline.list_action_executions(
                    pipelineName=name, filter={"pipelineExecutionId": pid}
                )
                for action in actions.get("actionExecutionDetails", []):
                    result = (action.get("output") or {}).get("executionResult") or {}
                    if result.get("externalExecutionId") == execution_arn:
                        return pid
        except Exception as err:  # the link is a convenience; the execution result decides
            self.log(f"(could not link the pipeline execution: {err})")
        return None

    def _find_started(self, start: float, limit: float) -> str:
        s = self.settings
        said = None
        while True:
            found = self.find()
            if isinstance(found, ReleaseRef):
                return found.execution_arn
            waited = self.clock() - start
            failure = self.start_failure() if self.start_failure else None
            if failure:
                raise ReleaseNotFound(failure)
            if isinstance(found, Waiting):
                # Queued behind another release: waiting, not failing to start.
                if found.reason != said:
                    self.log(f"  [{waited:6.0f}s] queued: {found.reason}")
                    said = found.reason
                if waited >= limit:
                    raise WaitTimeout(
                        f"the release of {s.commit} was still queued after {waited:.0f}s "
                        f"({found.reason}); it starts when the pipeline gets to it and goes "
                        "on without this job"
                    )
            elif waited >= min(s.find_timeout, limit):
                raise ReleaseNotFound(
                    f"no execution of {s.state_machine_arn} for commit {s.commit} started after "
                    f"{s.since.isoformat()} within {waited:.0f}s. Check that `make release-upload` "
                    f"uploaded pipeline/source.zip and that the pipeline {s.pipeline_name or ''} "
                    "started (CodePipeline console, Source stage)."
                )
            self.sleep(s.poll_interval)

    def wait(self) -> Outcome:
        s = self.settings
        start = self.clock()
        self.log(f"Waiting for the release of {s.commit} (state machine {s.state_machine_arn})")
        limit = min(s.timeout, s.follow_limit or s.timeout)
        if s.follow_limit and s.follow_limit < s.timeout:
            self.log(
                f"The release may take up to {s.timeout:.0f}s; this job follows it for "
                f"{s.follow_limit:.0f}s (--follow-limit: its credentials/job limit). If it is "
                "still running then, this exits 3 and the release goes on."
            )
        execution_arn = self._find_started(start, limit)
        pipeline_execution = self.pipeline_execution_for(execution_arn)
        self.log(f"Found execution {execution_arn}")
        if self.console_links:
            self.log(f"  {execution_console_url(s.region, execution_arn)}")
            if pipeline_execution:
                self.log(
                    "  pipeline: "
                    + pipeline_console_url(s.region, s.pipeline_name, pipeline_execution)
                )

        history = ExecutionHistory(self.sfn, execution_arn)
        last_state = None
        while True:
            # Described before the history is read, so a finished execution's history is whole.
            described = self.sfn.describe_execution(executionArn=execution_arn)
            status = described["status"]
            for event in history.read_new():
                if self.on_event:
                    self.on_event(event)
            state = history.state
            if state != last_state and not self.on_event:
                self.log(f"  [{self.clock() - start:6.0f}s] {status}: {state or '(starting)'}")
            last_state = state
            if status == "RUNNING" and self.on_poll:
                self.on_poll(execution_arn, history)
            if status == "RUNNING" and state and state == s.stop_at_state:
                # e.g. a manual approval: the release goes on without this job.
                return Outcome(
                    "PAUSED", execution_arn, state, pipeline_execution_id=pipeline_execution
                )
            if status in TERMINAL:
                return Outcome(
                    status=status,
                    execution_arn=execution_arn,
                    state=state,
                    error=described.get("error"),
                    cause=described.get("cause"),
                    pipeline_execution_id=pipeline_execution,
                    rolled_back=status != "SUCCEEDED"
                    and any("rollback" in (name or "").lower() for name in history.entered()),
                    input=described.get("input"),
                    output=described.get("output"),
                )
            if self.clock() - start >= limit:
                raise WaitTimeout(
                    f"execution {execution_arn} still {status} in state {state} after "
                    f"{limit:.0f}s; it keeps running — follow it in the console"
                )
            self.sleep(s.poll_interval)


def provenance_lines(outcome: Outcome, reviewed: Mapping[str, Any] | None) -> list[str]:
    """What the release ran, from review to execution (release_tooling.provenance)."""
    if outcome.status == "PAUSED":
        return []
    links = provenance.chain(outcome.execution_arn, outcome.input, outcome.output, reviewed)
    return ["", "Provenance:", *links] if links else []


def report(outcome: Outcome, settings: Settings) -> str:
    url = execution_console_url(settings.region, outcome.execution_arn)
    if outcome.status == "PAUSED":
        return (
            f"Release of {settings.commit[:12]} is waiting in state {outcome.state}; "
            f"it continues without this job.\n{url}"
        )
    if outcome.succeeded:
        return f"Release of {settings.commit[:12]} succeeded (last state: {outcome.state}).\n{url}"
    lines = [f"Release of {settings.commit[:12]} {outcome.status} in state {outcome.state}."]
    if outcome.error:
        lines.append(f"error: {outcome.error}")
    if outcome.cause:
        lines.append(f"cause: {outcome.cause[:2000]}")
    if outcome.rolled_back and (outcome.state or "").lower() == "rollbackfailed":
        lines.append(
            "The rollback itself failed: check which version each alias points at and "
            "fix it by hand "
            "(see the execution's Rollback step)."
        )
    elif outcome.rolled_back:
        lines.append("The release was rolled back: the aliases point at their previous versions.")
    lines.append(url)
    return "\n".join(lines)


# ---------------------------------------------------------------------- settings


def terraform_outputs(
    runner: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
) -> dict[str, Any]:
    proc = runner(
        ["terraform", f"-chdir={ROOT / 'terraform'}", "output", "-json"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise ConfigError(
            "no --state-machine-arn/STATE_MACHINE_ARN given and `terraform output -json` failed "
            f"({proc.stderr.strip()[:300]}); run `make tf-init` first or pass the ARN"
        )
    return {k: v.get("value") for k, v in json.loads(proc.stdout or "{}").items()}


def parse_since(text: str | None, now: dt.datetime) -> dt.datetime:
    if not text:
        # The upload ran moments ago; allow for clock skew between runner and AWS.
        return now - dt.timedelta(minutes=5)
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"--since must be an ISO 8601 timestamp, got {text!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def resolve_settings(
    args: argparse.Namespace,
    env: dict[str, str],
    outputs: Callable[[], dict[str, Any]] = terraform_outputs,
    now: dt.datetime | None = None,
) -> Settings:
    commit = (args.commit or "").lower()
    if not SHA_RE.match(commit):
        raise ConfigError(f"--commit must be a full 40-character hex SHA, got {args.commit!r}")
    arn = args.state_machine_arn or env.get("STATE_MACHINE_ARN")
    pipeline = args.pipeline_name or env.get("PIPELINE_NAME")
    region = args.region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    budget: dict[str, Any] = {}
    if not arn:
        found = outputs()
        arn = found.get("state_machine_arn")
        pipeline = pipeline or found.get("pipeline_name")
        region = region or found.get("aws_region")
        budget = found.get("release_budget") or {}
        if not arn:
            raise ConfigError("terraform output has no state_machine_arn; pass --state-machine-arn")
    match = re.match(r"^arn:[\w-]+:states:([a-z0-9-]+):\d{12}:stateMachine:[\w-]+$", arn)
    if not match:
        raise ConfigError(f"--state-machine-arn is not a state machine ARN: {arn!r}")
    region = region or match.group(1)
    timeout = args.timeout
    if timeout is None:
        raw = env.get("RELEASE_WAIT_TIMEOUT") or str(budget.get("release_wait_seconds") or 3300)
        try:
            timeout = float(raw)
        except ValueError:
            raise ConfigError(
                f"RELEASE_WAIT_TIMEOUT must be a number of seconds, got {raw!r}"
            ) from None
    follow_limit = args.follow_limit
    if follow_limit is None:
        raw = env.get("RELEASE_FOLLOW_LIMIT") or (
            str(GITHUB_FOLLOW_LIMIT) if env.get("GITHUB_ACTIONS") == "true" else ""
        )
        try:
            follow_limit = float(raw) if raw else None
        except ValueError:
            raise ConfigError(
                f"RELEASE_FOLLOW_LIMIT must be a number of seconds, got {raw!r}"
            ) from None
    for name, value in (
        ("follow-limit", follow_limit if follow_limit is not None else 1.0),
        ("timeout", timeout),
        ("find-timeout", args.find_timeout),
        ("poll-interval", args.poll_interval),
    ):
        if value <= 0:
            raise ConfigError(f"--{name} must be positive")
    return Settings(
        commit=commit,
        state_machine_arn=arn,
        pipeline_name=pipeline,
        region=region,
        since=parse_since(args.since, now or dt.datetime.now(dt.UTC)),
        timeout=timeout,
        find_timeout=args.find_timeout,
        poll_interval=args.poll_interval,
        stop_at_state=args.stop_at_state or env.get("RELEASE_STOP_AT_STATE") or None,
        follow_limit=follow_limit,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commit", required=True, help="40-hex commit SHA that was uploaded")
    parser.add_argument("--state-machine-arn", help="release state machine (env STATE_MACHINE_ARN)")
    parser.add_argument(
        "--pipeline-name", help="CodePipeline name, for the link (env PIPELINE_NAME)"
    )
    parser.add_argument("--region", help="AWS region (default: AWS_REGION or the ARN's region)")
    parser.add_argument(
        "--since", help="ignore executions started before this time (default: 5 min ago)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        help="how long the release may take, in seconds (RELEASE_WAIT_TIMEOUT; default terraform "
        "output release_budget.release_wait_seconds, else 3300)",
    )
    parser.add_argument(
        "--follow-limit",
        type=float,
        help="stop following after this many seconds, exit 3, the release goes on "
        "(RELEASE_FOLLOW_LIMIT; 3300 on GitHub Actions: one 1-hour role session)",
    )
    parser.add_argument(
        "--find-timeout", type=float, default=900.0, help="cap for the execution to appear (15 min)"
    )
    parser.add_argument("--poll-interval", type=float, default=15.0, help="seconds between polls")
    parser.add_argument(
        "--reviewed",
        type=Path,
        help="the deploy job's record of the reviewed plan (plan-review check --provenance-out), "
        "named in the provenance",
    )
    parser.add_argument(
        "--stop-at-state",
        help="report success once the execution waits in this state (RELEASE_STOP_AT_STATE), "
        "e.g. ApproveProduction",
    )
    return parser


def main(
    argv: list[str] | None = None, env: dict[str, str] | None = None, clients: Any = None
) -> int:
    args = build_parser().parse_args(argv)
    env = dict(os.environ) if env is None else env
    try:
        settings = resolve_settings(args, env)
    except ConfigError as err:
        print(f"wait_for_release.py: {err}", file=sys.stderr)
        return 2
    if clients is None:
        import boto3

        clients = (
            boto3.client("stepfunctions", region_name=settings.region),
            boto3.client("codepipeline", region_name=settings.region),
        )
    watcher = ReleaseWatcher(settings, sfn=clients[0], codepipeline=clients[1])
    try:
        outcome = watcher.wait()
    except ReleaseNotFound as err:
        print(f"::error title=Release not started::wait_for_release.py: {err}")
        return 1
    except WaitTimeout as err:
        # Not a failure of the release: it goes on; this job just stops watching it.
        print(f"::warning title=Release still running::wait_for_release.py: {err}")
        return 3
    message = report(outcome, settings)
    if outcome.status != "SUCCEEDED" and not outcome.output:
        # A failed execution has no output: the provenance reads what its last state left.
        try:
            outcome.output = provenance.execution_data(clients[0], outcome.execution_arn, {})
        except Exception as err:  # noqa: BLE001 - the chain is a record; the outcome decides
            print(f"(provenance: could not read the execution history: {err})")
    chain = provenance_lines(
        outcome, provenance.read_reviewed(args.reviewed) if args.reviewed else None
    )
    if chain:
        print("\n".join(chain))
    if outcome.succeeded:
        print(message)
        return 0
    # GitHub renders ::error lines as annotations on the run.
    print("::error title=Release failed::" + message.replace("\n", "%0A"))
    return 1


if __name__ == "__main__":
    sys.exit(main())
