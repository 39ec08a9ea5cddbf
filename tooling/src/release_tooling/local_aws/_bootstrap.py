"""Runs ONE Lambda invocation inside a fresh interpreter, the way the AWS Python runtime does.

Started by lambda_runtime.py as
`python -I -S ... _bootstrap.py <task_root> <handler> <result_file> <runtime_dir> [--hang]` with
the event on stdin. It must only use the standard library (plus whatever the function's zip
brings): it is the "runtime", not part of the function. The outcome goes to <result_file> as JSON
so that anything the handler prints stays in the function's log stream, as in Lambda.

The search path is the Lambda Python runtime's, locally: the function's code (task root) first,
then the runtime's libraries (boto3), then the standard library; nothing else, so a module the
function's zip does not hold fails to import as it would on AWS.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import time
import traceback

_LOG_FORMAT = "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s"


class _RequestIdFilter(logging.Filter):
    def __init__(self, request_id: str) -> None:
        super().__init__()
        self.request_id = request_id

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        return True


class LambdaContext:
    """The attributes and method the AWS Python runtime's context object offers."""

    def __init__(self, request_id: str, deadline_ms: int) -> None:
        self.aws_request_id = request_id
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ["AWS_LAMBDA_FUNCTION_VERSION"]
        self.invoked_function_arn = os.environ["LOCAL_AWS_INVOKED_FUNCTION_ARN"]
        self.memory_limit_in_mb = os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]
        self.log_group_name = os.environ["AWS_LAMBDA_LOG_GROUP_NAME"]
        self.log_stream_name = os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(self._deadline_ms - int(time.time() * 1000), 0)


def _error(error_type: str, message: str, stack: list[str] | None = None) -> dict:
    return {
        "errorMessage": message,
        "errorType": error_type,
        "requestId": os.environ["LOCAL_AWS_REQUEST_ID"],
        "stackTrace": stack or [],
    }


def _user_frames(tb) -> list[str]:
    # Drop this bootstrap's own frames, as the AWS runtime hides its frames.
    frames = [
        f
        for f in traceback.extract_tb(tb)
        if os.path.abspath(f.filename) != os.path.abspath(__file__)
    ]
    return traceback.format_list(frames)


def _load_handler(handler: str):
    module_name, _, function_name = handler.rpartition(".")
    if not module_name or not function_name:
        return None, _error(
            "Runtime.MalformedHandlerName",
            f"Bad handler '{handler}': not enough values to unpack (expected 2, got 1)",
        )
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        return None, _error(
            "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}"
        )
    except Exception as exc:  # noqa: BLE001 - any init failure is reported like Lambda does
        return None, _error(type(exc).__name__, str(exc), _user_frames(exc.__traceback__))
    fn = getattr(module, function_name, None)
    if fn is None:
        return None, _error(
            "Runtime.HandlerNotFound",
            f"Handler '{function_name}' missing on module '{module_name}'",
        )
    return fn, None


def _isolate(task_root: str, runtime_dir: str) -> None:
    # Started with -I -S: sys.path holds the standard library only (no script directory, no
    # site-packages). Anything else here would let the function import what its zip lacks.
    stdlib = [p for p in sys.path if p and "site-packages" not in p and "dist-packages" not in p]
    sys.path[:] = [task_root, runtime_dir, *stdlib]


def main(argv: list[str]) -> int:
    task_root, handler, result_file, runtime_dir = argv[1], argv[2], argv[3], argv[4]
    hang = "--hang" in argv[5:]
    _isolate(task_root, runtime_dir)
    os.chdir(task_root)
    request_id = os.environ["LOCAL_AWS_REQUEST_ID"]

    root = logging.getLogger()
    stream = logging.StreamHandler(sys.stdout)
    stream.setFormatter(logging.Formatter(_LOG_FORMAT, "%Y-%m-%dT%H:%M:%S"))
    stream.addFilter(_RequestIdFilter(request_id))
    root.addHandler(stream)
    root.setLevel(os.environ.get("AWS_LAMBDA_LOG_LEVEL", "WARNING"))

    event = json.loads(sys.stdin.buffer.read() or b"{}")
    fn, outcome = _load_handler(handler)
    if fn is not None:
        if hang:
            # Fault injection: a dependency that never answers. The parent enforces the timeout.
            while True:
                time.sleep(3600)
        context = LambdaContext(request_id, int(os.environ["LOCAL_AWS_DEADLINE_MS"]))
        try:
            result = fn(event, context)
        except Exception as exc:  # noqa: BLE001 - the runtime reports every handler exception
            outcome = _error(type(exc).__name__, str(exc), _user_frames(exc.__traceback__))
            print(f"[ERROR] {outcome['errorType']}: {outcome['errorMessage']}", file=sys.stdout)
            print(
                "Traceback (most recent call last):",
                "".join(outcome["stackTrace"]),
                sep="\n",
                file=sys.stdout,
            )
        else:
            try:
                outcome = {"ok": json.dumps(result)}
            except (TypeError, ValueError) as exc:
                outcome = _error("Runtime.MarshalError", f"Unable to marshal response: {exc}")
    sys.stdout.flush()
    with open(result_file, "w", encoding="utf-8") as fh:
        json.dump(outcome, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
