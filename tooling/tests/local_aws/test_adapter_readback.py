"""Gap: moto reads some settings back differently from AWS, so `terraform plan` right after an apply
was not empty. The adapter answers the way AWS does; each case here is one such attribute."""

from __future__ import annotations

import uuid


def test_lambda_deployment_group_without_load_balancer_reads_back_without_the_key(aws, lambda_role):
    cd = aws("codedeploy")
    app = f"app-{uuid.uuid4().hex[:8]}"
    cd.create_application(applicationName=app, computePlatform="Lambda")
    cd.create_deployment_group(
        applicationName=app,
        deploymentGroupName="live",
        serviceRoleArn=lambda_role,
        deploymentConfigName="CodeDeployDefault.LambdaAllAtOnce",
        deploymentStyle={
            "deploymentType": "BLUE_GREEN",
            "deploymentOption": "WITH_TRAFFIC_CONTROL",
        },
        autoRollbackConfiguration={"enabled": True, "events": ["DEPLOYMENT_FAILURE"]},
    )

    single = cd.get_deployment_group(applicationName=app, deploymentGroupName="live")
    batch = cd.batch_get_deployment_groups(applicationName=app, deploymentGroupNames=["live"])

    for info in (single["deploymentGroupInfo"], batch["deploymentGroupsInfo"][0]):
        # Unset structures are absent, as in AWS (the provider turns {} into an empty block).
        for unset in ("loadBalancerInfo", "targetRevision", "lastSuccessfulDeployment"):
            assert unset not in info
        # What was set still reads back, empty lists included.
        assert info["deploymentStyle"] == {
            "deploymentType": "BLUE_GREEN",
            "deploymentOption": "WITH_TRAFFIC_CONTROL",
        }
        assert info["autoRollbackConfiguration"] == {
            "enabled": True,
            "events": ["DEPLOYMENT_FAILURE"],
        }
        assert info["ec2TagFilters"] == []
        assert info["computePlatform"] == "Lambda"


def test_bucket_notification_reads_back_its_eventbridge_configuration(aws):
    s3, sns = aws("s3"), aws("sns")
    bucket = f"readback-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "us-east-2"})
    topic = sns.create_topic(Name=f"{bucket}-events")["TopicArn"]

    s3.put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    only_eventbridge = s3.get_bucket_notification_configuration(Bucket=bucket)
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "EventBridgeConfiguration": {},
            "TopicConfigurations": [{"TopicArn": topic, "Events": ["s3:ObjectCreated:*"]}],
        },
    )
    with_topic = s3.get_bucket_notification_configuration(Bucket=bucket)
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "TopicConfigurations": [{"TopicArn": topic, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    eventbridge_off = s3.get_bucket_notification_configuration(Bucket=bucket)

    assert only_eventbridge["EventBridgeConfiguration"] == {}
    assert with_topic["EventBridgeConfiguration"] == {}
    assert [t["TopicArn"] for t in with_topic["TopicConfigurations"]] == [topic]
    assert "EventBridgeConfiguration" not in eventbridge_off
    assert [t["TopicArn"] for t in eventbridge_off["TopicConfigurations"]] == [topic]
