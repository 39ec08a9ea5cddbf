"""Step Functions calls the Terraform AWS provider makes and moto lacks, answered like AWS.

Also switches moto to executing state machines (its parser backend) so executions really run.
"""

from __future__ import annotations

from moto.core.config import default_user_config
from moto.core.responses import ActionResult
from moto.stepfunctions import responses as sfn_responses
from moto.stepfunctions.exceptions import ValidationException

from .asl_validation import moto_grammar_check, validate_definition

MAX_RESULTS = 100


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


def install() -> None:
    default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True
    sfn_responses.StepFunctionResponse.validate_state_machine_definition = (
        validate_state_machine_definition
    )
    sfn_responses.StepFunctionResponse.list_state_machine_versions = list_state_machine_versions
