"""The provenance chain of a release, from review to execution."""

from __future__ import annotations

import json

from release_tooling import provenance, wait_for_release

ARN = "arn:aws:states:us-east-1:123456789012:execution:svc-release:release-1"
COMMIT = "c" * 40
INPUT = json.dumps({"contract": 1, "commit_sha": COMMIT, "artifact_key": "releases/c/app.zip"})


def stage(alias, version, deployment, function="svc-app", **extra):
    return {
        "alias": alias,
        "function_name": function,
        "target_version": version,
        "deployment_id": deployment,
        "action": "deployment_created" if deployment else "alias_updated",
        **extra,
    }


def test_one_function_from_review_to_execution():
    output = {
        "artifact": {"sha256": "ab" * 32, "size": 30720, "commit": COMMIT},
        "staging": stage("staging", "7", "d-STAGING1"),
        "production": stage("production", "7", "d-PROD0001"),
    }
    reviewed = {"digest": "sha256:" + "f" * 64, "source": "pull request #5 (run 10)"}
    lines = provenance.chain(ARN, INPUT, json.dumps(output), reviewed)
    assert lines == [
        f"- reviewed plan `sha256:{'f' * 64}` from pull request #5 (run 10)",
        f"- commit `{COMMIT}`",
        f"- artifact `app.zip` (30720 bytes, sha256 `{'ab' * 32}`)",
        "- staging: `svc-app:staging` version 7, CodeDeploy deployment `d-STAGING1`",
        "- production: `svc-app:production` version 7, CodeDeploy deployment `d-PROD0001`",
        f"- execution `{ARN}`",
    ]


def test_several_functions_each_name_their_zip_version_and_deployment():
    api, worker = stage("staging", "3", "d-A"), stage("staging", "9", None, function="svc-worker")
    output = {
        "artifact": {
            "functions": [
                {"key": "app", "sha256": "11" * 32, "size": 100},
                {"key": "worker", "sha256": "22" * 32},
            ]
        },
        "staging": {**api, "deployments": [api, worker]},
    }
    lines = provenance.chain(ARN, INPUT, output)
    assert f"- artifact `worker.zip` (sha256 `{'22' * 32}`)" in lines
    assert "- staging: `svc-app:staging` version 3, CodeDeploy deployment `d-A`" in lines
    assert "- staging: `svc-worker:staging` version 9, pointed directly (alias_updated)" in lines
    assert not [line for line in lines if line.startswith("- production")]


def test_a_release_that_stopped_early_lists_only_what_it_reached():
    assert provenance.chain(ARN, INPUT, None) == [f"- commit `{COMMIT}`", f"- execution `{ARN}`"]
    assert provenance.chain(ARN, "not json", "[1, 2]") == [f"- execution `{ARN}`"]


def test_release_wait_prints_it_at_the_end_but_not_while_paused():
    done = wait_for_release.Outcome("SUCCEEDED", ARN, "ReleaseSucceeded", input=INPUT, output="{}")
    printed = wait_for_release.provenance_lines(done, {"digest": "sha256:1"})
    assert printed[:3] == ["", "Provenance:", "- reviewed plan `sha256:1`"]
    paused = wait_for_release.Outcome("PAUSED", ARN, "ApproveProduction", input=INPUT)
    assert wait_for_release.provenance_lines(paused, None) == []


def test_a_failed_release_shows_what_its_last_finished_state_left():
    """A FAILED execution has no output: the history's newest exited state has the data."""
    left = {"artifact": {"sha256": "ab" * 32}, "staging": stage("staging", "4", "d-S")}

    earlier = {"artifact": {"sha256": "ab" * 32}}

    class History:
        """Two pages, oldest first, as GetExecutionHistory returns them by default."""

        def get_execution_history(self, **kwargs):
            assert kwargs["includeExecutionData"] is True and "reverseOrder" not in kwargs
            if "nextToken" not in kwargs:
                exited = {"name": "ValidateArtifact", "output": json.dumps(earlier)}
                return {"events": [{"stateExitedEventDetails": exited}], "nextToken": "2"}
            return {
                "events": [
                    {
                        "stateExitedEventDetails": {
                            "name": "CheckStaging",
                            "output": json.dumps(left),
                        }
                    },
                    {"type": "TaskStateExited", "stateExitedEventDetails": {"name": "X"}},
                    {"type": "ExecutionFailed", "executionFailedEventDetails": {}},
                ]
            }

    data = provenance.execution_data(History(), ARN, {"status": "FAILED"})
    lines = provenance.chain(ARN, INPUT, data)
    assert "- staging: `svc-app:staging` version 4, CodeDeploy deployment `d-S`" in lines
    assert provenance.execution_data(History(), ARN, {"output": "{}"}) == "{}"


def test_the_release_notification_carries_the_same_chain():
    """NotifyRelease's message (state_machine.asl.json) names the fields the chain reads."""
    review = {"digest": "sha256:" + "f" * 64, "source": "pull request #5 (run 10)"}
    message = {
        "notification": "release",
        "status": "SUCCEEDED",
        "end": "ReleaseSucceeded",
        "execution": ARN,
        "commit_sha": COMMIT,
        "review": {**review, "matches": True},
        "artifact": {"sha256": "ab" * 32, "size": 30720, "commit": COMMIT},
        "staging": stage("staging", "7", "d-STAGING1"),
        "production": stage("production", "7", "d-PROD0001"),
        "error": None,
        "rollback": None,
    }
    output = {k: message[k] for k in ("artifact", "staging", "production")}
    expected = provenance.chain(ARN, INPUT, output, review)
    assert provenance.notification_chain(json.dumps(message)) == expected
    assert expected[0].startswith("- reviewed plan `sha256:ff") and expected[-1].endswith(f"{ARN}`")


def test_a_failed_release_notification_lists_only_what_it_reached():
    rejected = {"execution": ARN, "commit_sha": COMMIT, "review": None, "artifact": None}
    assert provenance.notification_chain(rejected) == [
        f"- commit `{COMMIT}`",
        f"- execution `{ARN}`",
    ]
    assert provenance.notification_chain("not json") == ["- execution `?`"]


def test_an_applied_plan_that_differed_from_the_review_says_so():
    differed = {"digest": "sha256:" + "f" * 64, "source": "pull request #5", "matches": False}
    (line, *_) = provenance.chain(ARN, INPUT, None, differed)
    assert line.endswith("from pull request #5 (the applied plan differed from it)")
