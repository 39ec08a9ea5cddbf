"""Gap: moto authenticates nothing and barely authorizes. The endpoint refuses strangers, runs each
principal with its own credentials and evaluates IAM on every call (iam_enforcement.py)."""

from __future__ import annotations

import http.client
import json
import time
import uuid

import boto3
import pytest
from _helpers import zip_source
from botocore.config import Config
from botocore.exceptions import ClientError

REGION = "us-east-2"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
            "Action": "sts:AssumeRole",
        }
    ],
}


def role(aws, statements: list[dict]) -> str:
    name = f"iam-test-{uuid.uuid4().hex[:8]}"
    arn = aws("iam").create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))
    if statements:
        aws("iam").put_role_policy(
            RoleName=name,
            PolicyName="p",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
        )
    return arn["Role"]["Arn"]


def session_of(aws, endpoint, role_arn: str):
    creds = aws("sts").assume_role(RoleArn=role_arn, RoleSessionName="test-session")["Credentials"]
    session = boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=REGION,
    )
    return lambda service: session.client(
        service, endpoint_url=endpoint.url, config=Config(retries={"max_attempts": 0})
    )


def function(aws, role_arn: str, source: str) -> str:
    name = f"fn-{uuid.uuid4().hex[:10]}"
    aws("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role_arn,
        Handler="handler.handler",
        Code={"ZipFile": zip_source(source)},
        Timeout=10,
    )
    return name


def test_unknown_credentials_are_refused_whatever_the_iam_mode(endpoint):
    stranger = boto3.client(
        "s3",
        endpoint_url=endpoint.url,
        region_name=REGION,
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 0}),
    )
    with pytest.raises(ClientError) as refused:
        stranger.list_buckets()
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_a_foreign_host_header_is_refused_before_anything_runs(endpoint):
    """DNS rebinding: a page's request reaches 127.0.0.1 carrying the page's own host name."""
    connection = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=5)
    connection.request("GET", "/_local_aws/health", headers={"Host": "attacker.example:80"})
    response = connection.getresponse()
    assert response.status == 421
    assert b"is not this endpoint" in response.read()


def test_the_control_api_needs_the_per_run_secret(endpoint):
    connection = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=5)
    connection.request(
        "PUT", "/_local_aws/faults", body=b"[]", headers={"Host": f"127.0.0.1:{endpoint.port}"}
    )
    assert connection.getresponse().status == 403
    assert endpoint.faults() == []  # with the secret (from endpoint.json) it answers


def test_a_role_gets_exactly_what_its_policy_allows_named_in_the_error(aws, endpoint):
    bucket = f"b-{uuid.uuid4().hex[:10]}"
    aws("s3").create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    reader = role(
        aws, [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}]
    )
    client = session_of(aws, endpoint, reader)("s3")
    aws("s3").put_object(Bucket=bucket, Key="k", Body=b"x")
    assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"
    with pytest.raises(ClientError) as denied:
        client.put_object(Bucket=bucket, Key="k", Body=b"y")
    message = str(denied.value)
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    assert "s3:PutObject" in message and f"arn:aws:s3:::{bucket}/k" in message
    assert "assumed-role/" in message


def test_a_permissions_boundary_caps_what_the_role_policy_allows(aws, endpoint):
    boundary = aws("iam").create_policy(
        PolicyName=f"boundary-{uuid.uuid4().hex[:6]}",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "sqs:ListQueues", "Resource": "*"}],
            }
        ),
    )["Policy"]["Arn"]
    capped = role(
        aws,
        [{"Effect": "Allow", "Action": ["sqs:ListQueues", "s3:ListAllMyBuckets"], "Resource": "*"}],
    )
    aws("iam").put_role_permissions_boundary(
        RoleName=capped.rsplit("/", 1)[1], PermissionsBoundary=boundary
    )
    client = session_of(aws, endpoint, capped)
    client("sqs").list_queues()
    with pytest.raises(ClientError) as denied:
        client("s3").list_buckets()
    assert "permissions boundary" in str(denied.value)


def test_a_function_runs_with_its_own_execution_role(aws, make_function):
    allowed = role(aws, [])  # no permissions at all
    name = function(
        aws,
        allowed,
        """
        import boto3
        def handler(event, context):
            me = boto3.client("sts").get_caller_identity()["Arn"]
            try:
                boto3.client("s3").list_buckets()
                listed = True
            except Exception as exc:
                listed = type(exc).__name__ + ": " + str(exc)
            return {"me": me, "listed": listed}
        """,
    )
    result = json.loads(aws("lambda").invoke(FunctionName=name)["Payload"].read())
    assert f"assumed-role/{allowed.rsplit('/', 1)[1]}/{name}" in result["me"]
    assert "AccessDenied" in result["listed"] and "s3:ListAllMyBuckets" in result["listed"]


def test_a_state_machine_role_that_may_not_invoke_gets_lambda_awslambdaexception(aws):
    runner = role(aws, [])
    target = function(aws, runner, "def handler(event, context):\n    return 1\n")
    definition = {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": target},
                "End": True,
            }
        },
    }
    sfn = aws("stepfunctions")
    machine = sfn.create_state_machine(
        name=f"sm-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition), roleArn=runner
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine)["executionArn"]
    deadline = time.monotonic() + 30
    while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert described["status"] == "FAILED"
    assert described["error"] == "Lambda.AWSLambdaException"
    assert "lambda:InvokeFunction" in described["cause"]


def test_every_decision_is_logged_with_principal_action_and_resource(aws, endpoint, endpoint_dir):
    quiet = role(aws, [])
    with pytest.raises(ClientError):
        session_of(aws, endpoint, quiet)("sqs").list_queues()
    log = [
        json.loads(line) for line in (endpoint_dir / "iam-decisions.jsonl").read_text().splitlines()
    ]
    denied = [d for d in log if not d["allowed"] and d.get("action") == "sqs:ListQueues"]
    assert denied and quiet.rsplit("/", 1)[1] in denied[-1]["principal"]
