"""IAM policy evaluation (release_tooling.local_aws.iam_policy) against the documented rules."""

from __future__ import annotations

import json

import pytest

from release_tooling.local_aws.iam_policy import (  # noqa: E402
    AuthzRequest,
    PolicyError,
    evaluate,
    wildcard_match,
)

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/deployer"
SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/ci"
FN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:orders-app"


def policy(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action="lambda:UpdateAlias", resource=FN, **extra) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action="lambda:UpdateAlias", resource=FN, **extra) -> dict:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def req(action="lambda:UpdateAlias", resource=FN, context=None, principal=SESSION):
    return AuthzRequest(action, resource, context or {}, principal)


def test_allow_names_policy_and_sid():
    d = evaluate(req(), [("deploy", policy(allow(Sid="Alias")))])
    assert d.allowed and d.reason == "allowed by deploy statement Alias"


def test_allow_without_sid_names_index():
    d = evaluate(req(), [("deploy", policy(deny("s3:*", "*"), allow()))])
    assert d.allowed and d.reason == "allowed by deploy statement #1"


def test_implicit_deny_reason():
    d = evaluate(req(), [("deploy", policy(allow("lambda:GetAlias")))])
    assert not d.allowed
    assert d.reason == f"no identity-based policy allows lambda:UpdateAlias on {FN}"


def test_policy_as_json_string():
    assert evaluate(req(), [("p", json.dumps(policy(allow())))]).allowed


def test_single_statement_object_and_lists():
    doc = {
        "Statement": {"Effect": "Allow", "Action": ["s3:Get*", "lambda:*Alias"], "Resource": [FN]}
    }
    assert evaluate(req(), [("p", doc)]).allowed


@pytest.mark.parametrize(
    ("deny_in", "label"),
    [("identity", "other statement NoAlias"), ("boundary", "fence statement NoAlias")],
)
def test_explicit_deny_beats_allow(deny_in, label):
    d_stmt = deny(Sid="NoAlias")
    identity = [("deploy", policy(allow())), ("other", policy(d_stmt))]
    boundary = ("fence", policy(allow("*", "*"), d_stmt))
    if deny_in == "boundary":
        identity = identity[:1]
    d = evaluate(req(), identity, boundary=boundary)
    assert not d.allowed
    assert d.reason == f"explicit deny in {label} for lambda:UpdateAlias on {FN}"


def test_deny_in_resource_policy_beats_identity_allow():
    rp = ("fn-policy", policy(deny(Principal="*", Sid="Nobody")))
    d = evaluate(req(), [("deploy", policy(allow()))], resource_policy=rp)
    assert not d.allowed and "explicit deny in fn-policy statement Nobody" in d.reason


@pytest.mark.parametrize(
    ("identity_action", "boundary_action", "allowed"),
    [
        ("lambda:*", "lambda:UpdateAlias", True),
        ("lambda:UpdateAlias", "lambda:*", True),
        ("lambda:*", "lambda:Get*", False),  # boundary caps the identity policy
        ("lambda:Get*", "lambda:*", False),  # a boundary alone grants nothing
    ],
)
def test_boundary_is_an_intersection(identity_action, boundary_action, allowed):
    d = evaluate(
        req(),
        [("id", policy(allow(identity_action)))],
        boundary=("fence", policy(allow(boundary_action))),
    )
    assert d.allowed is allowed
    if identity_action == "lambda:*" and not allowed:
        assert (
            d.reason == f"the permissions boundary fence does not allow lambda:UpdateAlias on {FN}"
        )


@pytest.mark.parametrize(
    ("principal_in_policy", "caller", "boundary_allows", "allowed"),
    [
        # Naming the session itself is not capped by the boundary...
        (SESSION, SESSION, False, True),
        # ...naming the role is.
        (ROLE, SESSION, False, False),
        (ROLE, SESSION, True, True),
        # An IAM user named directly is not capped either.
        (f"arn:aws:iam::{ACCOUNT}:user/alice", f"arn:aws:iam::{ACCOUNT}:user/alice", False, True),
    ],
)
def test_resource_policy_and_boundary(principal_in_policy, caller, boundary_allows, allowed):
    rp = ("fn-policy", policy(allow(Principal={"AWS": principal_in_policy})))
    fence = policy(allow("lambda:*" if boundary_allows else "s3:*", "*"))
    d = evaluate(req(principal=caller), [], boundary=("fence", fence), resource_policy=rp)
    assert d.allowed is allowed, d.reason


def test_resource_policy_alone_allows_without_boundary():
    rp = ("fn-policy", policy(allow(Principal={"AWS": [ROLE, "arn:aws:iam::1:role/x"]}, Sid="R")))
    d = evaluate(req(), [], resource_policy=rp)
    assert d.allowed and d.reason == "allowed by fn-policy statement R"


@pytest.mark.parametrize(
    ("principal", "caller", "named"),
    [
        ("*", SESSION, True),
        ({"AWS": "*"}, SESSION, True),
        ({"AWS": ROLE}, SESSION, True),
        ({"AWS": f"arn:aws:iam::{ACCOUNT}:role/other"}, SESSION, False),
        ({"AWS": SESSION}, SESSION, True),
        ({"AWS": f"arn:aws:iam::{ACCOUNT}:role/ci/deployer"}, SESSION, True),  # role with a path
        ({"Service": "sns.amazonaws.com"}, "sns.amazonaws.com", True),
        ({"Service": ["events.amazonaws.com"]}, "sns.amazonaws.com", False),
        ({"AWS": "999999999999"}, SESSION, False),
    ],
)
def test_resource_policy_principal_matching(principal, caller, named):
    rp = ("rp", policy(allow(Principal=principal)))
    assert evaluate(req(principal=caller), [], resource_policy=rp).allowed is named


@pytest.mark.parametrize("principal", [ACCOUNT, f"arn:aws:iam::{ACCOUNT}:root"])
def test_account_principal_defers_to_identity_policies(principal):
    rp = ("rp", policy(allow(Principal={"AWS": principal})))
    assert not evaluate(req(), [], resource_policy=rp).allowed
    assert evaluate(req(), [("id", policy(allow()))], resource_policy=rp).allowed
    # ...but a Deny naming the account applies to everybody in it.
    rp_deny = ("rp", policy(deny(Principal={"AWS": principal})))
    assert not evaluate(req(), [("id", policy(allow()))], resource_policy=rp_deny).allowed


def test_not_principal():
    rp = ("rp", policy(allow(NotPrincipal={"AWS": f"arn:aws:iam::{ACCOUNT}:role/other"})))
    assert evaluate(req(), [], resource_policy=rp).allowed
    rp = ("rp", policy(allow(NotPrincipal={"AWS": SESSION})))
    assert not evaluate(req(), [], resource_policy=rp).allowed


@pytest.mark.parametrize(
    ("statement", "action", "resource", "allowed"),
    [
        ({"NotAction": "iam:*", "Resource": "*"}, "lambda:UpdateAlias", FN, True),
        ({"NotAction": "iam:*", "Resource": "*"}, "iam:PassRole", ROLE, False),
        (
            {"NotAction": ["iam:*", "lambda:Update*"], "Resource": "*"},
            "lambda:UpdateAlias",
            FN,
            False,
        ),
        ({"Action": "*", "NotResource": f"{FN}*"}, "lambda:UpdateAlias", FN, False),
        (
            {"Action": "*", "NotResource": f"{FN}*"},
            "lambda:UpdateAlias",
            FN + "x"[:0] + "-2",
            False,
        ),
        ({"Action": "*", "NotResource": [ROLE]}, "lambda:UpdateAlias", FN, True),
    ],
)
def test_not_action_not_resource(statement, action, resource, allowed):
    d = evaluate(req(action, resource), [("p", policy({"Effect": "Allow", **statement}))])
    assert d.allowed is allowed


@pytest.mark.parametrize(
    ("pattern", "value", "ignore_case", "matched"),
    [
        ("lambda:Update*", "LAMBDA:updatealias", True, True),
        ("lambda:Update*", "lambda:updatealias", False, False),
        ("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/a/b.zip", False, True),
        ("arn:aws:s3:::bucket/*", "arn:aws:s3:::Bucket/a", False, False),
        ("arn:aws:s3:::bucket/?.zip", "arn:aws:s3:::bucket/a.zip", False, True),
        ("arn:aws:s3:::bucket/?.zip", "arn:aws:s3:::bucket/ab.zip", False, False),
        ("arn:aws:s3:::bucket/[a]", "arn:aws:s3:::bucket/a", False, False),  # no regex
        ("arn:aws:s3:::bucket.x", "arn:aws:s3:::bucketXx", False, False),
        ("*", "", False, True),
    ],
)
def test_wildcard_match(pattern, value, ignore_case, matched):
    assert wildcard_match(pattern, value, ignore_case=ignore_case) is matched


def test_actions_are_case_insensitive_resources_case_sensitive():
    p = [("p", policy(allow("LAMBDA:updateALIAS")))]
    assert evaluate(req("lambda:UpdateAlias"), p).allowed
    assert not evaluate(req(resource=FN.replace("orders", "Orders")), p).allowed


def conditioned(condition: dict) -> list:
    return [("p", policy(allow(Condition=condition)))]


@pytest.mark.parametrize(
    ("condition", "context", "allowed"),
    [
        ({"StringEquals": {"aws:SourceAccount": ACCOUNT}}, {"aws:SourceAccount": ACCOUNT}, True),
        ({"StringEquals": {"aws:SourceAccount": ACCOUNT}}, {"aws:sourceaccount": ACCOUNT}, True),
        ({"StringEquals": {"aws:SourceAccount": ACCOUNT}}, {"aws:SourceAccount": "1"}, False),
        ({"StringEquals": {"aws:SourceAccount": ACCOUNT}}, {}, False),  # missing key
        ({"StringEquals": {"s3:prefix": ["a/", "b/"]}}, {"s3:prefix": "b/"}, True),  # OR
        ({"StringEquals": {"x:k": "Abc"}}, {"x:k": "abc"}, False),
        ({"StringEqualsIgnoreCase": {"x:k": "Abc"}}, {"x:k": "aBC"}, True),
        ({"StringNotEquals": {"x:k": ["a", "b"]}}, {"x:k": "c"}, True),
        ({"StringNotEquals": {"x:k": ["a", "b"]}}, {"x:k": "b"}, False),
        ({"StringNotEquals": {"x:k": "a"}}, {}, True),  # negated + missing key
        ({"StringNotEqualsIgnoreCase": {"x:k": "A"}}, {"x:k": "a"}, False),
        ({"StringLike": {"x:k": "rel-*"}}, {"x:k": "rel-42"}, True),
        ({"StringLike": {"x:k": "rel-?"}}, {"x:k": "rel-42"}, False),
        ({"StringNotLike": {"x:k": "rel-*"}}, {"x:k": "dev-1"}, True),
        ({"StringNotLike": {"x:k": "rel-*"}}, {}, True),
        (
            {"ArnLike": {"aws:SourceArn": "arn:aws:sns:*:*:orders-*"}},
            {"aws:SourceArn": "arn:aws:sns:us-east-1:1:orders-alerts"},
            True,
        ),
        (
            {"ArnEquals": {"aws:SourceArn": "arn:aws:sns:*:*:orders"}},
            {"aws:SourceArn": "arn:aws:sns:us-east-1:1:orders"},
            True,
        ),
        (
            {"ArnLike": {"aws:SourceArn": "arn:aws:sns:*:*:orders"}},
            {"aws:SourceArn": "orders"},
            False,
        ),
        (
            {"ArnNotEquals": {"aws:SourceArn": "arn:aws:sns:*:*:orders"}},
            {"aws:SourceArn": "arn:aws:sns:us-east-1:1:other"},
            True,
        ),
        (
            {"ArnNotLike": {"aws:SourceArn": "arn:aws:sns:*:*:o*"}},
            {"aws:SourceArn": "arn:aws:sns:us-east-1:1:orders"},
            False,
        ),
        ({"ArnNotLike": {"aws:SourceArn": "arn:aws:sns:*:*:o*"}}, {}, True),
        ({"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": True}, True),
        ({"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": "false"}, False),
        ({"Bool": {"aws:SecureTransport": "false"}}, {}, False),
        ({"NumericLessThan": {"x:n": "10"}}, {"x:n": 9}, True),
        ({"NumericLessThan": {"x:n": "10"}}, {"x:n": "10"}, False),
        ({"NumericLessThanEquals": {"x:n": "10"}}, {"x:n": "10"}, True),
        ({"NumericGreaterThan": {"x:n": "10"}}, {"x:n": "11"}, True),
        ({"NumericGreaterThanEquals": {"x:n": "10"}}, {"x:n": "9"}, False),
        ({"NumericEquals": {"x:n": "10"}}, {"x:n": "10.0"}, True),
        ({"NumericNotEquals": {"x:n": "10"}}, {"x:n": "10"}, False),
        ({"NumericEquals": {"x:n": "10"}}, {"x:n": "ten"}, False),
        (
            {"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}},
            {"aws:CurrentTime": "2026-12-02T01:00:00Z"},
            True,
        ),
        (
            {"DateGreaterThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}},
            {"aws:CurrentTime": "2026-12-02T01:00:00Z"},
            False,
        ),
        (
            {"DateEquals": {"aws:EpochTime": "1700000000"}},
            {"aws:EpochTime": "2023-11-14T22:13:20Z"},
            True,
        ),
        ({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": "10.1.2.3"}, True),
        ({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": "10.1.2.3"}, False),
        # IfExists: a missing key passes, a present one is checked.
        ({"StringEqualsIfExists": {"x:k": "a"}}, {}, True),
        ({"StringEqualsIfExists": {"x:k": "a"}}, {"x:k": "b"}, False),
        ({"ArnLikeIfExists": {"aws:SourceArn": "arn:aws:sns:*:*:o"}}, {}, True),
        # Null: "true" wants the key absent, "false" wants it present.
        ({"Null": {"aws:RequestTag/Project": "true"}}, {}, True),
        ({"Null": {"aws:RequestTag/Project": "true"}}, {"aws:RequestTag/Project": "x"}, False),
        ({"Null": {"aws:RequestTag/Project": "false"}}, {"aws:RequestTag/Project": "x"}, True),
        ({"Null": {"aws:RequestTag/Project": "false"}}, {}, False),
        # Keys and operators are ANDed.
        ({"StringEquals": {"x:a": "1", "x:b": "2"}}, {"x:a": "1", "x:b": "2"}, True),
        ({"StringEquals": {"x:a": "1", "x:b": "2"}}, {"x:a": "1", "x:b": "3"}, False),
        (
            {"StringEquals": {"x:a": "1"}, "StringLike": {"x:b": "2*"}},
            {"x:a": "1", "x:b": "3"},
            False,
        ),
        # Set operators on multivalued keys.
        (
            {"ForAnyValue:StringEquals": {"aws:TagKeys": ["Project", "Team"]}},
            {"aws:TagKeys": ["Team", "Other"]},
            True,
        ),
        (
            {"ForAnyValue:StringEquals": {"aws:TagKeys": ["Project"]}},
            {"aws:TagKeys": ["Other"]},
            False,
        ),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["Project"]}}, {}, False),
        (
            {"ForAllValues:StringEquals": {"aws:TagKeys": ["Project", "Team"]}},
            {"aws:TagKeys": ["Team", "Project"]},
            True,
        ),
        (
            {"ForAllValues:StringEquals": {"aws:TagKeys": ["Project", "Team"]}},
            {"aws:TagKeys": ["Team", "Other"]},
            False,
        ),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["Project"]}}, {}, True),  # missing: true
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["Project"]}}, {"aws:TagKeys": []}, True),
        (
            {"ForAllValues:StringLike": {"aws:TagKeys": ["team-*"]}},
            {"aws:TagKeys": ["team-a", "team-b"]},
            True,
        ),
        (
            {"ForAllValues:StringNotEquals": {"aws:TagKeys": ["Secret"]}},
            {"aws:TagKeys": ["Team", "Secret"]},
            False,
        ),
        (
            {"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["Secret"]}},
            {"aws:TagKeys": ["Team", "Secret"]},
            True,
        ),
        # A single-valued operator on a list value: any element may match.
        ({"StringEquals": {"aws:TagKeys": "Team"}}, {"aws:TagKeys": ["Team", "X"]}, True),
    ],
)
def test_condition_operators(condition, context, allowed):
    assert evaluate(req(context=context), conditioned(condition)).allowed is allowed


def test_condition_on_deny_with_missing_key():
    # Deny unless tagged: StringNotEquals with the key missing is true, so the deny applies.
    stmt = deny(Condition={"StringNotEquals": {"aws:RequestTag/Project": "orders"}}, Sid="Tag")
    policies = [("p", policy(allow(), stmt))]
    assert not evaluate(req(), policies).allowed
    ctx = {"aws:RequestTag/Project": "orders"}
    assert evaluate(req(context=ctx), policies).allowed


def test_policy_variable_never_allows_and_always_denies():
    var_allow = allow(resource="arn:aws:lambda:*:*:function:${aws:username}-*", Sid="Mine")
    d = evaluate(req(), [("p", policy(var_allow))])
    assert not d.allowed
    assert "p statement Mine uses a policy variable, which is not supported" in d.reason
    var_deny = deny(Condition={"StringNotEquals": {"x:k": "${aws:PrincipalTag/team}"}}, Sid="V")
    d = evaluate(req(), [("p", policy(allow(), var_deny))])
    assert not d.allowed
    assert "explicit deny in p statement V (applied: it uses an unsupported policy variable)" in (
        d.reason
    )


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("{not json", "policy 'bad' is not valid JSON"),
        ({"Version": "2012-10-17"}, "must be a JSON object with a Statement element"),
        (policy({"Effect": "Permit", "Action": "*", "Resource": "*"}), "Effect must be"),
        (policy({"Effect": "Allow", "Resource": "*"}), "exactly one of Action / NotAction"),
        (policy(allow(Condition={"StringFuzzy": {"x:k": "a"}})), "unknown condition operator"),
        (policy(allow(Condition={"ForSomeValues:StringEquals": {"x:k": "a"}})), "set operator"),
    ],
)
def test_bad_policies_are_rejected_clearly(document, message):
    with pytest.raises(PolicyError, match=message):
        evaluate(req(context={"x:k": "a"}), [("bad", document)])


def test_bad_request_is_rejected_clearly():
    with pytest.raises(PolicyError, match="service:Action"):
        evaluate(AuthzRequest("UpdateAlias", FN, {}), [])
