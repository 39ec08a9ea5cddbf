"""Where the service repository is, and which tooling contract it was generated for.

Every command of the package works on one service repository: the directory holding
`state_machine.asl.json` and `terraform/`, found from the working directory upwards (as git finds
`.git`), or named by RELEASE_PROJECT_ROOT. Its `pyproject.toml` says which release contract
(`[tool.release-tooling] schema`) its state machine, manifest and Makefile follow.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from . import SCHEMA_VERSION, __version__

ROOT_ENV = "RELEASE_PROJECT_ROOT"


class ProjectError(Exception):
    """Not inside a service repository, or one made for another version of the tooling."""


def find_root(start: Path | None = None) -> Path | None:
    named = os.environ.get(ROOT_ENV)
    if named:
        return Path(named).resolve()
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / "state_machine.asl.json").is_file() and (directory / "terraform").is_dir():
            return directory
    return None


# Resolved once per process: commands run from anywhere inside the repository.
ROOT = find_root() or Path.cwd().resolve()


def require_repository(root: Path | None = None) -> Path:
    """The service repository the commands work on, or one line saying where to run them."""
    found = root if root is not None else find_root()
    if found is None:
        raise ProjectError(
            f"no service repository at {Path.cwd()} or above it: run the command inside a "
            "repository generated from the template (the directory holding "
            f"state_machine.asl.json and terraform/), or set {ROOT_ENV} to it"
        )
    if not (found / "state_machine.asl.json").is_file() or not (found / "terraform").is_dir():
        raise ProjectError(
            f"{ROOT_ENV}={found} is not a service repository (no state_machine.asl.json "
            "and terraform/ there): point it at the repository generated from the template"
        )
    return found


def check_schema(root: Path = ROOT) -> None:
    """Stop with one line when the repository's release contract is not this package's."""
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        return
    settings = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {})
    wanted = settings.get("release-tooling", {}).get("schema")
    if wanted is None or wanted == SCHEMA_VERSION:
        return
    if wanted > SCHEMA_VERSION:
        fix = "upgrade the tooling: `make setup` installs the version pyproject.toml pins"
    else:
        fix = "update the repository from the template (`cruft update`), whose CHANGELOG says how"
    raise ProjectError(
        f"this repository follows release contract {wanted} but serverless-release-tooling "
        f"{__version__} implements contract {SCHEMA_VERSION}: {fix}"
    )


def service_name(root: Path = ROOT) -> str:
    """The service's slug, the prefix of its AWS names: `[project] name` in pyproject.toml."""
    pyproject = root / "pyproject.toml"
    try:
        return tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["name"]
    except (OSError, KeyError, tomllib.TOMLDecodeError) as exc:
        raise ProjectError(
            f"cannot read the service name ([project] name) from {pyproject}: {exc}"
        ) from None
