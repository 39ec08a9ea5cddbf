"""The release contract: one place says what a release is called, where it lives, what it says."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from release_tooling import SCHEMA_VERSION, contract, package, wait_for_release

COMMIT = "ab" * 20


def test_the_execution_input_names_its_contract_and_the_release_files():
    release = contract.execution_input("artifacts", COMMIT, poll_interval=15, max_polls=80)

    assert release == {
        "contract": SCHEMA_VERSION,
        "commit_sha": COMMIT,
        "artifact_bucket": "artifacts",
        "artifact_key": f"releases/{COMMIT}/app.zip",
        "manifest_key": f"releases/{COMMIT}/manifest.json",
        "poll_interval_seconds": 15,
        "max_polls": 80,
    }


def test_packaging_writes_the_contract_into_the_object_that_starts_the_pipeline():
    payload = package.execution_input("artifacts", COMMIT, 1, 2)
    with zipfile.ZipFile(io.BytesIO(package.source_zip(payload))) as archive:
        assert archive.namelist() == [contract.INPUT_FILE]
        assert json.loads(archive.read(contract.INPUT_FILE)) == payload
    assert package.SOURCE_KEY == contract.SOURCE_KEY


@pytest.mark.parametrize(
    ("execution_input", "commit"),
    [
        (json.dumps(contract.execution_input("b", COMMIT, 1, 1)), COMMIT),
        (contract.execution_input("b", COMMIT, 1, 1), COMMIT),
        ('{"commit_sha": 42}', None),
        ("not json", None),
        ("[]", None),
        ("", None),
        (None, None),
    ],
)
def test_the_waiter_reads_the_commit_back_from_any_input(execution_input, commit):
    assert contract.commit_of(execution_input) == commit


def test_the_waiter_finds_a_release_through_the_contract():
    class Executions:
        def describe_execution(self, executionArn):  # noqa: N803 - boto3's name
            release = contract.execution_input(
                "b", COMMIT if executionArn == "mine" else "f" * 40, 1, 1
            )
            return {"input": json.dumps(release)}

    cache: dict[str, str | None] = {}
    assert wait_for_release._execution_commit(Executions(), "mine", cache) == COMMIT
    assert wait_for_release._execution_commit(Executions(), "other", cache) == "f" * 40
