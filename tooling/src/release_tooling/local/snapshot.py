"""Warm `local up`: the applied environment saved after a cold apply, restored in seconds.

After a cold `up` (both Terraform roots applied) the endpoint's whole state is saved next to both
roots' Terraform state and the recorded outputs, under a key that is a hash of everything the
apply read: the Terraform files of both roots (lock files included), the Lambda zips terraform/
uploads, the TF_VAR_* variables, and the Terraform version. The next `up` of the same inputs starts
the endpoint from that state instead of applying (`local up --cold` forces the apply). A snapshot
records the tooling, moto and Python versions it was made by (backend_state.versions); another
version's snapshot is refused with one line and the cold path taken, which then replaces it.

The snapshots live in `.local-snapshots/` (git-ignored; RELEASE_SNAPSHOT_DIR moves it, which the
rehearsal fixture does to share one across its scratch copies): `local down` keeps them,
`local down --purge` deletes them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..local_aws import backend_state, process
from .common import ROOT, SNAPSHOT_DIR_NAME, SNAPSHOT_ENV, TF_DIR, LocalError, say

DIR_NAME = SNAPSHOT_DIR_NAME
STATE_FILE = "endpoint.state"
META_FILE = "meta.json"
IDLE_WAIT_SECONDS = 30  # how long a save waits for the endpoint to settle after the apply
KEEP = 4  # snapshots kept per directory (newest first); an older one is a tree nobody runs now
# Files under terraform/ that are not inputs: what terraform and the local run write there.
_NOT_INPUTS = (".terraform", "local_override.tf")
_NOT_INPUT_SUFFIXES = (".tfstate", ".tfstate.backup", ".tfplan", "_override.tf")


class SnapshotRefused(LocalError):
    """A snapshot exists for these inputs but cannot be used; the message is the one line why."""


def root_dir() -> Path:
    configured = os.environ.get(SNAPSHOT_ENV)
    return Path(configured) if configured else ROOT / DIR_NAME


def terraform_version(environ=None) -> str:
    from .terraform_roots import settings

    binary = settings(environ=environ).terraform
    proc = subprocess.run(
        [binary, "version", "-json"], capture_output=True, text=True, check=False, timeout=60
    )
    try:
        return json.loads(proc.stdout)["terraform_version"]
    except (ValueError, KeyError):
        detail = proc.stderr.strip()
        raise LocalError(f"`{binary} version -json` did not answer: {detail}") from None


def input_files(tf_dir: Path = TF_DIR) -> list[Path]:
    """Every file of terraform/ (bootstrap and modules included) Terraform reads, sorted."""
    files = []
    for path in sorted(tf_dir.rglob("*")):
        rel = path.relative_to(tf_dir)
        if not path.is_file() or any(part in _NOT_INPUTS for part in rel.parts):
            continue
        if path.name.endswith(_NOT_INPUT_SUFFIXES):
            continue
        files.append(path)
    return files


def inputs(manifest: dict, environ=None, tf_dir: Path = TF_DIR) -> dict:
    """What a cold apply depends on, as a JSON-able dict (the key is its hash)."""
    source = os.environ if environ is None else environ
    return {
        "terraform_files": {
            path.relative_to(tf_dir).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in input_files(tf_dir)
        },
        "zips": {name: entry["sha256"] for name, entry in sorted(manifest["artifacts"].items())},
        "variables": {k: v for k, v in sorted(source.items()) if k.startswith("TF_VAR_")},
        "terraform": terraform_version(environ),
    }


def key_of(described: dict) -> str:
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Snapshot:
    path: Path

    @property
    def key(self) -> str:
        return self.path.name

    @property
    def meta(self) -> dict:
        return json.loads((self.path / META_FILE).read_text(encoding="utf-8"))

    def file(self, name: str) -> Path:
        return self.path / name


def lookup(key: str, directory: Path | None = None) -> Snapshot | None:
    """The snapshot of these inputs, or None. SnapshotRefused (one line) when one exists that
    another tooling, moto or Python made, or that is damaged."""
    path = (directory or root_dir()) / key
    if not (path / META_FILE).is_file():
        return None
    snap = Snapshot(path)
    try:
        meta = snap.meta
    except (OSError, ValueError) as exc:
        raise SnapshotRefused(f"snapshot {key[:12]} is unreadable ({exc})") from None
    made_by, here = meta.get("versions", {}), backend_state.versions()
    if made_by != here:
        differ = ", ".join(
            f"{name} {made_by.get(name, '?')} (now {here[name]})"
            for name in here
            if made_by.get(name) != here[name]
        )
        raise SnapshotRefused(f"snapshot {key[:12]} was made by another version: {differ}")
    missing = [name for name in meta.get("files", {}) if not snap.file(name).is_file()]
    if missing or STATE_FILE not in meta.get("files", {}):
        raise SnapshotRefused(f"snapshot {key[:12]} is incomplete (missing {missing})")
    return snap


def save(
    endpoint: process.Endpoint,
    key: str,
    described: dict,
    files: dict[str, Path],
    directory: Path | None = None,
) -> Snapshot:
    """Save the endpoint's state and `files` (name -> path) as the snapshot of `key`.

    Written into a temporary directory beside the final one and renamed into place, so a reader
    sees a whole snapshot or none; a concurrent save of the same key keeps whichever came first.
    """
    directory = directory or root_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    staging = Path(tempfile.mkdtemp(prefix=f".saving-{key[:12]}-", dir=directory))
    try:
        started = time.monotonic()
        # The endpoint writes the file itself: it is the one process that holds the state. Right
        # after the apply, the execution CreatePipeline starts may still be finishing: wait.
        deadline = time.monotonic() + IDLE_WAIT_SECONDS
        while True:
            try:
                summary = endpoint.control(
                    "POST", "snapshot", {"path": str(staging / STATE_FILE)}, timeout=300
                )
                break
            except process.EndpointError as exc:
                if "not idle" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        for name, source in files.items():
            shutil.copy2(source, staging / name)
        names = [STATE_FILE, *files]
        meta = {
            "key": key,
            "versions": backend_state.versions(),
            "inputs": described,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "backends": summary.get("backends", []),
            "files": {name: _sha256(staging / name) for name in names},
            "save_seconds": round(time.monotonic() - started, 2),
        }
        (staging / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        final = directory / key
        if final.exists():  # another version's, refused earlier: make way for this one
            trash = Path(tempfile.mkdtemp(prefix=".old-", dir=directory))
            with contextlib.suppress(OSError):
                os.replace(final, trash / key)
            shutil.rmtree(trash, ignore_errors=True)
        try:
            os.replace(staging, final)
        except OSError:
            if not (final / META_FILE).is_file():  # not a concurrent save of the same key
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    prune(directory, keep=key)
    return Snapshot(final)


def verify(snap: Snapshot) -> None:
    """The files are the ones the snapshot was saved with (a damaged copy is not restored)."""
    for name, digest in snap.meta["files"].items():
        if _sha256(snap.file(name)) != digest:
            raise SnapshotRefused(f"snapshot {snap.key[:12]}: {name} does not match its checksum")


def prune(directory: Path, keep: str) -> None:
    """Keep the KEEP newest snapshots (and always `keep`)."""
    found = sorted(
        (p for p in directory.iterdir() if (p / META_FILE).is_file()),
        key=lambda p: (p.name == keep, (p / META_FILE).stat().st_mtime),
        reverse=True,
    )
    for old in found[KEEP:]:
        shutil.rmtree(old, ignore_errors=True)


def purge(directory: Path | None = None) -> int:
    """Delete every snapshot; returns how many there were."""
    directory = directory or root_dir()
    if not directory.is_dir():
        return 0
    count = sum(1 for p in directory.iterdir() if (p / META_FILE).is_file())
    shutil.rmtree(directory)
    return count


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def note(message: str) -> None:
    say(f"  snapshot: {message}")
