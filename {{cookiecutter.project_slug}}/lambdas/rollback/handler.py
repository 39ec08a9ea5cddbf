"""Roll a failed release back.

Input: {"state": <execution state>} (or the state itself); its "production" and "staging" deploy
records, whichever exist, each covering every app function of the release ("deployments", one
record per function; a record without it is one function's). Every function a stage's record
covers is rolled back, so a release that failed because of one function restores all of them.
For each (production first, then per function): stop the alias's active CodeDeploy deployment
with auto-rollback, wait (bounded by the invocation's remaining time) for the rollback deployment
CodeDeploy then creates, or created itself when the deployment failed, and stop it if it outlasts
the wait, then point the alias back at previous_version with routing cleared where it is not there
already. CodeDeploy rolls back by running a new deployment ("Redeploy and roll back a deployment
with CodeDeploy"; GetDeployment's rollbackInfo.rollbackDeploymentId names it), and a deployment
group runs one deployment at a time: left running, it would make the next release's
CreateDeployment fail with DeploymentLimitExceededException. A record whose previous_version is
null (first release, or the alias was already on the version) is left alone and reported as such,
as is an alias that another release has since moved. Running it twice is harmless. If any alias
could not be rolled back, RollbackFailedError names each one and why.

Output: {"results": [{"alias", "action", "detail", "function_name"}], "summary": str}
"""

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from shared import app_functions
from shared.clients import client
from shared.errors import InvalidInputError, PipelineError
from shared.log import get_logger, lambda_entrypoint

logger = get_logger("rollback")

ACTIVE_STATUSES = {"Created", "Queued", "InProgress", "Baking", "Ready"}
ORDER = ("production", "staging")


POLL_SECONDS = 2.0
SAFETY_SECONDS = 15.0  # left of the invocation for fixing the aliases after waiting
DEFAULT_WAIT_SECONDS = 90.0  # when the context cannot tell the remaining time


class RollbackFailedError(PipelineError):
    pass


class Clock:
    """Deadline for waiting on CodeDeploy within this invocation (replaced in tests)."""

    def __init__(
        self,
        seconds: float,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sleep, self.now = sleep, now
        self.deadline = now() + max(seconds, 0.0)

    def left(self) -> float:
        return self.deadline - self.now()


def _info(deployment_id: str) -> dict[str, Any]:
    return client("codedeploy").get_deployment(deploymentId=deployment_id)["deploymentInfo"]


def _stop(deployment_id: str, auto_rollback: bool) -> bool:
    try:
        client("codedeploy").stop_deployment(
            deploymentId=deployment_id, autoRollbackEnabled=auto_rollback
        )
    except ClientError as exc:
        # It finished between our read and the stop: nothing left to stop.
        if exc.response["Error"]["Code"] != "DeploymentAlreadyCompletedException":
            raise
        return False
    return True


def _wait_until_done(deployment_id: str, clock: Clock) -> dict[str, Any]:
    info = _info(deployment_id)
    while info.get("status") in ACTIVE_STATUSES and clock.left() > 0:
        clock.sleep(min(POLL_SECONDS, max(clock.left(), 0.0)))
        info = _info(deployment_id)
    return info


def settle_deployments(deployment_id: str, clock: Clock) -> list[str]:
    """Leave the deployment group idle: stop this release's deployment, then wait for (or stop)
    the rollback deployment CodeDeploy runs for it."""
    notes: list[str] = []
    info = _info(deployment_id)
    status = info.get("status")
    if status in ACTIVE_STATUSES and _stop(deployment_id, auto_rollback=True):
        notes.append(f"stopped deployment {deployment_id} ({status}) with auto-rollback")
        info = _wait_until_done(deployment_id, clock)
    rollback_id = (info.get("rollbackInfo") or {}).get("rollbackDeploymentId")
    if not rollback_id:
        return notes
    done = _wait_until_done(rollback_id, clock)
    if done.get("status") in ACTIVE_STATUSES:
        # Out of time: stop it (no rollback of the rollback); the alias is fixed below.
        _stop(rollback_id, auto_rollback=False)
        notes.append(
            f"stopped CodeDeploy's rollback deployment {rollback_id}, still "
            f"{done.get('status')} when this invocation's wait ran out"
        )
    else:
        notes.append(f"CodeDeploy's rollback deployment {rollback_id} {done.get('status')}")
    return notes


def roll_back_alias(
    function_name: str, deployed: Mapping[str, Any], clock: Clock
) -> dict[str, Any]:
    alias = deployed.get("alias")
    previous = deployed.get("previous_version")
    target = deployed.get("target_version")
    notes = []
    deployment_id = deployed.get("deployment_id")
    if deployment_id:
        notes += settle_deployments(str(deployment_id), clock)

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


def function_records(
    name: str, deployed: Any, function_names: Sequence[str]
) -> list[tuple[str, Mapping[str, Any]]]:
    """(function name, record) for every app function a stage's deploy record covers: its
    "deployments" (one per function), or the record itself for a single function."""
    if not isinstance(deployed, Mapping) or not deployed.get("alias"):
        raise InvalidInputError(f"{name} must be a deploy record with an 'alias', got {deployed!r}")
    records = deployed.get("deployments")
    if records is None:
        records = [deployed]
    if not isinstance(records, list):
        raise InvalidInputError(f"{name}.deployments must be a list, got {records!r}")
    pairs = []
    for record in records:
        if not isinstance(record, Mapping) or not record.get("alias"):
            raise InvalidInputError(
                f"{name}.deployments holds {record!r}, not a deploy record with an 'alias'"
            )
        function = record.get("function_name") or function_names[0]
        if function not in function_names:
            # Only the stack's own app functions are ever moved back.
            raise InvalidInputError(
                f"{name} names function {function!r}, not one of this stack's app functions "
                f"{list(function_names)}"
            )
        pairs.append((function, record))
    return pairs


def roll_back(
    state: Mapping[str, Any], function_names: str | Sequence[str], clock: Clock | None = None
) -> dict[str, Any]:
    """Roll back every app function each stage's record covers (production first)."""
    clock = clock or Clock(DEFAULT_WAIT_SECONDS)
    names = [function_names] if isinstance(function_names, str) else list(function_names)
    several = len(names) > 1
    pairs = [
        pair
        for stage in ORDER
        if state.get(stage) is not None
        for pair in function_records(stage, state.get(stage), names)
    ]
    results: list[dict[str, Any]] = []
    failures: list[str] = []
    for function_name, deployed in pairs:
        where = f"{function_name}:{deployed['alias']}" if several else deployed["alias"]
        try:
            result = roll_back_alias(function_name, deployed, clock)
        except (ClientError, BotoCoreError) as exc:
            failures.append(f"{where}: {exc}")
            result = {"alias": deployed["alias"], "action": "failed", "detail": str(exc)}
        results.append({**result, "function_name": function_name, "where": where})
    for result in results:
        logger.info("rollback result", extra=result)
    if failures:
        raise RollbackFailedError(
            "could not roll back " + "; ".join(failures) + " - fix the alias by hand "
            "(aws lambda update-alias) and check CodeDeploy"
        )
    summary = "; ".join(f"{r.pop('where')}: {r['action']} ({r['detail']})" for r in results)
    return {"results": results, "summary": summary or "nothing was deployed; nothing to roll back"}


@lambda_entrypoint(logger)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    state = event.get("state", event)
    if not isinstance(state, Mapping):
        raise InvalidInputError(
            f"event field 'state' must be an object, got {type(state).__name__}"
        )
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    seconds = remaining() / 1000 - SAFETY_SECONDS if callable(remaining) else DEFAULT_WAIT_SECONDS
    names = [function.function_name for function in app_functions.from_env()]
    return roll_back(state, names, Clock(seconds))
