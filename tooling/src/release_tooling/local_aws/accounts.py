"""Several AWS accounts on one endpoint, kept apart; cross-account requests evaluated as AWS does.

- Administrators: the default account's (123456789012) plus one per `serve --account ID`; each
  request lands in the backends of the account its credentials belong to (moto would also take an
  `x-moto-account-id` header or MOTO_ACCOUNT_ID, which a caller could use to step into another
  account: neither is honoured).
- Where a request's resource lives: the account in its ARN, or for S3 (whose ARNs carry none) the
  bucket's owner (bucket names are global). A request on another account's resource is evaluated
  with iam_policy.evaluate_cross_account against that resource's own policy (bucket, key,
  function, topic policy, role trust), and then served from the owning account's backends.
- Lambda code from a bucket of another account (CreateFunction / UpdateFunctionCode with
  S3Bucket): the caller must be able to read the object there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from . import iam_actions

ACCOUNT_ID = re.compile(r"^\d{12}$")
# Services whose requests are served from the resource's account once a cross-account request is
# allowed (S3 finds buckets of any account by itself; IAM and STS act on the caller's account).
_ROUTED_SERVICES = ("kms", "lambda", "sns")


class AccountError(ValueError):
    """An account list the endpoint cannot serve; the message names the fault and the fix."""


def validate_accounts(accounts: Sequence[str], default_account: str) -> list[str]:
    """The extra accounts, checked: 12 digits each, no repeats, not the default account."""
    seen: list[str] = []
    for account in accounts:
        if not ACCOUNT_ID.match(str(account)):
            raise AccountError(
                f"--account {account!r} is not an AWS account ID: use 12 digits, e.g. 210987654321"
            )
        if account == default_account:
            raise AccountError(
                f"--account {account} is the endpoint's default account, which always has an "
                "administrator; name only the extra accounts"
            )
        if account in seen:
            raise AccountError(f"--account {account} is given twice")
        seen.append(account)
    return seen


# --- where a resource lives ---------------------------------------------------------------------


def _bucket_of(resource: str) -> str:
    return resource.split(":::", 1)[1].split("/", 1)[0]


def bucket_owner(bucket: str) -> str | None:
    from moto.s3.models import s3_backends

    found = s3_backends.bucket_accounts.get(bucket)
    return found[1] if found else None


def resource_account(resource: str) -> str | None:
    """The account that owns `resource` (an ARN), or None ("*", an unknown bucket, an AWS-owned
    ARN such as arn:aws:iam::aws:policy/...)."""
    if not resource.startswith("arn:"):
        return None
    if resource.split(":")[2] == "s3" and ":::" in resource:
        return bucket_owner(_bucket_of(resource))
    parts = resource.split(":", 5)
    return parts[4] if len(parts) == 6 and ACCOUNT_ID.match(parts[4]) else None


# --- the resource's own policy -------------------------------------------------------------------


def resource_policy(authorization: iam_actions.Authorization) -> tuple[str, str] | None:
    """The resource-based policy of the resource an authorization is on, or None if it has none.

    A role's trust policy for sts:AssumeRole, a bucket policy, a KMS key policy, a Lambda function
    policy, an SNS topic policy; every other resource type has no resource-based policy here.
    """
    resource, action = authorization.resource, authorization.action.lower()
    service = action.split(":", 1)[0]
    try:
        if action == "sts:assumerole":
            return _trust_policy(resource)
        if service == "s3":
            return _bucket_policy(_bucket_of(resource))
        if service == "kms":
            from .iam_enforcement import key_policy

            return key_policy(authorization)
        if service == "lambda":
            return _function_policy(resource)
        if service == "sns":
            return _topic_policy(resource)
    except Exception:  # noqa: BLE001 - moto's NotFound types: no such resource, no policy
        return None
    return None


def _trust_policy(role_arn: str) -> tuple[str, str]:
    from moto.iam.models import iam_backends

    role = iam_backends[role_arn.split(":")[4]]["aws"].get_role_by_arn(role_arn)
    return (f"the trust policy of role {role.name}", role.assume_role_policy_document)


def _bucket_policy(bucket_name: str) -> tuple[str, str] | None:
    from moto.s3.models import s3_backends

    partition, account = s3_backends.bucket_accounts[bucket_name]
    bucket = s3_backends[account][partition].buckets[bucket_name]
    if not bucket.policy:
        return None
    policy = bucket.policy.decode() if isinstance(bucket.policy, bytes) else bucket.policy
    return (f"the bucket policy of {bucket_name}", policy)


def _function_policy(function_arn: str) -> tuple[str, str] | None:
    """The function's policy (AddPermission statements). Lambda API Reference, "AddPermission":
    a Principal given as an account ID grants that account, i.e. arn:aws:iam::ID:root."""
    from moto.awslambda.models import lambda_backends

    _, partition, _, region, account, rest = function_arn.split(":", 5)
    name_and_qualifier = rest.split(":", 2)[1:]
    backend = lambda_backends[account][region]
    fn = backend.get_function(name_and_qualifier[0], None)
    statements = [dict(s) for s in fn.policy.statements]
    for statement in statements:
        principal = statement.get("Principal")
        if isinstance(principal, str) and ACCOUNT_ID.match(principal):
            statement["Principal"] = {"AWS": f"arn:{partition}:iam::{principal}:root"}
        elif isinstance(principal, str) and principal.startswith("arn:"):
            statement["Principal"] = {"AWS": principal}
    if not statements:
        return None
    document = json.dumps({"Version": "2012-10-17", "Statement": statements})
    return (f"the function policy of {name_and_qualifier[0]}", document)


def _topic_policy(topic_arn: str) -> tuple[str, str] | None:
    from moto.sns.models import sns_backends

    _, _, _, region, account, name = topic_arn.split(":", 5)
    topic = sns_backends[account][region].get_topic(topic_arn)
    return (f"the topic policy of {name}", topic.policy) if topic.policy else None


# --- requests ------------------------------------------------------------------------------------


def serving_account(
    service: str, authorizations: Sequence[iam_actions.Authorization], caller_account: str
) -> str | None:
    """The other account whose backends serve an allowed cross-account request, or None."""
    if service not in _ROUTED_SERVICES or not authorizations:
        return None
    owner = resource_account(authorizations[0].resource)
    return owner if owner and owner != caller_account else None


def code_source_authorizations(
    service: str, operation: str, params: Mapping[str, Any], caller_account: str, region: str
) -> list[iam_actions.Authorization]:
    """Reading a function's .zip from a bucket of another account, as the caller.

    Lambda API Reference, "UpdateFunctionCode" / "FunctionCode": S3Bucket is "An Amazon S3 bucket
    in the same AWS Region as your function. The bucket can be in a different AWS account." The
    object is read with the caller's permissions, so across accounts the caller's identity policy
    and the bucket policy must both allow s3:GetObject (s3:GetObjectVersion with S3ObjectVersion),
    and an SSE-KMS object's key must let the caller decrypt through S3 (see
    iam_enforcement.implied_authorizations). Within one account this is not checked.
    """
    if service != "lambda" or operation not in ("CreateFunction", "UpdateFunctionCode"):
        return []
    source = params.get("Code") if operation == "CreateFunction" else params
    if not isinstance(source, Mapping) or not source.get("S3Bucket") or not source.get("S3Key"):
        return []
    bucket, key = str(source["S3Bucket"]), str(source["S3Key"])
    owner = bucket_owner(bucket)
    if owner is None or owner == caller_account:
        return []
    from .iam_enforcement import implied_authorizations

    action = "s3:GetObjectVersion" if source.get("S3ObjectVersion") else "s3:GetObject"
    read = iam_actions.Authorization(action, f"arn:aws:s3:::{bucket}/{key}")
    return [
        read,
        *implied_authorizations(
            "s3", "GetObject", {"Bucket": bucket, "Key": key}, caller_account, region
        ),
    ]


def install(directory) -> None:
    """Requests land in the account of their credentials (see the module docstring)."""
    from moto.core.responses import BaseResponse
    from moto.iam.models import get_account_id_from

    def get_current_account(self) -> str:
        access_key = self.get_access_key()
        return directory.admin_account(access_key) or get_account_id_from(access_key)

    BaseResponse.get_current_account = get_current_account
