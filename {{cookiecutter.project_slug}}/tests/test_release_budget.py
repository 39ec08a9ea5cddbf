"""terraform/release_budget: every timeout of a release, for every strategy Terraform accepts.

The module is pure arithmetic, so it is applied for real (no provider, local state) once per
staging strategy x production strategy x approval, and each budget is checked against what it must
cover.
"""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TF = ROOT / "terraform"

pytestmark = pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform not on PATH")

# "Deployment configurations on an AWS Lambda compute platform" (CodeDeploy User Guide): minutes
# from the first traffic shift to the last. Linear shifts 10 % every N minutes, so its last
# increment comes 9 intervals after the first.
DOCUMENTED_SHIFT_MINUTES = {
    "AllAtOnce": 0,
    "Canary10Percent5Minutes": 5,
    "Canary10Percent10Minutes": 10,
    "Canary10Percent15Minutes": 15,
    "Canary10Percent30Minutes": 30,
    "Linear10PercentEvery1Minute": 9,
    "Linear10PercentEvery2Minutes": 18,
    "Linear10PercentEvery3Minutes": 27,
    "Linear10PercentEvery10Minutes": 90,
}
HISTORY_EVENT_QUOTA = 25_000  # Step Functions Standard: events per execution history
EVENTS_PER_POLL = 10  # Task (5) + Choice (2) + Wait (3), rounded up
APPROVAL_TIMEOUT = 86_400


def variable_block(name: str) -> str:
    text = (TF / "variables.tf").read_text()
    block = text[text.index(f'variable "{name}"') :]
    return block[: block.index("\n}\n")]


def allowed_strategies(variable: str = "deployment_strategy") -> list[str]:
    block = variable_block(variable)
    block = block[: block.index(f"], var.{variable})")]
    return re.findall(r'"([A-Za-z0-9]+)"', block[block.index("contains([") :])


def task_timeouts() -> dict[str, int]:
    text = (TF / "lambda.tf").read_text()
    return {
        name: int(timeout)
        for name, timeout in re.findall(
            r"\n    (\w+) = \{\n      description[^\n]*\n      timeout\s+=\s+(\d+)", text
        )
    }


@pytest.fixture(scope="module")
def budgets(tmp_path_factory):
    work = tmp_path_factory.mktemp("budget")
    cases = {
        f"{staging}-{production}-{str(approval).lower()}": {
            "staging_deployment_strategy": staging,
            "deployment_strategy": production,
            "manual_approval": approval,
        }
        for staging in allowed_strategies("staging_deployment_strategy")
        for production in allowed_strategies()
        for approval in (True, False)
    }
    # Terraform's JSON syntax: no HCL braces here, which cookiecutter would read as Jinja.
    module = {
        "for_each": cases,
        "source": (TF / "release_budget").as_posix(),
        "deployment_strategy": "${each.value.deployment_strategy}",
        "staging_deployment_strategy": "${each.value.staging_deployment_strategy}",
        "manual_approval": "${each.value.manual_approval}",
        "approval_timeout_seconds": APPROVAL_TIMEOUT,
        "task_timeouts": task_timeouts(),
    }
    config = {"module": {"budget": module}, "output": {"budgets": {"value": "${module.budget}"}}}
    (work / "main.tf.json").write_text(json.dumps(config, indent=2))
    for command in (["init", "-input=false", "-no-color"], ["apply", "-auto-approve", "-no-color"]):
        proc = subprocess.run(
            ["terraform", f"-chdir={work}", *command], capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, proc.stderr
    out = subprocess.run(
        ["terraform", f"-chdir={work}", "output", "-json", "budgets"],
        capture_output=True,
        text=True,
        check=True,
    )
    found = json.loads(out.stdout)
    return {key: (cases[key], value) for key, value in found.items()}


def test_the_model_knows_every_allowed_strategy():
    assert set(allowed_strategies()) == set(DOCUMENTED_SHIFT_MINUTES)
    assert allowed_strategies("staging_deployment_strategy") == allowed_strategies()
    assert {"deploy", "deployment_status", "rollback", "approval_notifier"} <= set(task_timeouts())


def test_every_strategy_pair_and_approval_fits_its_budget(budgets):
    assert len(budgets) == len(DOCUMENTED_SHIFT_MINUTES) ** 2 * 2
    for key, (case, b) in budgets.items():
        shifts = {
            "staging": DOCUMENTED_SHIFT_MINUTES[case["staging_deployment_strategy"]] * 60,
            "production": DOCUMENTED_SHIFT_MINUTES[case["deployment_strategy"]] * 60,
        }
        timeouts = b["deployment_timeout_seconds"]
        stages = b["stage_worst_seconds"]
        for stage, shift in shifts.items():
            # Each stage's poll budget covers its own strategy's shift plus >= 5 minutes margin...
            assert timeouts[stage] >= shift + 300, (key, stage)
            # ...and the polls it takes fit in the execution history.
            assert b["max_polls"][stage] * b["poll_interval_seconds"] >= timeouts[stage], key
            # Each poll loop outlasts its stage's deployment budget.
            assert stages[f"check_{stage}"] > timeouts[stage], (key, stage)
        # Both stages' polls fit the execution history together.
        assert sum(b["max_polls"].values()) * EVENTS_PER_POLL < HISTORY_EVENT_QUOTA, key
        # The approval waits its full window, and only when there is one.
        assert b["approval_timeout_seconds"] == (APPROVAL_TIMEOUT if case["manual_approval"] else 0)
        # The machine outlasts every stage's worst case in a row.
        assert b["state_machine_timeout_seconds"] >= sum(stages.values()), key
        assert stages["approve_production"] >= b["approval_timeout_seconds"], key
        assert (
            b["state_machine_timeout_seconds"]
            >= sum(shifts.values()) + b["approval_timeout_seconds"]
        )
        # Step Functions accepts TimeoutSeconds up to 99999999.
        assert b["state_machine_timeout_seconds"] <= 99_999_999
        # release-wait outlasts the machine.
        assert b["release_wait_seconds"] > b["state_machine_timeout_seconds"], key


def test_the_old_fixed_budget_was_too_short_for_the_slow_strategies(budgets):
    """80 polls x 15 s and a 7,200 s machine: what every slow strategy used to run into."""
    _, slow = budgets["AllAtOnce-Linear10PercentEvery10Minutes-false"]
    assert slow["deployment_timeout_seconds"]["production"] > 80 * 15
    assert slow["state_machine_timeout_seconds"] > 7200
    _, approval = budgets["AllAtOnce-Canary10Percent5Minutes-true"]
    assert approval["state_machine_timeout_seconds"] > APPROVAL_TIMEOUT


def test_each_stage_is_budgeted_for_its_own_strategy(budgets):
    """Staging all at once, production linear: staging's budget is only the margin, production's
    is the long shift, and the machine's timeout is not charged the long shift twice."""
    _, split = budgets["AllAtOnce-Linear10PercentEvery10Minutes-false"]
    _, both_slow = budgets["Linear10PercentEvery10Minutes-Linear10PercentEvery10Minutes-false"]
    assert split["shift_minutes"] == {"staging": 0, "production": 100}
    assert split["deployment_timeout_seconds"] == {"staging": 600, "production": 6600}
    assert split["max_polls"]["staging"] < split["max_polls"]["production"]
    assert both_slow["state_machine_timeout_seconds"] - split["state_machine_timeout_seconds"] == (
        6000
    )


def test_staging_shifts_all_at_once_by_default():
    """Staging serves only the smoke checks: the canary (and its wait) belongs to production."""
    block = variable_block("staging_deployment_strategy")
    assert re.search(r'\n  default\s+=\s+"AllAtOnce"\n', block)
