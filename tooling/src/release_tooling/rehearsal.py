"""The rehearsal environment a repository's pipeline scenarios share, started in the background.

A cold `up` takes a minute or two, most of it the AWS provider waiting for S3 to read back stable,
so the scenarios run last and their environment is started while collection ends: the wait overlaps
the rest of the suite instead of adding to it. Every scratch copy of a repository shares the
repository's snapshot directory (RELEASE_SNAPSHOT_DIR, else <repo>/.local-snapshots), so only the
first session of an unchanged tree pays the cold apply; later ones restore it in seconds. The
scenarios work on a scratch copy of the project, so they may edit lambdas/app freely and never
touch the working tree or an environment already up.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
from pathlib import Path

import pytest

from . import project as project_paths
from .local.common import ScratchCopy

ROOT = project_paths.ROOT
# About 100 s on a quiet 2-core machine; generous, as CI machines run other suites alongside.
UP_TIMEOUT = 600


def commit_id(label: str) -> str:
    """A distinct, stable 40-hex commit id per scenario label (releases of the same tree)."""
    return hashlib.sha1(label.encode(), usedforsecurity=False).hexdigest()


class Project(ScratchCopy):
    """The repository's scratch copy the scenarios release from and inspect."""

    def local(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        return super().local(*args, timeout=timeout)  # a hung command fails its test

    def status(self) -> dict:
        proc = self.local("status", "--json", "--last", "100")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return json.loads(proc.stdout)

    @property
    def slug(self) -> str:
        return self.path.name  # baked projects live in a directory named after the slug

    def execution_output(self, commit: str) -> dict:
        return json.loads(self.execution(commit)["output"] or "{}")

    def execution(self, commit: str) -> dict:
        """The newest execution of a commit (found by its input: CodePipeline names it)."""
        return next(e for e in self.status()["executions"] if e["commit"] == commit)

    def edit_app(self, marker: str, body: str | None = None) -> None:
        text = body if body is not None else self.handler.read_text(encoding="utf-8")
        self.handler.write_text(text + f"\n# {marker}\n", encoding="utf-8")


class PipelineEnvironment:
    """A scratch copy of the repository brought up by `release-tooling local up` in the
    background.

    Before `up`, it records what `release` and `plan` say when nothing is up, so the scenarios can
    check those messages without a second environment.
    """

    def __init__(self) -> None:
        # Like every ScratchCopy, it restores and saves the repository's own snapshots: they are
        # keyed by everything the apply reads, and concurrent saves of one key keep one whole.
        self.project = Project("pipeline-")
        self.before_up: dict[str, subprocess.CompletedProcess] = {}
        self.up: subprocess.CompletedProcess | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._bring_up, name="local-up", daemon=True)

    def start(self) -> PipelineEnvironment:
        self._thread.start()
        return self

    def _bring_up(self) -> None:
        try:
            for command in ("release", "plan"):
                self.before_up[command] = self.project.local(command)
            self.up = self.project.local("up", timeout=UP_TIMEOUT)
        except BaseException as exc:  # reported to the tests that need the environment
            self.error = exc

    def ready(self) -> Project:
        """The project once `up` has finished; fails with what went wrong otherwise."""
        self._thread.join(UP_TIMEOUT + 60)
        if self._thread.is_alive():
            raise AssertionError(f"release-tooling local up did not finish in {UP_TIMEOUT} s")
        if self.error is not None:
            raise AssertionError(f"bringing the environment up failed: {self.error!r}")
        assert self.up is not None
        assert self.up.returncode == 0, self.up.stdout + self.up.stderr
        return self.project

    def close(self) -> None:
        self._thread.join(UP_TIMEOUT + 60)
        self.project.remove()


# Where the plugin keeps the environment it started, for the `rehearsal` fixture to pick up.
PIPELINE_ENVIRONMENT = pytest.StashKey[PipelineEnvironment]()


def tooling_module(name: str, root: Path):
    """release_tooling.<name> with its paths pointing at `root` (a scenario's scratch copy).

    The package resolves the repository once per process; scenarios that call the tooling in-process
    (rather than through `release-tooling local`) re-resolve it for the copy they work on.
    """
    import importlib

    os.environ[project_paths.ROOT_ENV] = str(root)
    importlib.reload(project_paths)
    module = importlib.import_module(f"release_tooling.{name}")
    return importlib.reload(module)
