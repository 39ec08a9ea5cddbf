import io
import json

import pytest


class AppBackedLambda:
    """A Lambda client whose invoke runs the real app handler in-process."""

    def __init__(self, app, context, *, version="4", error=None, transform=None):
        self.app = app
        self.context = context
        self.version = version
        self.error = error
        self.transform = transform
        self.calls = []

    def invoke(self, FunctionName, Qualifier, Payload):  # boto3's parameter names
        self.calls.append((FunctionName, Qualifier))
        if self.error:
            body = {"errorType": self.error[0], "errorMessage": self.error[1], "stackTrace": []}
            return {
                "StatusCode": 200,
                "FunctionError": "Unhandled",
                "ExecutedVersion": self.version,
                "Payload": io.BytesIO(json.dumps(body).encode()),
            }
        reply = self.app.handler(json.loads(Payload), self.context)
        if self.transform:
            reply = self.transform(reply)
        return {
            "StatusCode": 200,
            "ExecutedVersion": self.version,
            "Payload": io.BytesIO(json.dumps(reply).encode()),
        }


@pytest.fixture
def smoke(load_lambda, monkeypatch):
    monkeypatch.setenv("APP_FUNCTION_NAME", "orders-app")
    monkeypatch.setenv("SMOKE_ALIAS", "staging")
    return load_lambda("smoke_tests")


@pytest.fixture
def app(load_lambda):
    return load_lambda("app")


def test_all_cases_pass_against_the_real_app(smoke, app, context, monkeypatch):
    fake = AppBackedLambda(app, context)
    monkeypatch.setattr(smoke, "client", lambda name: fake)
    result = smoke.handler({"commit_sha": "a" * 40, "target_version": "4"}, context)
    assert result["passed"] is True, result["summary"]
    assert [r["name"] for r in result["results"]] == [c["name"] for c in smoke.CASES]
    assert all(r["passed"] for r in result["results"])
    assert result["summary"].startswith(f"{len(smoke.CASES)}/{len(smoke.CASES)} smoke tests passed")
    assert set(fake.calls) == {("orders-app", "staging")}


def test_function_error_is_a_failure_with_its_type(smoke, app, context, monkeypatch):
    fake = AppBackedLambda(app, context, error=("KeyError", "'rawPath'"))
    monkeypatch.setattr(smoke, "client", lambda name: fake)
    result = smoke.handler({}, context)
    assert result["passed"] is False
    assert result["results"][0]["detail"] == "app raised KeyError: 'rawPath'"
    assert "0/4 smoke tests passed" in result["summary"]


def test_wrong_version_serving_is_a_failure(smoke, app, context, monkeypatch):
    monkeypatch.setattr(smoke, "client", lambda name: AppBackedLambda(app, context, version="3"))
    result = smoke.handler({"target_version": 4}, context)
    assert result["passed"] is False
    assert "served by version 3, expected 4" in result["summary"]


def test_wrong_total_is_reported_with_expected_and_actual(smoke, app, context, monkeypatch):
    def break_total(reply):
        body = json.loads(reply["body"])
        if "total" in body:
            body["total"] = "0.00"
        return {**reply, "body": json.dumps(body)}

    monkeypatch.setattr(
        smoke, "client", lambda name: AppBackedLambda(app, context, transform=break_total)
    )
    result = smoke.handler({}, context)
    assert result["passed"] is False
    failed = [r for r in result["results"] if not r["passed"]]
    assert [r["name"] for r in failed] == ["quote_with_coupon"]
    assert "'expected': '54.50', 'got': '0.00'" in failed[0]["detail"]


def test_wrong_status_code(smoke, app, context, monkeypatch):
    monkeypatch.setattr(
        smoke,
        "client",
        lambda name: AppBackedLambda(app, context, transform=lambda r: {**r, "statusCode": 500}),
    )
    result = smoke.handler({}, context)
    assert not result["passed"]
    assert "status 500, expected 200" in result["results"][0]["detail"]


def test_non_http_reply(smoke, app, context, monkeypatch):
    monkeypatch.setattr(
        smoke, "client", lambda name: AppBackedLambda(app, context, transform=lambda r: "hello")
    )
    result = smoke.handler({}, context)
    assert not result["passed"]
    assert "not an HTTP-style JSON reply" in result["results"][0]["detail"]


def test_invoke_errors_are_failures_not_crashes(smoke, context, aws):
    # moto has no such function: every invoke fails with ResourceNotFoundException.
    result = smoke.handler({}, context)
    assert result["passed"] is False
    assert all("invoke failed" in r["detail"] for r in result["results"])


def test_missing_configuration(smoke, context, monkeypatch):
    from shared.errors import ConfigurationError

    monkeypatch.delenv("SMOKE_ALIAS")
    with pytest.raises(ConfigurationError, match="SMOKE_ALIAS"):
        smoke.handler({}, context)
