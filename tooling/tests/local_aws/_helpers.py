"""Helpers shared by the local pipeline tests."""

from __future__ import annotations

import io
import json
import textwrap
import time
import zipfile


def zip_source(source: str, module: str = "handler") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{module}.py", textwrap.dedent(source))
    return buf.getvalue()


def payload(response) -> object:
    return json.loads(response["Payload"].read())


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05):
    """Poll until predicate() returns something truthy; fail with the last value after timeout."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s (last value: {value!r})")
