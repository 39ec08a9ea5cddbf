"""Rehearsal: a release whose new version fails in production is stopped by its alarm, no flag.

No fault is armed. While CodeDeploy runs the production canary, the local endpoint sends the
alias synthetic user traffic (the app's own smoke_checks.json, replayed through the alias and
split by its weights); the new version's failures are Lambda Errors metrics on the alias, the
alarm Terraform defines on them (terraform/monitoring.tf) is evaluated on CodeDeploy's compressed
clock and goes to ALARM, and CodeDeploy stops the deployment and rolls the alias back.
"""

from __future__ import annotations

import json
import shutil
import time

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("terraform") is None,
        reason="terraform is not installed (needed by release-tooling local up)",
    ),
]

# Appended to the app: the release serves staging (and its smoke tests) well, and fails every call
# it serves through the production alias, as a release missing production-only configuration does.
# During the canary that is a tenth of production's calls.
FAILS_IN_PRODUCTION = """

_release_handler = handler


def handler(event, context):
    if context.invoked_function_arn.endswith(":production"):
        raise RuntimeError("this release cannot serve production")
    return _release_handler(event, context)
"""


def production_group(project) -> dict:
    outputs = project.outputs()
    return {
        "applicationName": outputs["codedeploy_application"],
        "deploymentGroupName": outputs["deployment_groups"]["production"],
    }


def production_deployments(project) -> list[dict]:
    cd = project.admin_client("codedeploy")
    ids = cd.list_deployments(**production_group(project))["deployments"]
    infos = [cd.get_deployment(deploymentId=i)["deploymentInfo"] for i in ids]
    return sorted(infos, key=lambda i: i["createTime"])


def target_version(deployment: dict) -> str:
    spec = json.loads(deployment["revision"]["appSpecContent"]["content"])
    return next(iter(spec["Resources"][0].values()))["Properties"]["TargetVersion"]


def errors_of_version(project, version: str) -> float:
    """Errors Lambda recorded for `version` serving the production alias (ExecutedVersion)."""
    function = project.outputs()["app_function_name"]
    points = project.admin_client("cloudwatch").get_metric_statistics(
        Namespace="AWS/Lambda",
        MetricName="Errors",
        Dimensions=[
            {"Name": "FunctionName", "Value": function},
            {"Name": "Resource", "Value": f"{function}:production"},
            {"Name": "ExecutedVersion", "Value": version},
        ],
        StartTime=time.time() - 3600,
        EndTime=time.time() + 60,
        Period=3600,
        Statistics=["Sum"],
    )["Datapoints"]
    return sum(p["Sum"] for p in points)


def test_a_release_failing_in_production_is_rolled_back_by_its_alarm(project, released):
    before = project.status()["aliases"]
    good = project.handler.read_text(encoding="utf-8")
    try:
        project.edit_app("fails in production", body=good + FAILS_IN_PRODUCTION)
        run = project.local("release")
    finally:
        project.handler.write_text(good, encoding="utf-8")

    assert run.returncode == 1, run.stdout
    status = project.status()
    execution = status["executions"][0]
    assert execution["status"] == "FAILED"
    assert execution["error"] == "DeploymentStoppedError"
    assert "ALARM_ACTIVE" in execution["cause"], execution["cause"]
    assert status["aliases"] == before  # production untouched, staging rolled back

    group = project.admin_client("codedeploy").get_deployment_group(**production_group(project))
    (alarm,) = [a["name"] for a in group["deploymentGroupInfo"]["alarmConfiguration"]["alarms"]]
    *_, stopped, rollback = production_deployments(project)
    assert stopped["status"] == "Stopped"
    assert stopped["errorInformation"]["code"] == "ALARM_ACTIVE"
    assert alarm in stopped["errorInformation"]["message"]
    assert rollback["creator"] == "codeDeployRollback"
    assert rollback["rollbackInfo"]["rollbackTriggeringDeploymentId"] == stopped["deploymentId"]
    # The alarm fired on what the new version really did in production, and only it failed.
    assert errors_of_version(project, target_version(stopped)) >= 1
    assert errors_of_version(project, before["production"]) == 0
