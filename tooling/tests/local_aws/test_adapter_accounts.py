"""Gap: moto keeps accounts apart only by access key and evaluates nothing across them. The endpoint
serves extra accounts, each with its administrator, and evaluates cross-account requests as AWS
does (accounts.py, iam_policy.evaluate_cross_account / evaluate_assume_role)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import uuid
import zipfile

import boto3
import pytest
from _helpers import payload, zip_source
from botocore.config import Config
from botocore.exceptions import ClientError

from release_tooling.local_aws import iam_policy, process
from release_tooling.local_aws.__main__ import main as serve_main
from release_tooling.local_aws.accounts import AccountError, validate_accounts

REGION = "us-east-2"
PIPELINE = "123456789012"  # the endpoint's default account: the "pipeline account"
STAGING = "210987654321"  # an extra account served with --account
NO_RETRIES = Config(retries={"max_attempts": 0})


@pytest.fixture(scope="module")
def two_accounts(tmp_path_factory):
    state_dir = tmp_path_factory.mktemp("two-accounts")
    endpoint = process.start(state_dir, minute_seconds=0.05, accounts=[STAGING])
    yield endpoint, state_dir
    process.stop(state_dir)


@pytest.fixture(scope="module")
def ep(two_accounts):
    return two_accounts[0]


def admin(ep, account: str):
    session = boto3.Session(region_name=REGION, **ep.admin_credentials_for(account))
    return lambda service: session.client(service, endpoint_url=ep.url, config=NO_RETRIES)


def client_from(ep, creds: dict):
    session = boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=REGION,
    )
    return lambda service: session.client(service, endpoint_url=ep.url, config=NO_RETRIES)


def make_role(aws, trust_principal: dict, statements: list[dict], name: str = "") -> str:
    name = name or f"role-{uuid.uuid4().hex[:8]}"
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": trust_principal, "Action": "sts:AssumeRole"}
        ],
    }
    arn = aws("iam").create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    if statements:
        aws("iam").put_role_policy(
            RoleName=name,
            PolicyName="p",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
        )
    return arn["Role"]["Arn"]


def session_as(ep, aws, role_arn: str):
    """A session of a role, obtained by its account's administrator."""
    creds = aws("sts").assume_role(RoleArn=role_arn, RoleSessionName="test")["Credentials"]
    return client_from(ep, creds)


def allow(actions, resources) -> dict:
    return {"Effect": "Allow", "Action": actions, "Resource": resources}


def denied(call) -> str:
    with pytest.raises(ClientError) as refused:
        call()
    error = refused.value.response["Error"]
    assert error["Code"] in ("AccessDenied", "AccessDeniedException"), error
    return error["Message"]


# --- gap 1: administrators of more than one account ---


def test_each_served_account_has_its_administrator_and_its_own_resources(ep):
    pipeline, staging = admin(ep, PIPELINE), admin(ep, STAGING)
    assert ep.accounts == [PIPELINE, STAGING]
    assert ep.admin_credentials_for(PIPELINE) == ep.admin_credentials
    assert pipeline("sts").get_caller_identity()["Account"] == PIPELINE
    assert staging("sts").get_caller_identity()["Account"] == STAGING
    name = f"only-in-staging-{uuid.uuid4().hex[:6]}"
    staging("sqs").create_queue(QueueName=name)
    assert staging("sqs").get_queue_url(QueueName=name)["QueueUrl"]
    with pytest.raises(ClientError, match="NonExistentQueue|does not exist"):
        pipeline("sqs").get_queue_url(QueueName=name)


def test_an_account_header_does_not_move_a_request_into_another_account(ep):
    """moto would serve a request from the account an x-moto-account-id header names."""
    pipeline, staging = admin(ep, PIPELINE), admin(ep, STAGING)
    name = make_role(staging, {"Service": "lambda.amazonaws.com"}, []).rsplit("/", 1)[1]

    def pretend_staging(request, **_):
        request.headers["x-moto-account-id"] = STAGING

    iam, sts = pipeline("iam"), pipeline("sts")
    iam.meta.events.register("before-sign.iam.GetRole", pretend_staging)
    sts.meta.events.register("before-sign.sts.GetCallerIdentity", pretend_staging)
    assert sts.get_caller_identity()["Account"] == PIPELINE
    with pytest.raises(ClientError, match="NoSuchEntity"):
        iam.get_role(RoleName=name)


def test_an_unserved_account_is_named_with_the_fix(ep):
    with pytest.raises(process.EndpointError, match=r"does not serve account 111122223333.*"):
        ep.admin_credentials_for("111122223333")


@pytest.mark.parametrize(
    "accounts, message",
    [
        (["21098765432"], "not an AWS account ID"),
        ([PIPELINE], "default account"),
        ([STAGING, STAGING], "given twice"),
    ],
)
def test_bad_account_lists_are_refused_naming_the_fault(accounts, message, capsys, tmp_path):
    with pytest.raises(AccountError, match=message):
        validate_accounts(accounts, PIPELINE)
    argv = ["serve", "--state-dir", str(tmp_path)]
    for account in accounts:
        argv += ["--account", account]
    with pytest.raises(SystemExit) as exited:
        serve_main(argv)
    assert exited.value.code == 2 and message in capsys.readouterr().err


# --- gap 2: AssumeRole across accounts ---


def test_a_role_assumes_a_role_of_another_account_only_when_both_accounts_allow(ep):
    pipeline, staging = admin(ep, PIPELINE), admin(ep, STAGING)
    deployer = make_role(pipeline, {"Service": "lambda.amazonaws.com"}, [])
    target_name = f"deploy-{uuid.uuid4().hex[:6]}"
    target = f"arn:aws:iam::{STAGING}:role/{target_name}"
    make_role(
        staging,
        {"AWS": deployer},
        [allow("sqs:CreateQueue", f"arn:aws:sqs:{REGION}:{STAGING}:*")],
        name=target_name,
    )
    as_deployer = session_as(ep, pipeline, deployer)

    # The pipeline account's own policy does not allow it yet.
    message = denied(
        lambda: as_deployer("sts").assume_role(RoleArn=target, RoleSessionName="cross")
    )
    assert f"no identity-based policy allows sts:AssumeRole on {target}" in message
    assert "in the caller's account" in message

    pipeline("iam").put_role_policy(
        RoleName=deployer.rsplit("/", 1)[1],
        PolicyName="assume",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [allow("sts:AssumeRole", target)]}
        ),
    )
    creds = as_deployer("sts").assume_role(RoleArn=target, RoleSessionName="cross")["Credentials"]
    in_staging = client_from(ep, creds)
    identity = in_staging("sts").get_caller_identity()
    assert identity["Account"] == STAGING
    assert identity["Arn"] == f"arn:aws:sts::{STAGING}:assumed-role/{target_name}/cross"
    # Its calls are the staging account's: evaluated on the staging role's policy, served there.
    queue = f"made-by-session-{uuid.uuid4().hex[:6]}"
    in_staging("sqs").create_queue(QueueName=queue)
    assert staging("sqs").get_queue_url(QueueName=queue)
    with pytest.raises(ClientError):
        pipeline("sqs").get_queue_url(QueueName=queue)
    denied(lambda: in_staging("sqs").list_queues())  # not in the staging role's policy


def test_a_trust_policy_must_name_the_caller_or_its_account(ep):
    pipeline, staging = admin(ep, PIPELINE), admin(ep, STAGING)
    caller = make_role(
        pipeline, {"Service": "lambda.amazonaws.com"}, [allow("sts:AssumeRole", "*")]
    )
    as_caller = session_as(ep, pipeline, caller)
    strangers = make_role(staging, {"AWS": f"arn:aws:iam::{STAGING}:root"}, [])
    message = denied(
        lambda: as_caller("sts").assume_role(RoleArn=strangers, RoleSessionName="cross")
    )
    assert f"the trust policy of role {strangers.rsplit('/', 1)[1]} does not allow" in message
    # Trusting the caller's whole account delegates to that account's policies (allowed above).
    by_account = make_role(staging, {"AWS": f"arn:aws:iam::{PIPELINE}:root"}, [])
    assumed = as_caller("sts").assume_role(RoleArn=by_account, RoleSessionName="cross")
    assert assumed["AssumedRoleUser"]["Arn"].startswith(f"arn:aws:sts::{STAGING}:assumed-role/")
    missing = f"arn:aws:iam::{STAGING}:role/no-such-role"
    message = denied(lambda: as_caller("sts").assume_role(RoleArn=missing, RoleSessionName="cross"))
    assert "does not exist" in message


def test_assume_role_rules_without_an_endpoint():
    """STS API Reference, "AssumeRole": in one account a trust policy naming the role is enough;
    trusting the account delegates to the caller's identity policy; across accounts both count."""
    caller = f"arn:aws:sts::{PIPELINE}:assumed-role/deployer/s1"
    role = f"arn:aws:iam::{PIPELINE}:role/target"

    def trust(principal):
        doc = {"Statement": [{"Effect": "Allow", "Principal": principal, "Action": "sts:*"}]}
        return ("the trust policy of role target", json.dumps(doc))

    request = iam_policy.AuthzRequest("sts:AssumeRole", role, {}, caller)
    by_role = trust({"AWS": f"arn:aws:iam::{PIPELINE}:role/deployer"})
    by_account = trust({"AWS": PIPELINE})
    identity = [("p", {"Statement": [allow("sts:AssumeRole", "*")]})]
    assert iam_policy.evaluate_assume_role(request, [], None, by_role, PIPELINE)
    assert not iam_policy.evaluate_assume_role(request, [], None, by_account, PIPELINE)
    assert iam_policy.evaluate_assume_role(request, identity, None, by_account, PIPELINE)
    across = iam_policy.AuthzRequest("sts:AssumeRole", role.replace(PIPELINE, STAGING), {}, caller)
    assert not iam_policy.evaluate_assume_role(across, [], None, by_role, STAGING)
    assert iam_policy.evaluate_assume_role(across, identity, None, by_role, STAGING)
    deny = (
        "the trust policy of role target",
        {
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": PIPELINE}, "Action": "sts:AssumeRole"},
                {"Effect": "Deny", "Principal": "*", "Action": "sts:AssumeRole"},
            ]
        },
    )
    refused = iam_policy.evaluate_assume_role(across, identity, None, deny, STAGING)
    assert not refused and refused.reason.startswith("explicit deny in the trust policy")


# --- gap 3: resources with resource-based policies ---


@pytest.fixture(scope="module")
def staging_reader(ep):
    """A staging role whose own policy allows reading anything anywhere (what it gets across
    accounts is then up to the other account's resource policies)."""
    staging = admin(ep, STAGING)
    reader = make_role(
        staging,
        {"Service": "lambda.amazonaws.com"},
        [
            allow(
                [
                    "s3:GetObject",
                    "kms:Decrypt",
                    "kms:GenerateDataKey",
                    "lambda:InvokeFunction",
                    "states:DescribeStateMachine",
                ],
                "*",
            )
        ],
    )
    return reader, session_as(ep, staging, reader)


def bucket_with_policy(pipeline, statements: list[dict]) -> str:
    bucket = f"artifacts-{uuid.uuid4().hex[:10]}"
    pipeline("s3").create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    pipeline("s3").put_object(Bucket=bucket, Key="releases/app.zip", Body=b"zip")
    if statements:
        pipeline("s3").put_bucket_policy(
            Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": statements})
        )
    return bucket


def test_s3_across_accounts_needs_the_bucket_policy_and_the_callers_own_policy(ep, staging_reader):
    pipeline = admin(ep, PIPELINE)
    reader, as_reader = staging_reader
    grant = {
        "Effect": "Allow",
        "Principal": {"AWS": reader},
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::*/releases/*",
    }
    shared = bucket_with_policy(pipeline, [grant])
    body = as_reader("s3").get_object(Bucket=shared, Key="releases/app.zip")["Body"].read()
    assert body == b"zip"

    private = bucket_with_policy(pipeline, [])
    message = denied(lambda: as_reader("s3").get_object(Bucket=private, Key="releases/app.zip"))
    assert f"in account {PIPELINE} and has no resource-based policy" in message
    other = bucket_with_policy(pipeline, [{**grant, "Principal": {"AWS": "111122223333"}}])
    message = denied(lambda: as_reader("s3").get_object(Bucket=other, Key="releases/app.zip"))
    assert f"no statement of the bucket policy of {other} (account {PIPELINE}) grants" in message

    # The bucket grants the whole staging account, but this role's own policy does not allow.
    narrow = make_role(admin(ep, STAGING), {"Service": "lambda.amazonaws.com"}, [])
    to_account = bucket_with_policy(
        pipeline, [{**grant, "Principal": {"AWS": f"arn:aws:iam::{STAGING}:root"}}]
    )
    as_narrow = session_as(ep, admin(ep, STAGING), narrow)
    message = denied(lambda: as_narrow("s3").get_object(Bucket=to_account, Key="releases/app.zip"))
    assert "no identity-based policy allows s3:GetObject" in message
    assert (
        body == as_reader("s3").get_object(Bucket=to_account, Key="releases/app.zip")["Body"].read()
    )


def key_with_policy(pipeline, grantee: str) -> str:
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AccountIamPolicies",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{PIPELINE}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "StagingUsesKey",
                "Effect": "Allow",
                "Principal": {"AWS": grantee},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": "*",
            },
        ],
    }
    return pipeline("kms").create_key(Policy=json.dumps(policy))["KeyMetadata"]["Arn"]


def test_kms_across_accounts_needs_the_key_policy_and_is_served_by_the_keys_account(
    ep, staging_reader
):
    pipeline = admin(ep, PIPELINE)
    _, as_reader = staging_reader
    shared = key_with_policy(pipeline, f"arn:aws:iam::{STAGING}:root")
    data_key = as_reader("kms").generate_data_key(KeyId=shared, KeySpec="AES_256")
    assert data_key["KeyId"] == shared
    decrypted = as_reader("kms").decrypt(CiphertextBlob=data_key["CiphertextBlob"], KeyId=shared)
    assert decrypted["Plaintext"] == data_key["Plaintext"]

    # Named by its alias ARN, the key is the pipeline account's too.
    alias = f"alias/shared-{uuid.uuid4().hex[:6]}"
    pipeline("kms").create_alias(AliasName=alias, TargetKeyId=shared)
    alias_arn = f"arn:aws:kms:{REGION}:{PIPELINE}:{alias}"
    by_alias = as_reader("kms").generate_data_key(KeyId=alias_arn, KeySpec="AES_256")
    assert by_alias["KeyId"] == shared

    private = key_with_policy(pipeline, "arn:aws:iam::111122223333:root")
    message = denied(lambda: as_reader("kms").generate_data_key(KeyId=private, KeySpec="AES_256"))
    assert f"no statement of the key policy of key/{private.rsplit('/', 1)[1]}" in message


def test_lambda_invoke_across_accounts_needs_the_function_policy(ep, staging_reader):
    pipeline = admin(ep, PIPELINE)
    _, as_reader = staging_reader
    role = make_role(pipeline, {"Service": "lambda.amazonaws.com"}, [])
    name = f"fn-{uuid.uuid4().hex[:8]}"
    arn = pipeline("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": zip_source("def handler(event, context):\n    return {'ok': 1}\n")},
    )["FunctionArn"]
    message = denied(lambda: as_reader("lambda").invoke(FunctionName=arn, Payload=b"{}"))
    assert f"in account {PIPELINE} and has no resource-based policy" in message
    pipeline("lambda").add_permission(
        FunctionName=name,
        StatementId="staging",
        Action="lambda:InvokeFunction",
        Principal=STAGING,
    )
    assert payload(as_reader("lambda").invoke(FunctionName=arn, Payload=b"{}")) == {"ok": 1}


def test_services_without_resource_policies_are_out_of_reach_across_accounts(ep, staging_reader):
    pipeline = admin(ep, PIPELINE)
    _, as_reader = staging_reader
    role = make_role(pipeline, {"Service": "states.amazonaws.com"}, [])
    machine = pipeline("stepfunctions").create_state_machine(
        name=f"sm-{uuid.uuid4().hex[:8]}",
        definition=json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}),
        roleArn=role,
    )["stateMachineArn"]
    message = denied(
        lambda: as_reader("stepfunctions").describe_state_machine(stateMachineArn=machine)
    )
    assert f"reaches it only by assuming a role in {PIPELINE}" in message


# --- gap 4: Lambda code from a bucket of another account ---


def test_function_code_from_another_accounts_bucket_needs_the_callers_read_access(ep):
    pipeline, staging = admin(ep, PIPELINE), admin(ep, STAGING)
    publisher_name = f"publisher-{uuid.uuid4().hex[:6]}"
    publisher = f"arn:aws:iam::{STAGING}:role/{publisher_name}"
    key = key_with_policy(pipeline, publisher)
    bucket = f"releases-{uuid.uuid4().hex[:10]}"
    s3 = pipeline("s3")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": key,
                    }
                }
            ]
        },
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("handler.py", "def handler(event, context):\n    return 'v2'\n")
    release = buf.getvalue()
    s3.put_object(Bucket=bucket, Key="releases/abc/app.zip", Body=release)

    function_role = make_role(staging, {"Service": "lambda.amazonaws.com"}, [])
    name = f"app-{uuid.uuid4().hex[:6]}"
    staging("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=function_role,
        Handler="handler.handler",
        Code={"ZipFile": zip_source("def handler(event, context):\n    return 'v1'\n")},
    )
    make_role(
        staging,
        {"Service": "lambda.amazonaws.com"},
        [
            allow("lambda:UpdateFunctionCode", f"arn:aws:lambda:{REGION}:{STAGING}:function:*"),
            allow("s3:GetObject", f"arn:aws:s3:::{bucket}/releases/*"),
            allow("kms:Decrypt", key),
        ],
        name=publisher_name,
    )
    as_publisher = session_as(ep, staging, publisher)

    def update():
        return as_publisher("lambda").update_function_code(
            FunctionName=name, S3Bucket=bucket, S3Key="releases/abc/app.zip"
        )

    message = denied(update)  # the bucket has no policy yet
    assert f"s3:GetObject on resource: arn:aws:s3:::{bucket}/releases/abc/app.zip" in message
    s3.put_bucket_policy(
        Bucket=bucket,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": publisher},
                        "Action": "s3:GetObject",
                        "Resource": f"arn:aws:s3:::{bucket}/releases/*",
                    }
                ],
            }
        ),
    )
    updated = update()
    assert updated["CodeSha256"] == base64.b64encode(hashlib.sha256(release).digest()).decode()
    out = staging("lambda").invoke(FunctionName=name, Payload=b"{}")
    assert payload(out) == "v2"

    # The object is SSE-KMS with the pipeline account's key: its key policy must grant the caller.
    other_key = key_with_policy(pipeline, "arn:aws:iam::111122223333:root")
    s3.put_object(
        Bucket=bucket,
        Key="releases/def/app.zip",
        Body=release,
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=other_key,
    )
    message = denied(
        lambda: as_publisher("lambda").update_function_code(
            FunctionName=name, S3Bucket=bucket, S3Key="releases/def/app.zip"
        )
    )
    assert f"kms:Decrypt on resource: {other_key}" in message


# --- snapshots carry every account ---


def test_a_snapshot_restores_every_account_only_into_an_endpoint_serving_them(tmp_path):
    saved_dir, state = tmp_path / "saved", tmp_path / "endpoint.state"
    first = process.start(saved_dir, accounts=[STAGING])
    try:
        staging = admin(first, STAGING)
        bucket = f"staging-{uuid.uuid4().hex[:10]}"
        staging("s3").create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        staging("s3").put_object(Bucket=bucket, Key="k", Body=b"kept")
        role = make_role(staging, {"Service": "lambda.amazonaws.com"}, [allow("s3:GetObject", "*")])
        session = staging("sts").assume_role(RoleArn=role, RoleSessionName="before")["Credentials"]
        first.control("POST", "snapshot", {"path": str(state)})
    finally:
        process.stop(saved_dir)

    restored_dir = tmp_path / "restored"
    restored = process.start(restored_dir, restore=state, accounts=[STAGING])
    try:
        assert restored.accounts == [PIPELINE, STAGING]
        staging = admin(restored, STAGING)  # this run's administrator of the staging account
        assert staging("iam").get_role(RoleName=role.rsplit("/", 1)[1])["Role"]["Arn"] == role
        # A session the saved endpoint issued is still that role in the staging account.
        same_session = client_from(restored, session)
        assert (
            same_session("sts")
            .get_caller_identity()["Arn"]
            .startswith(f"arn:aws:sts::{STAGING}:assumed-role/")
        )
        # Bucket ownership is carried: the bucket is still found from the staging account's
        # session and from the other account (whose admin gets NoSuchBucket only if it were lost).
        assert same_session("s3").get_object(Bucket=bucket, Key="k")["Body"].read() == b"kept"
        with pytest.raises(ClientError, match="BucketAlreadyExists"):
            admin(restored, PIPELINE)("s3").create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
            )
    finally:
        process.stop(restored_dir)

    try:
        with pytest.raises(process.EndpointError, match=rf"accounts \['{PIPELINE}', '{STAGING}'\]"):
            process.start(tmp_path / "refused", restore=state)
    finally:
        process.stop(tmp_path / "refused")  # never leave an endpoint behind if it did start
