"""Gap: moto cannot run Lambda code without Docker. The adapter runs the deployed zip in a "
"subprocess."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from _helpers import payload, zip_source
from botocore.exceptions import ClientError

ECHO = """
import os
def handler(event, context):
    return {
        "event": event,
        "greeting": os.environ.get("GREETING"),
        "version": context.function_version,
        "region": os.environ["AWS_REGION"],
        "remaining": context.get_remaining_time_in_millis(),
    }
"""


def test_invoke_runs_the_deployed_code_with_its_environment(aws, make_function):
    name = make_function(ECHO, env={"GREETING": "hello"})
    resp = aws("lambda").invoke(FunctionName=name, Payload=json.dumps({"n": 1}))
    body = payload(resp)
    assert "FunctionError" not in resp
    assert body["event"] == {"n": 1}
    assert body["greeting"] == "hello"
    assert body["version"] == "$LATEST"
    assert body["region"] == "us-east-2"
    assert 0 < body["remaining"] <= 10_000


def test_code_inside_a_lambda_reaches_the_endpoint_through_standard_sdk_config(aws, make_function):
    bucket = f"b-{uuid.uuid4().hex[:12]}"
    aws("s3").create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "us-east-2"}
    )
    name = make_function(
        """
        import boto3
        def handler(event, context):
            boto3.client("s3").put_object(Bucket=event["bucket"], Key="from-lambda", Body=b"hi")
            return "ok"
        """
    )
    resp = aws("lambda").invoke(FunctionName=name, Payload=json.dumps({"bucket": bucket}))
    assert payload(resp) == "ok"
    assert aws("s3").get_object(Bucket=bucket, Key="from-lambda")["Body"].read() == b"hi"


def test_an_exception_comes_back_as_unhandled_function_error(aws, make_function):
    name = make_function(
        """
        class BrokenDependency(Exception):
            pass
        def handler(event, context):
            raise BrokenDependency("database unreachable")
        """
    )
    resp = aws("lambda").invoke(FunctionName=name, Payload=b"{}")
    body = payload(resp)
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "BrokenDependency"
    assert body["errorMessage"] == "database unreachable"
    assert any("in handler" in frame for frame in body["stackTrace"])


def test_a_timeout_is_reported_as_lambda_does(aws, make_function):
    name = make_function(
        "import time\ndef handler(event, context):\n    time.sleep(30)\n", timeout=1
    )
    started = time.monotonic()
    resp = aws("lambda").invoke(FunctionName=name, Payload=b"{}")
    body = payload(resp)
    assert time.monotonic() - started < 5
    assert resp["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Sandbox.Timedout"
    assert body["errorMessage"].endswith("Task timed out after 1.00 seconds")


def test_import_errors_and_missing_handlers_use_runtime_error_types(aws, make_function):
    broken_import = make_function("import not_a_module\ndef handler(e, c):\n    return 1\n")
    body = payload(aws("lambda").invoke(FunctionName=broken_import, Payload=b"{}"))
    assert body["errorType"] == "Runtime.ImportModuleError"
    assert "not_a_module" in body["errorMessage"]
    no_handler = make_function("def other(e, c):\n    return 1\n")
    body = payload(aws("lambda").invoke(FunctionName=no_handler, Payload=b"{}"))
    assert body["errorType"] == "Runtime.HandlerNotFound"


def test_versions_and_aliases_run_their_own_code_and_rollback_restores_old_code(aws, make_function):
    lam = aws("lambda")
    name = make_function("def handler(e, c):\n    return 'one'\n")
    v1 = lam.publish_version(FunctionName=name)["Version"]
    lam.update_function_code(
        FunctionName=name, ZipFile=zip_source("def handler(e, c):\n    return 'two'\n")
    )
    v2 = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=v1)

    assert payload(lam.invoke(FunctionName=name, Qualifier=v2)) == "two"
    assert payload(lam.invoke(FunctionName=f"{name}:live")) == "one"
    lam.update_alias(FunctionName=name, Name="live", FunctionVersion=v2)
    assert payload(lam.invoke(FunctionName=name, Qualifier="live")) == "two"
    lam.update_alias(FunctionName=name, Name="live", FunctionVersion=v1)  # what a rollback does
    resp = lam.invoke(FunctionName=name, Qualifier="live")
    assert payload(resp) == "one"
    assert resp["ExecutedVersion"] == v1


def test_alias_routing_weights_split_traffic(aws, make_function):
    lam = aws("lambda")
    name = make_function("def handler(e, c):\n    return c.function_version\n")
    v1 = lam.publish_version(FunctionName=name)["Version"]
    lam.update_function_code(
        FunctionName=name,
        ZipFile=zip_source("def handler(e, c):\n    return c.function_version\n# v2\n"),
    )
    v2 = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(
        FunctionName=name,
        Name="live",
        FunctionVersion=v1,
        RoutingConfig={"AdditionalVersionWeights": {v2: 0.5}},
    )
    seen = Counter(
        lam.invoke(FunctionName=name, Qualifier="live")["ExecutedVersion"] for _ in range(16)
    )
    assert set(seen) == {v1, v2}, seen


def test_unknown_alias_is_resource_not_found(aws, make_function):
    name = make_function(ECHO)
    with pytest.raises(ClientError) as err:
        aws("lambda").invoke(FunctionName=name, Qualifier="nope")
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_step_functions_catch_and_retry_see_lambda_error_types(aws, make_function, lambda_role):
    failing = make_function(
        "class ValidationFailed(Exception):\n    pass\ndef handler(e, c):\n    raise "
        "ValidationFailed('bad artifact')\n"
    )
    slow = make_function("import time\ndef handler(e, c):\n    time.sleep(5)\n", timeout=1)
    fn_arn = aws("lambda").get_function(FunctionName=failing)["Configuration"]["FunctionArn"]
    slow_arn = aws("lambda").get_function(FunctionName=slow)["Configuration"]["FunctionArn"]
    definition = {
        "StartAt": "Slow",
        "States": {
            "Slow": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": slow_arn, "Payload.$": "$"},
                "Catch": [
                    {
                        "ErrorEquals": ["Sandbox.Timedout"],
                        "ResultPath": "$.timeout",
                        "Next": "Validate",
                    }
                ],
                "End": True,
            },
            "Validate": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": fn_arn, "Payload.$": "$"},
                "Catch": [
                    {
                        "ErrorEquals": ["ValidationFailed"],
                        "ResultPath": "$.error",
                        "Next": "Rejected",
                    }
                ],
                "End": True,
            },
            "Rejected": {
                "Type": "Fail",
                "ErrorPath": "$.error.Error",
                "CausePath": "$.error.Cause",
            },
        },
    }
    sfn = aws("stepfunctions")
    sm = sfn.create_state_machine(
        name=f"sm-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition), roleArn=lambda_role
    )
    arn = sfn.start_execution(stateMachineArn=sm["stateMachineArn"], input="{}")["executionArn"]
    deadline = time.monotonic() + 20
    while (desc := sfn.describe_execution(executionArn=arn))[
        "status"
    ] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert desc["status"] == "FAILED"
    assert desc["error"] == "ValidationFailed"
    assert json.loads(desc["cause"])["errorMessage"] == "bad artifact"
    history = sfn.get_execution_history(executionArn=arn)["events"]
    failures = [e["taskFailedEventDetails"]["error"] for e in history if e["type"] == "TaskFailed"]
    assert failures == ["Sandbox.Timedout", "ValidationFailed"]


def test_fault_rules_fail_time_out_or_reject_invocations(aws, endpoint, make_function):
    name = make_function("def handler(e, c):\n    return 'fine'\n", timeout=1)
    lam = aws("lambda")
    endpoint.set_faults(
        [
            {
                "name": "boom",
                "function": name,
                "action": "error",
                "error_type": "InjectedFault",
                "times": 1,
            }
        ]
    )
    body = payload(lam.invoke(FunctionName=name, Payload=b"{}"))
    assert body["errorType"] == "InjectedFault"
    assert (
        payload(lam.invoke(FunctionName=name, Payload=b"{}")) == "fine"
    )  # times=1: only the first fails

    endpoint.set_faults([{"name": "hang", "function": name, "action": "hang"}])
    assert payload(lam.invoke(FunctionName=name, Payload=b"{}"))["errorType"] == "Sandbox.Timedout"

    endpoint.set_faults([{"name": "svc", "function": name, "action": "service-error", "skip": 1}])
    assert (
        payload(lam.invoke(FunctionName=name, Payload=b"{}")) == "fine"
    )  # skip=1: the first passes
    with pytest.raises(ClientError) as err:
        aws("lambda", retries=1).invoke(FunctionName=name, Payload=b"{}")
    assert err.value.response["Error"]["Code"] == "ServiceException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    fired = {r["name"]: r["fired"] for r in endpoint.faults()}
    assert fired == {"svc": 1}


def test_a_function_never_sees_the_developers_aws_config_or_credentials_files(aws, make_function):
    """A profile of the developer's (ignore_configured_endpoint_urls, credential_process...) must
    not send local function code to real AWS: the shared config files it sees are empty."""
    name = make_function(
        """
        import os
        def handler(event, context):
            names = ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")
            files = [os.environ.get(name) for name in names]
            return {"files": files, "sizes": [os.path.getsize(f) for f in files if f]}
        """
    )
    body = payload(aws("lambda").invoke(FunctionName=name))
    assert all(body["files"]) and body["sizes"] == [0, 0]
    assert not any(f.startswith(str(Path.home() / ".aws")) for f in body["files"])
