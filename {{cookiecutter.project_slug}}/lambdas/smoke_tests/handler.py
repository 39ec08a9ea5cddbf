"""Smoke-test the app through the staging alias.

Invokes APP_FUNCTION_NAME with Qualifier=SMOKE_ALIAS for a fixed set of requests and checks the
status code and the response body fields each case pins. A FunctionError counts as a failure
carrying the app's errorType/errorMessage. When the event carries target_version, the version
that served each request must be that version (proves the alias really points at the release).

Output: {"passed": bool, "results": [...], "summary": str}
"""

import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from shared.clients import client
from shared.config import require_env
from shared.log import get_logger, lambda_entrypoint

logger = get_logger("smoke_tests")


def _http(method: str, path: str, body: Any = None) -> dict[str, Any]:
    event: dict[str, Any] = {
        "version": "2.0",
        "rawPath": path,
        "requestContext": {"http": {"method": method, "path": path}},
        "headers": {"content-type": "application/json"},
        "isBase64Encoded": False,
    }
    if body is not None:
        event["body"] = json.dumps(body)
    return event


CASES: list[dict[str, Any]] = [
    {
        "name": "health",
        "event": _http("GET", "/health"),
        "status": 200,
        "body": {"status": "ok"},
    },
    {
        "name": "quote_with_coupon",
        "event": _http(
            "POST",
            "/quote",
            {
                "currency": "USD",
                "coupon": "SAVE10",
                "items": [
                    {"sku": "SMOKE-1", "quantity": 2, "unit_price": "12.50"},
                    {"sku": "SMOKE-2", "quantity": 1, "unit_price": "30.00"},
                ],
            },
        ),
        "status": 200,
        # 55.00 - 10% = 49.50, under the free-shipping threshold, so + 5.00 shipping.
        "body": {"subtotal": "55.00", "discount": "5.50", "shipping": "5.00", "total": "54.50"},
    },
    {
        "name": "quote_rejects_zero_quantity",
        "event": _http(
            "POST", "/quote", {"items": [{"sku": "SMOKE-1", "quantity": 0, "unit_price": "1.00"}]}
        ),
        "status": 400,
        "body": {"field": "items[0].quantity"},
    },
    {
        "name": "unknown_route",
        "event": _http("GET", "/does-not-exist"),
        "status": 404,
        "body": {},
    },
]


def evaluate(
    case: Mapping[str, Any],
    response: Mapping[str, Any],
    payload: bytes,
    expected_version: str | None,
) -> dict[str, Any]:
    """Judge one invocation. Pure: takes the Invoke response and its payload bytes."""
    result: dict[str, Any] = {"name": case["name"], "passed": False, "status_code": None}
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
    if reply.get("statusCode") != case["status"]:
        result["detail"] = f"status {reply.get('statusCode')}, expected {case['status']}: {body}"
        return result
    wrong = {
        k: {"expected": v, "got": body.get(k)} for k, v in case["body"].items() if body.get(k) != v
    }
    if wrong:
        result["detail"] = f"unexpected body fields {wrong}"
        return result
    result["passed"] = True
    result["detail"] = "ok"
    return result


def run(function_name: str, alias: str, expected_version: str | None) -> dict[str, Any]:
    lam = client("lambda")
    results = []
    for case in CASES:
        try:
            response = lam.invoke(
                FunctionName=function_name,
                Qualifier=alias,
                Payload=json.dumps(case["event"]).encode(),
            )
            payload = response["Payload"].read()
        except (ClientError, BotoCoreError) as exc:
            results.append(
                {
                    "name": case["name"],
                    "passed": False,
                    "status_code": None,
                    "detail": f"invoke failed: {exc}",
                }
            )
            continue
        results.append(evaluate(case, response, payload, expected_version))
    failed = [r for r in results if not r["passed"]]
    passed = len(results) - len(failed)
    summary = f"{passed}/{len(results)} smoke tests passed against {function_name}:{alias}"
    if failed:
        summary += "; failed: " + "; ".join(f"{r['name']} ({r['detail']})" for r in failed)
    return {"passed": not failed, "results": results, "summary": summary}


@lambda_entrypoint(logger)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    expected = event.get("target_version")
    outcome = run(
        require_env("APP_FUNCTION_NAME"),
        require_env("SMOKE_ALIAS"),
        str(expected) if expected is not None else None,
    )
    log = logger.info if outcome["passed"] else logger.warning
    log("smoke tests finished", extra={"summary": outcome["summary"]})
    return outcome
