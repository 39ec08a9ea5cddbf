"""Poll an alias's CodeDeploy deployments (one per app function) and normalise their status.

With deploy's "deployments" list, every function's deployment is polled (check_all) and the alias
is Succeeded when all are; the description below is that of each one.

Input:  {"deployment": <deploy record>, "timeout_seconds": int, "poll_interval_seconds": int}
        timeout_seconds is the stage's budget that terraform/release_budget derives from the
        deployment strategy (its shift time plus a margin); the state machine passes it.
Output: the deploy record plus {"status": "InProgress"|"Succeeded", "polls": n, "error": null,
        "rollback": {...}|null}. A null deployment_id (first release, already deployed) is
        Succeeded.
Failed/Stopped deployments raise DeploymentFailedError/DeploymentStoppedError naming the alias,
deployment and CodeDeploy's reason. A deployment still in progress timeout_seconds after
CodeDeploy created it (its createTime; polls x poll interval when CodeDeploy gives none) raises
DeploymentTimeoutError.
"""

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from shared.clients import client
from shared.config import require_int, require_mapping
from shared.errors import InvalidInputError, PipelineError
from shared.log import get_logger, lambda_entrypoint

logger = get_logger("deployment_status")

STATUS_MAP = {
    "Created": "InProgress",
    "Queued": "InProgress",
    "InProgress": "InProgress",
    "Baking": "InProgress",
    "Ready": "InProgress",
    "Succeeded": "Succeeded",
    "Failed": "Failed",
    "Stopped": "Stopped",
}


class DeploymentStatusError(PipelineError):
    """Base class: the deployment did not succeed."""


class DeploymentFailedError(DeploymentStatusError):
    pass


class DeploymentStoppedError(DeploymentStatusError):
    pass


class DeploymentTimeoutError(DeploymentStatusError):
    pass


class UnknownDeploymentStatusError(DeploymentStatusError):
    pass


def normalise(info: Mapping[str, Any]) -> dict[str, Any]:
    """Map CodeDeploy's deploymentInfo to {status, error, rollback}."""
    raw = info.get("status")
    status = STATUS_MAP.get(str(raw))
    if status is None:
        raise UnknownDeploymentStatusError(f"CodeDeploy returned unknown status {raw!r}")
    error = info.get("errorInformation") or {}
    rollback = info.get("rollbackInfo") or {}
    return {
        "status": status,
        "error": {"code": error.get("code"), "message": error.get("message")} if error else None,
        "rollback": {
            "deployment_id": rollback.get("rollbackDeploymentId"),
            "message": rollback.get("rollbackMessage"),
        }
        if rollback
        else None,
    }


def failure_message(deployment: Mapping[str, Any], state: Mapping[str, Any]) -> str:
    why = state["error"] or {}
    reason = (
        f"{why.get('code')}: {why.get('message')}" if why else "CodeDeploy gave no errorInformation"
    )
    text = (
        f"deployment {deployment.get('deployment_id')} of alias {deployment.get('alias')} "
        f"({deployment.get('function_name')} v{deployment.get('previous_version')} -> "
        f"v{deployment.get('target_version')}) {state['status']}: {reason}"
    )
    if state["rollback"]:
        text += (
            f"; CodeDeploy rollback {state['rollback'].get('deployment_id')}: "
            f"{state['rollback'].get('message')}"
        )
    return text


def elapsed_seconds(
    info: Mapping[str, Any], polls: int, poll_interval: int, now: datetime
) -> float:
    """Seconds the deployment has been running: since CodeDeploy's createTime when it gives one."""
    created = info.get("createTime")
    if isinstance(created, datetime):
        if created.tzinfo is None:
            created = created.replace(tzinfo=UTC)
        return (now - created).total_seconds()
    return float(polls * poll_interval)


def check(
    deployment: Mapping[str, Any],
    polls: int,
    timeout_seconds: int,
    poll_interval: int,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> dict[str, Any]:
    deployment_id = deployment.get("deployment_id")
    polls += 1
    info: Mapping[str, Any] = {}
    if deployment_id is None:
        state: dict[str, Any] = {"status": "Succeeded", "error": None, "rollback": None}
    elif not isinstance(deployment_id, str):
        raise InvalidInputError(
            f"deployment.deployment_id must be a string or null, got {deployment_id!r}"
        )
    else:
        info = client("codedeploy").get_deployment(deploymentId=deployment_id)["deploymentInfo"]
        state = normalise(info)
    result = {**deployment, **state, "polls": polls}
    if state["status"] == "Failed":
        raise DeploymentFailedError(failure_message(deployment, state))
    if state["status"] == "Stopped":
        raise DeploymentStoppedError(failure_message(deployment, state))
    if state["status"] == "InProgress":
        elapsed = elapsed_seconds(info, polls, poll_interval, now())
        if elapsed >= timeout_seconds:
            raise DeploymentTimeoutError(
                f"deployment {deployment_id} of alias {deployment.get('alias')} "
                f"still in progress after {elapsed:.0f} s ({polls} polls), beyond the "
                f"{timeout_seconds} s budget for this deployment strategy; check the deployment "
                "in CodeDeploy (terraform/release_budget derives the budget from "
                "deployment_strategy)"
            )
    return result


def check_all(
    deployment: Mapping[str, Any],
    polls: int,
    timeout_seconds: int,
    poll_interval: int,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> dict[str, Any]:
    """Poll every app function's deployment of the alias (deploy's "deployments"); the alias is
    Succeeded once all are, and the first that failed, stopped or timed out fails the step (the
    rollback then restores every function). A record without "deployments" is one deployment."""
    records = deployment.get("deployments")
    if records is None:
        return check(deployment, polls, timeout_seconds, poll_interval, now)
    if not isinstance(records, list) or not all(isinstance(r, Mapping) for r in records):
        raise InvalidInputError(
            f"deployment.deployments must be a list of objects, got {records!r}"
        )
    checked = []
    for one in records:
        result = check(one, polls, timeout_seconds, poll_interval, now)
        result.pop("polls", None)
        checked.append(result)
    done = all(r["status"] == "Succeeded" for r in checked)
    return {
        **deployment,
        "deployments": checked,
        "status": "Succeeded" if done else "InProgress",
        "polls": polls + 1,
        "error": None,
        "rollback": None,
    }


@lambda_entrypoint(logger)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    deployment = require_mapping(event, "deployment")
    timeout_seconds = require_int(event, "timeout_seconds", minimum=1)
    poll_interval = require_int(event, "poll_interval_seconds", minimum=0)
    polls = deployment.get("polls", 0)
    if not isinstance(polls, int) or isinstance(polls, bool) or polls < 0:
        raise InvalidInputError(f"deployment.polls must be a non-negative integer, got {polls!r}")
    result = check_all(deployment, polls, timeout_seconds, poll_interval)
    logger.info(
        "deployment status",
        extra={"alias": result.get("alias"), "status": result["status"], "polls": result["polls"]},
    )
    return result
