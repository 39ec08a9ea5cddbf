"""Pure parts of the adapter: AppSpec parsing, traffic schedules, fault rules (no endpoint "
"needed)."""

from __future__ import annotations

import pytest

from release_tooling.local_aws.codedeploy import (
    PREDEFINED_CONFIGS,
    AppSpecError,
    parse_appspec,
    shift_schedule,
)
from release_tooling.local_aws.faults import FaultRegistry, FaultRuleError

YAML_APPSPEC = """
version: 0.0
Resources:
  - app:
      Type: AWS::Lambda::Function
      Properties:
        Name: orders-app
        Alias: staging
        CurrentVersion: "3"
        TargetVersion: 4
Hooks:
  - BeforeAllowTraffic: pre-check
"""


def test_appspec_yaml_is_parsed_with_hooks():
    spec = parse_appspec(YAML_APPSPEC)
    assert (spec.function_name, spec.alias, spec.current_version, spec.target_version) == (
        "orders-app",
        "staging",
        "3",
        "4",
    )
    assert spec.before_allow_traffic == "pre-check" and spec.after_allow_traffic is None


@pytest.mark.parametrize(
    "content, message",
    [
        ("[1, 2", "cannot be parsed"),
        ("version: 0.0\nResources: []", "exactly one Lambda function"),
        (YAML_APPSPEC.replace("TargetVersion: 4", ""), "TargetVersion"),
        (YAML_APPSPEC.replace("BeforeAllowTraffic", "BeforeInstall"), "BeforeInstall"),
    ],
)
def test_bad_appspecs_name_the_problem(content, message):
    with pytest.raises(AppSpecError, match=message):
        parse_appspec(content)


def test_schedules_follow_the_predefined_configs():
    assert shift_schedule(PREDEFINED_CONFIGS["CodeDeployDefault.LambdaAllAtOnce"]) == [(0, 1.0)]
    assert shift_schedule(
        PREDEFINED_CONFIGS["CodeDeployDefault.LambdaCanary10Percent5Minutes"]
    ) == [(0, 0.1), (5, 1.0)]
    linear = shift_schedule(
        PREDEFINED_CONFIGS["CodeDeployDefault.LambdaLinear10PercentEvery1Minute"]
    )
    assert linear[0] == (0, 0.1) and linear[-1] == (9, 1.0) and len(linear) == 10


def test_fault_rules_honour_skip_times_qualifier_and_event_match():
    reg = FaultRegistry()
    reg.replace(
        [
            {
                "name": "prod",
                "function": "deploy",
                "event_match": {"stage": "production"},
                "skip": 1,
                "times": 1,
            }
        ]
    )
    assert reg.for_invocation("deploy", None, {"stage": "staging"}) is None
    assert reg.for_invocation("deploy", None, {"stage": "production"}) is None  # skipped
    assert reg.for_invocation("deploy", None, {"stage": "production"}).name == "prod"
    assert reg.for_invocation("deploy", None, {"stage": "production"}) is None  # times exhausted
    reg.replace([{"name": "alias", "function": "app", "qualifier": "staging"}])
    assert reg.for_invocation("app", "production", {}) is None
    assert reg.for_invocation("app", "staging", {}) is not None


@pytest.mark.parametrize(
    "rule, message",
    [
        ({"function": "x"}, "name"),
        ({"name": "a", "function": "x", "action": "explode"}, "action"),
        ({"name": "a", "kind": "alarm"}, "deployment_group"),
        ({"name": "a", "function": "x", "colour": "red"}, "unknown"),
    ],
)
def test_malformed_fault_rules_are_rejected(rule, message):
    with pytest.raises(FaultRuleError, match=message):
        FaultRegistry().replace([rule])
