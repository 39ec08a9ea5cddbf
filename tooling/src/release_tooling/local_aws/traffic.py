"""Synthetic user traffic to an alias while CodeDeploy shifts it, so its alarm has real metrics.

On AWS a production alias serves users during a canary or linear deployment: a share of their
requests reaches the new version (weighted alias routing), and the alias's Errors alarm, which
CodeDeploy watches, fires when the new version fails. Locally nobody calls production, so while a
deployment of an alias in TRAFFIC_ALIASES shifts traffic (from the first shift until the
deployment ends), callers replay the application's own smoke-check requests through the alias:
each call is routed by the alias's weights like any Invoke, runs the chosen version, and emits
the metrics Lambda emits (metrics.py). Staging gets no synthetic traffic (only the release's
smoke tests call it), as on AWS.

Routing: Lambda picks a version at random per call with the alias's weights, which over real
traffic means each version gets its share. A local sample is small (a few dozen calls during a
compressed canary), and a random 10% draw would often leave the new version without a single
call; so synthetic calls are spread over the versions in exact proportion to the weights (smooth
weighted round robin: with 10% on the new version, one call in ten, the first right after the
shift, as real traffic reaches it within moments), and each runs through the alias like any
Invoke.

The requests come from `smoke_checks.json` at the root of the deployment package of the version
being deployed (the zip that version was published with, not the working tree):
{"checks": [{"name": str, "event": {...Lambda event...}, "expect": {"statusCode": int,
"body": {...}}}]}. A package without the file gets no traffic (one log line says so).

Rate: WORKERS callers, each sending the next request as soon as its previous one returned, i.e.
as fast as the machine runs the function (about 10-20 calls per second on a 2-core machine, each
call being a fresh isolated interpreter). At the default 0.2 s per minute that is 2-4 calls per
compressed minute: the traffic of a quiet service. The expectations are not asserted (users do
not check responses); responses that miss them are counted and logged when the traffic stops.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import zipfile
from collections.abc import Callable
from typing import Any

log = logging.getLogger("local_aws.traffic")

CHECKS_FILE = "smoke_checks.json"
TRAFFIC_ALIASES = ("production",)  # the alias users call; others get no synthetic traffic
WORKERS = 2


class SmokeChecksError(ValueError):
    """smoke_checks.json is malformed; the message names the entry and the field."""


def load_checks(code: bytes) -> list[dict[str, Any]] | None:
    """The checks of a deployment package's smoke_checks.json, None if it has none."""
    try:
        with zipfile.ZipFile(io.BytesIO(code)) as archive:
            if CHECKS_FILE not in archive.namelist():
                return None
            raw = archive.read(CHECKS_FILE)
    except zipfile.BadZipFile:
        return None
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise SmokeChecksError(f"{CHECKS_FILE} is not valid JSON: {exc}") from exc
    checks = doc.get("checks") if isinstance(doc, dict) else None
    if not isinstance(checks, list) or not checks:
        raise SmokeChecksError(f'{CHECKS_FILE} must be {{"checks": [...]}} with at least one check')
    for i, check in enumerate(checks):
        if not isinstance(check, dict) or not isinstance(check.get("event"), dict):
            raise SmokeChecksError(f"{CHECKS_FILE} checks[{i}] needs an 'event' object")
        expect = check.get("expect")
        if not isinstance(expect, dict) or not isinstance(expect.get("statusCode"), int):
            raise SmokeChecksError(f"{CHECKS_FILE} checks[{i}] needs 'expect.statusCode' (int)")
    return checks


def meets(expect: dict[str, Any], payload: bytes) -> bool:
    """Whether a response carries the expected statusCode and body fields."""
    try:
        response = json.loads(payload)
        if response.get("statusCode") != expect["statusCode"]:
            return False
        wanted = expect.get("body") or {}
        body = json.loads(response.get("body") or "{}") if wanted else {}
        return all(body.get(k) == v for k, v in wanted.items())
    except (ValueError, AttributeError, TypeError):
        return False


class ProportionalRouter:
    """Versions in exact proportion to an alias's weights (smooth weighted round robin)."""

    def __init__(self) -> None:
        self.credit: dict[str, float] = {}
        self._lock = threading.Lock()

    def choose(self, alias_version: str, routing_config: dict | None) -> str:
        extra = {
            str(v): float(w)
            for v, w in ((routing_config or {}).get("AdditionalVersionWeights") or {}).items()
        }
        weights = {alias_version: 1.0 - sum(extra.values()), **extra}
        with self._lock:
            for version in list(self.credit):
                if version not in weights:
                    del self.credit[version]
            for version, weight in weights.items():
                # A version that starts receiving traffic gets the next call: under real traffic
                # its first request comes moments after the shift, not ten calls later.
                start = 1.0 - weight if version != alias_version else 0.0
                self.credit[version] = self.credit.get(version, start) + weight
            chosen = max(weights, key=lambda v: (self.credit[v], v == alias_version))
            self.credit[chosen] -= 1.0
        return chosen


# send(event) -> (executed version, function error or None, payload)
Send = Callable[[dict[str, Any]], tuple[str, str | None, bytes]]


class CanaryTraffic:
    """WORKERS callers replaying `checks` through `send` until stop()."""

    def __init__(self, label: str, checks: list[dict[str, Any]], send: Send) -> None:
        self.label, self.checks, self.send = label, checks, send
        self.calls: dict[str, int] = {}  # executed version -> calls
        self.errors: dict[str, int] = {}  # executed version -> function errors
        self.unexpected = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(
                target=self._caller, args=(i,), name=f"traffic-{label}-{i}", daemon=True
            )
            for i in range(WORKERS)
        ]

    def start(self) -> CanaryTraffic:
        for thread in self._threads:
            thread.start()
        return self

    def _caller(self, offset: int) -> None:
        i = offset
        while not self._stop.is_set():
            check = self.checks[i % len(self.checks)]
            i += 1
            try:
                version, error, payload = self.send(check["event"])
            except Exception as exc:  # noqa: BLE001 - a refused call is the caller's problem, not ours
                log.debug("synthetic call to %s failed: %s", self.label, exc)
                self._stop.wait(0.05)
                continue
            with self._lock:
                self.calls[version] = self.calls.get(version, 0) + 1
                if error:
                    self.errors[version] = self.errors.get(version, 0) + 1
                elif not meets(check["expect"], payload):
                    self.unexpected += 1

    def stop(self) -> None:
        # No join: a call in flight ends on its own (as a user's request would) and the deployment
        # that stops the traffic must not wait for it.
        self._stop.set()
        log.info(
            "synthetic traffic to %s: calls by version %s, function errors %s, "
            "responses missing their expectation %d",
            self.label,
            self.calls,
            self.errors,
            self.unexpected,
        )
