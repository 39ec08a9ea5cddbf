"""Poll one CodeDeploy deployment and normalise its status for the state machine.

Input:  {"deployment": <deploy record>, "max_polls": int}
Output: the deploy record plus {"status": "InProgress"|"Succeeded", "polls": n, "error": null,
        "rollback": {...}|null}. A null deployment_id (first release, already deployed) is
        Succeeded.
Failed/Stopped deployments raise DeploymentFailedError/DeploymentStoppedError naming the alias,
deployment and CodeDeploy's reason; reaching max_polls raises DeploymentTimeoutError.
"""

from collections.abc import Mapping
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


def check(deployment: Mapping[str, Any], polls: int, max_polls: int) -> dict[str, Any]:
    deployment_id = deployment.get("deployment_id")
    polls += 1
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
    if state["status"] == "InProgress" and polls >= max_polls:
        raise DeploymentTimeoutError(
            f"deployment {deployment_id} of alias {deployment.get('alias')} "
            f"still in progress after {polls} polls (max_polls={max_polls}); "
            "raise max_polls or check the deployment in CodeDeploy"
        )
    return result


@lambda_entrypoint(logger)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    deployment = require_mapping(event, "deployment")
    max_polls = require_int(event, "max_polls", minimum=1)
    polls = deployment.get("polls", 0)
    if not isinstance(polls, int) or isinstance(polls, bool) or polls < 0:
        raise InvalidInputError(f"deployment.polls must be a non-negative integer, got {polls!r}")
    result = check(deployment, polls, max_polls)
    logger.info(
        "deployment status",
        extra={"alias": result.get("alias"), "status": result["status"], "polls": result["polls"]},
    )
    return result
