"""A baked project passes its own `make lint` and `make test`, exactly as its CI would run them."""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import COMBINATIONS, TEMPLATE_ROOT, run_cookiecutter_cli

# One project per distinct file set: the defaults, and every optional part switched on.
VARIANTS = {name: COMBINATIONS[name] for name in ("defaults", "everything")}
# The IAM scenarios (a release per removed statement, a neighbour project applied beside this one)
# exercise the same Terraform in every variant: run them once, in the defaults. So do the
# rehearsals no option changes (a second function, the warm up, alias drift, the alarm rollback):
# the "everything" variant runs its own unit tests and the rehearsals its options change (the
# approval gate, notifications, the pipeline's scenarios that reach production).
OPTION_INDEPENDENT = ("test_two_functions", "test_warm_up", "test_alias_drift", "test_alarm_rollback")
TEST_SCOPE = {
    "defaults": [],
    "everything": [
        "PYTEST_ARGS=-m 'not iam_scenarios and not before_production' "
        + " ".join(f"--ignore=tests/local_pipeline/{name}.py" for name in OPTION_INDEPENDENT)
    ],
}
MAKE_TIMEOUT = 2400


def run_make(project: Path, target: str, *arguments: str) -> str | None:
    """None when `make target` passes, else what it printed (the end of it)."""
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
        timeout=MAKE_TIMEOUT,
        check=False,
    )
    if result.returncode == 0:
        return None
    # pip on a machine with unreachable extra indexes warns once per package; keep it readable.
    lines = (result.stdout + result.stderr).splitlines()
    output = "\n".join(line for line in lines if "is ignored: it is neither a file" not in line)
    return f"make {target} failed in {project}:\n{output[-8000:]}"


def lint_and_test(project: Path, name: str) -> str | None:
    return run_make(project, "lint") or run_make(project, "test", *TEST_SCOPE[name])


@pytest.fixture(scope="session")
def variant_checks(tmp_path_factory):
    """Every variant baked as a user bakes it, its `make lint` then `make test` started at once.

    Most of their time is Terraform and the AWS provider waiting on the embedded endpoint (S3 and
    KMS read-back polls), so two variants side by side on two cores take far less than one after
    the other.
    """
    pool = ThreadPoolExecutor(max_workers=len(VARIANTS), thread_name_prefix="variant")
    runs: dict[str, Future] = {}
    for name, options in VARIANTS.items():
        out = tmp_path_factory.mktemp(f"variant-{name}")
        baked = run_cookiecutter_cli(out, *(f"{key}={value}" for key, value in options.items()))
        assert baked.returncode == 0, baked.stdout + baked.stderr
        (project,) = [path for path in out.iterdir() if path.is_dir()]
        runs[name] = pool.submit(lint_and_test, project, name)
    yield runs
    pool.shutdown(wait=True, cancel_futures=True)


@pytest.mark.slow
@pytest.mark.parametrize("name", VARIANTS)
def test_generated_project_passes_its_own_lint_and_tests(variant_checks, name):
    failure = variant_checks[name].result(timeout=2 * MAKE_TIMEOUT)
    assert failure is None, failure


def test_the_rehearsals_left_to_the_defaults_exist():
    """A renamed rehearsal must not silently drop out of the narrowed variant (or stay in it)."""
    project = TEMPLATE_ROOT / "{{cookiecutter.project_slug}}"
    rehearsals = project / "tests" / "local_pipeline"
    for name in OPTION_INDEPENDENT:
        assert (rehearsals / f"{name}.py").is_file(), name
    # The markers the narrowed variant deselects by: registered, and still on scenarios.
    registered = (project / "pyproject.toml").read_text(encoding="utf-8")
    scenarios = (rehearsals / "test_pipeline.py").read_text(encoding="utf-8")
    for marker in ("iam_scenarios", "before_production"):
        assert f'"{marker}: ' in registered, marker
        assert f"pytest.mark.{marker}" in scenarios, marker
