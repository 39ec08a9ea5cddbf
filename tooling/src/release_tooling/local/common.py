"""What every part of the local rehearsal shares: where things are, and how problems are said."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .. import project

ROOT = project.ROOT

STATE_DIR = ROOT / ".local"
TF_DIR = ROOT / "terraform"
BOOTSTRAP_DIR = TF_DIR / "bootstrap"
BUILD_DIR = ROOT / "build"
PLAN_DIR = STATE_DIR / "plan"
REGION_FALLBACK = "us-east-1"
ALIASES = ("staging", "production")
# Where warm `up` snapshots live (snapshot.py): RELEASE_SNAPSHOT_DIR, else this under the root.
SNAPSHOT_ENV = "RELEASE_SNAPSHOT_DIR"
SNAPSHOT_DIR_NAME = ".local-snapshots"
# What a scratch copy of the repository leaves out: environments, builds, caches, history.
SCRATCH_EXCLUDE = shutil.ignore_patterns(
    ".venv",
    ".local",
    SNAPSHOT_DIR_NAME,
    "build",
    ".terraform",
    ".git",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
)


class LocalError(Exception):
    """A problem the user can fix; the message says how. Printed without a traceback."""


def say(message: str = "") -> None:
    print(message, flush=True)


def short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def package_module():
    from .. import package

    return package


class ScratchCopy:
    """A copy of the repository in a temporary directory, driven through `release-tooling local`
    in a child process: its own .local/ and build/, so neither the working tree nor an environment
    already up is touched (bench and demo run here). It shares the source's snapshots."""

    def __init__(self, prefix: str, source: Path = ROOT) -> None:
        # The environment as it is now: a test that later monkeypatches it (say, unsets
        # TF_PROVIDER_MIRROR) must not leak into commands run for this copy on another thread.
        self.environ = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        self.source = source
        self.scratch = Path(tempfile.mkdtemp(prefix=prefix))
        self.path = self.scratch / source.name
        self.environ[project.ROOT_ENV] = str(self.path)
        # The copy is the same tree: it restores (and saves) the source's snapshots, which are
        # keyed by everything the apply reads (bench points this at a directory of its own).
        self.environ.setdefault(SNAPSHOT_ENV, str(source / SNAPSHOT_DIR_NAME))
        shutil.copytree(source, self.path, ignore=SCRATCH_EXCLUDE)
        # Requirements already installed for Lambda's platform: reused, not installed again.
        cache = Path("build") / package_module().DEPS_CACHE
        if (source / cache).is_dir():
            shutil.copytree(source / cache, self.path / cache)

    @property
    def handler(self) -> Path:
        return self.path / "lambdas" / "app" / "handler.py"

    def restore_handler(self) -> None:
        """Put the app's handler back as the source has it: scenarios edit it to make distinct
        releases, and the source's tree is the one its snapshots were made of."""
        shutil.copy2(self.source / self.handler.relative_to(self.path), self.handler)

    def local(
        self, *args: str, capture: bool = True, timeout: float | None = None
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "release_tooling", "local", *args],
            cwd=self.path,
            env=self.environ,
            capture_output=capture,
            text=True,
            timeout=timeout,
            check=False,
        )

    def outputs(self) -> dict:
        """What `up` recorded: the main stack's outputs, the bootstrap's under "bootstrap"."""
        return json.loads((self.path / ".local" / "outputs.json").read_text(encoding="utf-8"))

    def admin_client(self, service: str):
        """A client of the copy's endpoint with its per-run administrator key (a person looking
        at the console), in the region the copy's stack was applied to."""
        import boto3

        endpoint = json.loads((self.path / ".local" / "endpoint.json").read_text(encoding="utf-8"))
        return boto3.client(
            service,
            endpoint_url=endpoint["url"],
            region_name=self.outputs().get("aws_region") or REGION_FALLBACK,
            aws_access_key_id=endpoint["access_key_id"],
            aws_secret_access_key=endpoint["secret_access_key"],
        )

    def remove(self) -> None:
        """Stop the copy's endpoint (if any) and delete the copy."""
        if (self.path / ".local").exists():
            self.local("down")
        shutil.rmtree(self.scratch, ignore_errors=True)
