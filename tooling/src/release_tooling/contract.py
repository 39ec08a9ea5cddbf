"""The release contract: what a release is called, where its files live, what its execution says.

Packaging writes it, CodePipeline hands it to the state machine as `execution-input.json`, the
state machine passes it to the Lambdas (validate_artifact refuses a contract it does not know),
and the waiter reads the commit back from it. Version: `release_tooling.SCHEMA_VERSION`, which a
repository names as `[tool.release-tooling] schema`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from . import SCHEMA_VERSION

# The object whose creation starts a release (terraform/ points the pipeline's source action and
# its EventBridge rule at it).
SOURCE_KEY = "pipeline/source.zip"
INPUT_FILE = "execution-input.json"  # inside SOURCE_KEY; the Step Functions action reads it
APP = "app"


def release_prefix(commit: str) -> str:
    return f"releases/{commit}"


def artifact_key(commit: str, name: str = APP) -> str:
    return f"{release_prefix(commit)}/{name}.zip"


def manifest_key(commit: str) -> str:
    return f"{release_prefix(commit)}/manifest.json"


def execution_input(
    bucket: str,
    commit: str,
    poll_interval: int,
    max_polls: int,
    review: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What the state machine starts with, for one release of `commit`. `review` (optional): the
    reviewed plan the deploy applied (`review_record`); the state machine puts it in the
    release's notification. Optional both ways, so no new contract version: a state machine
    ignores fields it does not read, and this one's notification fills in a missing review."""
    release = {
        "contract": SCHEMA_VERSION,
        "commit_sha": commit,
        "artifact_bucket": bucket,
        "artifact_key": artifact_key(commit),
        "manifest_key": manifest_key(commit),
        "poll_interval_seconds": poll_interval,
        "max_polls": max_polls,
    }
    if review is not None:
        release[REVIEW] = review_record(review)
    return release


REVIEW = "review"
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


class ContractError(ValueError):
    """Data that does not follow the release contract; the message says what and how to fix it."""


def review_record(data: Any, where: str = "the reviewed-plan record") -> dict[str, Any]:
    """The execution input's `review`, from what `release-tooling plan-review check
    --provenance-out` writes: {"digest": "sha256:<64 hex>", "source": "<pull request or
    merge-queue run>", "matches": <the applied plan is the reviewed one>}."""
    fix = "pass the file release-tooling plan-review check --provenance-out wrote"
    if not isinstance(data, Mapping):
        raise ContractError(f"{where} must be a JSON object, got {type(data).__name__}; {fix}")
    digest, source = data.get("digest"), data.get("source")
    matches = data.get("matches", True)
    problems = []
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        problems.append(f'"digest" must be "sha256:" and 64 lowercase hex digits, got {digest!r}')
    if not isinstance(source, str) or not source.strip() or "\n" in source:
        problems.append(f'"source" must be one non-empty line, got {source!r}')
    if not isinstance(matches, bool):
        problems.append(f'"matches" must be true or false, got {matches!r}')
    if problems:
        raise ContractError(f"{where}: {'; '.join(problems)}; {fix}")
    return {"digest": digest, "source": source, "matches": matches}


def commit_of(execution_input: str | Mapping[str, Any] | None) -> str | None:
    """The commit an execution releases, from its input (None when it is not a release)."""
    data = execution_input
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:  # "" included
            return None
    commit = data.get("commit_sha") if isinstance(data, Mapping) else None
    return commit if isinstance(commit, str) else None
