"""Alarms from real metrics: Lambda's metrics, CloudWatch's alarm evaluation, CodeDeploy stopping
on an alarm fed by synthetic canary traffic, and Step Functions' status events through EventBridge
to SNS (and on to an SQS subscriber)."""

from __future__ import annotations

import io
import json
import time
import uuid
import zipfile

import pytest
from _helpers import wait_for

from release_tooling.local_aws import alarms, metrics, traffic

# ---------------------------------------------------------------------------------------------
# Pure parts
# ---------------------------------------------------------------------------------------------


def dims(datums: list[dict], metric: str) -> list[dict[str, str]]:
    return [
        {d["Name"]: d["Value"] for d in datum["Dimensions"]}
        for datum in datums
        if datum["MetricName"] == metric
    ]


def test_an_alias_invocation_is_published_under_the_four_dimension_sets_lambda_uses():
    datums = metrics.invocation_datums("orders", "production", "7", failed=True, duration_ms=12.5)

    assert dims(datums, "Errors") == [
        {},
        {"FunctionName": "orders"},
        {"FunctionName": "orders", "Resource": "orders:production"},
        {"FunctionName": "orders", "Resource": "orders:production", "ExecutedVersion": "7"},
    ]
    by_name = {d["MetricName"]: d for d in datums}
    assert by_name["Errors"]["Value"] == 1.0 and by_name["Invocations"]["Value"] == 1.0
    assert by_name["Throttles"]["Value"] == 0.0
    assert (by_name["Duration"]["Value"], by_name["Duration"]["Unit"]) == (12.5, "Milliseconds")


def test_version_and_unqualified_invocations_have_no_executed_version():
    by_version = metrics.invocation_datums("orders", "3", "3", failed=False, duration_ms=1)
    unqualified = metrics.invocation_datums("orders", None, "$LATEST", failed=False, duration_ms=1)

    assert dims(by_version, "Errors")[-1] == {"FunctionName": "orders", "Resource": "orders:3"}
    assert len(dims(by_version, "Errors")) == 3
    assert dims(unqualified, "Errors") == [{}, {"FunctionName": "orders"}]
    assert all(d["Value"] == 0.0 for d in by_version if d["MetricName"] == "Errors")


def rule(
    n: int = 3, m: int | None = None, missing: str = "missing", op: str = "GreaterThanThreshold"
) -> alarms.AlarmRule:
    return alarms.AlarmRule(
        name="errors",
        namespace="AWS/Lambda",
        metric_name="Errors",
        dimensions=frozenset({("FunctionName", "f")}),
        statistic="Sum",
        period=60,
        evaluation_periods=n,
        datapoints_to_alarm=m or n,
        threshold=0,
        comparison=op,
        treat_missing_data=missing,
    )


@pytest.mark.parametrize(
    "values, m, expected",
    [
        ([1, 0, 2], 2, "ALARM"),  # 2 of 3 breach
        ([1, 0, 0], 2, "OK"),  # 1 of 3 does not reach M=2
        ([1, 1, 1], 3, "ALARM"),
        ([0, 1, 1], 3, "OK"),
    ],
)
def test_m_out_of_n_datapoints_must_breach(values, m, expected):
    state, reason = alarms.evaluate(rule(m=m), values, "OK")
    assert state == expected
    assert "Threshold Crossed" in reason


@pytest.mark.parametrize(
    "missing, values, current, expected",
    [
        ("missing", [None, None, None], "OK", "INSUFFICIENT_DATA"),
        ("ignore", [None, None, None], "ALARM", "ALARM"),  # the current state is kept
        ("breaching", [None, None, None], "OK", "ALARM"),
        ("notBreaching", [None, None, None], "ALARM", "OK"),
        ("notBreaching", [None, 3, None], "OK", "OK"),  # 1 of 3 with M=2
        ("breaching", [None, 3, 0], "OK", "ALARM"),  # two bad of three
        ("missing", [None, 0, None], "ALARM", "OK"),  # present datapoints decide
    ],
)
def test_missing_data_is_treated_as_the_alarm_says(missing, values, current, expected):
    assert alarms.evaluate(rule(m=2, missing=missing), values, current)[0] == expected


def test_periods_are_compressed_and_only_complete_periods_count():
    period = 0.2  # a 60-second period at 0.2 s per minute
    now = 100.05  # the period [100.0, 100.2) is still open
    points = [(99.41, 1.0), (99.45, 2.0), (99.85, 1.0), (100.01, 9.0)]

    values = alarms.period_values(rule(n=3), points, now, period)

    # [99.4, 99.6): 1+2; [99.6, 99.8): nothing; [99.8, 100.0): 1; the open period is left out
    assert values == [3.0, None, 1.0]


def checks_zip(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buf.getvalue()


CHECKS = {
    "checks": [
        {
            "name": "health",
            "event": {"rawPath": "/health"},
            "expect": {"statusCode": 200, "body": {"status": "ok"}},
        }
    ]
}


def test_smoke_checks_come_from_the_package_and_a_bad_file_is_named():
    assert traffic.load_checks(checks_zip({"handler.py": ""})) is None
    assert (
        traffic.load_checks(checks_zip({"smoke_checks.json": json.dumps(CHECKS)}))
        == (CHECKS["checks"])
    )
    with pytest.raises(traffic.SmokeChecksError, match=r"checks\[0\] needs 'expect.statusCode'"):
        traffic.load_checks(
            checks_zip({"smoke_checks.json": json.dumps({"checks": [{"event": {}}]})})
        )
    ok = json.dumps({"statusCode": 200, "body": json.dumps({"status": "ok", "x": 1})}).encode()
    assert traffic.meets(CHECKS["checks"][0]["expect"], ok)
    assert not traffic.meets(CHECKS["checks"][0]["expect"], b'{"statusCode": 500}')


def test_synthetic_calls_reach_each_version_in_exact_proportion_to_the_weights():
    router = traffic.ProportionalRouter()
    canary = {"AdditionalVersionWeights": {"8": 0.1}}

    picks = [router.choose("7", canary) for _ in range(100)]

    assert picks[0] == "8"  # the new version gets the first call after the shift
    assert [picks[i : i + 10].count("8") for i in range(0, 100, 10)] == [1] * 10
    linear = {"AdditionalVersionWeights": {"8": 0.4}}
    assert [router.choose("7", linear) for _ in range(100)].count("8") in (40, 41)
    assert {router.choose("8", None) for _ in range(5)} == {"8"}  # shifted: one version


# ---------------------------------------------------------------------------------------------
# On the endpoint (1 minute = 0.05 s)
# ---------------------------------------------------------------------------------------------
GOOD = (
    "def handler(event, context):\n    return {'statusCode': 200, 'body': '{\"status\": \"ok\"}'}\n"
)
BAD = "def handler(event, context):\n    raise RuntimeError('new version is broken')\n"


def create_function(aws, role: str, source: str, extra: dict[str, str] | None = None) -> str:
    name = f"fn-{uuid.uuid4().hex[:10]}"
    aws("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": checks_zip({"handler.py": source, **(extra or {})})},
        Timeout=10,
    )
    return name


def alias_alarm(aws, name: str, alias: str, period: int = 60, actions: list | None = None) -> str:
    alarm = f"{name}-{alias}-errors"
    aws("cloudwatch").put_metric_alarm(
        AlarmName=alarm,
        Namespace="AWS/Lambda",
        MetricName="Errors",
        Dimensions=[
            {"Name": "FunctionName", "Value": name},
            {"Name": "Resource", "Value": f"{name}:{alias}"},
        ],
        Statistic="Sum",
        Period=period,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching",
        AlarmActions=actions or [],
        OKActions=actions or [],
    )
    return alarm


def alarm_state(aws, alarm: str) -> str:
    return aws("cloudwatch").describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]["StateValue"]


def test_invocations_put_lambdas_metrics_into_cloudwatch(aws, lambda_role):
    lam = aws("lambda")
    name = create_function(aws, lambda_role, BAD)
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)

    response = lam.invoke(FunctionName=name, Qualifier="live", Payload=b"{}")

    assert response["FunctionError"] == "Unhandled"
    listed = aws("cloudwatch").list_metrics(Namespace="AWS/Lambda", MetricName="Errors")["Metrics"]
    sets = [
        {d["Name"]: d["Value"] for d in m["Dimensions"]}
        for m in listed
        if any(d["Value"] == name for d in m["Dimensions"])
    ]
    assert {"FunctionName": name, "Resource": f"{name}:live"} in sets
    assert {"FunctionName": name, "Resource": f"{name}:live", "ExecutedVersion": version} in sets
    duration = aws("cloudwatch").get_metric_statistics(
        Namespace="AWS/Lambda",
        MetricName="Duration",
        Dimensions=[{"Name": "FunctionName", "Value": name}],
        StartTime=time.time() - 600,
        EndTime=time.time() + 60,
        Period=60,
        Statistics=["Maximum"],
    )["Datapoints"]
    assert duration and duration[0]["Maximum"] > 0 and duration[0]["Unit"] == "Milliseconds"


def test_errors_through_an_alias_set_its_alarm_and_quiet_periods_clear_it(aws, lambda_role):
    lam = aws("lambda")
    name = create_function(aws, lambda_role, BAD)
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    # 10-minute periods: 0.5 s here, so the ALARM lasts long enough to be polled.
    alarm = alias_alarm(aws, name, "live", period=600)
    other = alias_alarm(aws, name, "staging", period=600)  # same function, other alias
    wait_for(lambda: alarm_state(aws, alarm) == "OK")  # no data, notBreaching

    started = time.monotonic()
    lam.invoke(FunctionName=name, Qualifier="live", Payload=b"{}")
    wait_for(lambda: alarm_state(aws, alarm) == "ALARM", timeout=5, interval=0.01)
    fired = time.monotonic() - started

    assert alarm_state(aws, other) == "OK"
    reason = aws("cloudwatch").describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]
    assert "greater than the threshold" in reason["StateReason"]
    # The period holding the error is evaluated when it ends: within one period (0.5 s) and the
    # invocation's own time.
    assert fired < 2, fired
    wait_for(lambda: alarm_state(aws, alarm) == "OK", timeout=5)  # quiet periods: notBreaching


def subscribed_queue(aws, topic: str) -> str:
    sqs = aws("sqs")
    queue = sqs.create_queue(QueueName=f"watch-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    aws("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    return queue


def test_an_alarm_state_change_notifies_its_topic(aws, lambda_role):
    lam = aws("lambda")
    name = create_function(aws, lambda_role, BAD)
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    topic = aws("sns").create_topic(Name=f"alarms-{uuid.uuid4().hex[:8]}")["TopicArn"]
    queue = subscribed_queue(aws, topic)  # the default topic policy admits the account's alarms
    alarm = alias_alarm(aws, name, "live", period=600, actions=[topic])
    wait_for(lambda: alarm_state(aws, alarm) == "OK")

    lam.invoke(FunctionName=name, Qualifier="live", Payload=b"{}")

    got = wait_for(lambda: messages(aws, queue), timeout=10)
    sent = json.loads(got[0])
    assert (sent["AlarmName"], sent["OldStateValue"], sent["NewStateValue"]) == (
        alarm,
        "OK",
        "ALARM",
    )
    assert sent["Trigger"]["MetricName"] == "Errors"
    assert {"name": "Resource", "value": f"{name}:live"} in sent["Trigger"]["Dimensions"]


def test_a_state_set_by_hand_lasts_until_a_later_evaluation(aws, lambda_role):
    name = create_function(aws, lambda_role, GOOD)
    alarm = alias_alarm(aws, name, "live")
    wait_for(lambda: alarm_state(aws, alarm) == "OK")
    aws("cloudwatch").set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="drill")

    assert alarm_state(aws, alarm) == "ALARM"
    time.sleep(alarms.HOLD_SECONDS / 2)
    assert alarm_state(aws, alarm) == "ALARM"
    wait_for(lambda: alarm_state(aws, alarm) == "OK", timeout=5)  # the metric says otherwise


def canary_setup(aws, role: str, with_checks: bool = True) -> dict:
    """v1 answers, v2 raises; alias production at v1; a group whose alarm watches the alias."""
    lam, cd = aws("lambda"), aws("codedeploy")
    extra = {"smoke_checks.json": json.dumps(CHECKS)} if with_checks else {}
    name = create_function(aws, role, GOOD, extra)
    v1 = lam.publish_version(FunctionName=name)["Version"]
    lam.update_function_code(FunctionName=name, ZipFile=checks_zip({"handler.py": BAD, **extra}))
    v2 = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="production", FunctionVersion=v1)
    alarm = alias_alarm(aws, name, "production")
    app = f"app-{uuid.uuid4().hex[:8]}"
    cd.create_application(applicationName=app, computePlatform="Lambda")
    cd.create_deployment_group(
        applicationName=app,
        deploymentGroupName="production",
        serviceRoleArn=role,
        deploymentConfigName="CodeDeployDefault.LambdaCanary10Percent30Minutes",
        deploymentStyle={
            "deploymentType": "BLUE_GREEN",
            "deploymentOption": "WITH_TRAFFIC_CONTROL",
        },
        alarmConfiguration={"enabled": True, "alarms": [{"name": alarm}]},
        autoRollbackConfiguration={"enabled": True, "events": ["DEPLOYMENT_STOP_ON_ALARM"]},
    )
    appspec = {
        "version": 0.0,
        "Resources": [
            {
                "fn": {
                    "Type": "AWS::Lambda::Function",
                    "Properties": {
                        "Name": name,
                        "Alias": "production",
                        "CurrentVersion": v1,
                        "TargetVersion": v2,
                    },
                }
            }
        ],
    }
    wait_for(lambda: alarm_state(aws, alarm) == "OK")
    started = time.monotonic()
    deployment = cd.create_deployment(
        applicationName=app,
        deploymentGroupName="production",
        revision={
            "revisionType": "AppSpecContent",
            "appSpecContent": {"content": json.dumps(appspec)},
        },
    )["deploymentId"]
    return {"fn": name, "v1": v1, "alarm": alarm, "deployment": deployment, "started": started}


def finished(aws, deployment_id: str) -> dict | None:
    info = aws("codedeploy").get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    return info if info["status"] in ("Succeeded", "Failed", "Stopped") else None


def test_canary_traffic_to_a_failing_version_fires_the_alarm_and_codedeploy_rolls_back(
    aws, lambda_role, endpoint
):
    assert endpoint.faults() == []  # no fault armed: the alarm comes from the metrics alone
    s = canary_setup(aws, lambda_role)

    info = wait_for(lambda: finished(aws, s["deployment"]), timeout=30)
    took = time.monotonic() - s["started"]

    assert info["status"] == "Stopped", info
    assert info["errorInformation"]["code"] == "ALARM_ACTIVE"
    assert s["alarm"] in info["errorInformation"]["message"]
    assert took < 1.5 * 0.05 * 30, took  # before the 30-minute canary (1.5 s) would have ended
    live = aws("lambda").get_alias(FunctionName=s["fn"], Name="production")
    assert live["FunctionVersion"] == s["v1"]
    assert not (live.get("RoutingConfig") or {}).get("AdditionalVersionWeights")


def test_without_smoke_checks_no_traffic_is_sent_and_the_canary_completes(
    aws, lambda_role, endpoint_dir
):
    s = canary_setup(aws, lambda_role, with_checks=False)

    info = wait_for(lambda: finished(aws, s["deployment"]), timeout=30)

    assert info["status"] == "Succeeded", info  # nobody called the broken version
    log = (endpoint_dir / "endpoint.log").read_text(encoding="utf-8", errors="replace")
    assert f"no synthetic traffic to {s['fn']}:production" in log
    assert "has no smoke_checks.json in its package" in log


# ---------------------------------------------------------------------------------------------
# Step Functions -> EventBridge -> SNS -> SQS
# ---------------------------------------------------------------------------------------------
def release_events(aws, allow_eventbridge: bool = True, transform: bool = True) -> dict:
    """A state machine, a topic with an SQS subscriber, and the status rule targeting the topic."""
    suffix = uuid.uuid4().hex[:8]
    iam, sfn, sns, sqs, events = (
        aws("iam"),
        aws("stepfunctions"),
        aws("sns"),
        aws("sqs"),
        aws("events"),
    )
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "states.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = iam.create_role(RoleName=f"sfn-{suffix}", AssumeRolePolicyDocument=json.dumps(trust))
    definition = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
    machine = sfn.create_state_machine(
        name=f"release-{suffix}", definition=json.dumps(definition), roleArn=role["Role"]["Arn"]
    )["stateMachineArn"]
    topic = sns.create_topic(Name=f"release-events-{suffix}")["TopicArn"]
    rule_arn = events.put_rule(
        Name=f"release-status-{suffix}",
        EventPattern=json.dumps(
            {
                "source": ["aws.states"],
                "detail-type": ["Step Functions Execution Status Change"],
                "detail": {
                    "stateMachineArn": [machine],
                    "status": ["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"],
                },
            }
        ),
    )["RuleArn"]
    if allow_eventbridge:
        sns.set_topic_attributes(
            TopicArn=topic,
            AttributeName="Policy",
            AttributeValue=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "events.amazonaws.com"},
                            "Action": "sns:Publish",
                            "Resource": topic,
                            "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
                        }
                    ],
                }
            ),
        )
    target = {"Id": "topic", "Arn": topic}
    if transform:
        target["InputTransformer"] = {
            "InputPathsMap": {"execution": "$.detail.name", "status": "$.detail.status"},
            "InputTemplate": '"Execution <execution> finished with status <status>."',
        }
    events.put_targets(Rule=f"release-status-{suffix}", Targets=[target])
    queue = sqs.create_queue(QueueName=f"release-watch-{suffix}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    return {"machine": machine, "queue": queue}


def messages(aws, queue: str, wait: int = 1) -> list[str]:
    got = aws("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=wait)
    return [json.loads(m["Body"])["Message"] for m in got.get("Messages", [])]


def test_the_end_of_an_execution_reaches_the_topic_through_the_status_rule(aws):
    s = release_events(aws)
    execution = aws("stepfunctions").start_execution(stateMachineArn=s["machine"], name="run-1")

    got = wait_for(lambda: messages(aws, s["queue"]), timeout=10)

    # Only the final status matches the rule (the RUNNING event does not).
    assert got == ['"Execution run-1 finished with status SUCCEEDED."']
    status = aws("stepfunctions").describe_execution(executionArn=execution["executionArn"])
    assert status["status"] == "SUCCEEDED"


def test_the_status_change_event_has_the_shape_step_functions_sends(aws):
    s = release_events(aws, transform=False)
    sfn = aws("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=s["machine"], name="run-3", input='{"a": 1}')[
        "executionArn"
    ]

    (raw,) = wait_for(lambda: messages(aws, s["queue"]), timeout=10)

    event = json.loads(raw)
    assert (event["source"], event["detail-type"]) == (
        "aws.states",
        "Step Functions Execution Status Change",
    )
    assert event["resources"] == [arn] and event["version"] == "0"
    assert event["time"].endswith("Z") and event["account"] and event["region"]
    detail = event["detail"]
    assert (detail["executionArn"], detail["stateMachineArn"]) == (arn, s["machine"])
    assert (detail["name"], detail["status"]) == ("run-3", "SUCCEEDED")
    assert detail["stopDate"] >= detail["startDate"] > 1_600_000_000_000  # epoch milliseconds
    assert json.loads(detail["input"]) == {"a": 1} == json.loads(detail["output"])
    assert detail["error"] is None and detail["cause"] is None


def test_a_topic_policy_that_does_not_admit_eventbridge_gets_nothing(aws):
    s = release_events(aws, allow_eventbridge=False)
    execution = aws("stepfunctions").start_execution(stateMachineArn=s["machine"], name="run-2")
    wait_for(
        lambda: (
            aws("stepfunctions").describe_execution(executionArn=execution["executionArn"])[
                "status"
            ]
            == "SUCCEEDED"
        )
    )

    assert messages(aws, s["queue"], wait=1) == []
