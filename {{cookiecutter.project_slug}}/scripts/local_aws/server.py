"""The embedded AWS endpoint: moto's ThreadedMotoServer plus this package's fidelity patches.

`python -m local_aws serve --state-dir .local` (run by scripts/local.py up) binds a free port on
127.0.0.1, writes `<state-dir>/endpoint.json` once it answers, and serves until SIGTERM/SIGINT.
Besides the AWS APIs it answers a small control API under /_local_aws/ (health, fault rules).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from pathlib import Path

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from . import codedeploy_patch, codepipeline_patch, lambda_patch, s3_patch, stepfunctions_patch
from .faults import FaultRegistry, FaultRuleError
from .lambda_runtime import LambdaRuntime

CONTROL_PREFIX = "/_local_aws/"
DEFAULT_MINUTE_SECONDS = 0.2
log = logging.getLogger("local_aws")


class ControlApp:
    """WSGI middleware: /_local_aws/* is ours, everything else goes to moto."""

    def __init__(self, moto_app, faults: FaultRegistry, info: dict) -> None:
        self.moto_app, self.faults, self.info = moto_app, faults, info

    def __call__(self, environ, start_response):
        if not environ.get("PATH_INFO", "").startswith(CONTROL_PREFIX):
            return self.moto_app(environ, start_response)
        request = Request(environ)
        return self.handle(request)(environ, start_response)

    def handle(self, request: Request) -> Response:
        path = request.path[len(CONTROL_PREFIX) :].strip("/")
        if path == "health" and request.method == "GET":
            return _json(200, {"status": "ok", **self.info})
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


def _json(status: int, body: dict) -> Response:
    return Response(json.dumps(body, default=str), status=status, mimetype="application/json")


class LocalAwsServer(ThreadedMotoServer):
    """ThreadedMotoServer whose WSGI app carries the control API, with the adapters installed."""

    def __init__(
        self, state_dir: Path, port: int = 0, minute_seconds: float = DEFAULT_MINUTE_SECONDS
    ) -> None:
        super().__init__(ip_address="127.0.0.1", port=port, verbose=False)
        self.state_dir = Path(state_dir)
        self.faults = FaultRegistry()
        self.runtime = LambdaRuntime(self.state_dir / "lambda-cache", endpoint_url="")
        self.invoker = lambda_patch.LambdaInvoker(self.runtime, self.faults)
        self.engine = codedeploy_patch.DeploymentEngine(self.invoker, self.faults, minute_seconds)
        self.info = {"pid": os.getpid(), "minute_seconds": minute_seconds}

    def _server_entry(self) -> None:
        app = ControlApp(
            s3_patch.LifecycleHeaderMiddleware(DomainDispatcherApplication(create_backend_app)),
            self.faults,
            self.info,
        )
        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()

    def start(self) -> None:
        lambda_patch.install(self.invoker)
        codedeploy_patch.install(self.engine)
        stepfunctions_patch.install()
        codepipeline_patch.install()
        s3_patch.install()
        super().start()
        host, port = self.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        self.runtime.endpoint_url = self.endpoint_url
        self.info["port"] = port
        # moto's Step Functions interpreter calls Lambda through http://localhost:$MOTO_PORT.
        os.environ["MOTO_PORT"] = str(port)


def serve(state_dir: Path, port: int, minute_seconds: float) -> int:
    state_dir.mkdir(parents=True, exist_ok=True)
    server = LocalAwsServer(state_dir, port=port, minute_seconds=minute_seconds)
    server.start()
    endpoint_file = state_dir / "endpoint.json"
    tmp = endpoint_file.with_suffix(".tmp")
    tmp.write_text(json.dumps({"url": server.endpoint_url, **server.info}), encoding="utf-8")
    os.replace(tmp, endpoint_file)  # readers never see a half-written file
    log.info("local AWS endpoint on %s (pid %s)", server.endpoint_url, os.getpid())
    stopped = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopped.set())
    stopped.wait()
    server.stop()
    endpoint_file.unlink(missing_ok=True)
    return 0
