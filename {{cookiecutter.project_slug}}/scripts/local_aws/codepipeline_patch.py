"""CodePipeline: moto serialises pipeline metadata timestamps as ISO strings; the AWS JSON protocol
(and the Terraform provider's SDK, which refuses anything else) sends epoch seconds."""

from __future__ import annotations

import json

from dateutil import parser as date_parser
from moto.codepipeline import responses as cp_responses

_TIMESTAMP_FIELDS = ("created", "updated", "pollingDisabledAt")


def _epoch(metadata: dict) -> dict:
    fixed = dict(metadata)
    for key in _TIMESTAMP_FIELDS:
        if isinstance(fixed.get(key), str):
            fixed[key] = date_parser.isoparse(fixed[key]).timestamp()
    return fixed


def install() -> None:
    original_get = cp_responses.CodePipelineResponse.get_pipeline
    original_list = cp_responses.CodePipelineResponse.list_pipelines

    def get_pipeline(self) -> str:
        body = json.loads(original_get(self))
        body["metadata"] = _epoch(body.get("metadata") or {})
        return json.dumps(body)

    def list_pipelines(self) -> str:
        body = json.loads(original_list(self))
        body["pipelines"] = [_epoch(p) for p in body.get("pipelines", [])]
        return json.dumps(body)

    cp_responses.CodePipelineResponse.get_pipeline = get_pipeline
    cp_responses.CodePipelineResponse.list_pipelines = list_pipelines
