"""The application functions a release deploys, from the APP_FUNCTIONS environment variable.

terraform/lambda.tf writes it from terraform/names (app_function_keys), the primary one first:
[{"key": "app", "function_name": "<project>-app",
  "deployment_groups": {"staging": "staging", "production": "production"}}, ...]
"key" is the function's directory under lambdas/ and its zip's name in a release (<key>.zip).
"""

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.errors import ConfigurationError, InvalidInputError

ENV = "APP_FUNCTIONS"
STAGES = ("staging", "production")


@dataclass(frozen=True)
class AppFunction:
    key: str
    function_name: str
    deployment_groups: Mapping[str, str]


def parse(raw: str) -> list[AppFunction]:
    def bad(why: str) -> ConfigurationError:
        return ConfigurationError(
            f"environment variable {ENV} {why}; it is written by terraform/lambda.tf from "
            "terraform/names (app_function_keys): apply terraform/ again"
        )

    try:
        data = json.loads(raw)
    except ValueError:
        raise bad("is not JSON") from None
    if not isinstance(data, list) or not data:
        raise bad("must be a non-empty JSON list")
    functions = []
    for item in data:
        groups = item.get("deployment_groups") if isinstance(item, dict) else None
        if not (
            isinstance(item, dict)
            and isinstance(item.get("key"), str)
            and isinstance(item.get("function_name"), str)
            and isinstance(groups, dict)
            and all(isinstance(groups.get(stage), str) for stage in STAGES)
        ):
            raise bad(f"has an entry without key, function_name and deployment_groups: {item!r}")
        functions.append(AppFunction(item["key"], item["function_name"], dict(groups)))
    keys = [f.key for f in functions]
    if len(set(keys)) != len(keys):
        raise bad(f"names a function key twice: {keys}")
    return functions


def from_env() -> list[AppFunction]:
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        raise ConfigurationError(
            f"environment variable {ENV} is not set; it is configured by terraform/lambda.tf"
        )
    return parse(raw)


def by_key(functions: list[AppFunction], key: Any) -> AppFunction:
    """The function whose key an event names (InvalidInputError for one the stack lacks)."""
    for function in functions:
        if function.key == key:
            return function
    raise InvalidInputError(
        f"the release names app function {key!r}, but this stack deploys only "
        f"{[f.key for f in functions]} (terraform/names app_function_keys)"
    )
