#!/usr/bin/env python3
"""Approve or reject a release waiting in the ApproveProduction state.

  release-tooling approve approve --execution NAME_OR_ARN [--state-machine ARN] [--reason TEXT]
  release-tooling approve reject  --execution NAME_OR_ARN [--state-machine ARN] --reason TEXT

With a bare execution name, the state machine is --state-machine, else $STATE_MACHINE_ARN, else
the one in the current account and region named <service>-release, where <service> is
pyproject.toml's [project] name.
The task token is read from the execution history (the TaskScheduled event of the waiting
state), so approving needs states:DescribeExecution, states:GetExecutionHistory and
states:SendTask*.
"""

import argparse
import json
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from . import project

WAIT_RESOURCE_SUFFIX = ".waitForTaskToken"
REJECTION_ERROR = "ReleaseRejected"


def default_state_machine_name() -> str:
    return f"{project.service_name()}-release"  # terraform/names: <slug>-release


class ApprovalError(Exception):
    """Something prevents answering the approval; the message says what and how to fix it."""


@dataclass(frozen=True)
class Waiting:
    state: str
    token: str


def find_waiting_task(events: Iterable[Mapping[str, Any]]) -> Waiting | None:
    """The callback task still waiting for its token, from execution history (oldest first)."""
    current_state: str | None = None
    waiting: dict[str, str] = {}
    for event in events:
        kind = event.get("type", "")
        if kind.endswith("StateEntered"):
            current_state = event["stateEnteredEventDetails"]["name"]
        elif kind.endswith("StateExited"):
            waiting.pop(event["stateExitedEventDetails"]["name"], None)
        elif kind == "TaskScheduled":
            details = event.get("taskScheduledEventDetails") or {}
            if not str(details.get("resource", "")).endswith(WAIT_RESOURCE_SUFFIX):
                continue
            try:
                params = json.loads(details.get("parameters") or "{}")
            except ValueError:
                continue
            token = (
                (params.get("Payload") or {}).get("task_token")
                if isinstance(params, dict)
                else None
            )
            if current_state and isinstance(token, str):
                waiting[current_state] = token
    if not waiting:
        return None
    state, token = next(reversed(waiting.items()))
    return Waiting(state=state, token=token)


def history(sfn: Any, execution_arn: str) -> Iterable[Mapping[str, Any]]:
    paginator = sfn.get_paginator("get_execution_history")
    for page in paginator.paginate(executionArn=execution_arn, includeExecutionData=True):
        yield from page["events"]


def state_machine_arn(sfn: Any, explicit: str | None) -> str:
    if explicit:
        return explicit
    if os.environ.get("STATE_MACHINE_ARN"):
        return os.environ["STATE_MACHINE_ARN"]
    for page in sfn.get_paginator("list_state_machines").paginate():
        for machine in page["stateMachines"]:
            if machine["name"] == default_state_machine_name():
                return machine["stateMachineArn"]
    raise ApprovalError(
        f"no state machine named {default_state_machine_name()} in this account/region; "
        "pass --state-machine ARN or a full execution ARN"
    )


def execution_arn(sfn: Any, execution: str, machine: str | None) -> str:
    if execution.startswith("arn:"):
        if ":execution:" not in execution:
            raise ApprovalError(f"{execution} is not an execution ARN")
        return execution
    machine_arn = state_machine_arn(sfn, machine)
    if ":stateMachine:" not in machine_arn:
        raise ApprovalError(f"{machine_arn} is not a state machine ARN")
    return f"{machine_arn.replace(':stateMachine:', ':execution:', 1)}:{execution}"


def who_am_i(session: Any) -> str:
    try:
        return session.client("sts").get_caller_identity()["Arn"]
    except Exception:  # identity is informational only
        return os.environ.get("USER", "unknown")


def default_actor(session: Any, environ: Mapping[str, str]) -> str:
    """Who answers. In a GitHub Actions job (the Approve release workflow) the person who started
    the run (GITHUB_TRIGGERING_ACTOR, else GITHUB_ACTOR: "Store information in variables",
    GitHub Actions docs) and the run's URL, then the AWS identity; elsewhere the AWS identity."""
    identity = who_am_i(session)
    person = environ.get("GITHUB_TRIGGERING_ACTOR") or environ.get("GITHUB_ACTOR")
    if environ.get("GITHUB_ACTIONS") != "true" or not person:
        return identity
    run = "{}/{}/actions/runs/{}".format(
        environ.get("GITHUB_SERVER_URL", "https://github.com"),
        environ.get("GITHUB_REPOSITORY", "?"),
        environ.get("GITHUB_RUN_ID", "?"),
    )
    return f"{person} via {run} ({identity})"


def answer(sfn: Any, action: str, arn: str, reason: str | None, actor: str) -> str:
    from botocore.exceptions import ClientError

    try:
        status = sfn.describe_execution(executionArn=arn)["status"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ExecutionDoesNotExist":
            raise ApprovalError(f"execution {arn} does not exist") from None
        raise
    if status != "RUNNING":
        raise ApprovalError(f"execution {arn} is {status}, not waiting for approval")
    waiting = find_waiting_task(history(sfn, arn))
    if waiting is None:
        raise ApprovalError(
            f"execution {arn} is running but not waiting for approval yet "
            "(it is still deploying or testing staging); try again when the approval email arrives"
        )
    try:
        if action == "approve":
            output = {
                "approved_by": actor,
                "reason": reason,
                "approved_at": datetime.now(UTC).isoformat(),
            }
            sfn.send_task_success(taskToken=waiting.token, output=json.dumps(output))
        else:
            sfn.send_task_failure(
                taskToken=waiting.token,
                error=REJECTION_ERROR,
                cause=f"rejected by {actor}: {reason or 'no reason given'}"[:32768],
            )
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("TaskTimedOut", "InvalidToken", "TaskDoesNotExist"):
            raise ApprovalError(
                f"the {waiting.state} wait of {arn} has already ended (answered or timed out)"
            ) from None
        raise
    verb = "approved" if action == "approve" else "rejected"
    return f"{verb} {arn} (state {waiting.state})"


def main(argv: list[str] | None = None, session: Any = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["approve", "reject"])
    parser.add_argument(
        "--execution", required=True, help="execution name (release-<sha12>) or ARN"
    )
    parser.add_argument(
        "--state-machine", help="state machine ARN (default: $STATE_MACHINE_ARN or by name)"
    )
    parser.add_argument("--reason", help="why; recorded in the execution history")
    args = parser.parse_args(argv)
    if args.action == "reject" and not args.reason:
        parser.error("reject needs --reason so the history says why the release stopped")
    if session is None:
        import boto3

        session = boto3.session.Session()
    sfn = session.client("stepfunctions")
    try:
        arn = execution_arn(sfn, args.execution, args.state_machine)
        actor = default_actor(session, os.environ)
        print(answer(sfn, args.action, arn, args.reason, actor))
    except ApprovalError as exc:
        print(f"approve.py: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
