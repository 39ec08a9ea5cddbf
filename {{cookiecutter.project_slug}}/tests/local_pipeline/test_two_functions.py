"""Rehearsal: a service of two functions, added by the README's recipe, released as one.

In the session's scratch copy, the README's "Adding a function" steps add a `worker` (its folder,
its handler and smoke checks as the README shows them, its key in terraform/names/main.tf), and
`make local-apply` applies both Terraform roots to the running environment (under IAM
enforcement). A
release then takes both functions to production; a release whose worker fails its own smoke
checks fails and rolls both functions back, production untouched for both. Afterwards the copy is
put back as it was and brought up again (from its snapshot), for scenarios that run later.
"""

from __future__ import annotations

import json
import re
import shutil
import textwrap

import pytest
from release_tooling.rehearsal import commit_id

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("terraform") is None,
        reason="terraform is not installed (needed by release-tooling local up)",
    ),
]

NAMES = "terraform/names/main.tf"
UP_TIMEOUT = 900


def recipe(readme: str) -> dict[str, str]:
    """The README's "Adding a function" section: its handler, smoke checks and Terraform line."""
    section = readme.split("## Adding a function", 1)[1].split("\n## ", 1)[0]
    blocks = {
        lang: textwrap.dedent(body)
        for lang, body in re.findall(r"```(\w+)\n(.*?)```", section, re.DOTALL)
    }
    assert set(blocks) >= {"python", "json", "hcl"}, blocks
    return blocks


def add_worker(project) -> None:
    """Follow the README recipe in the scratch copy, exactly as written."""
    steps = recipe((project.path / "README.md").read_text(encoding="utf-8"))
    worker = project.path / "lambdas" / "worker"
    worker.mkdir()
    assert steps["python"].startswith("# lambdas/worker/handler.py\n")
    (worker / "handler.py").write_text(steps["python"], encoding="utf-8")
    (worker / "smoke_checks.json").write_text(steps["json"], encoding="utf-8")
    names = project.path / NAMES
    text = names.read_text(encoding="utf-8")
    line = steps["hcl"].strip()
    assert line == 'app_function_keys = ["app", "worker"]'
    assert text.count('app_function_keys = ["app"]') == 1
    names.write_text(text.replace('app_function_keys = ["app"]', line), encoding="utf-8")


def apply_changes(project) -> None:
    """The README's step 3: make local-apply (both roots, on the running environment)."""
    applied = project.local("apply", timeout=UP_TIMEOUT)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "terraform apply terraform/bootstrap" in applied.stdout


def up_again(project) -> None:
    """Down, and up from the snapshot the session's cold up saved: the tree is that one again."""
    down = project.local("down")
    assert down.returncode == 0, down.stdout + down.stderr
    up = project.local("up", timeout=UP_TIMEOUT)
    assert up.returncode == 0, up.stdout + up.stderr
    assert "from snapshot" in up.stdout, up.stdout  # a cold apply here is a changed tree


@pytest.fixture(scope="module")
def two_functions(project):
    """The scratch copy with the worker added by the recipe, up; put back afterwards."""
    names = project.path / NAMES
    original = names.read_text(encoding="utf-8")
    try:
        add_worker(project)
        apply_changes(project)
        yield project
    finally:
        shutil.rmtree(project.path / "lambdas" / "worker", ignore_errors=True)
        names.write_text(original, encoding="utf-8")
        project.restore_handler()  # earlier scenarios' edits too: the snapshot's tree again
        up_again(project)


def production_and_staging(project) -> dict:
    return project.status()["functions"]


def test_packaging_names_an_undeclared_folder(two_functions):
    """A folder the Terraform list does not declare stops the build with the fix."""
    stray = two_functions.path / "lambdas" / "reporter"
    stray.mkdir()
    try:
        (stray / "handler.py").write_text("def handler(e, c):\n    return 1\n", encoding="utf-8")
        run = two_functions.local("release", "--commit", commit_id("undeclared"))
    finally:
        shutil.rmtree(stray)
    assert run.returncode != 0
    assert "lambdas/reporter/ is not a declared function" in run.stdout + run.stderr
    assert f"app_function_keys in {NAMES}" in run.stdout + run.stderr


def test_both_functions_reach_production_in_one_release(two_functions):
    commit = commit_id("two-functions")
    run = two_functions.local("release", "--commit", commit)
    assert run.returncode == 0, run.stdout + run.stderr

    status = two_functions.status()
    functions = status["functions"]
    assert set(functions) == {"app", "worker"}
    for key in ("app", "worker"):
        assert functions[key]["production"] == functions[key]["staging"] != "$LATEST", functions
    assert status["aliases"] == functions["app"]  # the primary's, as for one function
    execution = two_functions.execution(commit)
    assert execution["status"] == "SUCCEEDED"
    output = two_functions.execution_output(commit)
    assert [d["key"] for d in output["production"]["deployments"]] == ["app", "worker"]
    names = two_functions.outputs()["app_function_names"]
    lam = two_functions.admin_client("lambda")
    for key, name in names.items():
        version = functions[key]["production"]
        assert (
            lam.get_function_configuration(FunctionName=name, Qualifier=version)["Description"]
            == commit
        )


def test_a_broken_worker_fails_the_release_and_rolls_both_back(two_functions):
    before = production_and_staging(two_functions)
    assert before["worker"]["production"] != "$LATEST"  # the release above went through
    # A new version of each: the app changes harmlessly, the worker's smoke check now fails.
    two_functions.edit_app("two-functions: app changed with a broken worker")
    worker = two_functions.path / "lambdas" / "worker" / "handler.py"
    good = worker.read_text(encoding="utf-8")
    worker.write_text(good.replace('"status": "ok"', '"status": "degraded"'), encoding="utf-8")
    assert worker.read_text(encoding="utf-8") != good
    commit = commit_id("two-functions-broken-worker")
    try:
        run = two_functions.local("release", "--commit", commit)
    finally:
        worker.write_text(good, encoding="utf-8")
    assert run.returncode == 1, run.stdout + run.stderr

    execution = two_functions.execution(commit)
    assert execution["status"] == "FAILED"
    assert execution["error"] == "SmokeTestsFailed"
    assert "-worker:staging; failed: worker_health" in execution["cause"]
    # Both staging aliases went to the new versions and came back; production never moved.
    assert production_and_staging(two_functions) == before
    history = two_functions.admin_client("stepfunctions")
    arn = next(
        e["executionArn"]
        for e in history.list_executions(
            stateMachineArn=two_functions.outputs()["state_machine_arn"]
        )["executions"]
        if e["name"] == execution["name"]
    )
    events = history.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    rollback = next(
        e["stateExitedEventDetails"]["output"]
        for e in events
        if e.get("stateExitedEventDetails", {}).get("name") == "Rollback"
    )
    results = json.loads(rollback)["rollback"]["results"]
    rolled = {(r["function_name"].rsplit("-", 1)[-1], r["alias"]): r["action"] for r in results}
    assert rolled == {("app", "staging"): "rolled_back", ("worker", "staging"): "rolled_back"}
