"""Rehearsal: re-uploading a commit production already serves re-runs its release (on AWS, a new
CodePipeline run) without asking for approval again and without a second CodeDeploy deployment.

Projects made with manual_approval=no have no approval to skip: the module is skipped there. This
directory is copied without rendering (cookiecutter _copy_without_render), so the option is read
from the state machine the project was made with, not from Jinja.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from release_tooling.rehearsal import commit_id

ROOT = Path(__file__).resolve().parents[2]
GATE = "ApproveProduction"
HAS_APPROVAL = GATE in json.loads((ROOT / "state_machine.asl.json").read_text())["States"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("terraform") is None,
        reason="terraform is not installed (needed by release-tooling local up)",
    ),
    pytest.mark.skipif(
        not HAS_APPROVAL,
        reason="this project was made with manual_approval=no: there is no approval to skip",
    ),
]


def approval_requests(proj) -> dict[str, int]:
    """Per execution: how many times it entered the approval task (each issues a task token and
    has approval_notifier publish the request)."""
    outputs = proj.outputs()
    sfn = proj.admin_client("stepfunctions")
    arn = outputs["state_machine_arn"]
    counts = {}
    for execution in sfn.list_executions(stateMachineArn=arn)["executions"]:
        history = sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)
        events = history["events"]
        counts[execution["name"]] = sum(
            1 for e in events if e.get("stateEnteredEventDetails", {}).get("name") == GATE
        )
    return counts


def deployments(proj) -> list[str]:
    cd = proj.admin_client("codedeploy")
    found = []
    for application in cd.list_applications()["applications"]:
        for group in cd.list_deployment_groups(applicationName=application)["deploymentGroups"]:
            found += cd.list_deployments(applicationName=application, deploymentGroupName=group)[
                "deployments"
            ]
    return sorted(found)


def test_rerun_of_the_live_commit_asks_no_second_approval(project, released):
    first = commit_id("first")
    before = project.status()
    assert before["aliases"]["production"] == before["aliases"]["staging"] != "$LATEST"
    asked_before = approval_requests(project)
    approved = project.execution(first)
    assert approved["status"] == "SUCCEEDED"
    # The first release of the commit did wait for (and get) an approval.
    assert asked_before[approved["name"]] == 1
    assert json.loads(approved["output"])["approval"].get("skipped") is not True
    deployed_before = deployments(project)

    again = project.local("release", "--commit", first)

    assert again.returncode == 0, again.stdout
    after = project.status()
    assert len(after["executions"]) == len(before["executions"]) + 1
    rerun = after["executions"][0]
    assert (rerun["commit"], rerun["status"]) == (first, "SUCCEEDED")
    assert approval_requests(project) == {**asked_before, rerun["name"]: 0}
    assert GATE not in again.stdout
    output = json.loads(rerun["output"])
    assert output["approval"]["skipped"] is True
    assert output["approval"]["production_version"] == before["aliases"]["production"]
    assert (output["staging"]["action"], output["production"]["action"]) == (
        "already_deployed",
        "already_deployed",
    )
    assert deployments(project) == deployed_before
    assert after["aliases"] == before["aliases"]
