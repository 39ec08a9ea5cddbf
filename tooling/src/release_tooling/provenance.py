"""The chain from review to running code, for one release.

    pull request -> reviewed plan digest -> artifact sha256 -> Lambda version(s)
        -> CodeDeploy deployment id(s) -> Step Functions execution

Read from what each step already records: the reviewed plan's digest and where it came from
(`release-tooling plan-review check --provenance-out`, in the deploy job), the execution's input
(the release contract: commit) and output (ValidateArtifact's `$.artifact`, the deploy results in
`$.staging` and `$.production`, one record per function in `deployments`). `release-wait` prints
it at the end of a release (the deploy job's summary), `release-tooling local status` shows it for
the newest release.

The release notification carries the same fields: the state machine publishes it to the
release-events topic as it ends (NotifyRelease in state_machine.asl.json), a JSON object whose
`commit_sha`, `review` (the execution input's, see contract.review_record), `artifact`, `staging`,
`production` and `execution` are the ones read here; `notification_chain` renders it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from . import contract

STAGES = ("staging", "production")


def _json(value: str | Mapping[str, Any] | None) -> Mapping[str, Any]:
    if isinstance(value, Mapping):
        return value
    if not value:
        return {}
    try:
        parsed = json.loads(value)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, Mapping) else {}


def _deployments(stage: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """One record per function: `deployments` when the stage lists them, else the stage itself."""
    listed = stage.get("deployments")
    if isinstance(listed, list) and listed:
        return [d for d in listed if isinstance(d, Mapping)]
    return [stage] if stage.get("function_name") else []


def _artifacts(artifact: Mapping[str, Any]) -> list[tuple[str, str, Any]]:
    """(name, sha256, size) of each function's zip that ValidateArtifact accepted."""
    functions = artifact.get("functions")
    if isinstance(functions, list) and functions:
        return [
            (str(f.get("key") or f.get("name") or "?"), str(f.get("sha256", "")), f.get("size"))
            for f in functions
            if isinstance(f, Mapping)
        ]
    if artifact.get("sha256"):
        return [(contract.APP, str(artifact["sha256"]), artifact.get("size"))]
    return []


def chain(
    execution_arn: str,
    execution_input: str | Mapping[str, Any] | None,
    execution_output: str | Mapping[str, Any] | None,
    reviewed: Mapping[str, Any] | None = None,
) -> list[str]:
    """Markdown lines, oldest link first; links a release did not reach are left out."""
    data = _json(execution_output)
    lines = []
    if reviewed and reviewed.get("digest"):
        lines.append(
            f"- reviewed plan `{reviewed['digest']}`"
            + (f" from {reviewed['source']}" if reviewed.get("source") else "")
            + (" (the applied plan differed from it)" if reviewed.get("matches") is False else "")
        )
    commit = contract.commit_of(execution_input)
    if commit:
        lines.append(f"- commit `{commit}`")
    artifact = data.get("artifact")
    for name, sha256, size in _artifacts(artifact if isinstance(artifact, Mapping) else {}):
        shown = f"{size} bytes, " if isinstance(size, int) else ""
        lines.append(f"- artifact `{name}.zip` ({shown}sha256 `{sha256}`)")
    for stage in STAGES:
        result = data.get(stage)
        if not isinstance(result, Mapping):
            continue
        for record in _deployments(result):
            deployment = record.get("deployment_id")
            how = (
                f"CodeDeploy deployment `{deployment}`"
                if deployment
                else f"pointed directly ({record.get('action') or 'no deployment'})"
            )
            lines.append(
                f"- {stage}: `{record.get('function_name')}:{record.get('alias') or stage}` "
                f"version {record.get('target_version')}, {how}"
            )
    lines.append(f"- execution `{execution_arn}`")
    return lines


def notification_chain(message: str | Mapping[str, Any] | None) -> list[str]:
    """The chain a release notification carries (the SNS message NotifyRelease publishes)."""
    data = _json(message)
    review = data.get(contract.REVIEW)
    return chain(
        str(data.get("execution") or "?"),
        data,
        data,
        review if isinstance(review, Mapping) else None,
    )


def execution_data(sfn: Any, execution_arn: str, described: Mapping[str, Any]) -> str | None:
    """What the release recorded: its output, or, for a release that failed (a failed execution
    has no output), the data as the last state it finished left it (its history's newest
    stateExitedEventDetails.output): the artifact, and the stages it deployed before failing."""
    if described.get("output"):
        return described["output"]
    # Read forward, page by page, keeping the newest exit (a release has tens of events).
    latest = None
    kwargs: dict[str, Any] = {
        "executionArn": execution_arn,
        "maxResults": 1000,
        "includeExecutionData": True,
    }
    for _ in range(20):
        page = sfn.get_execution_history(**kwargs)
        for event in page.get("events", []):
            exited = event.get("stateExitedEventDetails") or {}
            if exited.get("output"):
                latest = exited["output"]
        if not page.get("nextToken"):
            break
        kwargs["nextToken"] = page["nextToken"]
    return latest


def read_reviewed(path) -> Mapping[str, Any] | None:
    """The deploy job's record of the reviewed plan (plan-review check --provenance-out)."""
    try:
        return _json(path.read_text(encoding="utf-8")) or None
    except OSError:
        return None
