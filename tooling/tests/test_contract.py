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


# --- the reviewed plan a release carries (execution input "review") -----------------------------

REVIEWED = {
    "digest": "sha256:" + "d" * 64,
    "source": "pull request #12: run https://github.com/o/r/actions/runs/7",
    "matches": True,
}


def test_a_reviewed_release_carries_its_reviewed_plan_in_the_execution_input():
    release = contract.execution_input("artifacts", COMMIT, 15, 80, review=REVIEWED)
    assert release["review"] == REVIEWED
    # Optional: a release without one has no such field (a state machine fills it in), so the
    # contract version stays the same for both.
    assert "review" not in contract.execution_input("artifacts", COMMIT, 15, 80)
    assert release["contract"] == SCHEMA_VERSION
    # What plan-review wrote before it recorded "matches" reads as a match.
    older = {k: v for k, v in REVIEWED.items() if k != "matches"}
    assert contract.review_record(older) == REVIEWED


@pytest.mark.parametrize(
    ("record", "named"),
    [
        ({**REVIEWED, "digest": "d" * 64}, '"digest" must be "sha256:"'),
        ({**REVIEWED, "digest": None}, '"digest" must be "sha256:"'),
        ({**REVIEWED, "source": ""}, '"source" must be one non-empty line'),
        ({**REVIEWED, "source": "a\nb"}, '"source" must be one non-empty line'),
        ({**REVIEWED, "matches": "yes"}, '"matches" must be true or false'),
        (["sha256:x"], "must be a JSON object, got list"),
    ],
)
def test_a_bad_review_record_is_one_error_naming_the_field_and_the_fix(record, named):
    with pytest.raises(contract.ContractError, match="plan-review check --provenance-out") as err:
        contract.execution_input("artifacts", COMMIT, 15, 80, review=record)
    assert named in str(err.value)
    assert len(str(err.value).splitlines()) == 1


def upload_args(tmp_path, *extra):
    return [
        "upload",
        "--bucket",
        "artifacts",
        "--commit",
        COMMIT,
        "--out",
        str(tmp_path / "build"),
        *extra,
    ]


def test_upload_reviewed_writes_the_review_into_the_object_that_starts_the_pipeline(
    aws, tmp_path, capsys
):
    import boto3

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="artifacts")
    reviewed = tmp_path / "reviewed.json"
    reviewed.write_text(json.dumps({**REVIEWED, "matches": False}) + "\n", encoding="utf-8")

    assert package.main(upload_args(tmp_path, "--reviewed", str(reviewed))) == 0

    data = s3.get_object(Bucket="artifacts", Key=contract.SOURCE_KEY)["Body"].read()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        payload = json.loads(archive.read(contract.INPUT_FILE))
    assert payload["review"] == {**REVIEWED, "matches": False}
    assert payload["commit_sha"] == COMMIT


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (None, "cannot read --reviewed"),
        ("{not json", "is not JSON"),
        (json.dumps({"digest": "sha256:1", "source": "pr"}), '"digest" must be "sha256:"'),
    ],
)
def test_upload_refuses_a_bad_reviewed_file_before_uploading_anything(
    aws, tmp_path, capsys, content, named
):
    import boto3

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="artifacts")
    reviewed = tmp_path / "reviewed.json"
    if content is not None:
        reviewed.write_text(content, encoding="utf-8")

    assert package.main(upload_args(tmp_path, "--reviewed", str(reviewed))) == 1

    err = capsys.readouterr().err
    assert err.startswith("package.py: error: ") and named in err, err
    assert len(err.strip().splitlines()) == 1
    assert s3.list_objects_v2(Bucket="artifacts").get("KeyCount") == 0
