"""Validate a release artifact before anything is deployed.

Checks, in order, and fails with a named error on the first problem:
  manifest present and well formed, commit matches the release, the manifest's handler is the one
  the application function is configured with (EXPECTED_HANDLER), artifact present, size within
  MAX_ARTIFACT_BYTES (via HeadObject, before downloading), sha256 matches the manifest, the zip is
  unambiguous (every byte accounted for by exactly one entry listed in the central directory, no
  duplicate names, no second archive), readable and non-empty, no entry name is unsafe (escaping
  the root, NUL/control characters, '.' or empty components), the handler exists, and the app
  declares valid smoke checks (smoke_checks.json at the zip's root, shared/smoke_checks.py): a
  release without them is refused here, before staging, rather than rolled back after it.
Every application function of the stack (APP_FUNCTIONS, shared/app_functions.py) is checked so:
the primary's zip at artifact_key, each other one's as <key>.zip next to the manifest; the output
lists them under "functions" ({key, artifact_key, sha256, size}) for deploy and smoke_tests.
"""

import ast
import hashlib
import io
import json
import os
import posixpath
import re
import stat
import struct
import zipfile
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError
from shared import app_functions, smoke_checks
from shared.clients import client
from shared.config import int_env, require_str
from shared.errors import PipelineError
from shared.log import get_logger, lambda_entrypoint

logger = get_logger("validate_artifact")

DEFAULT_MAX_ARTIFACT_BYTES = 52_428_800
# Lambda's limit for unzipped code; anything bigger cannot be deployed (and may be a zip bomb).
MAX_UNZIPPED_BYTES = 262_144_000
# The application function's handler (terraform/lambda.tf, aws_lambda_function.app). Terraform may
# pass the configured value as EXPECTED_HANDLER; a manifest naming another handler is refused.
DEFAULT_EXPECTED_HANDLER = "handler.handler"
# The release contract this state machine and its Lambdas follow (the execution input's shape and
# keys): pyproject.toml's [tool.release-tooling] schema, which the release tooling writes as
# "contract" into every execution input.
RELEASE_CONTRACT = 1
MAX_MANIFEST_BYTES = 1_048_576
SHA256_RE = re.compile(r"[0-9a-fA-F]{64}")


class ArtifactRejectedError(PipelineError):
    """Base class: the artifact must not be deployed."""


class ReleaseContractError(ArtifactRejectedError):
    """The release was packaged by tooling of another release contract."""


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


class HandlerMismatchError(ArtifactRejectedError):
    """The manifest's handler is not the one the application function is configured with."""


class AmbiguousArchiveError(ArtifactRejectedError):
    """Tools could disagree about what the zip contains: duplicate names, entries missing from
    the central directory, a second archive, overlapping or unaccounted bytes."""


def parse_manifest(raw: bytes, *, commit_sha: str, artifact_name: str = "app") -> Mapping[str, Any]:
    """Return the manifest entry for ``artifact_name`` after checking its shape and commit."""
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ManifestInvalidError(
            f"manifest is {len(raw)} bytes; package.py writes a few hundred, at most "
            f"{MAX_MANIFEST_BYTES} are read"
        )
    try:
        manifest = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestInvalidError(f"manifest is not valid JSON: {exc}") from None
    except RecursionError:
        raise ManifestInvalidError("manifest is nested too deeply to be package.py's") from None
    if not isinstance(manifest, dict):
        raise ManifestInvalidError("manifest must be a JSON object")
    if manifest.get("commit") != commit_sha:
        raise CommitMismatchError(
            f"manifest is for commit {manifest.get('commit')!r} "
            f"but the release is for {commit_sha!r}; "
            "re-run release-tooling package upload for this commit"
        )
    artifacts = manifest.get("artifacts")
    if not isinstance(artifacts, dict):
        raise ManifestInvalidError(
            "manifest artifacts must be an object mapping names to entries, "
            f"got {type(artifacts).__name__}"
        )
    entry = artifacts.get(artifact_name)
    if not isinstance(entry, dict):
        raise ManifestInvalidError(f"manifest has no artifacts.{artifact_name} entry")
    for key, kind in (("sha256", str), ("size", int), ("handler", str)):
        value = entry.get(key)
        # bool is an int in Python, not in the manifest contract.
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ManifestInvalidError(
                f"manifest artifacts.{artifact_name}.{key} is missing or not a {kind.__name__}"
            )
    if not SHA256_RE.fullmatch(entry["sha256"]):
        raise ManifestInvalidError(
            f"manifest artifacts.{artifact_name}.sha256 must be 64 hex digits"
        )
    if entry["size"] < 0:
        raise ManifestInvalidError(f"manifest artifacts.{artifact_name}.size is negative")
    return entry


def check_expected_handler(handler: str, expected: str) -> None:
    if handler != expected:
        raise HandlerMismatchError(
            f"manifest handler {handler!r} is not the application function's configured handler "
            f"{expected!r}; Lambda would run {expected!r}. Keep them the same (package.py "
            "HANDLER and the function's handler in terraform/lambda.tf)"
        )


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
    # zipfile cuts a name at its first NUL; orig_filename keeps what the archive says.
    name = info.orig_filename
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        return "NUL or control character in the name"
    if not name:
        return "empty name"
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        return "parent-directory component"
    if "." in parts:
        return "'.' component"
    if "" in parts[:-1]:
        return "empty path component"
    if posixpath.normpath(name).startswith(".."):
        return "path escapes the archive root"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "symbolic link"
    return None


EOCD = struct.Struct("<4s4H2LH")  # end of central directory record
CDH = struct.Struct("<4s6H3L5H2L")  # central directory file header
LFH = struct.Struct("<4s5H3L2H")  # local file header


def check_structure(data: bytes) -> None:
    """Every byte belongs to exactly one part, in order: local entries listed in the central
    directory, the central directory, its end record, the comment (PKWARE APPNOTE 4.3.6).

    Readers disagree on everything else: a local entry the directory does not list (streaming
    unzippers extract it, zipfile and Lambda do not), a second archive glued on, overlapping
    entries, duplicate names (which copy wins depends on the tool).
    """
    eocd_at = data.rfind(b"PK\x05\x06", max(0, len(data) - EOCD.size - 65_535))
    if eocd_at < 0 or eocd_at + EOCD.size > len(data):
        raise CorruptArchiveError("artifact is not a readable zip archive: no end record")
    _, disk, cd_disk, n_disk, n_total, cd_size, cd_offset, comment_len = EOCD.unpack_from(
        data, eocd_at
    )
    if 0xFFFF in (n_disk, n_total) or 0xFFFFFFFF in (cd_size, cd_offset):
        raise AmbiguousArchiveError("ZIP64 archives are not accepted; package.py never writes one")
    if disk or cd_disk or n_disk != n_total:
        raise AmbiguousArchiveError("multi-disk (spanned) archives are not accepted")
    if eocd_at + EOCD.size + comment_len != len(data):
        raise AmbiguousArchiveError(
            f"{len(data) - eocd_at - EOCD.size - comment_len} byte(s) after the end record "
            "do not belong to the archive"
        )
    if cd_offset + cd_size != eocd_at:
        raise AmbiguousArchiveError(
            f"the central directory ({cd_size} bytes at {cd_offset}) does not end at the end "
            f"record ({eocd_at}): another archive or unlisted data precedes it"
        )
    spans: list[tuple[int, int, bytes]] = []
    seen: set[str] = set()
    pos = cd_offset
    for _ in range(n_total):
        if pos + CDH.size > eocd_at or data[pos : pos + 4] != b"PK\x01\x02":
            raise CorruptArchiveError("artifact zip's central directory is truncated")
        fields = CDH.unpack_from(data, pos)
        flags, csize, name_len, extra_len, comment = fields[3], fields[8], *fields[10:13]
        offset = fields[-1]
        name = data[pos + CDH.size : pos + CDH.size + name_len]
        pos += CDH.size + name_len + extra_len + comment
        decoded = name.decode("utf-8" if flags & 0x800 else "cp437", errors="replace")
        key = posixpath.normpath(decoded) + ("/" if decoded.endswith("/") else "")
        if key in seen:
            raise AmbiguousArchiveError(f"zip entry {decoded!r} appears more than once")
        seen.add(key)
        if offset + LFH.size > cd_offset or data[offset : offset + 4] != b"PK\x03\x04":
            raise AmbiguousArchiveError(f"zip entry {decoded!r} has no local header")
        local = LFH.unpack_from(data, offset)
        local_name = data[offset + LFH.size : offset + LFH.size + local[9]]
        if local_name != name:
            raise AmbiguousArchiveError(
                f"zip entry {decoded!r} is named {local_name!r} in its local header"
            )
        end = offset + LFH.size + local[9] + local[10] + csize
        if flags & 0x08:  # data descriptor: optional signature, crc, sizes
            end += 16 if data[end : end + 4] == b"PK\x07\x08" else 12
        spans.append((offset, end, name))
    if pos != eocd_at:
        raise AmbiguousArchiveError("the central directory holds more than its entry count says")
    covered = 0
    for start, end, name in sorted(spans):
        if start != covered:
            what = "overlaps the previous entry" if start < covered else "follows unlisted bytes"
            raise AmbiguousArchiveError(
                f"zip entry {name!r} at byte {start} {what} (bytes {covered}-{start}); the zip "
                "holds data the central directory does not list"
            )
        covered = end
    if covered != cd_offset:
        raise AmbiguousArchiveError(
            f"bytes {covered}-{cd_offset} before the central directory belong to no listed entry "
            "(an entry present only in local headers?)"
        )


def inspect_archive(data: bytes, handler: str, function: str = "app") -> tuple[int, list[str]]:
    """Check the zip, that ``handler`` ("module.function") exists and that the smoke checks are
    valid; return the entry count and the smoke checks' names."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise CorruptArchiveError(f"artifact is not a readable zip archive: {exc}") from None
    check_structure(data)
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
        checks = smoke_checks.from_archive(archive, function)
        return len(infos), [check.name for check in checks]


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


def check_contract(event: Mapping[str, Any]) -> None:
    contract = event.get("contract")
    if contract != RELEASE_CONTRACT:
        raise ReleaseContractError(
            f"the release was packaged for release contract {contract!r}, but this state machine "
            f"follows contract {RELEASE_CONTRACT}: install the tooling version pyproject.toml pins "
            "(make setup) and upload the release again"
        )


def check_artifact(
    bucket: str, key: str, entry: Mapping[str, Any], max_bytes: int, name: str
) -> dict[str, Any]:
    """Size, checksum, archive, handler and smoke checks of one app function's zip."""
    size = _head_size(bucket, key)
    check_size(size, max_bytes)
    data = _get_bytes(bucket, key)
    if len(data) != entry["size"]:
        raise ChecksumMismatchError(
            f"artifact {name} is {len(data)} bytes but the manifest says {entry['size']}"
        )
    sha256 = check_checksum(data, entry["sha256"])
    entries, checks = inspect_archive(data, entry["handler"], name)
    return {
        "key": name,
        "artifact_key": key,
        "sha256": sha256,
        "size": size,
        "entries": entries,
        "smoke_checks": checks,
    }


def validate(event: Mapping[str, Any], max_bytes: int) -> dict[str, Any]:
    """Every app function's zip of the release (terraform/names app_function_keys, the primary's
    at artifact_key, the others next to the manifest as <key>.zip, as packaging uploads them)."""
    check_contract(event)
    commit = require_str(event, "commit_sha")
    bucket = require_str(event, "artifact_bucket")
    key = require_str(event, "artifact_key")
    manifest_key = require_str(event, "manifest_key")
    functions = app_functions.from_env()

    manifest = _get_bytes(bucket, manifest_key)
    expected = os.environ.get("EXPECTED_HANDLER") or DEFAULT_EXPECTED_HANDLER
    results = []
    for index, function in enumerate(functions):
        entry = parse_manifest(manifest, commit_sha=commit, artifact_name=function.key)
        check_expected_handler(entry["handler"], expected)
        beside_manifest = posixpath.join(posixpath.dirname(manifest_key), f"{function.key}.zip")
        object_key = key if index == 0 else beside_manifest
        try:
            results.append(check_artifact(bucket, object_key, entry, max_bytes, function.key))
        except PipelineError as exc:
            if index == 0:
                raise
            # Say which function's zip it was: the primary's errors keep their old wording.
            raise type(exc)(f"app function {function.key}: {exc}") from None
    primary = results[0]
    return {
        "commit": commit,
        "bucket": bucket,
        "key": key,
        "sha256": primary["sha256"],
        "size": primary["size"],
        "handler": expected,
        "entries": primary["entries"],
        "smoke_checks": primary["smoke_checks"],
        "functions": [
            {k: r[k] for k in ("key", "artifact_key", "sha256", "size")} for r in results
        ],
    }


@lambda_entrypoint(logger)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = validate(event, int_env("MAX_ARTIFACT_BYTES", DEFAULT_MAX_ARTIFACT_BYTES))
    logger.info("artifact accepted", extra={"artifact": result})
    return result
