"""Client side of the embedded endpoint: start it in the background, find it, arm faults, stop it.

Only the standard library, so local.py can use it before anything else is imported.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


class EndpointError(Exception):
    """The embedded endpoint is not running, did not start, or refused a control call."""


CONTROL_SECRET_HEADER = "X-Local-Aws-Secret"  # noqa: S105 - a header name, not a secret


@dataclass(frozen=True)
class Endpoint:
    url: str
    pid: int
    port: int
    access_key_id: str = ""
    secret_access_key: str = ""
    account_id: str = "123456789012"
    iam: str = "enforce"
    # account -> {"access_key_id", "secret_access_key"} of its administrator, every served
    # account (the default one included); see accounts.py.
    administrators: dict[str, dict[str, str]] = field(default_factory=dict, hash=False)

    @property
    def admin_credentials(self) -> dict[str, str]:
        """boto3 keyword arguments of the per-run administrator (who runs the bootstrap)."""
        return {
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_access_key,
        }

    @property
    def accounts(self) -> list[str]:
        """The accounts the endpoint serves, its default account first."""
        return [self.account_id, *(a for a in self.administrators if a != self.account_id)]

    def admin_credentials_for(self, account: str) -> dict[str, str]:
        """boto3 keyword arguments of `account`'s administrator (start(..., accounts=[...]))."""
        if account == self.account_id:
            return self.admin_credentials
        creds = self.administrators.get(account)
        if creds is None:
            raise EndpointError(
                f"the local endpoint does not serve account {account} (it serves "
                f"{', '.join(self.accounts)}); start it with accounts=[{account!r}] "
                f"(serve --account {account})"
            )
        return {
            "aws_access_key_id": creds["access_key_id"],
            "aws_secret_access_key": creds["secret_access_key"],
        }

    def control(
        self, method: str, path: str, body: object | None = None, timeout: float = 5.0
    ) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(  # noqa: S310 - see below
            f"{self.url}/_local_aws/{path}",
            data=data,
            method=method,
            headers={
                "Content-Type": "application/json",
                CONTROL_SECRET_HEADER: self.secret_access_key,
            },
        )
        try:
            # The URL is always http://127.0.0.1:<port> from endpoint.json, never user input.
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise EndpointError(
                f"{method} {path}: {json.loads(exc.read()).get('error', exc.reason)}"
            ) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise EndpointError(f"the local endpoint at {self.url} does not answer: {exc}") from exc

    def healthy(self) -> bool:
        try:
            return self.control("GET", "health", timeout=2.0).get("status") == "ok"
        except EndpointError:
            return False

    def set_faults(self, rules: list[dict]) -> list[dict]:
        return self.control("PUT", "faults", rules)["rules"]

    def faults(self) -> list[dict]:
        return self.control("GET", "faults")["rules"]

    def clear_faults(self) -> None:
        self.control("DELETE", "faults")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_ours(pid: int) -> bool:
    # A pid file can outlive its process and the pid be reused: only signal a local_aws server.
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():
        return b"local_aws" in cmdline.read_bytes()
    try:
        out = subprocess.run(
            ["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, check=False
        ).stdout
    except OSError:
        return False
    return "local_aws" in out


def find(state_dir: Path) -> Endpoint | None:
    """The running endpoint recorded in state_dir, or None (stale records are ignored)."""
    info_file = Path(state_dir) / "endpoint.json"
    try:
        info = json.loads(info_file.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    endpoint = Endpoint(
        url=info["url"],
        pid=int(info["pid"]),
        port=int(info["port"]),
        access_key_id=info.get("access_key_id", ""),
        secret_access_key=info.get("secret_access_key", ""),
        account_id=info.get("account_id", "123456789012"),
        iam=info.get("iam", "enforce"),
        administrators=dict(info.get("administrators") or {}),
    )
    if not _alive(endpoint.pid) or not endpoint.healthy():
        return None
    return endpoint


def start(
    state_dir: Path,
    minute_seconds: float | None = None,
    python: str = sys.executable,
    timeout: float = 30.0,
    iam: str | None = None,
    restore: Path | None = None,
    accounts: Sequence[str] = (),
) -> Endpoint:
    """Start the endpoint as a detached background process and wait until it answers.

    `restore`: a state file a snapshot saved; an endpoint that cannot load it exits (status 3)
    and EndpointError carries its reason.
    `accounts`: extra AWS account IDs to serve besides the default one, each with its own
    administrator (Endpoint.admin_credentials_for); a snapshot restores only into an endpoint
    serving the accounts it was saved with."""
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "endpoint.json").unlink(missing_ok=True)
    cmd = [python, "-m", "release_tooling.local_aws", "serve", "--state-dir", str(state_dir)]
    if minute_seconds is not None:
        cmd += ["--minute-seconds", str(minute_seconds)]
    if iam is not None:
        cmd += ["--iam", iam]
    if restore is not None:
        cmd += ["--restore", str(restore)]
    for account in accounts:
        cmd += ["--account", str(account)]
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("AWS_")
    }  # never real credentials
    log_file = open(state_dir / "endpoint.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=log_file,
        env=env,
        start_new_session=True,
    )
    log_file.close()
    (state_dir / "endpoint.pid").write_text(str(proc.pid), encoding="utf-8")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (state_dir / "endpoint.log").read_text(encoding="utf-8", errors="replace")[
                -2000:
            ]
            reason = [ln for ln in tail.splitlines() if ln.startswith("restore failed: ")]
            if restore is not None and reason:
                raise EndpointError(reason[-1])
            raise EndpointError(
                f"the local endpoint exited with status {proc.returncode} while starting:\n{tail}"
            )
        endpoint = find(state_dir)
        if endpoint is not None:
            return endpoint
        time.sleep(0.1)
    stop_pid(proc.pid)
    raise EndpointError(
        f"the local endpoint did not answer within {timeout:.0f} s; "
        f"see {state_dir / 'endpoint.log'}"
    )


def stop_pid(pid: int, timeout: float = 10.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            # Reap it if it is our child; otherwise just poll for its end.
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            if not _alive(pid):
                return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def stop(state_dir: Path) -> bool:
    """Stop the endpoint recorded in state_dir. True when one was running."""
    pid_file = Path(state_dir) / "endpoint.pid"
    try:
        pid = int(pid_file.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return False
    running = _alive(pid) and _is_ours(pid)
    if running:
        stop_pid(pid)
    pid_file.unlink(missing_ok=True)
    (Path(state_dir) / "endpoint.json").unlink(missing_ok=True)
    return running
