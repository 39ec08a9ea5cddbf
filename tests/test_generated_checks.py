"""A baked project passes its own `make lint` and `make test`, exactly as its CI would run them."""

from __future__ import annotations

import os
import subprocess

import pytest

from conftest import COMBINATIONS, TEMPLATE_ROOT

# One project per distinct file set: the defaults, and every optional part switched on.
VARIANTS = {name: COMBINATIONS[name] for name in ("defaults", "everything")}


def run_make(project, target: str, *arguments: str) -> None:
    result = subprocess.run(
        ["make", target, *arguments],
        cwd=project,
        # The release tooling from this checkout, as `make demo` installs it (offline, uncommitted).
        env={
            **os.environ,
            "CI": os.environ.get("CI", "true"),
            "RELEASE_TOOLING_PATH": str(TEMPLATE_ROOT / "tooling"),
        },
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    # pip on a machine with unreachable extra indexes warns once per package; keep the report readable.
    lines = (result.stdout + result.stderr).splitlines()
    output = "\n".join(line for line in lines if "is ignored: it is neither a file" not in line)
    assert result.returncode == 0, f"make {target} failed in {project}:\n{output[-8000:]}"


@pytest.mark.slow
@pytest.mark.parametrize("options", VARIANTS.values(), ids=VARIANTS.keys())
def test_generated_project_passes_its_own_lint_and_tests(bake, options):
    project = bake(**options)

    run_make(project, "lint")
    # The IAM scenarios (a release per removed statement, a neighbour project applied beside this
    # one) exercise the same Terraform in every variant: run them once, in the defaults.
    scope = [] if options == VARIANTS["defaults"] else ["PYTEST_ARGS=-m 'not iam_scenarios'"]
    run_make(project, "test", *scope)
