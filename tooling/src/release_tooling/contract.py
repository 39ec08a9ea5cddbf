"""The release contract: what a release is called, where its files live, what its execution says.

Packaging writes it, CodePipeline hands it to the state machine as `execution-input.json`, the
state machine passes it to the Lambdas (validate_artifact refuses a contract it does not know),
and the waiter reads the commit back from it. Version: `release_tooling.SCHEMA_VERSION`, which a
repository names as `[tool.release-tooling] schema`.
"""

from __future__ import annotations

import json
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


def execution_input(bucket: str, commit: str, poll_interval: int, max_polls: int) -> dict[str, Any]:
    """What the state machine starts with, for one release of `commit`."""
    return {
        "contract": SCHEMA_VERSION,
        "commit_sha": commit,
        "artifact_bucket": bucket,
        "artifact_key": artifact_key(commit),
        "manifest_key": manifest_key(commit),
        "poll_interval_seconds": poll_interval,
        "max_polls": max_polls,
    }


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
