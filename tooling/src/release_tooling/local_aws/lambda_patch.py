"""Make moto's Lambda Invoke run the deployed code (moto would need Docker for that).

Patched at the narrowest point: LambdaBackend.invoke, which every Invoke reaches (SDK calls from
Lambdas, Step Functions' lambda:invoke integration, CodeDeploy hooks), resolves the qualifier with
alias routing weights and hands the chosen version to LambdaRuntime. LambdaFunction.invoke (the
legacy InvokeAsync path) is routed to the same code. Every invocation puts the AWS/Lambda metrics
Lambda sends into CloudWatch (metrics.py).
"""

from __future__ import annotations

import base64
import json
import logging
import random
import re
import threading
from typing import Any

from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.models import LambdaBackend, LambdaFunction

from . import metrics
from .faults import FaultRegistry, FaultRule
from .lambda_runtime import FunctionSpec, InvocationResult, LambdaRuntime, error_payload

log = logging.getLogger("local_aws.lambda")
_VERSION = re.compile(r"^\d+$")


class LambdaServiceException(LambdaClientError):
    code = 500

    def __init__(self, message: str) -> None:
        super().__init__("ServiceException", message)


class InvalidRequestContentException(LambdaClientError):
    code = 400

    def __init__(self, message: str) -> None:
        super().__init__("InvalidRequestContentException", message)


def split_qualifier(
    backend: LambdaBackend, function_name: str, qualifier: str | None
) -> tuple[str, str | None]:
    """Function name and qualifier from a name, name:qualifier, partial or full ARN."""
    if function_name.startswith("arn:"):
        _, name, arn_qualifier = backend._lambdas.split_function_arn(function_name)
        return name, arn_qualifier or qualifier
    parts = function_name.split(":")
    if len(parts) >= 3 and parts[1] == "function":  # "123456789012:function:name[:q]"
        return parts[2], parts[3] if len(parts) > 3 else qualifier
    if len(parts) == 2:
        return parts[0], parts[1]
    return function_name, qualifier


def pick_version(alias_version: str, routing_config: Any, rnd: random.Random) -> str:
    """The version an alias invocation runs: weighted choice, as Lambda's routing config does."""
    weights = (routing_config or {}).get("AdditionalVersionWeights") or {}
    roll = rnd.random()
    for version, weight in sorted(weights.items()):
        if roll < float(weight):
            return version
        roll -= float(weight)
    return alias_version


def spec_for(fn: LambdaFunction) -> FunctionSpec:
    unqualified = (
        fn.function_arn.rsplit(":", 1)[0] if _VERSION.match(str(fn.version)) else fn.function_arn
    )
    return FunctionSpec(
        function_name=fn.function_name,
        function_arn=unqualified,
        version=str(fn.version) if _VERSION.match(str(fn.version)) else "$LATEST",
        handler=fn.handler,
        runtime=fn.run_time or "python3",
        timeout=int(fn.timeout),
        memory_size=int(fn.memory_size),
        region=fn.region,
        code_sha256=fn.code_sha_256,
        environment=dict(fn.environment_vars or {}),
        role_arn=fn.role,
    )


class LambdaInvoker:
    def __init__(
        self, runtime: LambdaRuntime, faults: FaultRegistry, rnd: random.Random | None = None
    ) -> None:
        self.runtime = runtime
        self.faults = faults
        # Traffic splitting, not security: a plain PRNG is what weighted routing needs.
        self.rnd = rnd or random.Random()  # noqa: S311

    def resolve(
        self, backend: LambdaBackend, function_name: str, qualifier: str | None
    ) -> tuple[LambdaFunction, str | None]:
        name, qualifier = split_qualifier(backend, function_name, qualifier)
        if qualifier and qualifier != "$LATEST" and not _VERSION.match(qualifier):
            alias = backend._lambdas.get_alias(qualifier, name)  # raises ResourceNotFound like AWS
            version = pick_version(alias.function_version, alias.routing_config, self.rnd)
            return backend.get_function(name, version), qualifier
        return backend.get_function(name, qualifier), qualifier

    def run(
        self, fn: LambdaFunction, qualifier: str | None, body: bytes | str | None
    ) -> InvocationResult:
        raw = body.encode() if isinstance(body, str) else (body or b"{}")
        try:
            event = json.loads(raw or b"{}")
        except ValueError as exc:
            raise InvalidRequestContentException(
                f"Could not parse request body into json: {exc}"
            ) from exc
        spec = spec_for(fn)
        invoked_arn = f"{spec.function_arn}:{qualifier}" if qualifier else spec.function_arn
        fault = self.faults.for_invocation(fn.function_name, qualifier, event)
        if fault is not None:
            log.warning("fault %s fires on %s (%s)", fault.name, invoked_arn, fault.action)
        if fault is not None and fault.action == "service-error":
            raise LambdaServiceException(f"{fault.error_message} (fault {fault.name})")
        if fault is not None and fault.action == "error":
            result = _injected_error(spec, fault)
        else:
            result = self.runtime.invoke(
                spec,
                fn.code_bytes,
                raw,
                invoked_arn=invoked_arn,
                hang=fault is not None and fault.action == "hang",
            )
            _save_logs(fn, result.logs)
        metrics.record_invocation(
            fn.account_id,
            fn.region,
            fn.function_name,
            qualifier,
            result.executed_version,
            result.function_error is not None,
            result.duration_ms,
        )
        return result

    def backend_invoke(
        self,
        backend: LambdaBackend,
        function_name: str,
        qualifier: str | None,
        body: Any,
        headers: Any,
        response_headers: dict,
    ) -> bytes:
        fn, qualifier = self.resolve(backend, function_name, qualifier)
        invocation_type = headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if invocation_type == "DryRun":
            return b""
        if invocation_type == "Event":
            # Asynchronous: accepted now, run in the background, as Lambda's event queue does.
            threading.Thread(
                target=self._run_quietly, args=(fn, qualifier, body), daemon=True
            ).start()
            return b""
        result = self.run(fn, qualifier, body)
        response_headers["x-amz-executed-version"] = result.executed_version
        if result.function_error:
            response_headers["x-amz-function-error"] = result.function_error
        if headers.get("X-Amz-Log-Type") == "Tail":
            response_headers["x-amz-log-result"] = base64.b64encode(
                result.logs.encode()[-4096:]
            ).decode()
        response_headers["Content-Length"] = str(len(result.payload))
        return result.payload

    def _run_quietly(self, fn: LambdaFunction, qualifier: str | None, body: Any) -> None:
        try:
            result = self.run(fn, qualifier, body)
            if result.function_error:
                log.warning(
                    "async invocation of %s failed: %s", fn.function_name, result.payload[:500]
                )
        except Exception:  # noqa: BLE001 - a background invocation must never kill the server
            log.exception("async invocation of %s could not run", fn.function_name)


def _injected_error(spec: FunctionSpec, fault: FaultRule) -> InvocationResult:
    request_id = f"fault-{fault.name}"
    return InvocationResult(
        payload=error_payload(request_id, fault.error_type, fault.error_message),
        function_error="Unhandled",
        logs=f"[ERROR] {fault.error_type}: {fault.error_message}\n",
        executed_version=spec.version,
        request_id=request_id,
        duration_ms=0.0,
    )


def _save_logs(fn: LambdaFunction, logs: str) -> None:
    try:
        fn.logs_backend.ensure_log_group(fn.logs_group_name)
        fn.save_logs(logs)
    except Exception:  # noqa: BLE001 - logs are a convenience; never fail the invocation for them
        log.debug("could not store logs for %s", fn.function_name, exc_info=True)


def install(invoker: LambdaInvoker) -> None:
    from moto.awslambda.responses import LambdaResponse

    original_response_invoke = LambdaResponse.invoke

    def response_invoke(self):
        # moto reads `qualifier` (lower case) from the query string or, failing that, from the JSON
        # payload itself; the API's query parameter is `Qualifier`. Pin it before moto looks.
        self.querystring["qualifier"] = [self.querystring.get("Qualifier", [None])[0]]
        return original_response_invoke(self)

    def invoke(self, function_name, qualifier, body, headers, response_headers):
        return invoker.backend_invoke(
            self, function_name, qualifier, body, headers, response_headers
        )

    def function_invoke(self, body, request_headers, response_headers):
        result = invoker.run(self, None, body)
        if result.function_error:
            response_headers["x-amz-function-error"] = result.function_error
        return result.payload

    LambdaResponse.invoke = response_invoke
    LambdaBackend.invoke = invoke
    LambdaFunction.invoke = function_invoke
