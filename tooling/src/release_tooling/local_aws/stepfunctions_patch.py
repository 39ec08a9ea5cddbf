"""Step Functions calls the Terraform AWS provider makes and moto lacks, answered like AWS.

Also switches moto to executing state machines (its parser backend) so executions really run,
and emits the "Step Functions Execution Status Change" events AWS sends to EventBridge.
"""

from __future__ import annotations

import base64
import json
import logging
import time

from moto.core.config import default_user_config
from moto.core.responses import ActionResult
from moto.stepfunctions import responses as sfn_responses
from moto.stepfunctions.exceptions import InvalidToken, ValidationException

from . import events_patch
from .asl_validation import moto_grammar_check, validate_definition

MAX_RESULTS = 100
log = logging.getLogger("local_aws.stepfunctions")


def validate_state_machine_definition(self) -> ActionResult:
    definition = self._get_param("definition")
    if not isinstance(definition, str):
        raise ValidationException(
            "1 validation error detected: Value null at 'definition' failed to satisfy "
            "constraint: Member must not be null"
        )
    sm_type = self._get_param("type") or "STANDARD"
    if sm_type not in ("STANDARD", "EXPRESS"):
        raise ValidationException(
            f"Value '{sm_type}' at 'type' failed to satisfy constraint: Member must satisfy enum "
            "value set: [STANDARD, EXPRESS]"
        )
    limit = int(self._get_param("maxResults") or MAX_RESULTS)
    diagnostics = validate_definition(definition, grammar_check=moto_grammar_check)
    return ActionResult(
        {
            "result": "FAIL" if any(d.severity == "ERROR" for d in diagnostics) else "OK",
            "diagnostics": [d.to_api() for d in diagnostics[:limit]],
            "truncated": len(diagnostics) > limit,
        }
    )


def list_state_machine_versions(self) -> ActionResult:
    machine = self.stepfunction_backend.describe_state_machine(self._get_param("stateMachineArn"))
    versions = sorted(
        getattr(machine, "versions", {}).values(), key=lambda v: v.version, reverse=True
    )
    return ActionResult(
        {
            "stateMachineVersions": [
                {"stateMachineVersionArn": v.arn, "creationDate": v.creation_date} for v in versions
            ]
        }
    )


def install_role_credentials(directory) -> None:
    """Step Functions calls services with the credentials of the state machine's role.

    AWS: "Step Functions assumes the execution role to call the services in your workflow" (Step
    Functions developer guide, "How Step Functions works with IAM"). moto's interpreter signs every
    call with a fixed key ("ak"), which the endpoint would refuse; sign with the role's session.
    A task's own Credentials.RoleArn arrives the same way, as state_credentials.role_arn.
    """
    import boto3
    from botocore.config import Config
    from moto.settings import moto_server_port
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds
    from moto.stepfunctions.parser.asl.utils import boto_client as parser_boto_client

    def boto_client_for(region: str, service: str, state_credentials=None):
        role_arn = getattr(state_credentials, "role_arn", None)
        if not role_arn:
            raise ValueError(f"Step Functions called {service} without a role to act as")
        creds = directory.credentials_for_role(role_arn, "states-execution", region)
        return boto3.client(
            service_name=service,
            region_name=region,
            endpoint_url=f"http://127.0.0.1:{moto_server_port()}",
            aws_access_key_id=creds.access_key_id,
            aws_secret_access_key=creds.secret_access_key,
            aws_session_token=creds.session_token,
            config=Config(
                parameter_validation=False,
                retries={"max_attempts": 0, "total_max_attempts": 1},
                connect_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                read_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
            ),
        )

    original = parser_boto_client.boto_client_for
    parser_boto_client.boto_client_for = boto_client_for
    # The task modules import the function by name: import them now and rebind their copies.
    import importlib
    import pkgutil

    import moto.stepfunctions.parser.asl.component.state.exec as exec_package

    for info in pkgutil.walk_packages(exec_package.__path__, exec_package.__name__ + "."):
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # optional integrations whose dependencies are absent
            continue
        if getattr(module, "boto_client_for", None) is original:
            module.boto_client_for = boto_client_for


def install_lambda_error_names() -> None:
    """Name Lambda API errors the way Step Functions does.

    moto names every Lambda client error `Lambda.<ErrorCode>`. Step Functions keeps the name only
    for the exceptions Lambda's API models; anything else, such as the 403 AccessDeniedException
    IAM answers when the state machine role may not invoke a function, reaches the state machine
    as `Lambda.AWSLambdaException` (Step Functions Developer Guide, "Handling errors in Step
    Functions workflows", errors of the Lambda service integration), which is what its Retry and
    Catch name.
    """
    import botocore.session
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_lambda as service_lambda,
    )

    modeled = {
        shape.name
        for shape in botocore.session.get_session().get_service_model("lambda").error_shapes
    }
    original = service_lambda.StateTaskServiceLambda._error_cause_from_client_error

    def error_cause_from_client_error(client_error) -> tuple[str, str]:
        error, cause = original(client_error)
        if client_error.response["Error"]["Code"] not in modeled:
            error = "Lambda.AWSLambdaException"
        return error, cause

    service_lambda.StateTaskServiceLambda._error_cause_from_client_error = staticmethod(
        error_cause_from_client_error
    )


HISTORY_PAGE = 100  # GetExecutionHistory: "The default is 100 and the maximum allowed page size
HISTORY_MAX_PAGE = 1000  # is 1000. A value of 0 uses the default." (Step Functions API Reference)


def _history_token(execution_arn: str, reverse: bool, offset: int) -> str:
    raw = json.dumps({"arn": execution_arn, "reverse": reverse, "offset": offset})
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _history_offset(token: str, execution_arn: str, reverse: bool) -> int:
    """Where a nextToken continues; InvalidToken for one of another call ("keep all other
    arguments unchanged") or one this endpoint never issued."""
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset = data["offset"]
        same = data["arn"] == execution_arn and data["reverse"] is reverse
    except (ValueError, TypeError, KeyError):
        raise InvalidToken(f"{token!r} is not a token GetExecutionHistory returned") from None
    if not same or not isinstance(offset, int) or offset < 0:
        raise InvalidToken("the token belongs to another execution or order: keep the arguments")
    return offset


def get_execution_history(self) -> ActionResult:
    """GetExecutionHistory with its paging and order (moto returns every event, oldest first, and
    ignores maxResults, reverseOrder and nextToken).

    Step Functions API Reference, GetExecutionHistory: ascending timeStamp order by default,
    reverseOrder lists the latest events first; maxResults pages (default 100, at most 1000, 0
    means the default); a nextToken is returned while more events remain, and the call is repeated
    with it and every other argument unchanged.
    """
    execution_arn = self._get_param("executionArn")
    reverse = bool(self._get_param("reverseOrder") or False)
    size = self._get_param("maxResults")
    size = HISTORY_PAGE if size in (None, 0) else int(size)
    if not 1 <= size <= HISTORY_MAX_PAGE:
        raise ValidationException(
            f"1 validation error detected: Value '{size}' at 'maxResults' failed to satisfy "
            f"constraint: Member must have value less than or equal to {HISTORY_MAX_PAGE}"
        )
    token = self._get_param("nextToken")
    offset = _history_offset(token, execution_arn, reverse) if token else 0
    history = self.stepfunction_backend.get_execution_history(execution_arn)
    events = list(history.get("events", []) if isinstance(history, dict) else history.events)
    if reverse:
        events.reverse()
    page = events[offset : offset + size]
    result: dict = {"events": page}
    if offset + size < len(events):
        result["nextToken"] = _history_token(execution_arn, reverse, offset + size)
    return ActionResult(result)


STATUS_CHANGE = "Step Functions Execution Status Change"


def _millis(value) -> int | None:
    return int(value.timestamp() * 1000) if value is not None else None


def status_change_detail(execution) -> dict:
    """The detail of a Step Functions Execution Status Change event for `execution`.

    Fields as in "AWS Step Functions events" (EventBridge Events Reference) and "Automating Step
    Functions event delivery with EventBridge" (Step Functions Developer Guide): the ARNs, name
    and status, startDate/stopDate in epoch milliseconds, input and output as JSON strings (output
    only for SUCCEEDED), error and cause of a failed execution.
    """
    from moto.stepfunctions.parser.asl.utils.encoding import to_json_str
    from moto.stepfunctions.parser.backend.state_machine import StateMachineVersion

    machine = execution.state_machine
    versioned = isinstance(machine, StateMachineVersion)
    status = execution.exec_status.value if execution.exec_status is not None else "RUNNING"
    return {
        "executionArn": execution.exec_arn,
        "stateMachineArn": machine.source_arn if versioned else machine.arn,
        "stateMachineVersionArn": machine.arn if versioned else None,
        "stateMachineAliasArn": None,
        "name": execution.name,
        "status": status,
        "startDate": _millis(execution.start_date),
        "stopDate": _millis(execution.stop_date),
        "input": to_json_str(execution.input_data, separators=(",", ":")),
        "output": (
            to_json_str(execution.output, separators=(",", ":")) if status == "SUCCEEDED" else None
        ),
        "inputDetails": {"included": True},
        "outputDetails": {"included": True} if status == "SUCCEEDED" else None,
        "error": execution.error,
        "cause": execution.cause,
    }


def emit_status_change(execution) -> None:
    """Step Functions sends a status change to the default bus when an execution starts and ends."""
    try:
        events_patch.service_event(
            execution.account_id,
            execution.region_name,
            "aws.states",
            STATUS_CHANGE,
            status_change_detail(execution),
            [execution.exec_arn],
        )
    except Exception:  # noqa: BLE001 - the event is best effort on AWS too; never fail the execution
        log.exception("could not emit the status change of %s", execution.exec_arn)


def install_status_events() -> None:
    from moto.stepfunctions.parser.backend import execution as parser_execution

    comm_cls = parser_execution.BaseExecutionWorkerCommunication
    if getattr(comm_cls, "_local_status_events", False):
        return
    original_terminated = comm_cls.terminated
    original_start = parser_execution.Execution.start

    def terminated(self) -> None:
        original_terminated(self)
        emit_status_change(self.execution)

    def start(self) -> None:
        emit_status_change(self)  # RUNNING, before the worker can end the execution
        original_start(self)

    comm_cls.terminated = terminated
    comm_cls._local_status_events = True
    parser_execution.Execution.start = start


class ScaledClock:
    """`time` as the retrier sees it: sleeps last `factor` of the asked seconds.

    A Retry's IntervalSeconds/BackoffRate/MaxDelaySeconds wait real seconds on AWS ("Handling
    errors in Step Functions workflows", retrying after an error). The endpoint runs CodeDeploy's
    minutes in `minute_seconds`; it runs these waits on the same clock, so a release whose Lambda
    call keeps failing exhausts its six attempts in a fraction of a second instead of a minute.
    The number and order of attempts stay as the state machine says.
    """

    def __init__(self, factor: float) -> None:
        if factor <= 0:
            raise ValueError(f"the retry time factor must be positive, got {factor}")
        self.factor = factor

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds * self.factor)

    def __getattr__(self, name: str):
        return getattr(time, name)


def install_retry_clock(minute_seconds: float) -> None:
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    retrier_decl.time = ScaledClock(minute_seconds / 60.0)


def install(minute_seconds: float | None = None) -> None:
    if minute_seconds is not None:
        install_retry_clock(minute_seconds)
    install_lambda_error_names()
    install_status_events()
    default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True
    sfn_responses.StepFunctionResponse.validate_state_machine_definition = (
        validate_state_machine_definition
    )
    sfn_responses.StepFunctionResponse.list_state_machine_versions = list_state_machine_versions
    sfn_responses.StepFunctionResponse.get_execution_history = get_execution_history
