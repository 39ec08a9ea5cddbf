"""The drift job's alias check against the local endpoint, as the GitHub plan role.

The scheduled drift job runs `release-tooling alias-drift` with the plan role's credentials; this
runs the same check, with the same role obtained from STS, so a permission it lacks shows here.
"""

from __future__ import annotations

from .. import alias_drift
from .common import say
from .environment import require_env


def app_functions(outputs: dict) -> list[str]:
    """The app functions the stack outputs: every one when it lists them, else the one."""
    names = outputs.get("app_function_names")
    if isinstance(names, dict):
        return list(names.values())
    if isinstance(names, list):
        return names
    return [outputs["app_function_name"]]


def cmd_drift(args) -> int:
    env = require_env()
    code, report = alias_drift.check(
        env.client_as("plan", "stepfunctions"),
        env.client_as("plan", "lambda"),
        env.outputs["state_machine_arn"],
        app_functions(env.outputs),
        alias_drift.RELEASE_ALIASES,
    )
    say(report)
    return code
