"""boto3 clients, created once per Lambda container and reused across invocations."""

import functools
from typing import Any

import boto3
from botocore.config import Config

# Standard retry mode backs off on throttling and transient 5xx errors; the state machine
# retries Lambda-level failures on top of this.
_CONFIG = Config(
    retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=30
)


@functools.cache
def client(service: str) -> Any:
    """Return the shared client for ``service`` (honours AWS_ENDPOINT_URL like any SDK client)."""
    return boto3.client(service, config=_CONFIG)


def reset() -> None:
    """Forget cached clients (tests switch credentials/endpoints between cases)."""
    client.cache_clear()
