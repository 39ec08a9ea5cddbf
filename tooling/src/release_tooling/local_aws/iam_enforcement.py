"""IAM on the embedded endpoint: who makes each request, and may they.

moto authenticates nothing (any key works) and its optional access control checks most services
against resource "*" with API names. This module replaces that choke point
(`ActionAuthenticatorMixin._authenticate_and_authorize_action`, which every moto response class
calls before it acts) with:

- authentication: a request must be signed with the endpoint's per-run administrator key (written
  to the git-ignored state directory) or with temporary credentials STS issued for a role; anything
  else is refused, whatever the IAM mode. AssumeRoleWithWebIdentity is unsigned on AWS too; it is
  allowed when the role's trust names an OIDC provider of the account, and the token's claims are
  checked against the trust policy's conditions (the token's signature is not: see the README).
- authorization: the IAM action(s) and resource ARN(s) AWS authorizes for the call (iam_actions.py)
  are evaluated against the principal's identity policies and permissions boundary
  (iam_policy.py). Resource policies (bucket, key, topic policies) and SCPs are not evaluated here.
- principals for the services themselves: Lambda runs each function with credentials of its
  execution role, Step Functions with the state machine's role, CodeDeploy / CodePipeline /
  EventBridge check their role's permissions in-process through `Enforcer.authorize_service`.

Modes (LOCAL_IAM): enforce (default) denies; audit logs every decision and denies nothing; off
skips evaluation (authentication stays on). Every decision is a JSON line in
<state-dir>/iam-decisions.jsonl.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import accounts, iam_actions, iam_policy

log = logging.getLogger("local_aws.iam")

MODES = ("enforce", "audit", "off")
ADMIN_KEY_PREFIX = "LKIA"  # local administrator key ids; never a real AWS prefix
# Refreshed well before STS's one-hour default expiry.
SESSION_SECONDS = 3600
REFRESH_MARGIN_SECONDS = 300
# AssumeRoleWithWebIdentity is called without credentials (AWS STS API reference,
# "AssumeRoleWithWebIdentity": "Calling AssumeRoleWithWebIdentity does not require the use of AWS
# security credentials"). GetCallerIdentity needs no permission.
UNSIGNED_OPERATIONS = {("sts", "AssumeRoleWithWebIdentity")}


class LocalAccessDenied(Exception):
    """A principal is not allowed an action: carries what the error message must name."""

    def __init__(self, principal: str, action: str, resource: str, reason: str) -> None:
        self.principal, self.action, self.resource, self.reason = (
            principal,
            action,
            resource,
            reason,
        )
        super().__init__(message(principal, action, resource, reason))


def message(principal: str, action: str, resource: str, reason: str) -> str:
    # The shape of AWS's AccessDenied messages ("User: ARN is not authorized to perform: ACTION on
    # resource: ARN because ...", IAM User Guide, "Troubleshoot access denied error messages").
    return (
        f"User: {principal} is not authorized to perform: {action} on resource: {resource} "
        f"because {reason}"
    )


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def as_env(self) -> dict[str, str]:
        env = {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
        }
        if self.session_token:
            env["AWS_SESSION_TOKEN"] = self.session_token
        return env


@dataclass(frozen=True)
class Principal:
    arn: str
    account: str
    role_arn: str | None = None  # None for the administrator

    @property
    def is_admin(self) -> bool:
        return self.role_arn is None


def new_admin_credentials() -> Credentials:
    return Credentials(
        access_key_id=ADMIN_KEY_PREFIX + secrets.token_hex(8).upper(),
        secret_access_key=secrets.token_urlsafe(30),
    )


def _partition(region: str) -> str:
    from moto.utilities.utils import get_partition

    return get_partition(region)


def _role_name(role_arn: str) -> str:
    return role_arn.rsplit("/", 1)[-1]


def _account_of(arn: str) -> str:
    return arn.split(":")[4]


def _policy_document(managed_policy) -> str:
    for version in getattr(managed_policy, "versions", []):
        if getattr(version, "is_default", False):
            return version.document
    return getattr(managed_policy, "document", "") or "{}"


class Directory:
    """Principals and their policies, read from moto's IAM and STS backends at request time."""

    def __init__(
        self,
        admin: Credentials,
        default_account: str,
        extra_admins: Mapping[str, Credentials] | None = None,
    ) -> None:
        self.admin = admin
        self.default_account = default_account
        # account -> its administrator (the default account's first); see accounts.py.
        self.admins = {default_account: admin, **dict(extra_admins or {})}
        self._admin_accounts = {c.access_key_id: a for a, c in self.admins.items()}
        self._sessions: dict[tuple[str, str], tuple[float, Credentials]] = {}
        self._lock = threading.Lock()

    def admin_account(self, access_key_id: str) -> str | None:
        """The account whose administrator holds this key, or None."""
        return self._admin_accounts.get(access_key_id)

    def resolve(self, access_key_id: str, session_token: str | None) -> Principal | None:
        admin_account = self.admin_account(access_key_id)
        if admin_account is not None:
            return Principal(arn=f"arn:aws:iam::{admin_account}:root", account=admin_account)
        from moto.iam.models import get_account_id_from
        from moto.sts.models import sts_backends

        account = get_account_id_from(access_key_id)
        for partition in ("aws",):
            assumed = sts_backends[account][partition].get_assumed_role_from_access_key(
                access_key_id
            )
            if assumed is None:
                continue
            if session_token != assumed.session_token:
                return None
            return Principal(arn=assumed.arn, account=account, role_arn=assumed.role_arn)
        return None

    def role(self, role_arn: str):
        from moto.iam.models import iam_backends

        account = _account_of(role_arn)
        return iam_backends[account]["aws"].get_role_by_arn(role_arn)

    def policies(self, role_arn: str) -> tuple[list[tuple[str, str]], tuple[str, str] | None]:
        """Identity policies (inline and attached) and the permissions boundary of a role."""
        from moto.iam.models import iam_backends

        role = self.role(role_arn)
        backend = iam_backends[_account_of(role_arn)]["aws"]
        identity = [(f"{role.name}/{name}", doc) for name, doc in role.policies.items()]
        identity += [
            (policy.name, _policy_document(policy)) for policy in role.managed_policies.values()
        ]
        boundary = None
        if role.permissions_boundary_arn:
            managed = {p.arn: p for p in backend.managed_policies.values()}
            found = managed.get(role.permissions_boundary_arn)
            # A boundary that names a missing policy allows nothing, as an empty policy would.
            boundary = (
                role.permissions_boundary_arn.rsplit("/", 1)[-1],
                _policy_document(found) if found else '{"Statement": []}',
            )
        return identity, boundary

    def credentials_for_role(self, role_arn: str, session_name: str, region: str) -> Credentials:
        """Temporary credentials for a role a service assumes (the Lambda service, Step Functions).

        Issued through moto's STS backend, so the endpoint resolves them like any other session.
        """
        key = (role_arn, session_name)
        now = time.monotonic()
        with self._lock:
            cached = self._sessions.get(key)
            if cached and cached[0] - REFRESH_MARGIN_SECONDS > now:
                return cached[1]
            from moto.sts.models import sts_backends

            assumed = sts_backends[_account_of(role_arn)][_partition(region)].assume_role(
                region_name=region,
                role_session_name=session_name,
                role_arn=role_arn,
                policy="",
                duration=SESSION_SECONDS,
                external_id="",
            )
            creds = Credentials(
                assumed.access_key_id, assumed.secret_access_key, assumed.session_token
            )
            self._sessions[key] = (now + SESSION_SECONDS, creds)
            return creds


class DecisionLog:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def write(self, entry: dict) -> None:
        line = json.dumps({"time": round(time.time(), 3), **entry}, default=str)
        with self._lock, self.path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")


def _jwt_claims(token: str) -> dict:
    """The claims of a JWT, signature NOT verified (the local rehearsal has no OIDC issuer)."""
    try:
        payload = token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (IndexError, ValueError, binascii.Error):
        return {}
    return claims if isinstance(claims, dict) else {}


class Enforcer:
    def __init__(self, mode: str, directory: Directory, decisions: DecisionLog) -> None:
        if mode not in MODES:
            raise ValueError(f"LOCAL_IAM must be one of {', '.join(MODES)}, got {mode!r}")
        self.mode, self.directory, self.decisions = mode, directory, decisions

    # -- decisions ----------------------------------------------------------------------------
    def decide(
        self,
        principal: Principal,
        authorization: iam_actions.Authorization,
        via: str,
    ) -> iam_policy.Decision:
        if principal.is_admin:
            decision = iam_policy.Decision(True, "administrator credentials (bootstrap)")
        elif self.mode == "off":
            decision = iam_policy.Decision(True, "LOCAL_IAM=off: not evaluated")
        else:
            identity, boundary = self.directory.policies(principal.role_arn)
            request = iam_policy.AuthzRequest(
                action=authorization.action,
                resource=authorization.resource,
                context=dict(authorization.context),
                principal_arn=principal.arn,
            )
            owner = accounts.resource_account(authorization.resource)
            if authorization.action.lower() == "sts:assumerole":
                trust = accounts.resource_policy(authorization)
                missing = f"the role {authorization.resource} does not exist"
                decision = (
                    iam_policy.evaluate_assume_role(request, identity, boundary, trust, owner or "")
                    if trust
                    else iam_policy.Decision(False, missing)
                )
            elif owner and owner != principal.account:
                decision = iam_policy.evaluate_cross_account(
                    request, identity, boundary, accounts.resource_policy(authorization), owner
                )
            else:
                decision = iam_policy.evaluate(
                    request, identity, boundary, resource_policy=key_policy(authorization)
                )
        self.decisions.write(
            {
                "mode": self.mode,
                "via": via,
                "principal": principal.arn,
                "action": authorization.action,
                "resource": authorization.resource,
                "allowed": decision.allowed,
                "reason": decision.reason,
            }
        )
        if not decision.allowed and self.mode == "enforce":
            raise LocalAccessDenied(
                principal.arn, authorization.action, authorization.resource, decision.reason
            )
        if not decision.allowed:
            log.warning(
                "LOCAL_IAM=audit would deny %s %s on %s: %s",
                principal.arn,
                authorization.action,
                authorization.resource,
                decision.reason,
            )
        return decision

    def authorize_service(
        self,
        role_arn: str,
        action: str,
        resource: str,
        context: Mapping[str, Any] | None = None,
        session_name: str = "service",
    ) -> None:
        """A service acting with its role in-process (CodeDeploy, CodePipeline, EventBridge)."""
        principal = Principal(
            arn=f"arn:aws:sts::{_account_of(role_arn)}:assumed-role/{_role_name(role_arn)}/{session_name}",
            account=_account_of(role_arn),
            role_arn=role_arn,
        )
        try:
            self.directory.role(role_arn)
        except Exception:  # noqa: BLE001 - moto raises its own NotFound types
            self.decisions.write(
                {
                    "via": "service",
                    "principal": principal.arn,
                    "action": action,
                    "resource": resource,
                    "allowed": False,
                    "reason": "the role does not exist",
                }
            )
            raise LocalAccessDenied(
                principal.arn, action, resource, f"the role {role_arn} does not exist"
            ) from None
        self.decide(
            principal, iam_actions.Authorization(action, resource, dict(context or {})), "service"
        )

    # -- requests -----------------------------------------------------------------------------
    def authorize_request(self, response) -> None:
        """Called by moto's response class before it acts on a request."""
        service = service_of(response)
        operation, params = iam_actions.operation_and_params(response)
        region = response.region
        headers = response.headers
        if (service, operation) in UNSIGNED_OPERATIONS:
            self._check_web_identity(params, region)
            return
        access_key = response.get_access_key()
        token = (
            headers.get("X-Amz-Security-Token")
            or (response.querystring.get("X-Amz-Security-Token", [None])[0])
        )
        principal = self.directory.resolve(access_key, token)
        if principal is None:
            self.decisions.write(
                {
                    "via": "request",
                    "principal": None,
                    "access_key_id": access_key,
                    "action": f"{service}:{operation}",
                    "allowed": False,
                    "reason": "unknown credentials",
                }
            )
            raise UnknownCredentials(access_key)
        if self.mode == "off":
            return  # authenticated; nothing evaluated or logged (for comparison runs)
        if principal.is_admin:
            self.decisions.write(
                {
                    "mode": self.mode,
                    "via": f"{service}:{operation}",
                    "principal": principal.arn,
                    "action": f"{service}:{operation}",
                    "allowed": True,
                    "reason": "administrator credentials (bootstrap)",
                }
            )
            return
        try:
            authorizations = iam_actions.authorizations(
                service,
                operation,
                params,
                account=principal.account,
                region=region,
                extra_context=request_context(service, params, principal.account),
                resource_tags=resource_tags(service, params, principal.account, region),
                resolver=MotoResolver(principal.account, region),
                caller_arn=principal.arn,
            )
        except (iam_actions.UnmappedOperation, iam_actions.MissingParameter) as exc:
            # Never silently allowed: a call the rehearsal cannot authorize is refused, saying so.
            self.decisions.write(
                {
                    "mode": self.mode,
                    "via": f"{service}:{operation}",
                    "principal": principal.arn,
                    "action": f"{service}:{operation}",
                    "allowed": False,
                    "reason": str(exc),
                }
            )
            if self.mode == "enforce":
                raise LocalAccessDenied(
                    principal.arn, f"{service}:{operation}", "*", str(exc)
                ) from None
            return
        authorizations += implied_authorizations(
            service, operation, params, principal.account, region
        )
        authorizations += accounts.code_source_authorizations(
            service, operation, params, principal.account, region
        )
        for authorization in authorizations:
            self.decide(principal, authorization, f"{service}:{operation}")
        # An allowed request on another account's resource is served by that account's backends.
        owner = accounts.serving_account(service, authorizations, principal.account)
        if owner is not None:
            response.current_account = owner

    def _check_web_identity(self, params: Mapping[str, Any], region: str) -> None:
        role_arn = str(params.get("RoleArn") or "")
        claims = _jwt_claims(str(params.get("WebIdentityToken") or ""))
        issuer = str(claims.get("iss", "")).removeprefix("https://")
        principal = f"web-identity:{issuer}:{claims.get('sub', '')}"
        try:
            role = self.directory.role(role_arn)
        except Exception:  # noqa: BLE001
            raise LocalAccessDenied(
                principal, "sts:AssumeRoleWithWebIdentity", role_arn, "the role does not exist"
            ) from None
        from moto.iam.models import iam_backends

        account = _account_of(role_arn)
        provider_arn = f"arn:aws:iam::{account}:oidc-provider/{issuer}"
        known = {p.arn for p in iam_backends[account]["aws"].open_id_providers.values()}
        context = {f"{issuer}:{k}": v for k, v in claims.items() if isinstance(v, (str, list))}
        decision = iam_policy.Decision(False, f"no OIDC provider {provider_arn} in the account")
        if provider_arn in known:
            decision = iam_policy.evaluate_trust(
                f"the trust policy of {role.name}",
                role.assume_role_policy_document,
                "sts:AssumeRoleWithWebIdentity",
                {"Federated": provider_arn},
                context,
            )
        self.decisions.write(
            {
                "mode": self.mode,
                "via": "sts:AssumeRoleWithWebIdentity",
                "principal": principal,
                "action": "sts:AssumeRoleWithWebIdentity",
                "resource": role_arn,
                "allowed": decision.allowed,
                "reason": decision.reason,
            }
        )
        if not decision.allowed and self.mode == "enforce":
            raise LocalAccessDenied(
                principal, "sts:AssumeRoleWithWebIdentity", role_arn, decision.reason
            )


def key_policy(authorization: iam_actions.Authorization) -> tuple[str, str] | None:
    """The key policy of the KMS key an authorization is on, which KMS always evaluates.

    AWS KMS Developer Guide, "Key policies in AWS KMS": "Every KMS key must have exactly one key
    policy"; IAM policies count only where the key policy delegates to the account (its root
    principal), which is how iam_policy.evaluate treats an account-wide resource-policy grant.
    """
    resource = authorization.resource
    if not authorization.action.lower().startswith("kms:") or ":key/" not in resource:
        return None
    from moto.kms.models import kms_backends

    _, partition, _, region, account, rest = resource.split(":", 5)
    try:
        key = kms_backends[account][region].keys[rest.split("/", 1)[1]]
    except KeyError:
        return None
    return (f"the key policy of {rest}", key.policy)


def implied_authorizations(
    service: str, operation: str, params: Mapping[str, Any], account: str, region: str
) -> list[iam_actions.Authorization]:
    """What a service does with KMS on the caller's behalf, which AWS authorizes as the caller.

    S3 User Guide, "Using server-side encryption with AWS KMS keys (SSE-KMS)": uploading needs
    kms:GenerateDataKey and downloading kms:Decrypt on the object's key, called by S3 for the
    requester (kms:ViaService s3.<region>.amazonaws.com; the encryption context is the bucket ARN
    when an S3 Bucket Key is used).
    """
    if service != "s3" or operation not in ("PutObject", "GetObject", "CopyObject"):
        return []
    from moto.s3.models import s3_backends

    bucket_name = params.get("Bucket")
    try:
        bucket = s3_backends[account]["aws"].get_bucket(bucket_name)
    except Exception:  # noqa: BLE001 - no such bucket: S3 itself says so
        return []
    rule = (bucket.encryption or {}).get("Rule") or {}
    if isinstance(rule, list):
        rule = rule[0] if rule else {}
    default = rule.get("ApplyServerSideEncryptionByDefault") or {}
    key_id = params.get("SSEKMSKeyId") or default.get("KMSMasterKeyID")
    encrypted = default.get("SSEAlgorithm") == "aws:kms" or bool(params.get("SSEKMSKeyId"))
    stored = bucket.keys.get(params.get("Key") or "") if operation == "GetObject" else None
    if stored is not None:
        # A download decrypts with the key the object was written with (S3 User Guide, SSE-KMS).
        encrypted = getattr(stored, "encryption", None) == "aws:kms"
        key_id = getattr(stored, "kms_key_id", None) or key_id
    if not encrypted or not key_id:
        return []
    if not key_id.startswith("arn:"):
        # A key id or alias of the bucket's own account (the bucket may be another account's).
        owner = getattr(bucket, "account_id", None) or account
        key_id = f"arn:aws:kms:{region}:{owner}:key/{key_id}"
    action = "kms:Decrypt" if operation == "GetObject" else "kms:GenerateDataKey"
    return [
        iam_actions.Authorization(
            action,
            key_id,
            {
                "kms:ViaService": f"s3.{region}.amazonaws.com",
                "kms:CallerAccount": account,
                "kms:EncryptionContext:aws:s3:arn": f"arn:aws:s3:::{bucket_name}",
            },
        )
    ]


def request_context(service: str, params: Mapping[str, Any], account: str) -> dict[str, Any]:
    """Condition keys only the endpoint's state knows.

    iam:PermissionsBoundary on calls that change a role's policies refers to the boundary the role
    carries (IAM User Guide, "Permissions boundaries for IAM entities", and the condition key's
    entry in the Service Authorization Reference for IAM).
    """
    context: dict[str, Any] = {}
    role_name = params.get("RoleName")
    if service == "iam" and role_name and "PermissionsBoundary" not in params:
        from moto.iam.models import iam_backends

        try:
            role = iam_backends[account]["aws"].get_role(role_name)
        except Exception:  # noqa: BLE001 - no such role: the call itself will say so
            return context
        if role.permissions_boundary_arn:
            context["iam:PermissionsBoundary"] = role.permissions_boundary_arn
    return context


def resource_tags(
    service: str, params: Mapping[str, Any], account: str, region: str
) -> dict[str, str] | None:
    """The tags of the KMS key a call targets, for aws:ResourceTag/<key> conditions (AWS KMS
    Developer Guide, "ABAC for AWS KMS"); other services' resource tags are not modelled."""
    key_id = params.get("KeyId")
    if service != "kms" or not key_id:
        return None
    from moto.kms.models import kms_backends

    try:
        tags = kms_backends[account][region].list_resource_tags(key_id)["Tags"]
    except Exception:  # noqa: BLE001 - unknown key: KMS itself says so
        return None
    return {tag["TagKey"]: tag["TagValue"] for tag in tags}


class MotoResolver:
    """iam_actions.Resolver on moto's backends: what an ARN depends on that the request lacks."""

    def __init__(self, account: str, region: str) -> None:
        self.account, self.region = account, region

    def __call__(self, kind: str, identifier: str) -> str | None:
        try:
            return getattr(self, "_" + kind.replace("-", "_"))(identifier)
        except Exception:  # noqa: BLE001 - unknown resource: the ARN cannot be built
            return None

    def _kms_key(self, alias: str) -> str | None:
        from moto.kms.models import kms_backends

        account, region = self.account, self.region
        if alias.startswith("arn:"):
            # An alias ARN names the key's own account (AWS KMS Developer Guide, "Key
            # identifiers": a key of another account is named by its key ARN or alias ARN).
            _, _, _, region, account, alias = alias.split(":", 5)
        backend = kms_backends[account][region]
        key_id = backend.get_key_id_from_alias(
            alias if alias.startswith("alias/") else f"alias/{alias}"
        )
        return backend.describe_key(key_id).arn if key_id else None

    def _codedeploy_deployment(self, deployment_id: str) -> str | None:
        from moto.codedeploy.models import codedeploy_backends

        deployment = codedeploy_backends[self.account][self.region].get_deployment(deployment_id)
        return (
            f"arn:aws:codedeploy:{self.region}:{self.account}:deploymentgroup:"
            f"{deployment.application_name}/{deployment.deployment_group_name}"
        )

    def _codedeploy_group_config(self, app_and_group: str) -> str | None:
        from moto.codedeploy.models import codedeploy_backends

        app, group = app_and_group.split("/", 1)
        found = codedeploy_backends[self.account][self.region].get_deployment_group(app, group)
        return getattr(found, "deployment_config_name", None) or "CodeDeployDefault.OneAtATime"

    def _iam_role_path(self, name: str) -> str | None:
        from moto.iam.models import iam_backends

        return iam_backends[self.account]["aws"].get_role(name).path or "/"


def service_of(response) -> str:
    """The botocore service name of a moto response object ("lambda", not moto's "awslambda")."""
    return getattr(response, "boto3_service_name", None) or response.service_name


class UnknownCredentials(Exception):
    def __init__(self, access_key_id: str) -> None:
        super().__init__(
            f"The security token included in the request is invalid (access key "
            f"{access_key_id[:8]}...): the local endpoint accepts only the credentials in "
            "<state-dir>/endpoint.json and credentials its STS issued"
        )


# ---------------------------------------------------------------------------------------------
# Wiring into moto
# ---------------------------------------------------------------------------------------------
_enforcer: Enforcer | None = None


def current() -> Enforcer:
    if _enforcer is None:
        raise RuntimeError("local_aws.iam_enforcement.install() was not called")
    return _enforcer


def _s3_error(exc: Exception):
    """S3's XML error document (S3 API Reference, "Error responses"), raised from setup_class:
    S3's responses never reach call_action."""
    from xml.sax.saxutils import escape

    from werkzeug.exceptions import HTTPException

    code = "AccessDenied" if isinstance(exc, LocalAccessDenied) else "InvalidAccessKeyId"
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{escape(str(exc))}</Message>"
        "<RequestId>local</RequestId></Error>"
    )

    class S3Denied(HTTPException):
        def get_body(self, *args, **kwargs) -> str:
            return body

        def get_headers(self, *args, **kwargs) -> list[tuple[str, str]]:
            return [("Content-Type", "application/xml")]

    error = S3Denied(description=body)
    error.code = 403
    return error


def _denied_exception(code: str, text: str):
    """A moto ServiceException of this module: moto then serializes it with the service model of
    the request (it looks an exception's service up by module only for moto's own modules)."""
    from moto.core.exceptions import ServiceException

    class LocalIamDenied(ServiceException):
        pass

    return LocalIamDenied(code, text)


def _denied_response(response, exc: Exception):
    """The error in the protocol the client spoke (JSON, CBOR, query XML), by moto's serializer."""
    from moto.core.responses import ActionResult
    from moto.core.utils import get_service_model

    protocol = response.determine_response_protocol(get_service_model(response.boto3_service_name))
    denied = isinstance(exc, LocalAccessDenied)
    if protocol.startswith("query") or protocol == "ec2":
        code = "AccessDenied" if denied else "InvalidClientTokenId"
    else:
        code = "AccessDeniedException" if denied else "UnrecognizedClientException"
    _status, headers, body = response.serialized(ActionResult(_denied_exception(code, str(exc))))
    headers["status"] = 403
    # Every AWS response carries a request id; SDKs and Step Functions' error causes read it.
    headers.setdefault("x-amzn-RequestId", str(uuid.uuid4()))
    return 403, headers, body


def install(enforcer: Enforcer) -> None:
    """Authorize every request right after moto has read it (setup_class), before it acts.

    setup_class is the one step every moto response class runs for every request; S3's responses
    never reach call_action, where moto's own (replaced, now inert) check sits.
    """
    global _enforcer
    _enforcer = enforcer
    accounts.install(enforcer.directory)
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.core.responses import BaseResponse

    original_setup_class = BaseResponse.setup_class
    original_call_action = BaseResponse.call_action

    def setup_class(self, request, full_url=None, headers=None, use_raw_body=None) -> None:
        original_setup_class(self, request, full_url, headers, use_raw_body)
        self._local_iam_denied = None
        try:
            current().authorize_request(self)
        except (LocalAccessDenied, UnknownCredentials) as exc:
            if service_of(self) == "s3":
                raise _s3_error(exc) from None
            # Answered by call_action below, which every other moto response class runs next.
            self._local_iam_denied = exc

    def call_action(self):
        denied = getattr(self, "_local_iam_denied", None)
        if denied is None:
            return original_call_action(self)
        self._local_iam_denied = None
        return _denied_response(self, denied)

    def inert(self, iam_request_cls, resource: str = "*") -> None:
        return None

    BaseResponse.setup_class = setup_class
    BaseResponse.call_action = call_action
    ActionAuthenticatorMixin._authenticate_and_authorize_action = inert
