"""Fixtures for the adapter tests: one bare embedded endpoint (no Terraform) for the session."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from _helpers import zip_source

from release_tooling.local_aws import process

REGION = "us-east-2"
ACCOUNT = "123456789012"


@pytest.fixture(scope="session")
def endpoint_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("local-aws")


@pytest.fixture(scope="session")
def endpoint(endpoint_dir):
    """A bare embedded endpoint (no Terraform) with a fast CodeDeploy clock: 1 minute = 0.05 s."""
    ep = process.start(endpoint_dir, minute_seconds=0.05)
    yield ep
    process.stop(endpoint_dir)


@pytest.fixture(scope="session")
def aws(endpoint):
    import boto3
    from botocore.config import Config

    session = boto3.Session(**endpoint.admin_credentials, region_name=REGION)

    def client(service: str, retries: int | None = None):
        config = Config(retries={"total_max_attempts": retries}) if retries else None
        return session.client(service, endpoint_url=endpoint.url, config=config)

    return client


@pytest.fixture(autouse=True)
def _no_leftover_faults(request):
    yield
    if "endpoint" in request.fixturenames:
        request.getfixturevalue("endpoint").clear_faults()


@pytest.fixture(scope="session")
def lambda_role(aws):
    iam = aws("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": ["lambda.amazonaws.com", "codedeploy.amazonaws.com"]},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    arn = iam.create_role(
        RoleName="local-aws-test-role", AssumeRolePolicyDocument=json.dumps(trust)
    )["Role"]["Arn"]
    # The endpoint enforces IAM: the adapter scenarios' functions and deployment groups act with
    # this role, which may do what those scenarios exercise (the IAM tests use narrower roles).
    iam.put_role_policy(
        RoleName="local-aws-test-role",
        PolicyName="adapter-scenarios",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": [
                            "lambda:InvokeFunction",
                            "lambda:GetAlias",
                            "lambda:UpdateAlias",
                            "cloudwatch:DescribeAlarms",
                            "codedeploy:PutLifecycleEventHookExecutionStatus",
                            "s3:PutObject",
                        ],
                        "Resource": "*",
                    }
                ],
            }
        ),
    )
    return arn


@pytest.fixture
def make_function(aws, lambda_role):
    """Create a function from handler source; returns its (unique) name."""

    def make(source: str, timeout: int = 10, env: dict | None = None, publish: bool = False) -> str:
        name = f"fn-{uuid.uuid4().hex[:10]}"
        aws("lambda").create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=lambda_role,
            Handler="handler.handler",
            Code={"ZipFile": zip_source(source)},
            Timeout=timeout,
            Environment={"Variables": env or {}},
            Publish=publish,
        )
        return name

    return make
