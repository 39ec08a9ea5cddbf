"""The smoke checks a release declares: lambdas/app/smoke_checks.json, packaged into app.zip
(and lambdas/<key>/smoke_checks.json in <key>.zip for every other app function).

The app owns its checks; the pipeline only reads them. validate_artifact refuses a release whose
app.zip has no valid file (before anything is deployed) and smoke_tests runs the checks of the
release it tests against the staging alias. Both use this one model of the file:

    {"checks": [
      {"name": "health", "event": {...the Lambda event sent to the app...},
       "expect": {"statusCode": 200, "body": {"status": "ok"}}}
    ]}

Every check needs a unique non-empty ``name``, an ``event`` object and ``expect.statusCode``;
``expect.body`` (optional) lists top-level fields of the JSON response body that must be equal.
"""

import json
import zipfile
from dataclasses import dataclass, field
from typing import Any

from shared.errors import PipelineError

FILE = "smoke_checks.json"  # at the root of app.zip
SOURCE = "lambdas/app/smoke_checks.json"  # where the repository keeps it
MAX_BYTES = 1_048_576
EXAMPLE = (
    '{"checks": [{"name": "health", "event": {"version": "2.0", "rawPath": "/health", '
    '"requestContext": {"http": {"method": "GET", "path": "/health"}}}, '
    '"expect": {"statusCode": 200, "body": {"status": "ok"}}}]}'
)
_FORMAT = (
    f"The format: {EXAMPLE} (expect.statusCode is required, expect.body is optional; see the "
    "README's 'Smoke checks')"
)
_CHECK_KEYS = ("name", "event", "expect")
_EXPECT_KEYS = ("statusCode", "body")


class SmokeChecksError(PipelineError):
    """The release's smoke checks cannot be used: nothing is deployed / the release rolls back."""


class SmokeChecksMissingError(SmokeChecksError):
    pass


class SmokeChecksInvalidError(SmokeChecksError):
    pass


@dataclass(frozen=True)
class Check:
    name: str
    event: dict[str, Any]
    status_code: int
    body: dict[str, Any] = field(default_factory=dict)


def _check_problems(index: int, check: Any) -> list[str]:
    where = f"checks[{index}]"
    if not isinstance(check, dict):
        return [f"{where} must be an object with name, event and expect"]
    if isinstance(check.get("name"), str) and check["name"].strip():
        where = f"{where} ({check['name']!r})"
    problems = [
        f"{where} has unknown key {key!r} (allowed: {', '.join(_CHECK_KEYS)})"
        for key in check
        if key not in _CHECK_KEYS
    ]
    name = check.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append(f"{where} needs a 'name': a non-empty string")
    if not isinstance(check.get("event"), dict):
        problems.append(f"{where} needs an 'event': the JSON object sent to the app")
    expect = check.get("expect")
    if not isinstance(expect, dict):
        problems.append(f"{where} needs an 'expect' object with a 'statusCode'")
        return problems
    problems += [
        f"{where}.expect has unknown key {key!r} (allowed: {', '.join(_EXPECT_KEYS)})"
        for key in expect
        if key not in _EXPECT_KEYS
    ]
    status = expect.get("statusCode")
    # bool is an int in Python, not an HTTP status.
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        problems.append(
            f"{where}.expect needs a 'statusCode': an HTTP status from 100 to 599, got {status!r}"
        )
    if "body" in expect and not isinstance(expect["body"], dict):
        problems.append(
            f"{where}.expect.body must be an object of top-level body fields, "
            f"got {type(expect['body']).__name__}"
        )
    return problems


def source_of(function: str) -> str:
    """Where the repository keeps an app function's checks (lambdas/<key>/smoke_checks.json)."""
    return SOURCE.replace("/app/", f"/{function}/")


def parse(raw: bytes, function: str = "app") -> list[Check]:
    """The checks in ``raw`` (the file's bytes), or SmokeChecksInvalidError naming every problem."""
    source = source_of(function)
    if len(raw) > MAX_BYTES:
        raise SmokeChecksInvalidError(
            f"{source} is {len(raw)} bytes, over the {MAX_BYTES}-byte limit for smoke checks"
        )
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SmokeChecksInvalidError(f"{source} is not valid JSON: {exc}. {_FORMAT}") from None
    except RecursionError:
        raise SmokeChecksInvalidError(f"{source} is nested too deeply. {_FORMAT}") from None
    if not isinstance(document, dict) or not isinstance(document.get("checks"), list):
        raise SmokeChecksInvalidError(
            f"{source} must be a JSON object with a 'checks' list. {_FORMAT}"
        )
    extra = sorted(key for key in document if key != "checks")
    if extra:
        raise SmokeChecksInvalidError(
            f"{source} has unknown top-level key(s) {extra}; only 'checks' is read. {_FORMAT}"
        )
    checks = document["checks"]
    if not checks:
        raise SmokeChecksInvalidError(
            f"{source} declares no checks: a release needs at least one request its staging "
            f"alias must answer (e.g. a health check). {_FORMAT}"
        )
    problems = [p for i, check in enumerate(checks) for p in _check_problems(i, check)]
    names = [c["name"] for c in checks if isinstance(c, dict) and isinstance(c.get("name"), str)]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        problems.append(f"check names must be unique; used more than once: {duplicates}")
    if problems:
        raise SmokeChecksInvalidError(
            f"{source} has {len(problems)} problem(s): " + "; ".join(problems)
        )
    return [
        Check(c["name"], c["event"], c["expect"]["statusCode"], c["expect"].get("body", {}))
        for c in checks
    ]


def from_archive(archive: zipfile.ZipFile, function: str = "app") -> list[Check]:
    """The checks packaged in an app function's zip (``archive``, <function>.zip)."""
    source, zip_name = source_of(function), f"{function}.zip"
    try:
        info = archive.getinfo(FILE)
    except KeyError:
        raise SmokeChecksMissingError(
            f"the release's {zip_name} has no {FILE}: add {source} (packaged into {zip_name}) "
            f"declaring the requests the pipeline sends to the staging alias. {_FORMAT}"
        ) from None
    if info.file_size > MAX_BYTES:
        raise SmokeChecksInvalidError(
            f"{source} is {info.file_size} bytes, over the {MAX_BYTES}-byte limit for smoke checks"
        )
    return parse(archive.read(info), function)
