"""Gap: moto's CodeDeploy deployments stay "Created". The adapter shifts Lambda aliases like AWS."""

from __future__ import annotations

import json
import uuid

import pytest
from _helpers import wait_for, zip_source
from botocore.exceptions import ClientError

HOOK = """
import boto3
def handler(event, context):
    boto3.client("codedeploy").put_lifecycle_event_hook_execution_status(
        deploymentId=event["DeploymentId"],
        lifecycleEventHookExecutionId=event["LifecycleEventHookExecutionId"],
        status="%s",
    )
"""


@pytest.fixture
def setup(aws, make_function, lambda_role):
    """A function with versions 1 and 2, alias `live` at 1, an app and a group with an alarm."""

    def make(
        config: str = "CodeDeployDefault.LambdaLinear10PercentEvery1Minute", alarm: bool = True
    ):
        lam, cd, cw = aws("lambda"), aws("codedeploy"), aws("cloudwatch")
        name = make_function("def handler(e, c):\n    return 1\n")
        v1 = lam.publish_version(FunctionName=name)["Version"]
        lam.update_function_code(
            FunctionName=name, ZipFile=zip_source("def handler(e, c):\n    return 2\n")
        )
        v2 = lam.publish_version(FunctionName=name)["Version"]
        lam.create_alias(FunctionName=name, Name="live", FunctionVersion=v1)
        app = f"app-{uuid.uuid4().hex[:8]}"
        alarm_name = f"{app}-errors"
        cw.put_metric_alarm(
            AlarmName=alarm_name,
            MetricName="Errors",
            Namespace="AWS/Lambda",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
        )
        cw.set_alarm_state(AlarmName=alarm_name, StateValue="OK", StateReason="test setup")
        cd.create_application(applicationName=app, computePlatform="Lambda")
        cd.create_deployment_group(
            applicationName=app,
            deploymentGroupName="live",
            serviceRoleArn=lambda_role,
            deploymentConfigName=config,
            deploymentStyle={
                "deploymentType": "BLUE_GREEN",
                "deploymentOption": "WITH_TRAFFIC_CONTROL",
            },
            alarmConfiguration={"enabled": alarm, "alarms": [{"name": alarm_name}]},
            autoRollbackConfiguration={
                "enabled": True,
                "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"],
            },
        )
        return {"fn": name, "v1": v1, "v2": v2, "app": app, "alarm": alarm_name}

    return make


def deploy(aws, s, hooks: dict | None = None, current: str | None = None) -> str:
    appspec = {
        "version": 0.0,
        "Resources": [
            {
                "fn": {
                    "Type": "AWS::Lambda::Function",
                    "Properties": {
                        "Name": s["fn"],
                        "Alias": "live",
                        "CurrentVersion": current or s["v1"],
                        "TargetVersion": s["v2"],
                    },
                }
            }
        ],
        "Hooks": [{k: v} for k, v in (hooks or {}).items()],
    }
    return aws("codedeploy").create_deployment(
        applicationName=s["app"],
        deploymentGroupName="live",
        revision={
            "revisionType": "AppSpecContent",
            "appSpecContent": {"content": json.dumps(appspec)},
        },
    )["deploymentId"]


def finished(aws, deployment_id):
    info = aws("codedeploy").get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    return info if info["status"] in ("Succeeded", "Failed", "Stopped") else None


def alias(aws, s):
    a = aws("lambda").get_alias(FunctionName=s["fn"], Name="live")
    return a["FunctionVersion"], (a.get("RoutingConfig") or {}).get(
        "AdditionalVersionWeights"
    ) or {}


def test_linear_deployment_shifts_traffic_step_by_step_then_succeeds(aws, setup):
    s = setup()
    dep = deploy(aws, s)
    assert dep.startswith("d-")
    weights = set()

    def done():
        version, routing = alias(aws, s)
        weights.update(routing.values())
        return finished(aws, dep)

    info = wait_for(done, timeout=10, interval=0.01)
    assert info["status"] == "Succeeded"
    assert info["deploymentOverview"]["Succeeded"] == 1
    assert alias(aws, s) == (s["v2"], {})
    assert len(weights) >= 2 and all(0 < w < 1 for w in weights), weights  # saw intermediate splits


def test_second_deployment_to_a_busy_group_is_refused(aws, setup):
    s = setup(config="CodeDeployDefault.LambdaCanary10Percent30Minutes")
    first = deploy(aws, s)
    with pytest.raises(ClientError) as err:
        deploy(aws, s)
    assert err.value.response["Error"]["Code"] == "DeploymentLimitExceededException"
    assert first in err.value.response["Error"]["Message"]
    aws("codedeploy").stop_deployment(deploymentId=first, autoRollbackEnabled=True)


def test_alarm_stops_the_deployment_and_rolls_the_alias_back(aws, setup):
    s = setup(config="CodeDeployDefault.LambdaCanary10Percent30Minutes")
    dep = deploy(aws, s)
    wait_for(lambda: alias(aws, s)[1])  # the canary is live
    aws("cloudwatch").set_alarm_state(
        AlarmName=s["alarm"], StateValue="ALARM", StateReason="errors"
    )
    info = wait_for(lambda: finished(aws, dep))
    assert info["status"] == "Stopped"
    assert info["errorInformation"]["code"] == "ALARM_ACTIVE"
    assert s["alarm"] in info["errorInformation"]["message"]
    rollback_id = info["rollbackInfo"]["rollbackDeploymentId"]
    rollback = aws("codedeploy").get_deployment(deploymentId=rollback_id)["deploymentInfo"]
    assert rollback["creator"] == "codeDeployRollback"
    assert rollback["rollbackInfo"]["rollbackTriggeringDeploymentId"] == dep
    assert alias(aws, s) == (s["v1"], {})


def test_rollback_is_a_real_deployment_that_occupies_the_group(aws, setup):
    """CodeDeploy rolls back with a new deployment ("Redeploy and roll back a deployment with
    CodeDeploy"): until it ends, the group refuses the next release's deployment."""
    s = setup(config="CodeDeployDefault.LambdaCanary10Percent30Minutes")  # 30 min = 1.5 s here
    dep = deploy(aws, s)
    wait_for(lambda: alias(aws, s)[1])
    aws("codedeploy").stop_deployment(deploymentId=dep, autoRollbackEnabled=True)
    rollback_id = aws("codedeploy").get_deployment(deploymentId=dep)["deploymentInfo"][
        "rollbackInfo"
    ]["rollbackDeploymentId"]
    rollback = aws("codedeploy").get_deployment(deploymentId=rollback_id)["deploymentInfo"]
    assert rollback["status"] in ("Created", "InProgress")
    assert rollback["rollbackInfo"]["rollbackTriggeringDeploymentId"] == dep
    assert alias(aws, s) == (s["v1"], {})  # traffic is back on the original version at once
    with pytest.raises(ClientError) as err:
        deploy(aws, s)
    assert err.value.response["Error"]["Code"] == "DeploymentLimitExceededException"
    assert rollback_id in err.value.response["Error"]["Message"]
    listed = aws("codedeploy").list_deployments(
        applicationName=s["app"], deploymentGroupName="live", includeOnlyStatuses=["InProgress"]
    )["deployments"]
    assert listed == [rollback_id]
    info = wait_for(lambda: finished(aws, rollback_id), timeout=10)
    assert info["status"] == "Succeeded"
    assert alias(aws, s) == (s["v1"], {})
    again = deploy(aws, s)  # the group is free again
    aws("codedeploy").stop_deployment(deploymentId=again, autoRollbackEnabled=False)


def test_injected_alarm_fault_trips_when_traffic_starts_shifting(aws, endpoint, setup):
    s = setup(config="CodeDeployDefault.LambdaAllAtOnce")
    endpoint.set_faults(
        [{"name": "spike", "kind": "alarm", "deployment_group": "live", "alarms": [s["alarm"]]}]
    )
    dep = deploy(aws, s)
    info = wait_for(lambda: finished(aws, dep))
    assert info["status"] == "Stopped"
    assert (
        aws("cloudwatch").describe_alarms(AlarmNames=[s["alarm"]])["MetricAlarms"][0]["StateValue"]
        == "ALARM"
    )
    assert alias(aws, s) == (s["v1"], {})


@pytest.mark.parametrize("reported, expected", [("Succeeded", "Succeeded"), ("Failed", "Failed")])
def test_hooks_run_and_must_report_their_status(aws, setup, make_function, reported, expected):
    s = setup(config="CodeDeployDefault.LambdaAllAtOnce")
    hook = make_function(HOOK % reported)
    dep = deploy(aws, s, hooks={"BeforeAllowTraffic": hook})
    info = wait_for(lambda: finished(aws, dep))
    assert info["status"] == expected
    if expected == "Failed":
        assert info["errorInformation"]["code"] == "HOOK_EXECUTION_FAILURE"
        assert alias(aws, s) == (s["v1"], {})
    else:
        assert alias(aws, s) == (s["v2"], {})


def test_stop_deployment_with_rollback(aws, setup):
    s = setup(config="CodeDeployDefault.LambdaCanary10Percent30Minutes")
    dep = deploy(aws, s)
    wait_for(lambda: alias(aws, s)[1])
    aws("codedeploy").stop_deployment(deploymentId=dep, autoRollbackEnabled=True)
    info = aws("codedeploy").get_deployment(deploymentId=dep)["deploymentInfo"]  # effective at once
    assert info["status"] == "Stopped"
    assert info["errorInformation"]["code"] == "MANUAL_STOP"
    assert alias(aws, s) == (s["v1"], {})


def test_alias_not_at_current_version_fails_the_deployment(aws, setup):
    s = setup(config="CodeDeployDefault.LambdaAllAtOnce")
    dep = deploy(aws, s, current=s["v2"])
    info = wait_for(lambda: finished(aws, dep))
    assert info["status"] == "Failed"
    assert info["errorInformation"]["code"] == "INVALID_LAMBDA_CONFIGURATION"
    assert alias(aws, s) == (s["v1"], {})


def test_list_deployments_filters_on_the_live_status(aws, setup):
    s = setup(config="CodeDeployDefault.LambdaAllAtOnce")
    dep = deploy(aws, s)
    wait_for(lambda: finished(aws, dep))
    cd = aws("codedeploy")
    assert (
        dep
        in cd.list_deployments(
            applicationName=s["app"], deploymentGroupName="live", includeOnlyStatuses=["Succeeded"]
        )["deployments"]
    )
    assert (
        dep
        not in cd.list_deployments(
            applicationName=s["app"], deploymentGroupName="live", includeOnlyStatuses=["InProgress"]
        )["deployments"]
    )
