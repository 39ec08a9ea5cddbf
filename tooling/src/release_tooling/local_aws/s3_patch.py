"""S3 fidelity: bucket policy Conditions evaluated the way IAM does, and read-backs Terraform needs.

Policies: moto turns a statement whose Condition does not hold into an explicit DENY, whatever its
Effect, and passes no request context; so the standard "Deny when aws:SecureTransport is false"
statement denies every request. Here a statement whose condition does not hold simply does not
apply, and requests are evaluated with aws:SecureTransport = true: the embedded endpoint stands in
for AWS's HTTPS endpoints (the SDKs only speak plain HTTP to it because it is bound to 127.0.0.1).

Also: the lifecycle transition-size header and the bucket notification's EventBridge switch read
back as written, so a `terraform plan` right after an apply is empty.
"""

from __future__ import annotations

import fnmatch
import json
import logging

from moto.core.responses import ActionResult
from moto.iam.access_control import IAMPolicyStatement, PermissionResult
from moto.s3 import responses as s3_responses
from moto.s3.models import FakeBucket

REQUEST_CONTEXT = {"aws:SecureTransport": "true"}
log = logging.getLogger("local_aws.s3")


def _values(expected) -> list[str]:
    return [
        str(v).lower() if isinstance(v, bool) else str(v)
        for v in (expected if isinstance(expected, list) else [expected])
    ]


def _operator_holds(operator: str, actual: str, expected: list[str]) -> bool | None:
    base = operator.removesuffix("IfExists")
    if base in ("StringEquals", "ArnEquals"):
        return actual in expected
    if base == "StringNotEquals":
        return actual not in expected
    if base == "StringEqualsIgnoreCase":
        return actual.lower() in [e.lower() for e in expected]
    if base in ("StringLike", "ArnLike"):
        return any(fnmatch.fnmatchcase(actual, e) for e in expected)
    if base in ("StringNotLike", "ArnNotLike"):
        return not any(fnmatch.fnmatchcase(actual, e) for e in expected)
    if base == "Bool":
        return actual.lower() in [e.lower() for e in expected]
    return None


def condition_holds(condition: dict, context: dict[str, str]) -> bool:
    """IAM semantics: every operator and every key must hold; an absent key fails the test unless
    the operator is ...IfExists (or Null, which tests exactly that)."""
    for operator, tests in condition.items():
        for key, expected in tests.items():
            wanted = _values(expected)
            if operator == "Null":
                if (key not in context) != (wanted[0] == "true"):
                    return False
                continue
            if key not in context:
                if operator.endswith("IfExists"):
                    continue
                return False
            holds = _operator_holds(operator, context[key], wanted)
            if holds is None:
                log.warning(
                    "bucket policy condition operator %s is not evaluated locally; treating it as "
                    "not met",
                    operator,
                )
                return False
            if not holds:
                return False
    return True


def evaluate(
    policy_document: str, action: str, resource: str, context: dict[str, str] = REQUEST_CONTEXT
) -> PermissionResult:
    statements = json.loads(policy_document).get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    permitted = False
    for raw in statements:
        if raw.get("Condition"):
            if not condition_holds(raw["Condition"], context):
                continue  # condition not met: the statement does not apply
            raw = {k: v for k, v in raw.items() if k != "Condition"}
        result = IAMPolicyStatement(raw).is_action_permitted(action, resource)
        if result == PermissionResult.DENIED:
            return result
        permitted = permitted or result == PermissionResult.PERMITTED
    return PermissionResult.PERMITTED if permitted else PermissionResult.NEUTRAL


def install() -> None:
    def get_permission(self, action: str, resource: str):
        if self.policy is None:
            return PermissionResult.NEUTRAL
        return evaluate(self.policy.decode(), action, resource)

    FakeBucket.get_permission = get_permission
    install_notification_readback()


def install_notification_readback() -> None:
    """GetBucketNotificationConfiguration: moto stores an EventBridgeConfiguration but leaves it out
    of the response. S3 returns it (an empty element) once enabled; without it the Terraform
    provider reads `eventbridge = false` back and plans an update after every apply."""
    original = s3_responses.S3Response.get_bucket_notification

    def get_bucket_notification(self):
        config = self.backend.get_bucket_notification_configuration(self.bucket_name)
        if config is None or config.event_bridge is None:
            return original(self)
        serialized = self.serialized

        def with_eventbridge(result: ActionResult):
            return serialized(ActionResult({**result.result, "EventBridgeConfiguration": {}}))

        # One response object per request (moto's *_dispatch), so shadowing is request-local.
        self.serialized = with_eventbridge
        return original(self)

    s3_responses.S3Response.get_bucket_notification = get_bucket_notification


TRANSITION_HEADER = "x-amz-transition-default-minimum-object-size"
DEFAULT_TRANSITION_SIZE = "all_storage_classes_128K"  # what S3 applies when the request names none


class LifecycleHeaderMiddleware:
    """Get/PutBucketLifecycleConfiguration carry x-amz-transition-default-minimum-object-size, which
    moto ignores. The Terraform provider waits for it to read back what it wrote (about a minute per
    apply), so remember it on PUT and return it on GET, as S3 does."""

    def __init__(self, app) -> None:
        self.app = app
        self.sizes: dict[str, str] = {}

    def __call__(self, environ, start_response):
        query = environ.get("QUERY_STRING", "")
        if "lifecycle" not in query.split("&") and not query.startswith("lifecycle"):
            return self.app(environ, start_response)
        bucket = environ.get("PATH_INFO", "/").strip("/").split("/")[0]
        method = environ.get("REQUEST_METHOD")
        if method == "PUT":
            self.sizes[bucket] = (
                environ.get("HTTP_X_AMZ_TRANSITION_DEFAULT_MINIMUM_OBJECT_SIZE")
                or DEFAULT_TRANSITION_SIZE
            )
        elif method == "DELETE":
            self.sizes.pop(bucket, None)

        def start(status, headers, exc_info=None):
            if status.startswith("200") and method in ("GET", "PUT"):
                headers = [h for h in headers if h[0].lower() != TRANSITION_HEADER]
                headers.append((TRANSITION_HEADER, self.sizes.get(bucket, DEFAULT_TRANSITION_SIZE)))
            return start_response(status, headers, exc_info)

        return self.app(environ, start)
