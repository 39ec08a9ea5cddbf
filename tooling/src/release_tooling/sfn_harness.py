"""Run state_machine.asl.json in moto's Step Functions interpreter with scripted Lambdas.

Each pipeline Lambda is replaced by a Python callable (keyed by its short name, e.g. "deploy")
that gets the payload and returns a result, or raises ``LambdaFailure`` to make the invocation
fail with a FunctionError like a real handler exception would.
"""

import json
import time
from collections.abc import Callable
from typing import Any

import boto3

from . import contract, project
from .check_asl import render

ROOT = project.ROOT
ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/state-machine"
COMMIT = "e" * 40


class LambdaFailure(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


class ScriptedLambdas:
    def __init__(self, handlers: dict[str, Callable[[dict[str, Any]], Any]]) -> None:
        self.handlers = handlers
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def payloads(self, name: str) -> list[dict[str, Any]]:
        return [payload for called, payload in self.calls if called == name]

    def install(self, monkeypatch: Any) -> None:
        from moto.awslambda_simple.models import LambdaSimpleBackend

        harness = self

        def invoke(backend, function_name, qualifier, body, headers, response_headers):
            short = (
                function_name.rsplit(":function:", 1)[-1].removeprefix("check-").replace("-", "_")
            )
            payload = json.loads(body or "{}")
            harness.calls.append((short, payload))
            try:
                result = harness.handlers[short](payload)
            except LambdaFailure as exc:
                response_headers["x-amz-function-error"] = "Unhandled"
                result = {
                    "errorType": exc.error_type,
                    "errorMessage": exc.message,
                    "stackTrace": [],
                }
            return json.dumps(result).encode()

        monkeypatch.setattr(LambdaSimpleBackend, "invoke", invoke)


def create_state_machine(region: str, name: str = "release") -> str:
    text = render((ROOT / "state_machine.asl.json").read_text(), region=region, account=ACCOUNT)
    sfn = boto3.client("stepfunctions", region_name=region)
    return sfn.create_state_machine(name=name, definition=text, roleArn=ROLE)["stateMachineArn"]


def start(arn: str, execution_input: dict[str, Any], name: str = "release-test") -> str:
    sfn = boto3.client("stepfunctions")
    return sfn.start_execution(stateMachineArn=arn, name=name, input=json.dumps(execution_input))[
        "executionArn"
    ]


def wait(
    execution_arn: str,
    *,
    until: Callable[[dict[str, Any]], bool] | None = None,
    timeout: float = 60,
) -> dict[str, Any]:
    sfn = boto3.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING" or (until and until(described)):
            return described
        time.sleep(0.05)
    raise TimeoutError(f"{execution_arn} still running after {timeout}s")


def history(execution_arn: str) -> list[dict[str, Any]]:
    sfn = boto3.client("stepfunctions")
    return sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]


def entered_states(execution_arn: str) -> list[str]:
    return [
        e["stateEnteredEventDetails"]["name"]
        for e in history(execution_arn)
        if "stateEnteredEventDetails" in e
    ]


def release_input(**overrides):
    """The input packaging gives a release of COMMIT (the release contract), with no poll wait."""
    return {**contract.execution_input("artifacts", COMMIT, 0, 1), **overrides}


def healthy_lambdas(**overrides):
    polls = {"staging": 0, "production": 0}

    def deploy(payload):
        record = {
            "alias": payload["stage"],
            "function_name": "app",
            "previous_version": "1",
            "target_version": "2" if payload["stage"] == "staging" else payload["target_version"],
            "deployment_id": f"d-{payload['stage']}",
            "action": "deployment_created",
        }
        if payload["stage"] == "staging":  # production still serves version 1
            record.update(production_version="1", in_production=False)
        return {**record, "deployments": [{"key": "app", **record}]}

    def status(payload):
        record = payload["deployment"]
        polls[record["alias"]] += 1
        done = polls[record["alias"]] >= 2
        return {
            **record,
            "status": "Succeeded" if done else "InProgress",
            "polls": record.get("polls", 0) + 1,
            "error": None,
            "rollback": None,
        }

    handlers = {
        "validate_artifact": lambda p: {
            "commit": p["commit_sha"],
            "sha256": "ab" * 32,
            "size": 100,
            "handler": "handler.handler",
            "bucket": "b",
            "key": "k",
            "entries": 1,
            "functions": [
                {"key": "app", "artifact_key": p["artifact_key"], "sha256": "ab" * 32, "size": 100}
            ],
        },
        "deploy": deploy,
        "deployment_status": status,
        "smoke_tests": lambda p: {
            "passed": True,
            "summary": "4/4 smoke tests passed",
            "results": [],
        },
        "rollback": lambda p: {"summary": "rolled back", "results": []},
        "approval_notifier": lambda p: {"message_id": "m-1"},
    }
    handlers.update(overrides)
    return ScriptedLambdas(handlers)
