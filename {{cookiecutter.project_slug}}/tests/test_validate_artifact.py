import hashlib
import io
import json
import re
import struct
import tomllib
import warnings
import zipfile
from pathlib import Path

import boto3
import pytest
from release_tooling import contract
from release_tooling.package import deterministic_zip

ROOT = Path(__file__).resolve().parent.parent
BUCKET = "artifacts"
COMMIT = "c" * 40
APP_SOURCE = b"def handler(event, context):\n    return {'statusCode': 200}\n"
HEALTH = {"name": "health", "event": {"rawPath": "/health"}, "expect": {"statusCode": 200}}
SMOKE = ("smoke_checks.json", json.dumps({"checks": [HEALTH]}).encode())


def app_functions(*keys: str) -> str:
    """APP_FUNCTIONS as terraform/lambda.tf writes it, for these app function keys."""
    groups = {"staging": "staging", "production": "production"}
    return json.dumps(
        [{"key": k, "function_name": f"orders-{k}", "deployment_groups": groups} for k in keys]
    )


@pytest.fixture
def va(load_lambda, aws, monkeypatch):
    monkeypatch.setenv("APP_FUNCTIONS", app_functions("app"))
    return load_lambda("validate_artifact")


@pytest.fixture
def s3(aws):
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


def put_release(s3, data, *, handler="handler.handler", commit=COMMIT, sha=None, size=None):
    manifest = {
        "commit": commit,
        "built_at": "2024-01-01T00:00:00Z",
        "artifacts": {
            "app": {
                "file": "app.zip",
                "sha256": sha or hashlib.sha256(data).hexdigest(),
                "size": len(data) if size is None else size,
                "handler": handler,
            }
        },
    }
    s3.put_object(Bucket=BUCKET, Key=f"releases/{COMMIT}/app.zip", Body=data)
    s3.put_object(Bucket=BUCKET, Key=f"releases/{COMMIT}/manifest.json", Body=json.dumps(manifest))


def event():
    """What the state machine passes on from the execution input packaging wrote."""
    release = contract.execution_input(BUCKET, COMMIT, poll_interval=0, max_polls=1)
    return {key: release[key] for key in PASSED_ON}


# ValidateArtifact's Parameters in state_machine.asl.json.
PASSED_ON = ("contract", "commit_sha", "artifact_bucket", "artifact_key", "manifest_key")


def raw_zip(entries):
    """A zip built without package.py's safety, to create hostile archives."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for info, data in entries:
            archive.writestr(info, data)
    return buffer.getvalue()


def test_valid_artifact_returns_the_facts(va, s3, context):
    data = deterministic_zip([("handler.py", APP_SOURCE), ("lib/util.py", b"X = 1\n"), SMOKE])
    put_release(s3, data)
    result = va.handler(event(), context)
    assert result == {
        "commit": COMMIT,
        "bucket": BUCKET,
        "key": f"releases/{COMMIT}/app.zip",
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "handler": "handler.handler",
        "entries": 3,
        "smoke_checks": ["health"],
        "functions": [
            {
                "key": "app",
                "artifact_key": f"releases/{COMMIT}/app.zip",
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
            }
        ],
    }


def put_worker(s3, data, *, manifest_entry=True):
    """Add a worker function's zip (and, unless told not to, its manifest entry) to the release."""
    key = f"releases/{COMMIT}/manifest.json"
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    if manifest_entry:
        manifest["artifacts"]["worker"] = {
            "file": "worker.zip",
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
            "handler": "handler.handler",
        }
    s3.put_object(Bucket=BUCKET, Key=f"releases/{COMMIT}/worker.zip", Body=data)
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(manifest))


def test_every_app_function_is_validated_and_listed(va, s3, context, monkeypatch):
    monkeypatch.setenv("APP_FUNCTIONS", app_functions("app", "worker"))
    app = deterministic_zip([("handler.py", APP_SOURCE), SMOKE])
    worker = deterministic_zip([("handler.py", APP_SOURCE + b"# worker\n"), SMOKE])
    put_release(s3, app)
    put_worker(s3, worker)
    result = va.handler(event(), context)
    assert result["sha256"] == hashlib.sha256(app).hexdigest()  # the primary's, as before
    assert result["functions"] == [
        {
            "key": "app",
            "artifact_key": f"releases/{COMMIT}/app.zip",
            "sha256": hashlib.sha256(app).hexdigest(),
            "size": len(app),
        },
        {
            "key": "worker",
            "artifact_key": f"releases/{COMMIT}/worker.zip",
            "sha256": hashlib.sha256(worker).hexdigest(),
            "size": len(worker),
        },
    ]


def test_a_release_without_a_declared_function_is_rejected(va, s3, context, monkeypatch):
    monkeypatch.setenv("APP_FUNCTIONS", app_functions("app", "worker"))
    put_release(s3, deterministic_zip([("handler.py", APP_SOURCE), SMOKE]))
    with pytest.raises(va.ManifestInvalidError, match="no artifacts.worker entry"):
        va.handler(event(), context)


def test_a_broken_second_function_is_rejected_by_name(va, s3, context, monkeypatch):
    monkeypatch.setenv("APP_FUNCTIONS", app_functions("app", "worker"))
    put_release(s3, deterministic_zip([("handler.py", APP_SOURCE), SMOKE]))
    put_worker(s3, deterministic_zip([("handler.py", APP_SOURCE)]))  # no smoke_checks.json
    with pytest.raises(va.PipelineError, match="app function worker: .*smoke_checks.json"):
        va.handler(event(), context)


def test_handler_in_a_package_module(va, s3, context, monkeypatch):
    monkeypatch.setenv("EXPECTED_HANDLER", "svc.api.main")
    data = deterministic_zip([("svc/api.py", b"async def main(e, c):\n    return 1\n"), SMOKE])
    put_release(s3, data, handler="svc.api.main")
    assert va.handler(event(), context)["handler"] == "svc.api.main"


def test_missing_manifest(va, s3, context):
    with pytest.raises(va.ArtifactNotFoundError, match="manifest.json does not exist"):
        va.handler(event(), context)


def test_missing_artifact(va, s3, context):
    put_release(s3, deterministic_zip([("handler.py", APP_SOURCE)]))
    s3.delete_object(Bucket=BUCKET, Key=f"releases/{COMMIT}/app.zip")
    with pytest.raises(va.ArtifactNotFoundError, match="app.zip does not exist"):
        va.handler(event(), context)


def test_checksum_mismatch(va, s3, context):
    put_release(s3, deterministic_zip([("handler.py", APP_SOURCE)]), sha="0" * 64)
    with pytest.raises(va.ChecksumMismatchError, match="does not match manifest sha256 0000"):
        va.handler(event(), context)


def test_size_mismatch(va, s3, context):
    data = deterministic_zip([("handler.py", APP_SOURCE)])
    put_release(s3, data, size=len(data) + 1)
    with pytest.raises(va.ChecksumMismatchError, match="manifest says"):
        va.handler(event(), context)


def test_the_state_machine_passes_on_what_the_lambda_reads():
    definition = json.loads((ROOT / "state_machine.asl.json").read_text(encoding="utf-8"))
    payload = definition["States"]["ValidateArtifact"]["Parameters"]["Payload"]
    assert {key.removesuffix(".$") for key in payload} >= set(PASSED_ON)


def test_the_lambda_follows_the_contract_the_repository_pins(va):
    pinned = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert pinned["tool"]["release-tooling"]["schema"] == va.RELEASE_CONTRACT
    assert contract.execution_input("b", COMMIT, 0, 1)["contract"] == va.RELEASE_CONTRACT


@pytest.mark.parametrize("other", [None, 0, 2, "1"])
def test_a_release_of_another_contract_is_refused_before_anything_is_read(va, context, other):
    release = {**event(), "contract": other}
    with pytest.raises(va.ReleaseContractError, match=r"make setup"):
        va.handler(release, context)  # no bucket exists: nothing was read


def test_commit_mismatch(va, s3, context):
    put_release(s3, deterministic_zip([("handler.py", APP_SOURCE)]), commit="d" * 40)
    with pytest.raises(va.CommitMismatchError, match="dddd"):
        va.handler(event(), context)


def test_manifest_not_json(va, s3, context):
    s3.put_object(Bucket=BUCKET, Key=f"releases/{COMMIT}/manifest.json", Body=b"{oops")
    with pytest.raises(va.ManifestInvalidError, match="not valid JSON"):
        va.handler(event(), context)


def test_manifest_without_sha(va, s3, context):
    manifest = {"commit": COMMIT, "artifacts": {"app": {"size": 1, "handler": "handler.handler"}}}
    s3.put_object(Bucket=BUCKET, Key=f"releases/{COMMIT}/manifest.json", Body=json.dumps(manifest))
    with pytest.raises(va.ManifestInvalidError, match="sha256"):
        va.handler(event(), context)


def test_too_large_is_rejected_before_download(va, s3, context, monkeypatch):
    data = deterministic_zip([("handler.py", APP_SOURCE)])
    put_release(s3, data)
    monkeypatch.setenv("MAX_ARTIFACT_BYTES", str(len(data) - 1))
    real_client = va.client
    downloaded = []

    class Spy:
        def __init__(self, inner):
            self.inner = inner

        def get_object(self, **kwargs):
            downloaded.append(kwargs["Key"])
            return self.inner.get_object(**kwargs)

        def __getattr__(self, name):
            return getattr(self.inner, name)

    monkeypatch.setattr(va, "client", lambda name: Spy(real_client(name)))
    with pytest.raises(va.ArtifactTooLargeError, match="MAX_ARTIFACT_BYTES"):
        va.handler(event(), context)
    assert downloaded == [f"releases/{COMMIT}/manifest.json"]


def test_invalid_max_bytes_setting(va, s3, context, monkeypatch):
    monkeypatch.setenv("MAX_ARTIFACT_BYTES", "lots")
    from shared.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="MAX_ARTIFACT_BYTES"):
        va.handler(event(), context)


def test_corrupt_zip(va, s3, context):
    put_release(s3, b"PK\x03\x04 this is not really a zip")
    with pytest.raises(va.CorruptArchiveError, match="not a readable zip"):
        va.handler(event(), context)


def test_crc_error_is_corrupt(va, s3, context):
    data = bytearray(raw_zip([(zipfile.ZipInfo("handler.py"), APP_SOURCE)]))
    data[data.index(b"def handler")] ^= 0x01  # flip a bit in the stored (uncompressed) data
    put_release(s3, bytes(data))
    with pytest.raises(va.CorruptArchiveError, match="CRC"):
        va.handler(event(), context)


def test_empty_object(va, s3, context):
    put_release(s3, b"")
    with pytest.raises(va.CorruptArchiveError, match="empty"):
        va.handler(event(), context)


def test_zip_without_files(va, s3, context):
    put_release(s3, raw_zip([]))
    with pytest.raises(va.CorruptArchiveError, match="no files"):
        va.handler(event(), context)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../evil.py", "parent-directory"),
        ("lib/../../evil.py", "parent-directory"),
        ("/etc/cron.d/evil", "absolute path"),
        ("C:/evil.py", "absolute path"),
    ],
)
def test_entries_escaping_the_root(va, s3, context, name, reason):
    put_release(
        s3, raw_zip([(zipfile.ZipInfo("handler.py"), APP_SOURCE), (zipfile.ZipInfo(name), b"x")])
    )
    with pytest.raises(va.UnsafeArchivePathError, match=reason):
        va.handler(event(), context)


def test_symlink_entry(va, s3, context):
    link = zipfile.ZipInfo("handler_link.py")
    link.create_system = 3
    link.external_attr = 0o120777 << 16
    put_release(s3, raw_zip([(zipfile.ZipInfo("handler.py"), APP_SOURCE), (link, b"/etc/passwd")]))
    with pytest.raises(va.UnsafeArchivePathError, match="symbolic link"):
        va.handler(event(), context)


def test_handler_module_missing(va, s3, context):
    put_release(s3, deterministic_zip([("app.py", APP_SOURCE)]))
    with pytest.raises(va.HandlerNotFoundError, match=r"handler\.py is not in the artifact"):
        va.handler(event(), context)


def test_handler_function_missing(va, s3, context):
    put_release(s3, deterministic_zip([("handler.py", b"def main(e, c):\n    pass\n")]))
    with pytest.raises(va.HandlerNotFoundError, match="no top-level 'handler'"):
        va.handler(event(), context)


def test_handler_module_with_syntax_error(va, s3, context):
    put_release(s3, deterministic_zip([("handler.py", b"def handler(:\n")]))
    with pytest.raises(va.HandlerNotFoundError, match="does not parse"):
        va.handler(event(), context)


def test_malformed_handler_setting(va, s3, context, monkeypatch):
    monkeypatch.setenv("EXPECTED_HANDLER", "handler")
    put_release(s3, deterministic_zip([("handler.py", APP_SOURCE)]), handler="handler")
    with pytest.raises(va.HandlerNotFoundError, match="module.function"):
        va.handler(event(), context)


def test_missing_event_field(va, s3, context):
    from shared.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="manifest_key"):
        va.handler({**event(), "manifest_key": ""}, context)


def test_real_app_build_passes(va, s3, context, tmp_path):
    """The app zip package.py builds from this repository is accepted."""
    from release_tooling import package

    manifest = package.build(tmp_path, COMMIT)
    data = (tmp_path / "app.zip").read_bytes()
    s3.put_object(Bucket=BUCKET, Key=f"releases/{COMMIT}/app.zip", Body=data)
    s3.put_object(Bucket=BUCKET, Key=f"releases/{COMMIT}/manifest.json", Body=json.dumps(manifest))
    result = va.handler(event(), context)
    assert result["sha256"] == manifest["artifacts"]["app"]["sha256"]
    declared = json.loads((ROOT / "lambdas" / "app" / "smoke_checks.json").read_text())
    assert result["smoke_checks"] == [check["name"] for check in declared["checks"]]


# ------------------------------------------------------------ the app's smoke checks


def test_a_release_without_smoke_checks_is_refused_before_staging(va, s3, context):
    put_release(s3, deterministic_zip([("handler.py", APP_SOURCE)]))
    with pytest.raises(va.smoke_checks.SmokeChecksMissingError) as caught:
        va.handler(event(), context)
    message = str(caught.value)
    assert "app.zip has no smoke_checks.json: add lambdas/app/smoke_checks.json" in message
    assert '"expect": {"statusCode": 200, "body": {"status": "ok"}}' in message


@pytest.mark.parametrize(
    ("checks", "message"),
    [
        (b"{not json", "lambdas/app/smoke_checks.json is not valid JSON"),
        (json.dumps({"checks": []}).encode(), "declares no checks"),
        (json.dumps({"checks": [HEALTH, HEALTH]}).encode(), "used more than once: ['health']"),
        (
            json.dumps({"checks": [{**HEALTH, "expect": {}}]}).encode(),
            "checks[0] ('health').expect needs a 'statusCode'",
        ),
    ],
)
def test_a_release_with_malformed_smoke_checks_is_refused(va, s3, context, checks, message):
    data = deterministic_zip([("handler.py", APP_SOURCE), ("smoke_checks.json", checks)])
    put_release(s3, data)
    with pytest.raises(va.smoke_checks.SmokeChecksInvalidError, match=re.escape(message)):
        va.handler(event(), context)


# ------------------------------------------------------------ archives readers disagree on

OK_ENTRY = (zipfile.ZipInfo("handler.py"), APP_SOURCE)


def release_raw(s3, data, **kw):
    """Upload bytes as they are, with a manifest that matches them (checksum passes)."""
    put_release(s3, data, **kw)


def drop_from_central_directory(data: bytes, name: bytes) -> bytes:
    """Remove one entry's central directory record: its local header and data stay behind."""
    eocd_at = data.rfind(b"PK\x05\x06")
    sig, disk, cd_disk, n_disk, n_total, cd_size, cd_offset, clen = struct.unpack_from(
        "<4s4H2LH", data, eocd_at
    )
    records, pos = [], cd_offset
    while pos < eocd_at:
        name_len, extra_len, comment_len = struct.unpack_from("<3H", data, pos + 28)
        end = pos + 46 + name_len + extra_len + comment_len
        records.append((data[pos + 46 : pos + 46 + name_len], data[pos:end]))
        pos = end
    kept = b"".join(record for n, record in records if n != name)
    assert len(kept) < cd_size
    eocd = struct.pack(
        "<4s4H2LH", sig, disk, cd_disk, n_disk - 1, n_total - 1, len(kept), cd_offset, clen
    )
    return data[:cd_offset] + kept + eocd + data[eocd_at + 22 :]


def test_duplicate_entry_names_are_rejected(va, s3, context):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns "Duplicate name" and writes it anyway
        data = raw_zip([OK_ENTRY, (zipfile.ZipInfo("handler.py"), b"def handler(e, c): 1\n")])
    release_raw(s3, data)
    with pytest.raises(va.AmbiguousArchiveError, match="'handler.py' appears more than once"):
        va.handler(event(), context)


def test_duplicate_after_normalisation_is_rejected(va, s3, context):
    release_raw(
        s3,
        raw_zip(
            [OK_ENTRY, (zipfile.ZipInfo("lib//x.py"), b""), (zipfile.ZipInfo("lib/x.py"), b"")]
        ),
    )
    with pytest.raises(va.AmbiguousArchiveError, match="appears more than once"):
        va.handler(event(), context)


def test_entry_only_in_local_headers_is_rejected(va, s3, context):
    full = raw_zip([OK_ENTRY, (zipfile.ZipInfo("sitecustomize.py"), b"import os\n")])
    data = drop_from_central_directory(full, b"sitecustomize.py")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == ["handler.py"]  # zipfile does not see it; others do
    release_raw(s3, data)
    with pytest.raises(va.AmbiguousArchiveError, match="belong to no listed entry"):
        va.handler(event(), context)


def test_two_concatenated_zips_are_rejected(va, s3, context):
    hidden = raw_zip([(zipfile.ZipInfo("sitecustomize.py"), b"import os\n")])
    data = hidden + raw_zip([OK_ENTRY])
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == ["handler.py"]  # zipfile reads the second one only
    release_raw(s3, data)
    with pytest.raises(va.AmbiguousArchiveError, match="precedes it"):
        va.handler(event(), context)


def test_trailing_bytes_after_the_archive_are_rejected(va, s3, context):
    data = raw_zip([OK_ENTRY]) + b"PK\x03\x04 another archive starts here"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == ["handler.py"]  # zipfile ignores the tail
    release_raw(s3, data)
    with pytest.raises(va.AmbiguousArchiveError, match=r"byte\(s\) after the end record"):
        va.handler(event(), context)


def test_nul_in_an_entry_name_is_rejected(va, s3, context):
    data = raw_zip([OK_ENTRY, (zipfile.ZipInfo("lib/aXevil.py"), b"x = 1\n")])
    data = data.replace(b"lib/aXevil.py", b"lib/a\x00evil.py")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert "lib/a" in archive.namelist()  # zipfile cuts the name at the NUL
    release_raw(s3, data)
    with pytest.raises(va.UnsafeArchivePathError, match="NUL or control character"):
        va.handler(event(), context)


@pytest.mark.parametrize(
    ("name", "reason"),
    [(".", "'.' component"), ("./handler2.py", "'.' component"), ("lib/./x.py", "'.' component")],
)
def test_dot_entries_are_rejected(va, s3, context, name, reason):
    release_raw(s3, raw_zip([OK_ENTRY, (zipfile.ZipInfo(name), b"x")]))
    with pytest.raises(va.UnsafeArchivePathError, match=reason):
        va.handler(event(), context)


# ------------------------------------------------------------ malformed manifests


def put_manifest(s3, body):
    s3.put_object(Bucket=BUCKET, Key=f"releases/{COMMIT}/app.zip", Body=raw_zip([OK_ENTRY]))
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    s3.put_object(Bucket=BUCKET, Key=f"releases/{COMMIT}/manifest.json", Body=raw)


def app_entry(**overrides):
    entry = {"sha256": "a" * 64, "size": 10, "handler": "handler.handler"}
    return {"commit": COMMIT, "artifacts": {"app": {**entry, **overrides}}}


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ({"commit": COMMIT, "artifacts": []}, "artifacts must be an object"),
        ({"commit": COMMIT, "artifacts": "app.zip"}, "artifacts must be an object"),
        ({"commit": COMMIT}, "artifacts must be an object"),
        ({"commit": COMMIT, "artifacts": {"app": []}}, "no artifacts.app entry"),
        (app_entry(size=True), "size is missing or not a int"),
        (app_entry(size="10"), "size is missing or not a int"),
        (app_entry(size=-1), "size is negative"),
        (app_entry(sha256=["a"]), "sha256 is missing or not a str"),
        (app_entry(sha256="z" * 64), "sha256 must be 64 hex digits"),
        (app_entry(handler={"module": "handler"}), "handler is missing or not a str"),
        (
            b'{"commit": "'
            + COMMIT.encode()
            + b'", "x": '
            + b"[" * 100_000
            + b"]" * 100_000
            + b"}",
            "nested too deeply",
        ),
        (b" " * 1_048_577, "at most 1048576 are read"),
    ],
    ids=lambda v: str(v)[:30] if not isinstance(v, bytes) else f"bytes{len(v)}",
)
def test_malformed_manifest_names_the_problem(va, s3, context, manifest, message):
    put_manifest(s3, manifest)
    with pytest.raises(va.ManifestInvalidError, match=message):
        va.handler(event(), context)


# ------------------------------------------------------------ handler contract


def test_manifest_handler_must_be_the_configured_handler(va, s3, context):
    data = deterministic_zip([("handler.py", APP_SOURCE), ("evil.py", APP_SOURCE)])
    put_release(s3, data, handler="evil.handler")
    with pytest.raises(va.HandlerMismatchError, match="'evil.handler' is not the application"):
        va.handler(event(), context)


def test_configured_handler_comes_from_the_environment(va, s3, context, monkeypatch):
    monkeypatch.setenv("EXPECTED_HANDLER", "svc.main")
    put_release(s3, deterministic_zip([("handler.py", APP_SOURCE)]))
    with pytest.raises(va.HandlerMismatchError, match="configured handler 'svc.main'"):
        va.handler(event(), context)
