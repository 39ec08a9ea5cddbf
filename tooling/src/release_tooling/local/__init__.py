"""`release-tooling local`: the local rehearsal of the delivery pipeline (see cli.py for usage).

Modules by job: common (paths, errors, scratch copies), terraform_roots (the local-only Terraform
parts, run through release_tooling.terraform), environment (endpoint, CI role credentials,
up/down/plan), release, status, demo, bench, cli (arguments and dispatch).

The names below stay importable from `release_tooling.local` for the repositories' own tests.
"""

from __future__ import annotations

import importlib
import sys

# Dependency order. Paths are resolved from release_tooling.project.ROOT when a module is first
# imported; `importlib.reload(release_tooling.local)` (rehearsal.tooling_module, pointing the
# package at a scratch copy) re-runs this file, which then reloads every part in this order so
# their paths follow.
_PARTS = ("common", "terraform_roots", "environment", "release", "status", "demo", "bench", "cli")
for _part in _PARTS:
    _loaded = sys.modules.get(f"{__name__}.{_part}")
    if _loaded is not None:
        importlib.reload(_loaded)

from .. import terraform as tf_runner  # noqa: E402
from ..local_aws import process  # noqa: E402
from .bench import cmd_bench  # noqa: E402
from .cli import build_parser, cmd_run, main  # noqa: E402
from .common import (  # noqa: E402
    ALIASES,
    BOOTSTRAP_DIR,
    BUILD_DIR,
    PLAN_DIR,
    REGION_FALLBACK,
    ROOT,
    STATE_DIR,
    TF_DIR,
    LocalError,
    ScratchCopy,
    say,
)
from .demo import cmd_demo  # noqa: E402
from .environment import (  # noqa: E402
    CI_ROLES,
    Env,
    assume_ci_role,
    cmd_down,
    cmd_plan,
    cmd_up,
    github_oidc_token,
    require_env,
)
from .release import FAULTS, alias_versions, cmd_release, package_release  # noqa: E402
from .status import cmd_status  # noqa: E402
from .terraform_roots import (  # noqa: E402
    BOOTSTRAP,
    MAIN,
    Root,
    override_text,
    terraform,
    terraform_ok,
    terraform_outputs,
)

__all__ = [
    "ALIASES",
    "BOOTSTRAP",
    "BOOTSTRAP_DIR",
    "BUILD_DIR",
    "CI_ROLES",
    "FAULTS",
    "MAIN",
    "PLAN_DIR",
    "REGION_FALLBACK",
    "ROOT",
    "STATE_DIR",
    "TF_DIR",
    "Env",
    "LocalError",
    "Root",
    "ScratchCopy",
    "alias_versions",
    "assume_ci_role",
    "build_parser",
    "cmd_bench",
    "cmd_demo",
    "cmd_down",
    "cmd_plan",
    "cmd_release",
    "cmd_run",
    "cmd_status",
    "cmd_up",
    "github_oidc_token",
    "main",
    "override_text",
    "package_release",
    "process",
    "require_env",
    "say",
    "terraform",
    "terraform_ok",
    "terraform_outputs",
    "tf_runner",
]
