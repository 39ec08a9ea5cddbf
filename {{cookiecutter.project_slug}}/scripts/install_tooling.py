#!/usr/bin/env python3
"""Install the release tooling this repository pins into a virtualenv; say where it came from.

  python scripts/install_tooling.py [--no-deps] PYTHON    (make setup / setup-ci run it)

pyproject.toml's [tool.release-tooling] pins `version`. The first source that has it wins:
  1. RELEASE_TOOLING_PATH  a checkout's tooling/ directory (offline; a template checkout has one)
  2. the package index     serverless-release-tooling==<version>, once published there
  3. `git`                 the template's repository at the commit this one was generated from
The installed version must be the pinned one; anything else stops with one line saying what to do.
Standard library only: this runs before the tooling exists.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DISTRIBUTION = "serverless-release-tooling"


def pip(python: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python, "-m", "pip", "install", "--quiet", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def installed_version(python: str) -> str | None:
    probe = subprocess.run(
        [python, "-c", f"import importlib.metadata as m; print(m.version({DISTRIBUTION!r}))"],
        capture_output=True,
        text=True,
        check=False,
    )
    return probe.stdout.strip() if probe.returncode == 0 else None


def main(argv: list[str]) -> int:
    # --no-deps: CI jobs that hold credentials install the dependencies hash-locked beforehand.
    extra = ["--no-deps"] if "--no-deps" in argv else []
    argv = [arg for arg in argv if arg != "--no-deps"]
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    python = argv[0]
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    pinned = settings["tool"]["release-tooling"]
    version, git_source = pinned["version"], pinned.get("git", "")

    local = os.environ.get("RELEASE_TOOLING_PATH")
    if local:
        if not (Path(local) / "pyproject.toml").is_file():
            print(
                f"RELEASE_TOOLING_PATH={local} has no pyproject.toml: point it at the template "
                "checkout's tooling/ directory",
                file=sys.stderr,
            )
            return 1
        attempts = [(f"the local checkout {local} (RELEASE_TOOLING_PATH)", local)]
    else:
        attempts = [
            (f"the package index ({DISTRIBUTION}=={version})", f"{DISTRIBUTION}=={version}")
        ]
        if git_source:
            attempts.append((f"the template repository ({git_source})", git_source))
    errors = []
    for label, requirement in attempts:
        # No build isolation: setuptools comes from the dev group, so a checkout builds offline.
        result = pip(python, "--no-build-isolation", *extra, requirement)
        if result.returncode == 0:
            break
        errors.append(f"{label}: {(result.stderr.strip().splitlines() or ['failed'])[-1]}")
    else:
        print(
            f"cannot install {DISTRIBUTION} {version}: "
            + "; ".join(errors)
            + ". Set RELEASE_TOOLING_PATH to a template checkout's tooling/ directory.",
            file=sys.stderr,
        )
        return 1
    found = installed_version(python)
    if found != version:
        print(
            f"{label} gave {DISTRIBUTION} {found}, but pyproject.toml pins {version}: check out "
            f"the template at the version's tag, or update the pin with `cruft update`",
            file=sys.stderr,
        )
        return 1
    print(f"release tooling {version} from {label}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
