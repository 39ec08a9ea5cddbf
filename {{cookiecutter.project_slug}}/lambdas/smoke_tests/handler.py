"""Smoke-test every app function through its staging alias with the checks the release declares.

Each application function of the stack (APP_FUNCTIONS) is tested with its own checks, read from
its own zip in the release (the event's "functions"), against the version staging received (the
event's "deployments"); the release passes only when every function passes. Per function:

The checks belong to the function: lambdas/<key>/smoke_checks.json, packaged into <key>.zip
(format and validation: shared/smoke_checks.py). This function reads them from the release's
artifact (whose bytes must still have the sha256 validate_artifact accepted), invokes the
function with Qualifier=SMOKE_ALIAS for each check and
compares the status code and the body fields the check pins. A FunctionError counts as a failure
carrying the app's errorType/errorMessage. When the event carries target_version, the version
that served each request must be that version (proves the alias really points at the release).

A missing or malformed smoke_checks.json raises (SmokeChecksMissingError/SmokeChecksInvalidError),
which fails the step and rolls the release back with the reason as the execution's cause.

Output: {"passed": bool, "results": [{..., "function": key}], "summary": str}
"""

import hashlib
import io
import json
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from shared import app_functions, smoke_checks
from shared.app_functions import AppFunction
from shared.clients import client
from shared.config import require_env, require_str
from shared.errors import InvalidInputError, PipelineError
from shared.log import get_logger, lambda_entrypoint
from shared.smoke_checks import Check

logger = get_logger("smoke_tests")


class ArtifactUnreadableError(PipelineError):
    """The release's app.zip cannot be read, or is not the artifact validate_artifact accepted."""


def _same(expected: Any, got: Any) -> bool:
    """JSON equality: true is not 1, 1 is 1.0, objects and arrays compare element by element."""
    if isinstance(expected, bool) or isinstance(got, bool):
        return type(expected) is type(got) and expected == got
    if isinstance(expected, dict) and isinstance(got, dict):
        return expected.keys() == got.keys() and all(_same(v, got[k]) for k, v in expected.items())
    if isinstance(expected, list) and isinstance(got, list):
        return len(expected) == len(got) and all(map(_same, expected, got))
    return expected == got


def evaluate(
    check: Check,
    response: Mapping[str, Any],
    payload: bytes,
    expected_version: str | None,
) -> dict[str, Any]:
    """Judge one invocation. Pure: takes the Invoke response and its payload bytes."""
    result: dict[str, Any] = {"name": check.name, "passed": False, "status_code": None}
    executed = response.get("ExecutedVersion")
    if response.get("FunctionError"):
        try:
            err = json.loads(payload)
        except ValueError:
            err = {}
        err = err if isinstance(err, dict) else {}
        result["detail"] = (
            f"app raised {err.get('errorType', response['FunctionError'])}: "
            f"{err.get('errorMessage', payload[:200].decode('utf-8', 'replace'))}"
        )
        return result
    if expected_version and executed and executed != expected_version:
        result["detail"] = f"served by version {executed}, expected {expected_version}"
        return result
    try:
        reply = json.loads(payload)
        body = json.loads(reply.get("body") or "{}")
    except (ValueError, AttributeError, TypeError):
        result["detail"] = f"response is not an HTTP-style JSON reply: {payload[:200]!r}"
        return result
    result["status_code"] = reply.get("statusCode")
    if reply.get("statusCode") != check.status_code:
        result["detail"] = f"status {reply.get('statusCode')}, expected {check.status_code}: {body}"
        return result
    if check.body and not isinstance(body, dict):
        result["detail"] = f"body is not a JSON object, expected fields {check.body}: {body!r}"
        return result
    wrong = {
        k: {"expected": v, "got": body.get(k)}
        for k, v in check.body.items()
        if k not in body or not _same(v, body[k])
    }
    if wrong:
        result["detail"] = f"unexpected body fields {wrong}"
        return result
    result["passed"] = True
    result["detail"] = "ok"
    return result


def read_checks(bucket: str, key: str, sha256: str, function: str = "app") -> list[Check]:
    """The smoke checks packaged in s3://bucket/key, whose bytes must have ``sha256``."""
    try:
        data = client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise ArtifactUnreadableError(
            f"cannot read the release's artifact s3://{bucket}/{key} for its smoke checks: "
            f"{error.get('Code')}: {error.get('Message')} (the smoke_tests role needs "
            "s3:GetObject on it, terraform/iam.tf)"
        ) from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256.lower():
        raise ArtifactUnreadableError(
            f"s3://{bucket}/{key} has sha256 {actual}, not the {sha256} validate_artifact "
            "accepted: the artifact changed during the release; upload the release again"
        )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return smoke_checks.from_archive(archive, function)
    except zipfile.BadZipFile as exc:
        raise ArtifactUnreadableError(f"s3://{bucket}/{key} is not a zip archive: {exc}") from None


def run(
    checks: Sequence[Check], function_name: str, alias: str, expected_version: str | None
) -> dict[str, Any]:
    lam = client("lambda")
    results = []
    for check in checks:
        try:
            response = lam.invoke(
                FunctionName=function_name,
                Qualifier=alias,
                Payload=json.dumps(check.event).encode(),
            )
            payload = response["Payload"].read()
        except (ClientError, BotoCoreError) as exc:
            results.append(
                {
                    "name": check.name,
                    "passed": False,
                    "status_code": None,
                    "detail": f"invoke failed: {exc}",
                }
            )
            continue
        results.append(evaluate(check, response, payload, expected_version))
    failed = [r for r in results if not r["passed"]]
    passed = len(results) - len(failed)
    summary = f"{passed}/{len(results)} smoke tests passed against {function_name}:{alias}"
    if failed:
        summary += "; failed: " + "; ".join(f"{r['name']} ({r['detail']})" for r in failed)
    return {"passed": not failed, "results": results, "summary": summary}


def _by_key(items: Any, field: str) -> dict[str, Mapping[str, Any]]:
    if not isinstance(items, list) or not all(
        isinstance(i, Mapping) and isinstance(i.get("key"), str) for i in items
    ):
        raise InvalidInputError(
            f"event field {field!r} must be a list of objects with a 'key', got {items!r}"
        )
    return {i["key"]: i for i in items}


def targets(event: Mapping[str, Any], functions: list[AppFunction]) -> list[dict[str, Any]]:
    """What to test for each app function: its name, its artifact and the version staging got.

    The state machine passes "functions" (validate_artifact's key, artifact_key, sha256) and
    "deployments" (staging's records: key, target_version). Without them (one function) the
    event's artifact_key, artifact_sha256 and target_version are the primary function's.
    """
    bucket = require_str(event, "artifact_bucket")
    if "functions" not in event:
        if len(functions) != 1:
            raise InvalidInputError(
                f"event field 'functions' is required: this stack deploys "
                f"{[f.key for f in functions]}"
            )
        return [
            {
                "function": functions[0],
                "bucket": bucket,
                "key": require_str(event, "artifact_key"),
                "sha256": require_str(event, "artifact_sha256"),
                "version": event.get("target_version"),
            }
        ]
    artifacts = _by_key(event.get("functions"), "functions")
    staged = _by_key(event.get("deployments") or [], "deployments")
    missing = [f.key for f in functions if f.key not in artifacts]
    if missing:
        raise InvalidInputError(
            f"event field 'functions' has no artifact for app function(s) {missing}"
        )
    return [
        {
            "function": function,
            "bucket": bucket,
            "key": require_str(artifacts[function.key], "artifact_key"),
            "sha256": require_str(artifacts[function.key], "sha256"),
            "version": staged.get(function.key, {}).get("target_version"),
        }
        for function in functions
    ]


def run_all(event: Mapping[str, Any], functions: list[AppFunction], alias: str) -> dict[str, Any]:
    """Each app function's own checks against its alias; passed only when every one passed."""
    outcomes = []
    for target in targets(event, functions):
        function = target["function"]
        checks = read_checks(target["bucket"], target["key"], target["sha256"], function.key)
        version = target["version"]
        outcome = run(
            checks, function.function_name, alias, str(version) if version is not None else None
        )
        for result in outcome["results"]:
            result["function"] = function.key
        outcomes.append(outcome)
    return {
        "passed": all(o["passed"] for o in outcomes),
        "results": [r for o in outcomes for r in o["results"]],
        "summary": "; ".join(o["summary"] for o in outcomes),
    }


@lambda_entrypoint(logger)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    alias = require_env("SMOKE_ALIAS")
    outcome = run_all(event, app_functions.from_env(), alias)
    log = logger.info if outcome["passed"] else logger.warning
    log("smoke tests finished", extra={"summary": outcome["summary"]})
    return outcome
