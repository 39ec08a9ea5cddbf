import hashlib
import json

import boto3
import pytest
from botocore.stub import Stubber
from release_tooling.package import deterministic_zip

FUNCTION = "orders-app"
BUCKET = "artifacts"
APPLICATION = "orders-app"
COMMIT_A = "a" * 40
COMMIT_B = "b" * 40
COMMIT_C = "c" * 40


def app_zip(marker: str) -> bytes:
    return deterministic_zip(
        [("handler.py", f"def handler(e, c):\n    return {marker!r}\n".encode())]
    )


@pytest.fixture
def deploy(load_lambda, aws, monkeypatch):
    monkeypatch.setenv("APP_FUNCTIONS", json.dumps([app_function("app", FUNCTION)]))
    monkeypatch.setenv("CODEDEPLOY_APPLICATION", APPLICATION)
    return load_lambda("deploy")


def app_function(key: str, name: str, groups: dict | None = None) -> dict:
    """An APP_FUNCTIONS entry as terraform/lambda.tf writes it."""
    groups = groups or {"staging": "staging", "production": "production"}
    return {"key": key, "function_name": name, "deployment_groups": groups}


@pytest.fixture
def lam(aws):
    iam = boto3.client("iam")
    role = iam.create_role(
        RoleName="app-role",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    client = boto3.client("lambda")
    client.create_function(
        FunctionName=FUNCTION,
        Runtime="python3.12",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": app_zip("initial")},
    )
    for alias in ("staging", "production"):
        client.create_alias(FunctionName=FUNCTION, Name=alias, FunctionVersion="$LATEST")
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    cd = boto3.client("codedeploy")
    cd.create_application(applicationName=APPLICATION, computePlatform="Lambda")
    for group in ("staging", "production"):
        cd.create_deployment_group(
            applicationName=APPLICATION,
            deploymentGroupName=group,
            serviceRoleArn=role,
            deploymentConfigName="CodeDeployDefault.LambdaAllAtOnce",
            deploymentStyle={
                "deploymentType": "BLUE_GREEN",
                "deploymentOption": "WITH_TRAFFIC_CONTROL",
            },
        )
    return client


def release(commit: str, marker: str | None = None) -> dict:
    data = app_zip(marker or commit[:4])
    key = f"releases/{commit}/app.zip"
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=data)
    return {
        "stage": "staging",
        "commit_sha": commit,
        "artifact_bucket": BUCKET,
        "artifact_key": key,
        "artifact_sha256": hashlib.sha256(data).hexdigest(),
    }


def versions(lam):
    return {
        v["Version"]: v["Description"]
        for v in lam.list_versions_by_function(FunctionName=FUNCTION)["Versions"]
        if v["Version"] != "$LATEST"
    }


def alias_version(lam, alias):
    return lam.get_alias(FunctionName=FUNCTION, Name=alias)["FunctionVersion"]


def test_first_release_points_alias_directly(deploy, lam, context):
    result = deploy.handler(release(COMMIT_A), context)
    primary = {
        "alias": "staging",
        "function_name": FUNCTION,
        "previous_version": None,
        "target_version": "1",
        "deployment_id": None,
        "action": "first_release",
        "production_version": "$LATEST",
        "in_production": False,
    }
    assert result == {**primary, "deployments": [{"key": "app", **primary}]}
    assert versions(lam) == {"1": COMMIT_A}
    assert alias_version(lam, "staging") == "1"
    assert alias_version(lam, "production") == "$LATEST"


def test_same_commit_again_reuses_version_and_does_nothing(deploy, lam, context):
    deploy.handler(release(COMMIT_A), context)
    again = deploy.handler(release(COMMIT_A), context)
    assert again["action"] == "already_deployed"
    assert again["target_version"] == "1"
    assert again["previous_version"] is None
    assert versions(lam) == {"1": COMMIT_A}


def test_same_commit_with_different_code_is_refused_not_reused(deploy, lam, context):
    deploy.handler(release(COMMIT_A), context)
    with pytest.raises(deploy.VersionMismatchError, match="version 1 of orders-app") as err:
        deploy.handler(release(COMMIT_A, marker="tampered"), context)
    assert "CodeSha256" in str(err.value)
    assert versions(lam) == {"1": COMMIT_A}
    assert alias_version(lam, "staging") == "1"


def test_later_release_creates_codedeploy_deployment(deploy, lam, context):
    deploy.handler(release(COMMIT_A), context)
    result = deploy.handler(release(COMMIT_B), context)
    assert result["action"] == "deployment_created"
    assert (result["previous_version"], result["target_version"]) == ("1", "2")
    assert versions(lam) == {"1": COMMIT_A, "2": COMMIT_B}
    info = boto3.client("codedeploy").get_deployment(deploymentId=result["deployment_id"])[
        "deploymentInfo"
    ]
    assert info["deploymentGroupName"] == "staging"
    revision = info["revision"]
    assert revision["revisionType"] == "AppSpecContent"
    content = revision["appSpecContent"]["content"]
    assert revision["appSpecContent"]["sha256"] == hashlib.sha256(content.encode()).hexdigest()
    props = json.loads(content)["Resources"][0]["app"]["Properties"]
    assert props == {
        "Name": FUNCTION,
        "Alias": "staging",
        "CurrentVersion": "1",
        "TargetVersion": "2",
    }
    # The alias moves only through CodeDeploy.
    assert alias_version(lam, "staging") == "1"


def test_in_flight_deployment_for_same_target_is_reused(deploy, lam, context):
    deploy.handler(release(COMMIT_A), context)
    first = deploy.handler(release(COMMIT_B), context)
    second = deploy.handler(release(COMMIT_B), context)
    assert second["action"] == "reused_deployment"
    assert second["deployment_id"] == first["deployment_id"]
    assert second["previous_version"] == "1"
    assert versions(lam) == {"1": COMMIT_A, "2": COMMIT_B}


def test_in_flight_deployment_for_other_target_fails_naming_it(deploy, lam, context):
    deploy.handler(release(COMMIT_A), context)
    first = deploy.handler(release(COMMIT_B), context)
    with pytest.raises(deploy.DeploymentInProgressError, match=first["deployment_id"]) as err:
        deploy.handler(release(COMMIT_C), context)
    assert "version 2, not 3" in str(err.value)


def test_production_promotes_the_staging_version(deploy, lam, context):
    staged = deploy.handler(release(COMMIT_A), context)
    event = {
        "stage": "production",
        "commit_sha": COMMIT_A,
        "target_version": staged["target_version"],
    }
    result = deploy.handler(event, context)
    assert result["alias"] == "production"
    assert result["action"] == "first_release"
    assert alias_version(lam, "production") == "1"
    assert versions(lam) == {"1": COMMIT_A}  # nothing new published


def promote(deploy, context, staged: dict, commit: str, **extra) -> dict:
    event = {"stage": "production", "commit_sha": commit, **extra}
    return deploy.handler({**event, "target_version": staged["target_version"]}, context)


def test_staging_reports_whether_production_already_serves_the_version(deploy, lam, context):
    staged = deploy.handler(release(COMMIT_A), context)
    promote(deploy, context, staged, COMMIT_A)
    # Re-run of the live commit: production already serves it, the approval can be skipped.
    again = deploy.handler(release(COMMIT_A), context)
    assert (again["action"], again["production_version"], again["in_production"]) == (
        "already_deployed",
        "1",
        True,
    )
    # A new version: production serves the old one, the approval is needed.
    new = deploy.handler(release(COMMIT_B), context)
    assert (new["target_version"], new["production_version"], new["in_production"]) == (
        "2",
        "1",
        False,
    )


def test_production_shifting_traffic_is_not_serving_the_version(deploy, lam, context):
    staged = deploy.handler(release(COMMIT_A), context)
    promote(deploy, context, staged, COMMIT_A)
    lam.publish_version(FunctionName=FUNCTION, Description="other")  # version 2
    lam.update_alias(
        FunctionName=FUNCTION,
        Name="production",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}},
    )
    again = deploy.handler(release(COMMIT_A), context)
    assert (again["production_version"], again["in_production"]) == ("1", False)


def test_skipped_approval_promotes_nothing_new(deploy, lam, context):
    staged = deploy.handler(release(COMMIT_A), context)
    promote(deploy, context, staged, COMMIT_A)
    skipped = {"skipped": True, "reason": "production already serves this version"}
    result = promote(deploy, context, staged, COMMIT_A, approval=skipped)
    assert (result["action"], result["deployment_id"]) == ("already_deployed", None)
    assert alias_version(lam, "production") == "1"


def test_skipped_approval_refuses_when_production_moved_since(deploy, lam, context):
    a = deploy.handler(release(COMMIT_A), context)
    promote(deploy, context, a, COMMIT_A)
    b = deploy.handler(release(COMMIT_B), context)  # staging now shifting to 2
    skipped = {"skipped": True, "reason": "production already serves this version"}
    with pytest.raises(deploy.ApprovalSkippedError) as err:
        promote(deploy, context, b, COMMIT_B, approval=skipped)
    assert "already served version 2" in str(err.value)
    assert "now serves version 1" in str(err.value)
    assert "start the release again so it asks for approval" in str(err.value)
    assert alias_version(lam, "production") == "1"
    production_deployments = boto3.client("codedeploy").list_deployments(
        applicationName=APPLICATION, deploymentGroupName="production"
    )["deployments"]
    assert production_deployments == []


def test_given_approval_promotes_as_usual(deploy, lam, context):
    a = deploy.handler(release(COMMIT_A), context)
    promote(deploy, context, a, COMMIT_A)
    b = deploy.handler(release(COMMIT_B), context)
    approval = {"reason": "looks good", "approved_by": "arn:aws:iam::123456789012:user/me"}
    result = promote(deploy, context, b, COMMIT_B, approval=approval)
    assert (result["action"], result["previous_version"], result["target_version"]) == (
        "deployment_created",
        "1",
        "2",
    )


def test_production_checks_code_sha(deploy, lam, context):
    staged_event = release(COMMIT_A)
    staged = deploy.handler(staged_event, context)
    good = {**staged_event, "stage": "production", "target_version": staged["target_version"]}
    assert deploy.handler(good, context)["target_version"] == "1"
    with pytest.raises(deploy.VersionMismatchError, match="CodeSha256"):
        deploy.handler({**good, "artifact_sha256": "0" * 64}, context)


def test_production_refuses_version_of_another_commit(deploy, lam, context):
    deploy.handler(release(COMMIT_A), context)
    event = {"stage": "production", "commit_sha": COMMIT_B, "target_version": "1"}
    with pytest.raises(deploy.VersionMismatchError, match="not 'bbbb"):
        deploy.handler(event, context)


def test_production_refuses_unknown_version(deploy, lam, context):
    event = {"stage": "production", "commit_sha": COMMIT_A, "target_version": "42"}
    with pytest.raises(deploy.VersionMismatchError, match="does not exist"):
        deploy.handler(event, context)


def test_missing_alias(deploy, lam, context):
    lam.delete_alias(FunctionName=FUNCTION, Name="staging")
    with pytest.raises(deploy.AliasNotFoundError, match="apply terraform"):
        deploy.handler(release(COMMIT_A), context)


def test_invalid_stage(deploy, lam, context):
    from shared.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="stage"):
        deploy.handler({**release(COMMIT_A), "stage": "prod"}, context)


def test_missing_configuration(deploy, lam, context, monkeypatch):
    from shared.errors import ConfigurationError

    monkeypatch.delenv("CODEDEPLOY_APPLICATION")
    with pytest.raises(ConfigurationError, match="CODEDEPLOY_APPLICATION"):
        deploy.handler(release(COMMIT_A), context)


def test_appspec_target_of_foreign_deployment_is_unknown(deploy):
    assert deploy.appspec_target(
        {"revision": {"appSpecContent": {"content": "version: 0.0\n"}}}
    ) == (
        None,
        None,
        None,
    )
    assert deploy.appspec_current({}) is None


def test_hex_to_lambda_sha_matches_lambda_format(deploy, lam):
    data = app_zip("initial")
    reported = lam.get_function_configuration(FunctionName=FUNCTION)["CodeSha256"]
    assert deploy.hex_to_lambda_sha(hashlib.sha256(data).hexdigest()) == reported


class StubbedCodeDeploy:
    """CodeDeploy edge cases moto cannot produce, with real Lambda calls going to moto."""

    def __init__(self, deploy, monkeypatch):
        self.cd = boto3.client("codedeploy")
        self.stubber = Stubber(self.cd)
        real = deploy.client
        monkeypatch.setattr(
            deploy, "client", lambda name: self.cd if name == "codedeploy" else real(name)
        )


def test_deployment_limit_exceeded_names_the_blocking_deployment(deploy, lam, context, monkeypatch):
    deploy.handler(release(COMMIT_A), context)
    stub = StubbedCodeDeploy(deploy, monkeypatch)
    group = {
        "applicationName": APPLICATION,
        "deploymentGroupName": "staging",
        "includeOnlyStatuses": deploy.ACTIVE_STATUSES,
    }
    stub.stubber.add_response("list_deployments", {"deployments": []}, group)
    stub.stubber.add_client_error(
        "create_deployment",
        "DeploymentLimitExceededException",
        "The deployment limit was exceeded.",
    )
    stub.stubber.add_response("list_deployments", {"deployments": ["d-OTHER"]}, group)
    foreign = deploy.build_appspec(FUNCTION, "staging", "1", "7")
    stub.stubber.add_response(
        "get_deployment",
        {
            "deploymentInfo": {
                "deploymentId": "d-OTHER",
                "status": "InProgress",
                "revision": {
                    "revisionType": "AppSpecContent",
                    "appSpecContent": {"content": foreign},
                },
            }
        },
        {"deploymentId": "d-OTHER"},
    )
    with stub.stubber, pytest.raises(deploy.DeploymentInProgressError, match="d-OTHER.*version 7"):
        deploy.handler(release(COMMIT_B), context)
    stub.stubber.assert_no_pending_responses()


def test_deployment_limit_exceeded_with_nothing_visible(deploy, lam, context, monkeypatch):
    deploy.handler(release(COMMIT_A), context)
    stub = StubbedCodeDeploy(deploy, monkeypatch)
    stub.stubber.add_response("list_deployments", {"deployments": []})
    stub.stubber.add_client_error("create_deployment", "DeploymentLimitExceededException", "limit")
    stub.stubber.add_response("list_deployments", {"deployments": []})
    with (
        stub.stubber,
        pytest.raises(deploy.DeploymentInProgressError, match="refused a new deployment"),
    ):
        deploy.handler(release(COMMIT_B), context)


def test_other_codedeploy_errors_propagate(deploy, lam, context, monkeypatch):
    from botocore.exceptions import ClientError

    deploy.handler(release(COMMIT_A), context)
    stub = StubbedCodeDeploy(deploy, monkeypatch)
    stub.stubber.add_response("list_deployments", {"deployments": []})
    stub.stubber.add_client_error(
        "create_deployment", "DeploymentGroupDoesNotExistException", "no group"
    )
    with stub.stubber, pytest.raises(ClientError, match="DeploymentGroupDoesNotExist"):
        deploy.handler(release(COMMIT_B), context)


# --------------------------------------------------------------------- several app functions

WORKER = "orders-worker"
WORKER_GROUPS = {"staging": "worker-staging", "production": "worker-production"}


@pytest.fixture
def two(deploy, lam, monkeypatch):
    """The stack with a second app function, worker, with its own aliases and groups."""
    monkeypatch.setenv(
        "APP_FUNCTIONS",
        json.dumps([app_function("app", FUNCTION), app_function("worker", WORKER, WORKER_GROUPS)]),
    )
    role = boto3.client("iam").get_role(RoleName="app-role")["Role"]["Arn"]
    lam.create_function(
        FunctionName=WORKER,
        Runtime="python3.12",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": app_zip("worker-initial")},
    )
    for alias in ("staging", "production"):
        lam.create_alias(FunctionName=WORKER, Name=alias, FunctionVersion="$LATEST")
    cd = boto3.client("codedeploy")
    for group in WORKER_GROUPS.values():
        cd.create_deployment_group(
            applicationName=APPLICATION,
            deploymentGroupName=group,
            serviceRoleArn=role,
            deploymentConfigName="CodeDeployDefault.LambdaAllAtOnce",
            deploymentStyle={
                "deploymentType": "BLUE_GREEN",
                "deploymentOption": "WITH_TRAFFIC_CONTROL",
            },
        )
    return deploy


def two_function_release(commit: str) -> dict:
    """The staging event the state machine passes: validate_artifact's "functions"."""
    event = release(commit)
    data = app_zip(f"worker-{commit[:4]}")
    key = f"releases/{commit}/worker.zip"
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=data)
    functions = [
        {"key": "app", "artifact_key": event["artifact_key"], "sha256": event["artifact_sha256"]},
        {"key": "worker", "artifact_key": key, "sha256": hashlib.sha256(data).hexdigest()},
    ]
    return {**event, "functions": functions}


def test_every_app_function_gets_its_version_and_its_own_deployment(two, lam, context):
    two.handler(two_function_release(COMMIT_A), context)  # first release: straight to v1
    staged = two.handler(two_function_release(COMMIT_B), context)

    by_key = {d["key"]: d for d in staged["deployments"]}
    assert [d["function_name"] for d in staged["deployments"]] == [FUNCTION, WORKER]
    for key in ("app", "worker"):
        assert by_key[key]["action"] == "deployment_created"
        assert (by_key[key]["previous_version"], by_key[key]["target_version"]) == ("1", "2")
    assert staged["deployment_id"] == by_key["app"]["deployment_id"]  # the primary's, on top
    cd = boto3.client("codedeploy")
    worker_deployment = cd.get_deployment(deploymentId=by_key["worker"]["deployment_id"])
    assert worker_deployment["deploymentInfo"]["deploymentGroupName"] == "worker-staging"
    spec = json.loads(worker_deployment["deploymentInfo"]["revision"]["appSpecContent"]["content"])
    assert spec["Resources"][0]["app"]["Properties"]["Name"] == WORKER
    worker_versions = lam.list_versions_by_function(FunctionName=WORKER)["Versions"]
    assert {
        v["Version"]: v["Description"] for v in worker_versions if v["Version"] != "$LATEST"
    } == {
        "1": COMMIT_A,
        "2": COMMIT_B,
    }


def test_production_promotes_each_function_s_staged_version(two, lam, context):
    event = two_function_release(COMMIT_A)
    staged = two.handler(event, context)
    assert staged["in_production"] is False
    production = two.handler(
        {
            "stage": "production",
            "commit_sha": COMMIT_A,
            "target_version": staged["target_version"],
            "artifact_sha256": event["artifact_sha256"],
            "functions": event["functions"],
            "deployments": staged["deployments"],
        },
        context,
    )
    assert [(d["key"], d["target_version"]) for d in production["deployments"]] == [
        ("app", "1"),
        ("worker", "1"),
    ]
    assert lam.get_alias(FunctionName=WORKER, Name="production")["FunctionVersion"] == "1"
    again = two.handler(two_function_release(COMMIT_A), context)
    assert again["in_production"] is True  # every function serves it now


def test_a_function_the_release_lacks_moves_nothing(two, lam, context):
    event = two_function_release(COMMIT_A)
    with pytest.raises(two.InvalidInputError, match=r"no entry for app function\(s\) \['worker'\]"):
        two.handler({**event, "functions": event["functions"][:1]}, context)
    assert alias_version(lam, "staging") == "$LATEST"


def test_a_refused_second_function_moves_no_alias(two, lam, context):
    two.handler(two_function_release(COMMIT_A), context)
    # The worker already has a version for COMMIT_B, of other code than the validated artifact.
    lam.update_function_code(FunctionName=WORKER, ZipFile=app_zip("not-the-artifact"))
    lam.publish_version(FunctionName=WORKER, Description=COMMIT_B)
    with pytest.raises(two.VersionMismatchError, match=WORKER):
        two.handler(two_function_release(COMMIT_B), context)
    assert alias_version(lam, "staging") == "1"  # the app's alias did not move either
    assert lam.get_alias(FunctionName=WORKER, Name="staging")["FunctionVersion"] == "1"
    assert boto3.client("codedeploy").list_deployments()["deployments"] == []
