"""Roll a failed release back.

Input: {"state": <execution state>} (or the state itself); its "production" and "staging" deploy
records, whichever exist.
For each (production first): stop the alias's active CodeDeploy deployment with auto-rollback,
then point the alias back at previous_version with routing cleared. A record whose
previous_version is null (first release, or the alias was already on the version) is left alone
and reported as such, as is an alias that another release has since moved. Running it twice is
harmless. If any alias could not be rolled back, RollbackFailedError names each one and why.

Output: {"results": [{"alias", "action", "detail"}], "summary": str}
"""

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from shared.clients import client
from shared.config import require_env
from shared.errors import InvalidInputError, PipelineError
from shared.log import get_logger, lambda_entrypoint

logger = get_logger("rollback")

ACTIVE_STATUSES = {"Created", "Queued", "InProgress", "Baking", "Ready"}
ORDER = ("production", "staging")


class RollbackFailedError(PipelineError):
    pass


def stop_deployment(deployment_id: str) -> str | None:
    """Stop an in-flight deployment (CodeDeploy then rolls traffic back itself)."""
    cd = client("codedeploy")
    status = cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"].get("status")
    if status not in ACTIVE_STATUSES:
        return None
    try:
        cd.stop_deployment(deploymentId=deployment_id, autoRollbackEnabled=True)
    except ClientError as exc:
        # It finished between our read and the stop: nothing left to stop.
        if exc.response["Error"]["Code"] != "DeploymentAlreadyCompletedException":
            raise
        return None
    return f"stopped deployment {deployment_id} ({status}) with auto-rollback"


def roll_back_alias(function_name: str, deployed: Mapping[str, Any]) -> dict[str, Any]:
    alias = deployed.get("alias")
    previous = deployed.get("previous_version")
    target = deployed.get("target_version")
    notes = []
    deployment_id = deployed.get("deployment_id")
    if deployment_id:
        stopped = stop_deployment(str(deployment_id))
        if stopped:
            notes.append(stopped)

    if previous is None:
        notes.append(
            f"no previous version recorded (first release, or alias was already on v{target}); "
            "alias left alone"
        )
        return {"alias": alias, "action": "left_alone", "detail": "; ".join(notes)}

    lam = client("lambda")
    current = lam.get_alias(FunctionName=function_name, Name=alias)
    weights = (current.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    version = current["FunctionVersion"]
    if version == str(previous) and not weights:
        notes.append(f"alias already on v{previous}")
        return {"alias": alias, "action": "already_rolled_back", "detail": "; ".join(notes)}
    if version not in (str(previous), str(target)) and str(target) not in weights:
        # Someone released something else since; rolling back would clobber it.
        notes.append(f"alias is on v{version}, not this release's v{target}; left alone")
        return {"alias": alias, "action": "left_alone", "detail": "; ".join(notes)}
    lam.update_alias(
        FunctionName=function_name,
        Name=alias,
        FunctionVersion=str(previous),
        RoutingConfig={"AdditionalVersionWeights": {}},
    )
    routed = ", ".join(f"v{v} at {float(w):.0%}" for v, w in sorted(weights.items()))
    notes.append(
        f"alias moved from v{version}{f' (+{routed})' if routed else ''} back to v{previous}"
    )
    return {"alias": alias, "action": "rolled_back", "detail": "; ".join(notes)}


def roll_back(state: Mapping[str, Any], function_name: str) -> dict[str, Any]:
    records = [(name, state.get(name)) for name in ORDER if state.get(name) is not None]
    results: list[dict[str, Any]] = []
    failures: list[str] = []
    for name, deployed in records:
        if not isinstance(deployed, Mapping) or not deployed.get("alias"):
            raise InvalidInputError(
                f"{name} must be a deploy record with an 'alias', got {deployed!r}"
            )
        try:
            results.append(roll_back_alias(function_name, deployed))
        except (ClientError, BotoCoreError) as exc:
            failures.append(f"{deployed['alias']}: {exc}")
            results.append({"alias": deployed["alias"], "action": "failed", "detail": str(exc)})
    for result in results:
        logger.info("rollback result", extra=result)
    if failures:
        raise RollbackFailedError(
            "could not roll back " + "; ".join(failures) + " - fix the alias by hand "
            "(aws lambda update-alias) and check CodeDeploy"
        )
    summary = "; ".join(f"{r['alias']}: {r['action']} ({r['detail']})" for r in results)
    return {"results": results, "summary": summary or "nothing was deployed; nothing to roll back"}


@lambda_entrypoint(logger)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    state = event.get("state", event)
    if not isinstance(state, Mapping):
        raise InvalidInputError(
            f"event field 'state' must be an object, got {type(state).__name__}"
        )
    return roll_back(state, require_env("APP_FUNCTION_NAME"))
