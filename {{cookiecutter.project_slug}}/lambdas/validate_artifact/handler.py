"""Validate a release artifact before anything is deployed.

Checks, in order, and fails with a named error on the first problem:
  manifest present and well formed, commit matches the release, artifact present, size within
  MAX_ARTIFACT_BYTES (via HeadObject, before downloading), sha256 matches the manifest, the zip is
  readable and non-empty, no entry escapes the archive root, and the manifest's handler exists.
"""

import ast
import hashlib
import io
import json
import posixpath
import stat
import zipfile
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError
from shared.clients import client
from shared.config import int_env, require_str
from shared.errors import PipelineError
from shared.log import get_logger, lambda_entrypoint

logger = get_logger("validate_artifact")

DEFAULT_MAX_ARTIFACT_BYTES = 52_428_800
# Lambda's limit for unzipped code; anything bigger cannot be deployed (and may be a zip bomb).
MAX_UNZIPPED_BYTES = 262_144_000


class ArtifactRejectedError(PipelineError):
    """Base class: the artifact must not be deployed."""


class ArtifactNotFoundError(ArtifactRejectedError):
    pass


class ManifestInvalidError(ArtifactRejectedError):
    pass


class CommitMismatchError(ArtifactRejectedError):
    pass


class ArtifactTooLargeError(ArtifactRejectedError):
    pass


class ChecksumMismatchError(ArtifactRejectedError):
    pass


class CorruptArchiveError(ArtifactRejectedError):
    pass


class UnsafeArchivePathError(ArtifactRejectedError):
    pass


class HandlerNotFoundError(ArtifactRejectedError):
    pass


def parse_manifest(raw: bytes, *, commit_sha: str, artifact_name: str = "app") -> Mapping[str, Any]:
    """Return the manifest entry for ``artifact_name`` after checking its shape and commit."""
    try:
        manifest = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestInvalidError(f"manifest is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise ManifestInvalidError("manifest must be a JSON object")
    if manifest.get("commit") != commit_sha:
        raise CommitMismatchError(
            f"manifest is for commit {manifest.get('commit')!r} "
            f"but the release is for {commit_sha!r}; "
            "re-run scripts/package.py upload for this commit"
        )
    entry = (manifest.get("artifacts") or {}).get(artifact_name)
    if not isinstance(entry, dict):
        raise ManifestInvalidError(f"manifest has no artifacts.{artifact_name} entry")
    for key, kind in (("sha256", str), ("size", int), ("handler", str)):
        if not isinstance(entry.get(key), kind):
            raise ManifestInvalidError(
                f"manifest artifacts.{artifact_name}.{key} is missing or not a {kind.__name__}"
            )
    return entry


def check_size(size: int, max_bytes: int) -> None:
    if size == 0:
        raise CorruptArchiveError("artifact is empty (0 bytes)")
    if size > max_bytes:
        raise ArtifactTooLargeError(
            f"artifact is {size} bytes, over the {max_bytes}-byte limit (MAX_ARTIFACT_BYTES)"
        )


def check_checksum(data: bytes, expected_sha256: str) -> str:
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256.lower():
        raise ChecksumMismatchError(
            f"artifact sha256 {actual} does not match manifest sha256 {expected_sha256}; "
            "the upload is incomplete or was modified"
        )
    return actual


def _unsafe_reason(info: zipfile.ZipInfo) -> str | None:
    name = info.filename
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        return "parent-directory component"
    if posixpath.normpath(name).startswith(".."):
        return "path escapes the archive root"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "symbolic link"
    return None


def inspect_archive(data: bytes, handler: str) -> int:
    """Check the zip and that ``handler`` ("module.function") exists; return the entry count."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise CorruptArchiveError(f"artifact is not a readable zip archive: {exc}") from None
    with archive:
        infos = archive.infolist()
        if not any(not i.is_dir() for i in infos):
            raise CorruptArchiveError("artifact zip contains no files")
        for info in infos:
            reason = _unsafe_reason(info)
            if reason:
                raise UnsafeArchivePathError(
                    f"zip entry {info.filename!r} is not allowed: {reason}"
                )
        unzipped = sum(i.file_size for i in infos)
        if unzipped > MAX_UNZIPPED_BYTES:
            raise ArtifactTooLargeError(
                f"artifact unzips to {unzipped} bytes, "
                f"over Lambda's {MAX_UNZIPPED_BYTES}-byte limit"
            )
        try:
            bad = archive.testzip()
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise CorruptArchiveError(f"artifact zip is corrupt: {exc}") from None
        if bad is not None:
            raise CorruptArchiveError(f"artifact zip entry {bad!r} fails its CRC check")
        check_handler(archive, handler)
        return len(infos)


def check_handler(archive: zipfile.ZipFile, handler: str) -> None:
    module, _, function = handler.rpartition(".")
    if not module or not function.isidentifier():
        raise HandlerNotFoundError(f"handler {handler!r} must look like 'module.function'")
    base = module.replace(".", "/")
    names = set(archive.namelist())
    path = next((p for p in (f"{base}.py", f"{base}/__init__.py") if p in names), None)
    if path is None:
        raise HandlerNotFoundError(
            f"handler {handler!r}: module file {base}.py is not in the artifact"
        )
    try:
        tree = ast.parse(archive.read(path), filename=path)
    except (SyntaxError, ValueError) as exc:
        raise HandlerNotFoundError(f"handler module {path} does not parse: {exc}") from None
    defined = {
        node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    } | {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    if function not in defined:
        raise HandlerNotFoundError(f"handler {handler!r}: {path} defines no top-level {function!r}")


def _get_bytes(bucket: str, key: str) -> bytes:
    try:
        return client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("NoSuchKey", "404", "NotFound"):
            raise ArtifactNotFoundError(f"s3://{bucket}/{key} does not exist") from None
        raise


def _head_size(bucket: str, key: str) -> int:
    try:
        return int(client("s3").head_object(Bucket=bucket, Key=key)["ContentLength"])
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("NoSuchKey", "404", "NotFound"):
            raise ArtifactNotFoundError(f"s3://{bucket}/{key} does not exist") from None
        raise


def validate(event: Mapping[str, Any], max_bytes: int) -> dict[str, Any]:
    commit = require_str(event, "commit_sha")
    bucket = require_str(event, "artifact_bucket")
    key = require_str(event, "artifact_key")
    manifest_key = require_str(event, "manifest_key")

    entry = parse_manifest(_get_bytes(bucket, manifest_key), commit_sha=commit)
    size = _head_size(bucket, key)
    check_size(size, max_bytes)
    data = _get_bytes(bucket, key)
    if len(data) != entry["size"]:
        raise ChecksumMismatchError(
            f"artifact is {len(data)} bytes but the manifest says {entry['size']}"
        )
    sha256 = check_checksum(data, entry["sha256"])
    entries = inspect_archive(data, entry["handler"])
    return {
        "commit": commit,
        "bucket": bucket,
        "key": key,
        "sha256": sha256,
        "size": size,
        "handler": entry["handler"],
        "entries": entries,
    }


@lambda_entrypoint(logger)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = validate(event, int_env("MAX_ARTIFACT_BYTES", DEFAULT_MAX_ARTIFACT_BYTES))
    logger.info("artifact accepted", extra={"artifact": result})
    return result
