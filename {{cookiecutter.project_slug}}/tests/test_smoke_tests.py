import hashlib
import io
import json
import re
import sys
from pathlib import Path

import boto3
import pytest
from release_tooling import contract
from release_tooling.package import deterministic_zip

ROOT = Path(__file__).resolve().parent.parent
APP_CHECKS = ROOT / "lambdas" / "app" / "smoke_checks.json"
BUCKET = "artifacts"
COMMIT = "d" * 40
HEALTH = {
    "name": "health",
    "event": {"rawPath": "/health", "requestContext": {"http": {"method": "GET"}}},
    "expect": {"statusCode": 200, "body": {"status": "ok"}},
}


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
def smoke(load_lambda, aws, monkeypatch):
    groups = {"staging": "staging", "production": "production"}
    entry = {"key": "app", "function_name": "orders-app", "deployment_groups": groups}
    monkeypatch.setenv("APP_FUNCTIONS", json.dumps([entry]))
    monkeypatch.setenv("SMOKE_ALIAS", "staging")
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    return load_lambda("smoke_tests")


@pytest.fixture(scope="module")
def app_dependencies():
    """lambdas/app/requirements.txt as app.zip gets it (test_app.py does the same): the
    development virtualenv does not have the app's dependencies."""
    from release_tooling import package

    site = str(package.dependencies_dir("app"))
    sys.path.insert(0, site)
    yield
    sys.path.remove(site)


@pytest.fixture
def app(load_lambda, app_dependencies):
    return load_lambda("app")


def release(checks: bytes | None, **event) -> dict:
    """Upload an app.zip holding ``checks`` as smoke_checks.json (none when None) to moto's S3;
    return the smoke step's event for it, as the state machine builds it."""
    entries = [("handler.py", b"def handler(event, context):\n    return {}\n")]
    if checks is not None:
        entries.append(("smoke_checks.json", checks))
    data = deterministic_zip(entries)
    key = contract.artifact_key(COMMIT)
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=data)
    return {
        "commit_sha": COMMIT,
        "artifact_bucket": BUCKET,
        "artifact_key": key,
        "artifact_sha256": hashlib.sha256(data).hexdigest(),
        "target_version": "4",
        **event,
    }


def app_release(**event) -> dict:
    return release(APP_CHECKS.read_bytes(), **event)


def declared(*checks) -> bytes:
    return json.dumps({"checks": list(checks)}).encode()


def use_lambda(monkeypatch, smoke, fake):
    """Invoke through ``fake``; S3 stays moto's."""
    real = smoke.client
    monkeypatch.setattr(smoke, "client", lambda name: fake if name == "lambda" else real(name))


# --------------------------------------------------------------- running the declared checks


def test_the_apps_checks_pass_against_the_real_app(smoke, app, context, monkeypatch):
    fake = AppBackedLambda(app, context)
    use_lambda(monkeypatch, smoke, fake)
    result = smoke.handler(app_release(), context)
    names = [check["name"] for check in json.loads(APP_CHECKS.read_text())["checks"]]
    assert result["passed"] is True, result["summary"]
    assert [r["name"] for r in result["results"]] == names
    assert all(r["passed"] for r in result["results"])
    assert result["summary"].startswith(f"{len(names)}/{len(names)} smoke tests passed")
    assert set(fake.calls) == {("orders-app", "staging")}


def test_the_checks_come_from_the_artifact(smoke, app, context, monkeypatch):
    """A check only the uploaded artifact declares is the one that runs, and it can fail."""
    use_lambda(monkeypatch, smoke, AppBackedLambda(app, context))
    down = {**HEALTH, "name": "health_down", "expect": {"statusCode": 200, "body": {"status": "x"}}}
    result = smoke.handler(release(declared(HEALTH, down)), context)
    assert result["passed"] is False
    assert [(r["name"], r["passed"]) for r in result["results"]] == [
        ("health", True),
        ("health_down", False),
    ]
    assert result["summary"] == (
        "1/2 smoke tests passed against orders-app:staging; failed: health_down "
        "(unexpected body fields {'status': {'expected': 'x', 'got': 'ok'}})"
    )


def test_a_body_field_the_response_lacks_fails(smoke, app, context, monkeypatch):
    use_lambda(monkeypatch, smoke, AppBackedLambda(app, context))
    null = {**HEALTH, "expect": {"statusCode": 200, "body": {"version": None}}}
    result = smoke.handler(release(declared(null)), context)
    assert not result["passed"]
    assert "'version': {'expected': None, 'got': None}" in result["results"][0]["detail"]


def test_json_true_is_not_1(smoke, app, context, monkeypatch):
    def count_as_one(reply):
        return {**reply, "body": json.dumps({"ok": 1})}

    use_lambda(monkeypatch, smoke, AppBackedLambda(app, context, transform=count_as_one))
    check = {**HEALTH, "expect": {"statusCode": 200, "body": {"ok": True}}}
    assert not smoke.handler(release(declared(check)), context)["passed"]


def test_function_error_is_a_failure_with_its_type(smoke, app, context, monkeypatch):
    use_lambda(monkeypatch, smoke, AppBackedLambda(app, context, error=("KeyError", "'rawPath'")))
    result = smoke.handler(app_release(), context)
    assert result["passed"] is False
    assert result["results"][0]["detail"] == "app raised KeyError: 'rawPath'"
    assert "0/4 smoke tests passed" in result["summary"]


def test_wrong_version_serving_is_a_failure(smoke, app, context, monkeypatch):
    use_lambda(monkeypatch, smoke, AppBackedLambda(app, context, version="3"))
    result = smoke.handler(app_release(target_version=4), context)
    assert result["passed"] is False
    assert "served by version 3, expected 4" in result["summary"]


def test_wrong_total_is_reported_with_expected_and_actual(smoke, app, context, monkeypatch):
    def break_total(reply):
        body = json.loads(reply["body"])
        if "total" in body:
            body["total"] = "0.00"
        return {**reply, "body": json.dumps(body)}

    use_lambda(monkeypatch, smoke, AppBackedLambda(app, context, transform=break_total))
    result = smoke.handler(app_release(), context)
    assert result["passed"] is False
    failed = [r for r in result["results"] if not r["passed"]]
    assert [r["name"] for r in failed] == ["quote_with_coupon"]
    assert "'expected': '54.50', 'got': '0.00'" in failed[0]["detail"]


def test_wrong_status_code(smoke, app, context, monkeypatch):
    use_lambda(
        monkeypatch,
        smoke,
        AppBackedLambda(app, context, transform=lambda r: {**r, "statusCode": 500}),
    )
    result = smoke.handler(app_release(), context)
    assert not result["passed"]
    assert "status 500, expected 200" in result["results"][0]["detail"]


def test_non_http_reply(smoke, app, context, monkeypatch):
    use_lambda(monkeypatch, smoke, AppBackedLambda(app, context, transform=lambda r: "hello"))
    result = smoke.handler(app_release(), context)
    assert not result["passed"]
    assert "not an HTTP-style JSON reply" in result["results"][0]["detail"]


def test_a_body_that_is_not_an_object_fails_pinned_fields(smoke, app, context, monkeypatch):
    use_lambda(
        monkeypatch,
        smoke,
        AppBackedLambda(app, context, transform=lambda r: {**r, "body": "[1]"}),
    )
    result = smoke.handler(release(declared(HEALTH)), context)
    assert result["results"][0]["detail"].startswith("body is not a JSON object")


def test_invoke_errors_are_failures_not_crashes(smoke, context):
    # moto has no such function: every invoke fails with ResourceNotFoundException.
    result = smoke.handler(app_release(), context)
    assert result["passed"] is False
    assert len(result["results"]) == 4
    assert all("invoke failed" in r["detail"] for r in result["results"])


def test_missing_configuration(smoke, context, monkeypatch):
    from shared.errors import ConfigurationError

    monkeypatch.delenv("SMOKE_ALIAS")
    with pytest.raises(ConfigurationError, match="SMOKE_ALIAS"):
        smoke.handler(app_release(), context)


def test_the_state_machine_passes_on_what_the_lambda_reads():
    definition = json.loads((ROOT / "state_machine.asl.json").read_text(encoding="utf-8"))
    payload = definition["States"]["RunSmokeTests"]["Parameters"]["Payload"]
    assert payload["artifact_bucket.$"] == "$.artifact_bucket"
    assert payload["artifact_key.$"] == "$.artifact_key"
    # The bytes validate_artifact accepted (its ResultSelector keeps sha256 in $.artifact).
    assert payload["artifact_sha256.$"] == "$.artifact.sha256"
    assert payload["target_version.$"] == "$.staging.target_version"


# --------------------------------------------------------------- reading the artifact


def test_an_artifact_that_changed_since_validation_is_refused(smoke, context):
    from shared.smoke_checks import SmokeChecksError

    event = app_release(artifact_sha256="0" * 64)
    with pytest.raises(smoke.ArtifactUnreadableError, match="not the 0000") as caught:
        smoke.handler(event, context)
    assert not isinstance(caught.value, SmokeChecksError)


def test_an_unreadable_artifact_names_the_object_and_the_grant(smoke, context):
    event = app_release(artifact_key=contract.artifact_key("e" * 40))
    with pytest.raises(smoke.ArtifactUnreadableError) as caught:
        smoke.handler(event, context)
    assert f"s3://{BUCKET}/releases/{'e' * 40}/app.zip" in str(caught.value)
    assert "NoSuchKey" in str(caught.value)
    assert "s3:GetObject" in str(caught.value)


@pytest.mark.parametrize("field", ["artifact_bucket", "artifact_key", "artifact_sha256"])
def test_the_artifact_fields_are_required(smoke, context, field):
    from shared.errors import InvalidInputError

    event = app_release()
    del event[field]
    with pytest.raises(InvalidInputError, match=field):
        smoke.handler(event, context)


# --------------------------------------------------------------- a malformed smoke_checks.json


def test_a_missing_file_says_how_to_add_it(smoke, context):
    with pytest.raises(smoke.smoke_checks.SmokeChecksMissingError) as caught:
        smoke.handler(release(None), context)
    message = str(caught.value)
    assert "app.zip has no smoke_checks.json: add lambdas/app/smoke_checks.json" in message
    # The format, as an example that is itself a valid file.
    example = message[message.index("The format: ") + len("The format: ") :]
    example = example[: example.index(" (expect.statusCode")]
    assert [c.name for c in smoke.smoke_checks.parse(example.encode())] == ["health"]


MALFORMED = [
    pytest.param(b'{"checks": [', "is not valid JSON: Expecting value: line 1", id="bad-json"),
    pytest.param(b"\xff\xfe", "is not valid JSON", id="not-utf8"),
    pytest.param(b"[]", "must be a JSON object with a 'checks' list", id="top-level-list"),
    pytest.param(b'{"check": []}', "must be a JSON object with a 'checks' list", id="no-checks"),
    pytest.param(declared(), "declares no checks", id="zero-checks"),
    pytest.param(
        json.dumps({"checks": [HEALTH], "chekcs": []}).encode(),
        "unknown top-level key(s) ['chekcs']; only 'checks' is read",
        id="unknown-top-level-key",
    ),
    pytest.param(
        declared({"event": {}, "expect": {"statusCode": 200}}),
        "checks[0] needs a 'name': a non-empty string",
        id="missing-name",
    ),
    pytest.param(
        declared({"name": " ", "event": {}, "expect": {"statusCode": 200}}),
        "checks[0] needs a 'name'",
        id="blank-name",
    ),
    pytest.param(
        declared({"name": "a", "expect": {"statusCode": 200}}),
        "checks[0] ('a') needs an 'event': the JSON object sent to the app",
        id="missing-event",
    ),
    pytest.param(
        declared({"name": "a", "event": {}}),
        "checks[0] ('a') needs an 'expect' object with a 'statusCode'",
        id="missing-expect",
    ),
    pytest.param(
        declared({"name": "a", "event": {}, "expect": {"body": {}}}),
        "checks[0] ('a').expect needs a 'statusCode': an HTTP status from 100 to 599, got None",
        id="missing-status",
    ),
    pytest.param(
        declared({"name": "a", "event": {}, "expect": {"statusCode": "200"}}),
        "got '200'",
        id="string-status",
    ),
    pytest.param(
        declared({"name": "a", "event": {}, "expect": {"statusCode": True}}),
        "got True",
        id="bool-status",
    ),
    pytest.param(
        declared({"name": "a", "event": {}, "expect": {"statusCode": 200, "body": "ok"}}),
        "checks[0] ('a').expect.body must be an object of top-level body fields, got str",
        id="body-not-object",
    ),
    pytest.param(
        declared({"name": "a", "event": {}, "expect": {"statusCode": 200, "bdy": {}}}),
        "checks[0] ('a').expect has unknown key 'bdy' (allowed: statusCode, body)",
        id="typo-in-expect",
    ),
    pytest.param(
        declared(HEALTH, {**HEALTH, "event": {}}),
        "check names must be unique; used more than once: ['health']",
        id="duplicate-names",
    ),
    pytest.param(
        declared(HEALTH, "health"),
        "checks[1] must be an object with name, event and expect",
        id="check-not-object",
    ),
]


@pytest.mark.parametrize(("checks", "message"), MALFORMED)
def test_a_malformed_file_fails_the_step_with_the_reason(smoke, context, checks, message):
    with pytest.raises(smoke.smoke_checks.SmokeChecksInvalidError, match=re.escape(message)):
        smoke.handler(release(checks), context)


def test_every_problem_is_named_at_once(smoke, context):
    checks = declared({"event": {}, "expect": {"statusCode": 200}}, {"name": "b", "event": []})
    with pytest.raises(smoke.smoke_checks.SmokeChecksInvalidError) as caught:
        smoke.handler(release(checks), context)
    assert str(caught.value) == (
        "lambdas/app/smoke_checks.json has 3 problem(s): checks[0] needs a 'name': a non-empty "
        "string; checks[1] ('b') needs an 'event': the JSON object sent to the app; checks[1] "
        "('b') needs an 'expect' object with a 'statusCode'"
    )


# --------------------------------------------------------------- several app functions


def worker_artifact(checks: bytes) -> dict:
    data = deterministic_zip(
        [
            ("handler.py", b"def handler(event, context):\n    return {}\n"),
            ("smoke_checks.json", checks),
        ]
    )
    key = contract.artifact_key(COMMIT, "worker")
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=data)
    return {"key": "worker", "artifact_key": key, "sha256": hashlib.sha256(data).hexdigest()}


class ScriptedLambda:
    """Answers every invoke of ``function_name`` with the HTTP reply ``replies[function_name]``."""

    def __init__(self, replies: dict, versions: dict):
        self.replies, self.versions, self.calls = replies, versions, []

    def invoke(self, FunctionName, Qualifier, Payload):  # noqa: N803 - boto3's names
        self.calls.append((FunctionName, Qualifier))
        body = json.dumps(self.replies[FunctionName]).encode()
        return {
            "StatusCode": 200,
            "ExecutedVersion": self.versions[FunctionName],
            "Payload": io.BytesIO(json.dumps({"statusCode": 200, "body": body.decode()}).encode()),
        }


@pytest.fixture
def two_functions(smoke, monkeypatch):
    groups = {"staging": "staging", "production": "production"}
    entries = [
        {"key": "app", "function_name": "orders-app", "deployment_groups": groups},
        {"key": "worker", "function_name": "orders-worker", "deployment_groups": groups},
    ]
    monkeypatch.setenv("APP_FUNCTIONS", json.dumps(entries))
    return smoke


def two_function_event(worker_checks: bytes) -> dict:
    event = release(declared(HEALTH))
    app = {"key": "app", "artifact_key": event["artifact_key"], "sha256": event["artifact_sha256"]}
    deployments = [{"key": "app", "target_version": "4"}, {"key": "worker", "target_version": "9"}]
    return {**event, "functions": [app, worker_artifact(worker_checks)], "deployments": deployments}


def test_each_function_runs_its_own_checks_against_its_staged_version(
    two_functions, context, monkeypatch
):
    fake = ScriptedLambda(
        {"orders-app": {"status": "ok"}, "orders-worker": {"queue": "idle"}},
        {"orders-app": "4", "orders-worker": "9"},
    )
    use_lambda(monkeypatch, two_functions, fake)
    worker_check = {
        **HEALTH,
        "name": "queue",
        "expect": {"statusCode": 200, "body": {"queue": "idle"}},
    }
    result = two_functions.handler(two_function_event(declared(worker_check)), context)
    assert result["passed"] is True, result["summary"]
    assert [(r["function"], r["name"]) for r in result["results"]] == [
        ("app", "health"),
        ("worker", "queue"),
    ]
    assert fake.calls == [("orders-app", "staging"), ("orders-worker", "staging")]


def test_one_failing_function_fails_the_release_naming_it(two_functions, context, monkeypatch):
    fake = ScriptedLambda(
        {"orders-app": {"status": "ok"}, "orders-worker": {"queue": "stuck"}},
        {"orders-app": "4", "orders-worker": "9"},
    )
    use_lambda(monkeypatch, two_functions, fake)
    worker_check = {
        **HEALTH,
        "name": "queue",
        "expect": {"statusCode": 200, "body": {"queue": "idle"}},
    }
    result = two_functions.handler(two_function_event(declared(worker_check)), context)
    assert result["passed"] is False
    assert "1/1 smoke tests passed against orders-app:staging" in result["summary"]
    assert (
        "0/1 smoke tests passed against orders-worker:staging; failed: queue" in result["summary"]
    )


def test_a_function_without_its_artifact_is_an_error(two_functions, context):
    event = two_function_event(declared(HEALTH))
    with pytest.raises(two_functions.InvalidInputError, match=r"\['worker'\]"):
        two_functions.handler({**event, "functions": event["functions"][:1]}, context)
