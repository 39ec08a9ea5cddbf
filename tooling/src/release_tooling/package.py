#!/usr/bin/env python3
"""Build the Lambda zips and manifest, and upload a release.

  release-tooling package [--out build] [--commit SHA]
      build/<lambda>.zip for every directory in lambdas/ except shared/ (pipeline zips also get
      the shared/ package) and build/manifest.json. Zips are byte-identical for identical sources:
      sorted entries, 1980-01-01 timestamps, mode 0644, no __pycache__/tests.

  release-tooling package upload --bucket B [--commit SHA] [--poll-interval 15] [--max-polls 80]
      Builds, then uploads s3://B/releases/<sha>/app.zip and manifest.json (skipped when already
      there with the same sha256; refused when there with different bytes unless --force), and
      finally s3://B/pipeline/source.zip holding execution-input.json, which starts the release.

The commit defaults to `git rev-parse HEAD`.
"""

import argparse
import base64
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import project

ROOT = project.ROOT
LAMBDAS = ROOT / "lambdas"
SHARED = "shared"
APP = "app"
HANDLER = "handler.handler"
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644  # regular file, rw-r--r--
SKIP_DIRS = {"__pycache__", "tests", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
SKIP_SUFFIXES = (".pyc", ".pyo")
COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
SOURCE_KEY = "pipeline/source.zip"


class PackagingError(Exception):
    """A build or upload problem with a message saying how to fix it."""


def iter_files(directory: Path) -> Iterator[Path]:
    # Symbolic links are refused, not followed: a link such as lambdas/app/x -> /proc/self/environ
    # would ship whatever it points at (in CI, the environment holding the role's keys).
    if directory.is_symlink():
        raise PackagingError(_symlink_message(directory))
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory)
        if any(part in SKIP_DIRS or part.startswith(".") for part in rel.parts):
            continue
        if path.is_symlink():
            raise PackagingError(_symlink_message(path))
        if path.is_file() and not path.name.endswith(SKIP_SUFFIXES):
            yield path


def _symlink_message(path: Path) -> str:
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    return (
        f"{shown} is a symbolic link (to {os.readlink(path)}); Lambda code is packaged from "
        "regular files only. Replace the link with a copy of the file or directory it points at."
    )


def deterministic_zip(entries: Iterable[tuple[str, bytes]]) -> bytes:
    """Zip (name, data) pairs so identical input gives identical bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, so external_attr is read as a mode
            info.external_attr = FILE_MODE << 16
            archive.writestr(info, data, compresslevel=9)
    return buffer.getvalue()


def lambda_entries(name: str, lambdas_dir: Path = LAMBDAS) -> list[tuple[str, bytes]]:
    source = lambdas_dir / name
    entries = [(p.relative_to(source).as_posix(), p.read_bytes()) for p in iter_files(source)]
    if name != APP:
        shared = lambdas_dir / SHARED
        entries += [
            (f"{SHARED}/{p.relative_to(shared).as_posix()}", p.read_bytes())
            for p in iter_files(shared)
        ]
    if not any(n == "handler.py" for n, _ in entries):
        raise PackagingError(f"lambdas/{name}/handler.py is missing; every Lambda needs one")
    return entries


def lambda_names(lambdas_dir: Path = LAMBDAS) -> list[str]:
    return sorted(
        p.name
        for p in lambdas_dir.iterdir()
        if p.is_dir() and p.name != SHARED and not p.name.startswith((".", "_"))
    )


def atomic_write(path: Path, data: bytes) -> None:
    """Write via a temp file in the same directory, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; build outputs are shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def built_at() -> str:
    # SOURCE_DATE_EPOCH (reproducible-builds convention) pins the timestamp when set.
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = datetime.fromtimestamp(int(epoch), UTC) if epoch else datetime.now(UTC)
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def working_tree_id(artifacts: dict[str, Any]) -> str:
    """A 40-hex id for sources that have no commit yet: the same sources always give the same id."""
    digest = hashlib.sha1(usedforsecurity=False)
    for name in sorted(artifacts):
        digest.update(f"{name}:{artifacts[name]['sha256']}\n".encode())
    return digest.hexdigest()


def build(out: Path, commit: str | None, lambdas_dir: Path = LAMBDAS) -> dict[str, Any]:
    """Zip every Lambda into ``out`` with a manifest; ``commit=None`` records a working-tree id."""
    artifacts: dict[str, Any] = {}
    for name in lambda_names(lambdas_dir):
        data = deterministic_zip(lambda_entries(name, lambdas_dir))
        atomic_write(out / f"{name}.zip", data)
        artifacts[name] = {
            "file": f"{name}.zip",
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
            "handler": HANDLER,
        }
    if APP not in artifacts:
        raise PackagingError(
            f"{lambdas_dir / APP} is missing; it is the application being released"
        )
    if commit is None:
        commit = working_tree_id(artifacts)
    manifest = {"commit": commit, "built_at": built_at(), "artifacts": artifacts}
    atomic_write(
        out / "manifest.json", (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    )
    return manifest


def git_commit(cwd: Path = ROOT) -> str:
    try:
        proc = subprocess.run(  # noqa: S603
            ["git", "rev-parse", "HEAD"],  # noqa: S607 - git from PATH is intended
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        raise PackagingError("git is not installed; pass --commit SHA") from None
    if proc.returncode != 0:
        raise PackagingError(
            "cannot read the commit with git rev-parse HEAD "
            f"({(proc.stderr.strip().splitlines() or ['not a git repository'])[0]}); "
            "run inside a git repository with at least one commit, or pass --commit SHA"
        )
    return proc.stdout.strip()


def resolve_commit(commit: str | None) -> str:
    commit = commit if commit is not None else git_commit()
    if not COMMIT_RE.match(commit):
        raise PackagingError(f"commit {commit!r} is not a full 40-character lowercase hex SHA")
    return commit


def execution_input(bucket: str, commit: str, poll_interval: int, max_polls: int) -> dict[str, Any]:
    return {
        "commit_sha": commit,
        "artifact_bucket": bucket,
        "artifact_key": f"releases/{commit}/app.zip",
        "manifest_key": f"releases/{commit}/manifest.json",
        "poll_interval_seconds": poll_interval,
        "max_polls": max_polls,
    }


def source_zip(payload: dict[str, Any]) -> bytes:
    return deterministic_zip(
        [("execution-input.json", (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode())]
    )


def _put(
    s3: Any, bucket: str, key: str, data: bytes, commit: str, *, force: bool, immutable: bool
) -> str:
    from botocore.exceptions import ClientError

    digest = hashlib.sha256(data).hexdigest()
    if immutable:
        try:
            head = s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("404", "NoSuchKey", "NotFound"):
                raise
        else:
            existing = head.get("Metadata", {}).get("sha256")
            if existing == digest:
                return "unchanged"
            if not force:
                raise PackagingError(
                    f"s3://{bucket}/{key} already exists with sha256 {existing}, not {digest}; "
                    "release artifacts are immutable (pass --force to overwrite)"
                )
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=data,
        ChecksumSHA256=base64.b64encode(bytes.fromhex(digest)).decode(),
        Metadata={"sha256": digest, "commit": commit},
        ContentType="application/zip" if key.endswith(".zip") else "application/json",
    )
    return "uploaded"


def upload(
    bucket: str,
    commit: str,
    out: Path,
    *,
    poll_interval: int,
    max_polls: int,
    force: bool = False,
    s3: Any = None,
    before_trigger: Any = None,
) -> dict[str, Any]:
    """Upload the release, pipeline/source.zip last. before_trigger (local fault injection only)
    runs after the artifacts are up and before the object that starts the pipeline."""
    manifest = build(out, commit)
    if s3 is None:
        import boto3

        s3 = boto3.client("s3")
    prefix = f"releases/{commit}"
    results = {
        f"{prefix}/app.zip": _put(
            s3,
            bucket,
            f"{prefix}/app.zip",
            (out / "app.zip").read_bytes(),
            commit,
            force=force,
            immutable=True,
        ),
        # The manifest carries built_at, so compare the artifact, not the manifest bytes.
        f"{prefix}/manifest.json": _put(
            s3,
            bucket,
            f"{prefix}/manifest.json",
            (out / "manifest.json").read_bytes(),
            commit,
            force=True,
            immutable=False,
        ),
    }
    if before_trigger is not None:
        before_trigger()
    # Last, because creating this object starts the pipeline.
    payload = execution_input(bucket, commit, poll_interval, max_polls)
    results[SOURCE_KEY] = _put(
        s3, bucket, SOURCE_KEY, source_zip(payload), commit, force=True, immutable=False
    )
    return {
        "commit": commit,
        "bucket": bucket,
        "objects": results,
        "app_sha256": manifest["artifacts"][APP]["sha256"],
    }


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--out", type=Path, default=ROOT / "build", help="output directory (default build/)"
    )
    common.add_argument("--commit", help="40-hex commit SHA (default: git rev-parse HEAD)")
    sub.add_parser("build", parents=[common], help="build zips and manifest (default)")
    up = sub.add_parser("upload", parents=[common], help="build and upload a release")
    up.add_argument("--bucket", required=True, help="artifact bucket name")
    up.add_argument(
        "--poll-interval", type=positive_int, default=15, help="seconds between deployment polls"
    )
    up.add_argument(
        "--max-polls", type=positive_int, default=80, help="polls before a deployment times out"
    )
    up.add_argument(
        "--force", action="store_true", help="overwrite a release whose app.zip differs"
    )
    if not argv or argv[0] not in ("build", "upload", "-h", "--help"):
        argv = ["build", *argv]
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.command == "upload":
            commit = resolve_commit(args.commit)
            result = upload(
                args.bucket,
                commit,
                args.out,
                poll_interval=args.poll_interval,
                max_polls=args.max_polls,
                force=args.force,
            )
            print(json.dumps(result, indent=2))
        else:
            # A build needs no commit (a fresh repository has none): the manifest then records
            # an id derived from the zips. Releases always name a real commit.
            try:
                commit = resolve_commit(args.commit)
            except PackagingError as exc:
                if args.commit is not None:
                    raise
                note = f"package.py: note: {exc}; recording a working-tree id instead"
                print(note, file=sys.stderr)
                commit = None
            manifest = build(args.out, commit)
            for name, entry in manifest["artifacts"].items():
                path = args.out / entry["file"]
                print(f"{path}  {entry['size']:>7} bytes  sha256 {entry['sha256']}  ({name})")
    except PackagingError as exc:
        print(f"package.py: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
