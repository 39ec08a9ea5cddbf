"""`release-tooling local release` builds the zips once and uploads exactly those files."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import boto3
import pytest

from release_tooling import local, package
from release_tooling.local import release

BUCKET = "orders-artifacts"
COMMIT = "c" * 40


@pytest.fixture
def builds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[tuple[Path, str | None]]:
    """Every package.build call, with the release's build/ in tmp_path."""
    seen: list[tuple[Path, str | None]] = []
    real = package.build

    def counting(out, commit, *args, **kwargs):
        seen.append((out, commit))
        return real(out, commit, *args, **kwargs)

    monkeypatch.setattr(package, "build", counting)
    monkeypatch.setattr(release, "BUILD_DIR", tmp_path / "build")
    return seen


def upload(manifest: dict, s3, trigger=None) -> str:
    return release.upload_release(manifest, BUCKET, max_polls=7, s3=s3, before_trigger=trigger)


def test_a_release_builds_once_and_uploads_those_zips(aws, builds, tmp_path: Path) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    at_trigger: list[list[str]] = []

    def trigger() -> None:
        at_trigger.append(sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]))

    manifest, origin = release.package_release(COMMIT)
    sha = upload(manifest, s3, trigger=trigger)

    assert builds == [(tmp_path / "build", COMMIT)]
    assert origin == "--commit" and manifest["commit"] == COMMIT
    built = tmp_path / "build"
    app = s3.get_object(Bucket=BUCKET, Key=f"releases/{COMMIT}/app.zip")["Body"].read()
    assert app == (built / "app.zip").read_bytes()
    assert sha == manifest["artifacts"]["app"]["sha256"]
    uploaded = s3.get_object(Bucket=BUCKET, Key=f"releases/{COMMIT}/manifest.json")["Body"].read()
    assert json.loads(uploaded) == manifest
    source = s3.get_object(Bucket=BUCKET, Key=package.SOURCE_KEY)
    with zipfile.ZipFile(io.BytesIO(source["Body"].read())) as archive:
        payload = json.loads(archive.read("execution-input.json"))
    assert payload == package.execution_input(BUCKET, COMMIT, 1, 7)
    # The object that starts the pipeline comes last: the fault hook ran before it existed.
    assert at_trigger == [[f"releases/{COMMIT}/app.zip", f"releases/{COMMIT}/manifest.json"]]
    versions = s3.list_object_versions(Bucket=BUCKET).get("Versions", [])
    assert sorted(v["Key"] for v in versions) == sorted(
        [f"releases/{COMMIT}/app.zip", f"releases/{COMMIT}/manifest.json", package.SOURCE_KEY]
    )


def test_uncommitted_sources_get_the_id_of_their_zips_from_the_one_build(
    builds, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(release, "clean_commit", lambda: None)

    manifest, origin = release.package_release()

    assert len(builds) == 1 and builds[0][1] is None
    assert manifest["commit"] == package.working_tree_id(manifest["artifacts"])
    assert origin.startswith("working tree")


def test_a_clean_checkout_releases_its_commit(builds, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(release, "clean_commit", lambda: COMMIT)
    manifest, origin = release.package_release()
    assert builds[0][1] == COMMIT and manifest["commit"] == COMMIT and origin == "commit"


def test_a_release_id_already_uploaded_with_other_bytes_is_refused(aws, builds, tmp_path) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    manifest, _ = release.package_release(COMMIT)
    upload(manifest, s3)
    upload(manifest, s3)  # the same bytes again: fine (a re-run)
    app = tmp_path / "build" / "app.zip"
    app.write_bytes(app.read_bytes() + b"\0")

    with pytest.raises(local.LocalError, match="already exists with sha256.*immutable"):
        upload(manifest, s3)
