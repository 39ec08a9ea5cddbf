"""Run a Lambda function's deployed zip in a subprocess, with Lambda's contract.

Pure of moto: it takes a FunctionSpec (what GetFunctionConfiguration would say) and the code bytes,
and returns what the Invoke API would return. lambda_patch.py wires it into moto.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

BOOTSTRAP = Path(__file__).with_name("_bootstrap.py")
# Environment a Lambda sandbox has besides the function's own variables; nothing is inherited from
# the host (in particular no real AWS credentials or profiles).
_HOST_VARS_KEPT = ("PATH", "LANG", "LC_ALL", "TZ", "SYSTEMROOT", "TMPDIR")
# Credentials of a function's execution role: (role_arn, function_name, region) -> env variables.
CredentialsProvider = Callable[[str, str, str], dict]


class LambdaRuntimeError(Exception):
    """The local runtime itself could not run the function (not a function error)."""


class InvalidCodeError(LambdaRuntimeError):
    """The deployed package is not a readable zip file."""


@dataclass(frozen=True)
class FunctionSpec:
    function_name: str
    function_arn: str  # unqualified
    version: str  # "$LATEST" or a published number
    handler: str
    runtime: str
    timeout: int
    memory_size: int
    region: str
    code_sha256: str  # base64, as Lambda reports CodeSha256
    environment: dict[str, str] = field(default_factory=dict)
    role_arn: str = ""  # the execution role whose credentials the function gets


@dataclass
class InvocationResult:
    payload: bytes
    function_error: str | None  # "Unhandled" for any failure, as Lambda reports it
    logs: str
    executed_version: str
    request_id: str
    duration_ms: float

    @property
    def error(self) -> dict | None:
        return json.loads(self.payload) if self.function_error else None


def error_payload(
    request_id: str, error_type: str, message: str, stack: list[str] | None = None
) -> bytes:
    body = {
        "errorMessage": message,
        "errorType": error_type,
        "requestId": request_id,
        "stackTrace": stack or [],
    }
    return json.dumps(body).encode()


def timeout_payload(request_id: str, timeout_seconds: float) -> bytes:
    # The text and type the AWS Python runtimes report, so Retry/Catch on "Sandbox.Timedout" work.
    return json.dumps(
        {
            "errorType": "Sandbox.Timedout",
            "errorMessage": f"RequestId: {request_id} Error: Task timed out after "
            f"{timeout_seconds:.2f} seconds",
        }
    ).encode()


class CodeCache:
    """Extracted function packages, one directory per CodeSha256 (shared by versions with equal "
    "code)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()

    def path_for(self, code_sha256: str, code: bytes) -> Path:
        key = (
            base64.b64decode(code_sha256).hex() if code_sha256 else hashlib.sha256(code).hexdigest()
        )
        target = self.root / key
        if target.is_dir():
            return target
        with self._lock:
            if target.is_dir():
                return target
            self.root.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=self.root))
            try:
                with zipfile.ZipFile(io.BytesIO(code)) as archive:
                    archive.extractall(staging)  # extractall drops absolute and ".." paths
            except zipfile.BadZipFile as exc:
                shutil.rmtree(staging, ignore_errors=True)
                raise InvalidCodeError(
                    f"the deployment package is not a valid zip file: {exc}"
                ) from exc
            os.replace(staging, target)
        return target


class LambdaRuntime:
    def __init__(
        self,
        cache_dir: Path,
        endpoint_url: str,
        credentials: CredentialsProvider,
        config_dir: Path,
        python: str = sys.executable,
    ) -> None:
        self.cache = CodeCache(cache_dir)
        self.endpoint_url = endpoint_url
        self.credentials = credentials
        self.python = python
        # Empty shared config and credentials files: a profile of the developer's (say one with
        # ignore_configured_endpoint_urls = true, or credential_process) must never reach the
        # function, which would then talk to real AWS with the developer's identity.
        config_dir = Path(config_dir)
        config_dir.mkdir(parents=True, exist_ok=True)
        self.aws_config_file = config_dir / "config"
        self.aws_credentials_file = config_dir / "credentials"
        for empty in (self.aws_config_file, self.aws_credentials_file):
            empty.write_text("", encoding="utf-8")

    def sandbox_env(
        self, spec: FunctionSpec, request_id: str, deadline_ms: int, log_stream: str
    ) -> dict[str, str]:
        env = {k: os.environ[k] for k in _HOST_VARS_KEPT if k in os.environ}
        if not spec.role_arn:
            raise LambdaRuntimeError(f"function {spec.function_name} has no execution role")
        # As the Lambda service does: the execution role's session in the standard variables
        # (Lambda developer guide, "Defined runtime environment variables").
        env.update(self.credentials(spec.role_arn, spec.function_name, spec.region))
        env.update(
            {
                "AWS_CONFIG_FILE": str(self.aws_config_file),
                "AWS_SHARED_CREDENTIALS_FILE": str(self.aws_credentials_file),
            }
        )
        env.update(
            {
                "AWS_REGION": spec.region,
                "AWS_DEFAULT_REGION": spec.region,
                "AWS_ENDPOINT_URL": self.endpoint_url,
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
                "AWS_LAMBDA_FUNCTION_NAME": spec.function_name,
                "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_size),
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.function_name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
                "_HANDLER": spec.handler,
                "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONUNBUFFERED": "1",
                "LOCAL_AWS_REQUEST_ID": request_id,
                "LOCAL_AWS_DEADLINE_MS": str(deadline_ms),
                "LOCAL_AWS_INVOKED_FUNCTION_ARN": spec.function_arn,
            }
        )
        # Reserved variables win over the function's own, as in AWS (which rejects such keys).
        return {**spec.environment, **env}

    def invoke(
        self,
        spec: FunctionSpec,
        code: bytes,
        event: bytes,
        invoked_arn: str | None = None,
        hang: bool = False,
    ) -> InvocationResult:
        request_id = str(uuid.uuid4())
        started = time.monotonic()
        try:
            task_root = self.cache.path_for(spec.code_sha256, code)
        except InvalidCodeError as exc:
            return self._result(
                spec,
                request_id,
                started,
                error_payload(request_id, "Runtime.InvalidEntrypoint", str(exc)),
                "",
                True,
            )
        deadline_ms = int(time.time() * 1000) + spec.timeout * 1000
        log_stream = time.strftime("%Y/%m/%d/") + f"[{spec.version}]{uuid.uuid4().hex}"
        env = self.sandbox_env(spec, request_id, deadline_ms, log_stream)
        env["LAMBDA_TASK_ROOT"] = str(task_root)
        if invoked_arn:
            env["LOCAL_AWS_INVOKED_FUNCTION_ARN"] = invoked_arn
        with tempfile.TemporaryDirectory(prefix="lambda-") as tmp:
            result_file = Path(tmp) / "result.json"
            env["TMPDIR"] = tmp  # a private /tmp per invocation
            cmd = [
                self.python,
                "-I",
                str(BOOTSTRAP),
                str(task_root),
                spec.handler,
                str(result_file),
            ]
            if hang:
                cmd.append("--hang")
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=task_root,
                start_new_session=True,  # so a timeout kills the whole process group
            )
            try:
                out, _ = proc.communicate(event, timeout=spec.timeout)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                out, _ = proc.communicate()
                logs = out.decode(errors="replace")
                return self._result(
                    spec, request_id, started, timeout_payload(request_id, spec.timeout), logs, True
                )
            logs = out.decode(errors="replace")
            if not result_file.exists():
                status = proc.returncode
                reason = (
                    f"signal: {signal.Signals(-status).name.lower()}"
                    if status < 0
                    else f"exit status {status}"
                )
                payload = error_payload(
                    request_id,
                    "Runtime.ExitError",
                    f"RequestId: {request_id} Error: Runtime exited with error: {reason}",
                )
                return self._result(spec, request_id, started, payload, logs, True)
            outcome = json.loads(result_file.read_text(encoding="utf-8"))
        if "ok" in outcome:
            return self._result(spec, request_id, started, outcome["ok"].encode(), logs, False)
        return self._result(spec, request_id, started, json.dumps(outcome).encode(), logs, True)

    def _result(self, spec, request_id, started, payload, logs, failed) -> InvocationResult:
        duration_ms = (time.monotonic() - started) * 1000
        framed = (
            f"START RequestId: {request_id} Version: {spec.version}\n{logs}"
            f"END RequestId: {request_id}\n"
            f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\tMemory Size: "
            f"{spec.memory_size} MB\n"
        )
        return InvocationResult(
            payload=payload,
            function_error="Unhandled" if failed else None,
            logs=framed,
            executed_version=spec.version,
            request_id=request_id,
            duration_ms=duration_ms,
        )


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
