"""Environment and event accessors that fail with one clear, named error."""

import os
from collections.abc import Mapping
from typing import Any

from shared.errors import ConfigurationError, InvalidInputError


def require_env(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ConfigurationError(
            f"environment variable {name} is not set; it is configured by terraform/lambda.tf"
        )
    return value


def int_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"environment variable {name}={raw!r} is not an integer") from None
    if value <= 0:
        raise ConfigurationError(f"environment variable {name}={raw!r} must be positive")
    return value


def require_str(event: Mapping[str, Any], key: str) -> str:
    value = event.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(
            f"event field {key!r} must be a non-empty string, got {type(value).__name__}"
        )
    return value


def require_int(event: Mapping[str, Any], key: str, *, minimum: int = 0) -> int:
    value = event.get(key)
    # bool is an int subclass; reject it so true/false never pass as counts.
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise InvalidInputError(
            f"event field {key!r} must be an integer >= {minimum}, got {value!r}"
        )
    return value


def require_mapping(event: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = event.get(key)
    if not isinstance(value, Mapping):
        raise InvalidInputError(
            f"event field {key!r} must be an object, got {type(value).__name__}"
        )
    return value
