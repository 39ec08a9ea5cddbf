import hashlib
import io
import json
import zipfile

import boto3
import pytest
from package import deterministic_zip

BUCKET = "artifacts"
COMMIT = "c" * 40
APP_SOURCE = b"def handler(event, context):\n    return {'statusCode': 200}\n"


@pytest.fixture
def va(load_lambda, aws):
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
    return {
        "commit_sha": COMMIT,
        "artifact_bucket": BUCKET,
        "artifact_key": f"releases/{COMMIT}/app.zip",
        "manifest_key": f"releases/{COMMIT}/manifest.json",
    }


def raw_zip(entries):
    """A zip built without package.py's safety, to create hostile archives."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for info, data in entries:
            archive.writestr(info, data)
    return buffer.getvalue()


def test_valid_artifact_returns_the_facts(va, s3, context):
    data = deterministic_zip([("handler.py", APP_SOURCE), ("lib/util.py", b"X = 1\n")])
    put_release(s3, data)
    result = va.handler(event(), context)
    assert result == {
        "commit": COMMIT,
        "bucket": BUCKET,
        "key": f"releases/{COMMIT}/app.zip",
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "handler": "handler.handler",
        "entries": 2,
    }


def test_handler_in_a_package_module(va, s3, context):
    data = deterministic_zip([("svc/api.py", b"async def main(e, c):\n    return 1\n")])
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


def test_malformed_handler_setting(va, s3, context):
    put_release(s3, deterministic_zip([("handler.py", APP_SOURCE)]), handler="handler")
    with pytest.raises(va.HandlerNotFoundError, match="module.function"):
        va.handler(event(), context)


def test_missing_event_field(va, s3, context):
    from shared.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="manifest_key"):
        va.handler({**event(), "manifest_key": ""}, context)


def test_real_app_build_passes(va, s3, context, tmp_path):
    """The app zip package.py builds from this repository is accepted."""
    import package

    manifest = package.build(tmp_path, COMMIT)
    data = (tmp_path / "app.zip").read_bytes()
    s3.put_object(Bucket=BUCKET, Key=f"releases/{COMMIT}/app.zip", Body=data)
    s3.put_object(Bucket=BUCKET, Key=f"releases/{COMMIT}/manifest.json", Body=json.dumps(manifest))
    assert va.handler(event(), context)["sha256"] == manifest["artifacts"]["app"]["sha256"]
