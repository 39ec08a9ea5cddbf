"""Alias drift against moto: aliases compared with the newest successful release."""

from __future__ import annotations

import io
import json
import zipfile

import boto3
import pytest

from release_tooling import alias_drift

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/app"
RELEASED, OLDER = "a" * 40, "b" * 40
PASS = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})


def code() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


@pytest.fixture
def aws(fake_aws_credentials):
    from moto import mock_aws

    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions", region_name=REGION)
        lam = boto3.client("lambda", region_name=REGION)
        boto3.client("iam", region_name=REGION).create_role(
            RoleName="app", AssumeRolePolicyDocument="{}"
        )
        machine = sfn.create_state_machine(name="svc-release", definition=PASS, roleArn=ROLE)
        yield sfn, lam, machine["stateMachineArn"]


def release(sfn, machine: str, commit: str, name: str) -> None:
    arn = sfn.start_execution(
        stateMachineArn=machine, name=name, input=json.dumps({"commit_sha": commit})
    )["executionArn"]
    while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
        pass


def function(lam, name: str = "svc-app") -> dict[str, str]:
    """A function with one version per commit, both aliases on the released one."""
    lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=ROLE,
        Handler="handler.handler",
        Code={"ZipFile": code()},
    )
    versions = {}
    for commit in (OLDER, RELEASED):
        lam.update_function_code(FunctionName=name, ZipFile=code() + commit.encode())
        versions[commit] = lam.publish_version(FunctionName=name, Description=commit)["Version"]
    for alias in alias_drift.RELEASE_ALIASES:
        lam.create_alias(FunctionName=name, Name=alias, FunctionVersion=versions[RELEASED])
    return versions


def test_aliases_as_the_last_release_left_them_are_no_drift(aws):
    sfn, lam, machine = aws
    function(lam)
    release(sfn, machine, OLDER, "release-1")
    release(sfn, machine, RELEASED, "release-2")
    code_, report = alias_drift.check(sfn, lam, machine, ["svc-app"], alias_drift.RELEASE_ALIASES)
    assert code_ == 0 and f"match the last successful release {RELEASED[:12]}" in report


def test_a_hand_moved_alias_and_leftover_weights_are_drift(aws):
    sfn, lam, machine = aws
    versions = function(lam)
    release(sfn, machine, RELEASED, "release-1")
    # Someone points production back in the console; staging keeps 10 % on the older version.
    lam.update_alias(FunctionName="svc-app", Name="production", FunctionVersion=versions[OLDER])
    lam.update_alias(
        FunctionName="svc-app",
        Name="staging",
        RoutingConfig={"AdditionalVersionWeights": {versions[OLDER]: 0.1}},
    )
    code_, report = alias_drift.check(sfn, lam, machine, ["svc-app"], alias_drift.RELEASE_ALIASES)
    assert code_ == 2
    assert (
        f"`svc-app:production` serves version {versions[OLDER]} ({OLDER[:12]}), "
        f"not the last successful release {RELEASED[:12]}"
    ) in report
    routes = f"still routes part of its traffic elsewhere (version {versions[OLDER]} 10%)"
    assert f"`svc-app:staging` {routes}" in report
    assert "release-1" in report


def test_nothing_released_or_a_release_running_compares_nothing(aws):
    sfn, lam, machine = aws
    function(lam)
    code_, report = alias_drift.check(sfn, lam, machine, ["svc-app"], ("production",))
    assert (code_, report) == (0, "Aliases not compared: no release has succeeded yet.")

    wait = json.dumps(
        {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 30, "End": True}}}
    )
    slow = sfn.create_state_machine(name="svc-slow", definition=wait, roleArn=ROLE)
    sfn.start_execution(
        stateMachineArn=slow["stateMachineArn"],
        name="release-9",
        input=json.dumps({"commit_sha": OLDER}),
    )
    code_, report = alias_drift.check(
        sfn, lam, slow["stateMachineArn"], ["svc-app"], ("production",)
    )
    assert code_ == 0 and "release `release-9` is running" in report


def test_main_writes_the_report_and_exits_2_on_drift(aws, tmp_path, capsys):
    sfn, lam, machine = aws
    versions = function(lam)
    release(sfn, machine, RELEASED, "release-1")
    lam.update_alias(FunctionName="svc-app", Name="staging", FunctionVersion=versions[OLDER])
    argv = [
        "--state-machine-arn",
        machine,
        "--function",
        "svc-app",
        "--report",
        str(tmp_path / "r.md"),
    ]
    assert alias_drift.main(argv, clients=(sfn, lam)) == 2
    assert "`svc-app:staging` serves version" in (tmp_path / "r.md").read_text()


def test_a_denied_call_is_one_line_naming_the_grant(aws, capsys):
    sfn, lam, machine = aws
    argv = ["--state-machine-arn", machine, "--function", "no-such-function"]
    release(sfn, machine, RELEASED, "release-1")
    assert alias_drift.main(argv, clients=(sfn, lam)) == 1
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1 and " failed: ResourceNotFoundException" in err and "plan role" in err
    )
