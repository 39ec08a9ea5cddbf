"""The embedded AWS endpoint: moto's ThreadedMotoServer plus this package's fidelity patches.

`python -m release_tooling.local_aws serve --state-dir .local` (run by `release-tooling local up`)
binds a free port on 127.0.0.1, writes `<state-dir>/endpoint.json` once it answers, and serves
until SIGTERM/SIGINT.
Besides the AWS APIs it answers a small control API under /_local_aws/ (health, fault rules,
snapshot). `--restore FILE` starts it with the state a snapshot saved (backend_state.py).
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from . import accounts as account_rules
from . import (
    alarms,
    backend_state,
    codedeploy_patch,
    codepipeline_patch,
    events_patch,
    iam_enforcement,
    lambda_patch,
    s3_patch,
    stepfunctions_patch,
)
from .faults import FaultRegistry, FaultRuleError
from .lambda_runtime import LambdaRuntime

CONTROL_PREFIX = "/_local_aws/"
CONTROL_SECRET_HEADER = "X-Local-Aws-Secret"  # noqa: S105 - a header name, not a secret
DEFAULT_MINUTE_SECONDS = 0.2
DEFAULT_ACCOUNT = "123456789012"  # moto's default account: the local pipeline's own account
log = logging.getLogger("local_aws")


class GuardApp:
    """WSGI middleware in front of everything: only this machine's own clients get in.

    A web page can reach 127.0.0.1 through DNS rebinding (its requests then carry the page's own
    host name) and any local user can open the port, while an invocation runs code as the developer:
    requests whose Host is not the endpoint's loopback address are refused, and the AWS API
    (iam_enforcement) and the control API below both require the per-run secret.
    """

    def __init__(self, app, port_holder: dict) -> None:
        self.app, self.port_holder = app, port_holder

    def allowed_hosts(self) -> set[str]:
        port = self.port_holder.get("port")
        return {f"{host}:{port}" for host in ("127.0.0.1", "localhost")}

    def __call__(self, environ, start_response):
        host = environ.get("HTTP_HOST", "")
        if host.lower() not in self.allowed_hosts():
            body = _json(
                421,
                {"error": f"Host {host!r} is not this endpoint; use http://127.0.0.1:PORT"},
            )
            return body(environ, start_response)
        return self.app(environ, start_response)


class ControlApp:
    """WSGI middleware: /_local_aws/* is ours (with the per-run secret), the rest goes to moto."""

    def __init__(
        self, moto_app, faults: FaultRegistry, info: dict, secret: str, snapshot=None
    ) -> None:
        self.moto_app, self.faults, self.info, self.secret = moto_app, faults, info, secret
        self.snapshot = snapshot  # snapshot(path) -> summary; None: no snapshot route

    def __call__(self, environ, start_response):
        if not environ.get("PATH_INFO", "").startswith(CONTROL_PREFIX):
            return self.moto_app(environ, start_response)
        request = Request(environ)
        given = request.headers.get(CONTROL_SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
            return _json(
                403,
                {
                    "error": f"the control API needs the {CONTROL_SECRET_HEADER} header from "
                    "<state-dir>/endpoint.json"
                },
            )(environ, start_response)
        return self.handle(request)(environ, start_response)

    def handle(self, request: Request) -> Response:
        path = request.path[len(CONTROL_PREFIX) :].strip("/")
        if path == "health" and request.method == "GET":
            return _json(200, {"status": "ok", **self.info})
        if path == "snapshot" and request.method == "POST" and self.snapshot is not None:
            try:
                target = json.loads(request.get_data() or b"{}").get("path")
                if not isinstance(target, str) or not Path(target).is_absolute():
                    raise backend_state.SnapshotStateError(
                        'the body must be {"path": "/absolute/file"}'
                    )
                return _json(200, self.snapshot(Path(target)))
            except (ValueError, AttributeError, backend_state.SnapshotStateError) as exc:
                return _json(409, {"error": str(exc)})
        if path == "faults":
            if request.method == "GET":
                return _json(200, {"rules": self.faults.describe()})
            if request.method == "PUT":
                try:
                    rules = json.loads(request.get_data() or b"[]")
                    if not isinstance(rules, list):
                        raise FaultRuleError("the body must be a JSON list of rules")
                    self.faults.replace(rules)
                except (ValueError, TypeError) as exc:
                    return _json(400, {"error": str(exc)})
                return _json(200, {"rules": self.faults.describe()})
            if request.method == "DELETE":
                self.faults.clear()
                return _json(200, {"rules": []})
        return _json(404, {"error": f"unknown control call {request.method} {request.path}"})


def _bucket_accounts() -> dict:
    from moto.s3.models import s3_backends

    return s3_backends.bucket_accounts


def _json(status: int, body: dict) -> Response:
    return Response(json.dumps(body, default=str), status=status, mimetype="application/json")


class LocalAwsServer(ThreadedMotoServer):
    """ThreadedMotoServer whose WSGI app carries the control API, with the adapters installed."""

    def __init__(
        self,
        state_dir: Path,
        port: int = 0,
        minute_seconds: float = DEFAULT_MINUTE_SECONDS,
        iam_mode: str = "enforce",
        restore: Path | None = None,
        accounts: Sequence[str] = (),
    ) -> None:
        super().__init__(ip_address="127.0.0.1", port=port, verbose=False)
        self.state_dir = Path(state_dir)
        self.restore = restore
        self.faults = FaultRegistry()
        self.admin = iam_enforcement.new_admin_credentials()
        # One administrator per extra account (accounts.py), as a person holds for each account.
        self.extra_accounts = account_rules.validate_accounts(accounts, DEFAULT_ACCOUNT)
        self.directory = iam_enforcement.Directory(
            self.admin,
            DEFAULT_ACCOUNT,
            {a: iam_enforcement.new_admin_credentials() for a in self.extra_accounts},
        )
        self.iam_mode = iam_mode
        self.enforcer = iam_enforcement.Enforcer(
            iam_mode,
            self.directory,
            iam_enforcement.DecisionLog(self.state_dir / "iam-decisions.jsonl"),
        )
        self.runtime = LambdaRuntime(
            self.state_dir / "lambda-cache",
            endpoint_url="",
            credentials=self.function_credentials,
            config_dir=self.state_dir / "lambda-aws-config",
        )
        self.invoker = lambda_patch.LambdaInvoker(self.runtime, self.faults)
        self.engine = codedeploy_patch.DeploymentEngine(self.invoker, self.faults, minute_seconds)
        self.engine.authorize = self.role_authorizer
        # CloudWatch evaluates the alarms on the metrics invocations emit, on CodeDeploy's clock.
        self.alarm_evaluator = alarms.AlarmEvaluator(minute_seconds)
        self.info = {
            "pid": os.getpid(),
            "minute_seconds": minute_seconds,
            "iam": iam_mode,
            "accounts": [DEFAULT_ACCOUNT, *self.extra_accounts],
        }
        # State the adapter keeps outside moto's backends, saved and restored with them by
        # snapshots: name -> (get, set). A part that holds threads or open files must be idle
        # when saved (see require_quiescent); moto's backends themselves are captured wholesale.
        self.snapshot_parts: dict[str, tuple] = {
            "codedeploy.custom_configs": (
                lambda: self.engine.custom_configs,
                self.engine.custom_configs.update,
            ),
            # Finished executions (CreatePipeline starts one, as AWS does); only finished ones
            # are ever saved (require_quiescent).
            "codepipeline.executions": (
                lambda: codepipeline_patch.ENGINE.runs,
                codepipeline_patch.ENGINE.runs.update,
            ),
            "events.failed_invocations": (
                lambda: list(events_patch.FAILED_INVOCATIONS),
                events_patch.FAILED_INVOCATIONS.extend,
            ),
            # Which account owns each bucket: an attribute of moto's S3 BackendDict, not one of its
            # items, so not in the moto part; without it no bucket is found from another account.
            "s3.bucket_accounts": (_bucket_accounts, _bucket_accounts().update),
            # The accounts the state was made with: restored only into an endpoint serving them.
            "accounts": (lambda: list(self.info["accounts"]), self._require_accounts),
        }
        self.info["restored"] = False

    def _require_accounts(self, saved: list[str]) -> None:
        if sorted(saved) != sorted(self.info["accounts"]):
            extra = " ".join(f"--account {a}" for a in saved if a != DEFAULT_ACCOUNT)
            extra = extra or "no --account"
            raise backend_state.SnapshotStateError(
                f"the saved state is of accounts {saved}, this endpoint serves "
                f"{self.info['accounts']}: start it with {extra}"
            )

    def role_authorizer(
        self,
        role_arn: str,
        action: str,
        resource: str,
        context: dict | None = None,
        session_name: str = "service",
    ) -> None:
        """A service acting with a role in-process; PermissionError names what was denied."""
        try:
            self.enforcer.authorize_service(role_arn, action, resource, context, session_name)
        except iam_enforcement.LocalAccessDenied as exc:
            raise PermissionError(str(exc)) from exc

    def service_authorizer(
        self, role_arn: str, action: str, resource: str, context: dict | None = None
    ) -> None:
        """CodePipeline and EventBridge acting with their roles, in-process, under IAM."""
        try:
            self.enforcer.authorize_service(role_arn, action, resource, context)
        except iam_enforcement.LocalAccessDenied as exc:
            raise codepipeline_patch.ServiceAccessDenied(
                exc.principal, action, resource, f"because {exc.reason}"
            ) from exc

    def function_credentials(self, role_arn: str, function_name: str, region: str) -> dict:
        """What the Lambda service gives a function: its execution role's temporary credentials."""
        return self.directory.credentials_for_role(role_arn, function_name, region).as_env()

    def require_quiescent(self) -> None:
        """A snapshot is taken only when no deployment, pipeline execution or Step Functions
        execution is running: their threads and half-done work cannot be carried over."""
        busy = [f"CodeDeploy deployment {i}" for i, run in self.engine.runs.items() if run.active]
        for runs in codepipeline_patch.ENGINE.runs.values():
            busy += [f"pipeline execution {r.execution_id}" for r in runs if not r.done.is_set()]
        from moto.stepfunctions.models import stepfunctions_backends
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        for backends in (stepfunctions_backends, stepfunctions_parser_backends):
            for _, _, backend in backends.iter_backends():
                for machine in backend.state_machines:
                    for execution in machine.executions:
                        status = getattr(execution, "exec_status", None) or execution.status
                        if str(getattr(status, "value", status)) == "RUNNING":
                            busy.append(f"execution {execution.execution_arn}")
        if busy:
            raise backend_state.SnapshotStateError(
                f"the endpoint is not idle ({', '.join(busy[:3])}); snapshot after it settles"
            )

    def save_snapshot(self, path: Path) -> dict:
        self.require_quiescent()
        parts = {name: get() for name, (get, _) in self.snapshot_parts.items()}
        return backend_state.dump(path, parts)

    def restore_snapshot(self, path: Path) -> None:
        parts = backend_state.load(path)
        unknown = sorted(set(parts) - set(self.snapshot_parts))
        if unknown:
            raise backend_state.SnapshotStateError(f"the saved state has unknown parts {unknown}")
        for name, value in parts.items():
            self.snapshot_parts[name][1](value)
        self.info["restored"] = True

    def _server_entry(self) -> None:
        app = GuardApp(
            ControlApp(
                s3_patch.LifecycleHeaderMiddleware(DomainDispatcherApplication(create_backend_app)),
                self.faults,
                self.info,
                self.admin.secret_access_key,
                snapshot=self.save_snapshot,
            ),
            self.info,
        )
        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()

    def start(self) -> None:
        iam_enforcement.install(self.enforcer)
        stepfunctions_patch.install_role_credentials(self.directory)
        lambda_patch.install(self.invoker)
        codedeploy_patch.install(self.engine)
        stepfunctions_patch.install(self.info["minute_seconds"])
        codepipeline_patch.install(authorizer=self.service_authorizer)
        s3_patch.install()
        alarms.install(self.alarm_evaluator)
        self.alarm_evaluator.start()
        if self.restore is not None:
            self.restore_snapshot(self.restore)  # before the first request is served
        super().start()
        host, port = self.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        self.runtime.endpoint_url = self.endpoint_url
        self.info["port"] = port
        # moto's Step Functions interpreter calls Lambda through http://localhost:$MOTO_PORT.
        os.environ["MOTO_PORT"] = str(port)


def serve(
    state_dir: Path,
    port: int,
    minute_seconds: float,
    iam_mode: str = "enforce",
    restore: Path | None = None,
    accounts: Sequence[str] = (),
) -> int:
    state_dir.mkdir(parents=True, exist_ok=True)
    server = LocalAwsServer(
        state_dir,
        port=port,
        minute_seconds=minute_seconds,
        iam_mode=iam_mode,
        restore=restore,
        accounts=accounts,
    )
    try:
        server.start()
    except backend_state.SnapshotStateError as exc:
        log.error("cannot restore %s: %s", restore, exc)
        print(f"restore failed: {exc}", file=sys.stderr, flush=True)
        return 3
    endpoint_file = state_dir / "endpoint.json"
    tmp = endpoint_file.with_suffix(".tmp")
    record = {
        "url": server.endpoint_url,
        **server.info,
        # The administrator credentials, as a person holds them for the bootstrap; also the
        # control API's secret. Only the owner of the state directory can read them.
        "access_key_id": server.admin.access_key_id,
        "secret_access_key": server.admin.secret_access_key,
        "account_id": DEFAULT_ACCOUNT,
        # Every account's administrator, the default account's included (process.Endpoint
        # .admin_credentials_for): Terraform roots of an account are applied as its administrator.
        "administrators": {
            account: {
                "access_key_id": creds.access_key_id,
                "secret_access_key": creds.secret_access_key,
            }
            for account, creds in server.directory.admins.items()
        },
    }
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(record, fh)
    os.replace(tmp, endpoint_file)  # readers never see a half-written file
    log.info("local AWS endpoint on %s (pid %s)", server.endpoint_url, os.getpid())
    stopped = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopped.set())
    stopped.wait()
    server.stop()
    endpoint_file.unlink(missing_ok=True)
    return 0
