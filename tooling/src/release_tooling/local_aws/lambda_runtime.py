"""Run a Lambda function's deployed zip in a subprocess, with Lambda's contract.

Pure of moto: it takes a FunctionSpec (what GetFunctionConfiguration would say) and the code bytes,
and returns what the Invoke API would return. lambda_patch.py wires it into moto.

Isolated as the managed runtime is: the function imports what its zip holds, the runtime's boto3
and the standard library, never the development virtualenv (an undeclared import fails with
Runtime.ImportModuleError locally as on AWS). The interpreter is `python3.X` of the function's
runtime when it is installed, else this one (said once in the endpoint log); it runs with -I -S
(no user site, no PYTHON* variables, no site-packages) and _bootstrap.py sets sys.path to
[task root, runtime dir, standard library], as the Lambda Python runtime's search path puts the
function's code first and the runtime's boto3 after it. The runtime dir is a pinned boto3 (the
tooling's own pin) installed once with pip into a cache outside the virtualenv:
$RELEASE_TOOLING_CACHE, else $XDG_CACHE_HOME/release-tooling, else ~/.cache/release-tooling.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib.metadata
import io
import json
import logging
import os
import re
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
log = logging.getLogger("local_aws.lambda")
# Nothing is inherited from the host (in particular no real AWS credentials or profiles, and no
# PYTHONPATH or VIRTUAL_ENV): a sandbox gets the function's variables and those Lambda defines.
_HOST_VARS_KEPT = ("SYSTEMROOT",)  # Windows cannot start a process without it
# -I: no user site-packages, no PYTHON* variables, no script directory on sys.path; -S: no
# site-packages at all (the interpreter may be the development virtualenv's); -B: the task root
# stays as deployed (read-only on Lambda); -u: logs reach the stream even if the process is
# killed at its timeout; -X utf8: Lambda's LANG is en_US.UTF-8 whatever the host's locale.
_ISOLATED = ("-I", "-S", "-B", "-u", "-X", "utf8")
_RUNTIME_RE = re.compile(r"^python(3\.\d+)$")
# The platform of Lambda's x86_64 Python runtimes (Amazon Linux 2023).
_PLATFORM = "manylinux2014_x86_64"


def boto3_pin() -> str:
    """The boto3 version the tooling pins (its managed-runtime stand-in uses the same)."""
    try:
        requires = importlib.metadata.requires("serverless-release-tooling") or []
    except importlib.metadata.PackageNotFoundError:
        requires = []
    for requirement in requires:
        match = re.match(r"^boto3\s*==\s*([^\s;]+)", requirement)
        if match:
            return match.group(1)
    return importlib.metadata.version("boto3")


def default_cache_root() -> Path:
    explicit = os.environ.get("RELEASE_TOOLING_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "release-tooling"


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
        python: str | None = None,
        runtime_cache: Path | None = None,
    ) -> None:
        self.cache = CodeCache(cache_dir)
        self.endpoint_url = endpoint_url
        self.credentials = credentials
        self.python = python  # None: the runtime's python3.X from PATH, else this interpreter
        self.runtime_cache = Path(runtime_cache) if runtime_cache else default_cache_root()
        self._interpreters: dict[str, tuple[str, str]] = {}
        self._runtime_dirs: dict[tuple[str, str], Path] = {}
        self._prepare_lock = threading.Lock()
        # Empty shared config and credentials files: a profile of the developer's (say one with
        # ignore_configured_endpoint_urls = true, or credential_process) must never reach the
        # function, which would then talk to real AWS with the developer's identity.
        config_dir = Path(config_dir)
        config_dir.mkdir(parents=True, exist_ok=True)
        self.aws_config_file = config_dir / "config"
        self.aws_credentials_file = config_dir / "credentials"
        for empty in (self.aws_config_file, self.aws_credentials_file):
            empty.write_text("", encoding="utf-8")

    def interpreter(self, runtime: str) -> tuple[str, str]:
        """(executable, "3.X") that runs functions of ``runtime``, found once per runtime."""
        with self._prepare_lock:
            if runtime not in self._interpreters:
                self._interpreters[runtime] = self._find_interpreter(runtime)
            return self._interpreters[runtime]

    def _find_interpreter(self, runtime: str) -> tuple[str, str]:
        wanted = _RUNTIME_RE.match(runtime)
        candidates = [self.python] if self.python else []
        if wanted and not self.python:
            candidates.append(shutil.which(f"python{wanted.group(1)}") or "")
        for candidate in filter(None, candidates):
            found = _probe(candidate)
            if found and (self.python or found[1] == wanted.group(1)):
                if not self.python:
                    log.info("local Lambda runtime: %s functions run on %s", runtime, found[0])
                return found
        current = (sys.executable, f"{sys.version_info[0]}.{sys.version_info[1]}")
        if not self.python:
            log.warning(
                "local Lambda runtime: python%s is not installed (or does not run), so %s "
                "functions run on this Python %s (%s); install python%s for a faithful runtime",
                wanted.group(1) if wanted else "?",
                runtime,
                current[1],
                current[0],
                wanted.group(1) if wanted else "3.X",
            )
        return current

    def runtime_dir(self, python: str, version: str) -> Path:
        """The managed runtime's stand-in: the tooling's pinned boto3, apart from any virtualenv,
        installed once per Python version (pip and network the first time only)."""
        with self._prepare_lock:
            key = (python, version)
            if key not in self._runtime_dirs:
                self._runtime_dirs[key] = self._install_runtime_boto3(python, version)
            return self._runtime_dirs[key]

    def _install_runtime_boto3(self, python: str, version: str) -> Path:
        pin = boto3_pin()
        target = self.runtime_cache / f"runtime-boto3-{pin}-py{version}"
        if (target / "boto3" / "__init__.py").is_file():
            log.info("local Lambda runtime: boto3 %s from %s", pin, target)
            return target
        log.info(
            "local Lambda runtime: installing boto3==%s for Python %s into %s (once)",
            pin,
            version,
            target,
        )
        started = time.monotonic()
        self.runtime_cache.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".runtime-", dir=self.runtime_cache))
        try:
            command = [
                sys.executable, "-m", "pip", "install", "--disable-pip-version-check",
                "--no-input", "--no-compile", "--platform", _PLATFORM, "--implementation", "cp",
                "--python-version", version, "--only-binary=:all:", "--target", str(staging),
                f"boto3=={pin}",
            ]  # fmt: skip
            proc = subprocess.run(command, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                errors = [x for x in proc.stderr.splitlines() if x.startswith("ERROR:")]
                raise LambdaRuntimeError(
                    f"could not install the local Lambda runtime's boto3=={pin} into {target}: "
                    f"{(errors or proc.stderr.strip().splitlines() or ['pip failed'])[-1]} "
                    "(pip needs the package index once; or set RELEASE_TOOLING_CACHE to a "
                    "directory holding runtime-boto3-*)"
                )
            # Bytecode for the interpreter that will import it: every invocation is a new
            # process, and compiling botocore on each would cost about a second.
            subprocess.run(
                [python, "-I", "-S", "-m", "compileall", "-q", str(staging)],
                capture_output=True,
                check=False,
            )
            try:
                os.replace(staging, target)
            except OSError:
                if not target.is_dir():  # else another endpoint installed it first
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        log.info("local Lambda runtime: boto3 installed in %.1f s", time.monotonic() - started)
        return target

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
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
                "_HANDLER": spec.handler,
                # Unreserved variables Lambda sets (same page); PATH and LD_LIBRARY_PATH are
                # completed in invoke() with the local interpreter's and task root's paths.
                "TZ": ":UTC",
                "LANG": "en_US.UTF-8",
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
        python, python_version = self.interpreter(spec.runtime)
        runtime_dir = self.runtime_dir(python, python_version)
        deadline_ms = int(time.time() * 1000) + spec.timeout * 1000
        log_stream = time.strftime("%Y/%m/%d/") + f"[{spec.version}]{uuid.uuid4().hex}"
        env = self.sandbox_env(spec, request_id, deadline_ms, log_stream)
        env.update(
            {
                "LAMBDA_TASK_ROOT": str(task_root),
                "LAMBDA_RUNTIME_DIR": str(runtime_dir),
                # Lambda's are /var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin and
                # /var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:...
                "PATH": os.pathsep.join(
                    [str(Path(python).resolve().parent), "/usr/local/bin", "/usr/bin", "/bin"]
                ),
                "LD_LIBRARY_PATH": os.pathsep.join(
                    [str(runtime_dir), str(runtime_dir / "lib"), str(task_root),
                     str(task_root / "lib")]
                ),
            }
        )  # fmt: skip
        if invoked_arn:
            env["LOCAL_AWS_INVOKED_FUNCTION_ARN"] = invoked_arn
        with tempfile.TemporaryDirectory(prefix="lambda-") as tmp:
            result_file = Path(tmp) / "result.json"
            env["TMPDIR"] = tmp  # a private /tmp per invocation
            cmd = [
                python,
                *_ISOLATED,
                str(BOOTSTRAP),
                str(task_root),
                spec.handler,
                str(result_file),
                str(runtime_dir),
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


def _probe(python: str) -> tuple[str, str] | None:
    """(real executable, "3.X") of an interpreter that runs, or None (pyenv puts shims on PATH
    for versions that are installed but not selected; they fail)."""
    try:
        proc = subprocess.run(
            [python, "-I", "-S", "-c", "import sys; print(sys.executable); print('%d.%d' % "
             "sys.version_info[:2])"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = proc.stdout.split()
    if proc.returncode != 0 or len(lines) != 2:
        return None
    return lines[0], lines[1]


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
