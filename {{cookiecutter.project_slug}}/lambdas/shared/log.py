"""JSON structured logging with a correlation id.

Every line is one JSON object with ``level``, ``message``, ``service``, ``correlation_id`` (the
Step Functions execution name or, failing that, the commit SHA) and any extra fields, so a whole
release can be followed in CloudWatch Logs Insights with ``filter correlation_id = "..."``.
"""

import contextvars
import functools
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

_correlation_id: contextvars.ContextVar[str] = contextvars.ContextVar("correlation_id", default="-")
_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
            "service": os.environ.get("SERVICE_NAME", record.name),
            "correlation_id": _correlation_id.get(),
        }
        payload.update({k: v for k, v in record.__dict__.items() if k not in _RESERVED})
        if record.exc_info and record.exc_info[0] is not None:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str, sort_keys=False)


def get_logger(name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    if not any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
        # The Lambda runtime installs its own plain-text root handler; don't log twice.
        logger.propagate = False
    logger.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())
    return logger


def correlation_id_for(event: Any) -> str:
    """Pick the most useful id in the event: execution name, then commit SHA."""
    if isinstance(event, Mapping):
        for key in ("execution_name", "correlation_id", "commit_sha"):
            value = event.get(key)
            if isinstance(value, str) and value:
                return value
    return "-"


def set_correlation_id(value: str) -> None:
    _correlation_id.set(value)


def lambda_entrypoint(logger: logging.Logger) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Wrap a handler: bind the correlation id, log start/finish/failure with the duration."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(event: Any, context: Any) -> Any:
            token = _correlation_id.set(correlation_id_for(event))
            started = time.monotonic()
            request_id = getattr(context, "aws_request_id", None)
            logger.info("invocation started", extra={"request_id": request_id})
            try:
                result = func(event, context)
            except Exception as exc:
                logger.error(
                    "invocation failed",
                    extra={
                        "error_type": type(exc).__name__,
                        "error": str(exc),
                        "duration_ms": round((time.monotonic() - started) * 1000),
                    },
                )
                raise
            else:
                logger.info(
                    "invocation succeeded",
                    extra={"duration_ms": round((time.monotonic() - started) * 1000)},
                )
                return result
            finally:
                _correlation_id.reset(token)

        return wrapper

    return decorate
