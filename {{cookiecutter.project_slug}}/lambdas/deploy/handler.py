"""Deploy one release to one alias (staging or production), for every application function.

The stack's app functions come from APP_FUNCTIONS (shared/app_functions.py); each gets the steps
below, and each has its own CodeDeploy deployment group per alias. See deploy() for the output.

staging:    update the app's code from the validated S3 artifact and publish a version whose
            Description is the commit SHA (an existing version for the commit is reused).
production: promote the exact version staging received (no code upload).

Then move the alias:
  alias already on the version       -> nothing to do ("already_deployed")
  alias on $LATEST (first release)   -> point it straight at the version, previous_version null
  otherwise                          -> CodeDeploy deployment, traffic shifted per the group
An in-flight CodeDeploy deployment to the same version is reused; one to another version fails
with DeploymentInProgressError naming it.

Output: {"alias", "function_name", "previous_version", "target_version", "deployment_id", "action"}
staging adds {"production_version", "in_production"}: the version the production alias pointed at
and whether it already served the release's version in full (no weighted routing). A re-run of a
commit that is already live (CodePipeline re-runs a re-uploaded commit) skips the approval on that
(state machine choice AlreadyInProduction); a first release or a new version still asks.
production: when the event's "approval" says {"skipped": true}, production must still serve the
version in full, else ApprovalSkippedError: a skipped approval may never change production.
"""

import base64
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError
from shared import app_functions
from shared.clients import client
from shared.config import require_env, require_str
from shared.errors import InvalidInputError, PipelineError
from shared.log import get_logger, lambda_entrypoint

logger = get_logger("deploy")

ACTIVE_STATUSES = ["Created", "Queued", "InProgress", "Baking", "Ready"]
STAGES = ("staging", "production")


class DeployError(PipelineError):
    """Base class for deploy failures."""


class AliasNotFoundError(DeployError):
    pass


class VersionMismatchError(DeployError):
    pass


class DeploymentInProgressError(DeployError):
    pass


class ApprovalSkippedError(DeployError):
    pass


@dataclass(frozen=True)
class Settings:
    """One application function: its name, CodeDeploy application and group per alias."""

    function_name: str
    application: str
    groups: Mapping[str, str]
    key: str = "app"

    @classmethod
    def all_from_env(cls) -> list["Settings"]:
        """Every app function of the stack (APP_FUNCTIONS), the primary one first."""
        application = require_env("CODEDEPLOY_APPLICATION")
        return [
            cls(f.function_name, application, f.deployment_groups, f.key)
            for f in app_functions.from_env()
        ]


def hex_to_lambda_sha(hex_digest: str) -> str:
    """Lambda reports CodeSha256 as base64 of the raw digest, the manifest as hex."""
    return base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii")


def build_appspec(function_name: str, alias: str, current: str, target: str) -> str:
    spec = {
        "version": 0.0,
        "Resources": [
            {
                "app": {
                    "Type": "AWS::Lambda::Function",
                    "Properties": {
                        "Name": function_name,
                        "Alias": alias,
                        "CurrentVersion": current,
                        "TargetVersion": target,
                    },
                }
            }
        ],
    }
    return json.dumps(spec, sort_keys=True)


def _appspec_properties(deployment: Mapping[str, Any]) -> Mapping[str, Any]:
    """Properties of the Lambda resource in a deployment's AppSpec ({} if unreadable)."""
    content = ((deployment.get("revision") or {}).get("appSpecContent") or {}).get("content")
    try:
        spec = json.loads(content or "")
        props = next(iter(spec["Resources"][0].values()))["Properties"]
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, StopIteration):
        # Someone else's (e.g. YAML) deployment: we cannot tell its target, treat it as foreign.
        return {}
    return props if isinstance(props, dict) else {}


def appspec_target(deployment: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(function, alias, target version) of a CodeDeploy deployment, or Nones if unreadable."""
    props = _appspec_properties(deployment)
    target = props.get("TargetVersion")
    return props.get("Name"), props.get("Alias"), None if target is None else str(target)


def appspec_current(deployment: Mapping[str, Any]) -> str | None:
    current = _appspec_properties(deployment).get("CurrentVersion")
    return None if current is None else str(current)


def record(
    settings: Settings,
    alias: str,
    previous: str | None,
    target: str,
    deployment_id: str | None,
    action: str,
) -> dict[str, Any]:
    return {
        "alias": alias,
        "function_name": settings.function_name,
        "previous_version": previous,
        "target_version": target,
        "deployment_id": deployment_id,
        "action": action,
    }


def _versions(function_name: str) -> Iterator[Mapping[str, Any]]:
    paginator = client("lambda").get_paginator("list_versions_by_function")
    for page in paginator.paginate(FunctionName=function_name):
        yield from page["Versions"]


def find_version_for_commit(function_name: str, commit: str) -> Mapping[str, Any] | None:
    for version in _versions(function_name):
        if version["Version"] != "$LATEST" and version.get("Description") == commit:
            return version
    return None


def publish_staging_version(settings: Settings, event: Mapping[str, Any]) -> str:
    commit = require_str(event, "commit_sha")
    existing = find_version_for_commit(settings.function_name, commit)
    if existing:
        expected = event.get("artifact_sha256")
        if isinstance(expected, str) and existing.get("CodeSha256") != hex_to_lambda_sha(expected):
            # Same commit, different bytes: builds are deterministic, so the validated artifact
            # is not what that version runs. Staging must test exactly the validated artifact.
            raise VersionMismatchError(
                f"version {existing['Version']} of {settings.function_name} was published for "
                f"commit {commit} with CodeSha256 {existing.get('CodeSha256')}, but the validated "
                f"artifact's is {hex_to_lambda_sha(expected)}; the commit's artifact was rebuilt "
                "differently or replaced. Re-run the release from a new commit, or delete that "
                "version (after moving any alias off it) to publish this artifact"
            )
        logger.info("reusing published version", extra={"version": existing["Version"]})
        return existing["Version"]

    lam = client("lambda")
    bucket = require_str(event, "artifact_bucket")
    key = require_str(event, "artifact_key")
    sha_hex = require_str(event, "artifact_sha256")
    lam.update_function_code(FunctionName=settings.function_name, S3Bucket=bucket, S3Key=key)
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=settings.function_name, WaiterConfig={"Delay": 2, "MaxAttempts": 60}
    )
    # CodeSha256 makes Lambda refuse to publish if $LATEST is not exactly the validated artifact
    # (e.g. a concurrent update slipped in).
    published = lam.publish_version(
        FunctionName=settings.function_name,
        Description=commit,
        CodeSha256=hex_to_lambda_sha(sha_hex),
    )
    version = published["Version"]
    if published.get("Description") != commit:
        # Unchanged code: Lambda returned the existing version instead of publishing a new one.
        logger.info(
            "code unchanged; reusing existing version",
            extra={"version": version, "published_for": published.get("Description")},
        )
    logger.info("published version", extra={"version": version, "artifact": f"s3://{bucket}/{key}"})
    return version


def check_production_version(settings: Settings, event: Mapping[str, Any]) -> str:
    """The version staging received must still hold the validated artifact."""
    commit = require_str(event, "commit_sha")
    version = require_str(event, "target_version")
    try:
        config = client("lambda").get_function_configuration(
            FunctionName=settings.function_name, Qualifier=version
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ResourceNotFoundException":
            raise VersionMismatchError(
                f"version {version} of {settings.function_name} does not exist"
            ) from None
        raise
    expected_sha = event.get("artifact_sha256")
    if isinstance(expected_sha, str):
        # Compare code, not Description: Lambda hands back the previous version when the code is
        # unchanged (e.g. a docs-only commit), and that version carries the older commit.
        if config.get("CodeSha256") != hex_to_lambda_sha(expected_sha):
            raise VersionMismatchError(
                f"version {version} of {settings.function_name} has CodeSha256 "
                f"{config.get('CodeSha256')}, not the validated artifact's "
                f"{hex_to_lambda_sha(expected_sha)}; production only promotes what staging tested"
            )
    elif config.get("Description") != commit:
        raise VersionMismatchError(
            f"version {version} of {settings.function_name} was published for commit "
            f"{config.get('Description')!r}, not {commit!r}; "
            "production only promotes what staging tested"
        )
    return version


def active_deployments(settings: Settings, group: str) -> Iterator[Mapping[str, Any]]:
    cd = client("codedeploy")
    paginator = cd.get_paginator("list_deployments")
    pages = paginator.paginate(
        applicationName=settings.application,
        deploymentGroupName=group,
        includeOnlyStatuses=ACTIVE_STATUSES,
    )
    for page in pages:
        for deployment_id in page["deployments"]:
            info = cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
            if info.get("status") in ACTIVE_STATUSES:
                yield info


def in_flight(settings: Settings, group: str, alias: str, target: str) -> dict[str, Any] | None:
    """Return the deployment to reuse, raise if another release is deploying, else None."""
    for info in active_deployments(settings, group):
        name, dep_alias, dep_target = appspec_target(info)
        if (name, dep_alias, dep_target) == (settings.function_name, alias, target):
            return dict(info)
        raise DeploymentInProgressError(
            f"CodeDeploy deployment {info['deploymentId']} ({info.get('status')}) in group {group} "
            f"is deploying version {dep_target or 'unknown'}, not {target}; wait for it to finish "
            f"or stop it (aws deploy stop-deployment --deployment-id {info['deploymentId']})"
        )
    return None


def get_alias(settings: Settings, alias: str) -> Mapping[str, Any]:
    try:
        return client("lambda").get_alias(FunctionName=settings.function_name, Name=alias)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ResourceNotFoundException":
            raise AliasNotFoundError(
                f"alias {alias} of {settings.function_name} does not exist; apply terraform first"
            ) from None
        raise


def move_alias(settings: Settings, stage: str, target: str, commit: str) -> dict[str, Any]:
    group = settings.groups[stage]
    reused = in_flight(settings, group, stage, target)
    if reused:
        current = appspec_current(reused)
        logger.info("reusing in-flight deployment", extra={"deployment_id": reused["deploymentId"]})
        return record(settings, stage, current, target, reused["deploymentId"], "reused_deployment")

    alias = get_alias(settings, stage)
    current = alias["FunctionVersion"]
    weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    if current == target and not weights:
        return record(settings, stage, None, target, None, "already_deployed")
    if current == "$LATEST":
        client("lambda").update_alias(
            FunctionName=settings.function_name,
            Name=stage,
            FunctionVersion=target,
            RoutingConfig={"AdditionalVersionWeights": {}},
        )
        return record(settings, stage, None, target, None, "first_release")

    content = build_appspec(settings.function_name, stage, current, target)
    try:
        deployment_id = client("codedeploy").create_deployment(
            applicationName=settings.application,
            deploymentGroupName=group,
            revision={
                "revisionType": "AppSpecContent",
                "appSpecContent": {
                    "content": content,
                    "sha256": hashlib.sha256(content.encode()).hexdigest(),
                },
            },
            description=f"{commit[:40]} -> {stage} (v{current} to v{target})",
        )["deploymentId"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in (
            "DeploymentLimitExceededException",
            "DeploymentAlreadyStartedException",
        ):
            raise
        # Lost a race with another deployment: reuse it if it is ours, else name it.
        reused = in_flight(settings, group, stage, target)
        if reused:
            return record(
                settings, stage, current, target, reused["deploymentId"], "reused_deployment"
            )
        raise DeploymentInProgressError(
            f"CodeDeploy refused a new deployment in group {group}: "
            f"{exc.response['Error'].get('Message')}"
        ) from None
    return record(settings, stage, current, target, deployment_id, "deployment_created")


def serves_fully(alias: Mapping[str, Any], version: str) -> bool:
    """The alias sends all traffic to version (no weighted routing to another one)."""
    weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    return alias["FunctionVersion"] == version and not weights


def production_state(settings: Settings, target: str) -> dict[str, Any]:
    """What production serves now, for the state machine's choice to skip the approval."""
    production = get_alias(settings, "production")
    return {
        "production_version": production["FunctionVersion"],
        "in_production": serves_fully(production, target),
    }


def require_still_in_production(settings: Settings, event: Mapping[str, Any], target: str) -> None:
    approval = event.get("approval")
    if not (isinstance(approval, Mapping) and approval.get("skipped") is True):
        return
    production = get_alias(settings, "production")
    if not serves_fully(production, target):
        weights = (production.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        raise ApprovalSkippedError(
            f"the approval was skipped because production already served version {target} when "
            f"staging was deployed, but it now serves version {production['FunctionVersion']}"
            + (f" with routing {dict(weights)}" if weights else "")
            + "; a skipped approval never changes production: start the release again so it "
            "asks for approval"
        )


def _by_key(items: Any, field: str, keys: list[str]) -> dict[str, Mapping[str, Any]]:
    """{key: item} of an event list of per-function objects, one for every key of the stack."""
    if not isinstance(items, list) or not all(
        isinstance(i, Mapping) and isinstance(i.get("key"), str) for i in items
    ):
        raise InvalidInputError(
            f"event field {field!r} must be a list of objects with a 'key', got {items!r}"
        )
    found = {i["key"]: i for i in items}
    missing = [k for k in keys if k not in found]
    if missing:
        raise InvalidInputError(
            f"event field {field!r} has no entry for app function(s) {missing} of this stack "
            f"(it has {sorted(found)}); the release was validated for another set of functions"
        )
    return found


def function_events(
    event: Mapping[str, Any], stage: str, all_settings: list[Settings]
) -> list[dict[str, Any]]:
    """The single-function event deploy handles, once per app function.

    The state machine passes "functions" (validate_artifact's: key, artifact_key, sha256) and, for
    production, "deployments" (staging's records: key, target_version). An event without them
    (one function) is the primary function's own event.
    """
    keys = [s.key for s in all_settings]
    if "functions" not in event:
        if len(all_settings) != 1:
            raise InvalidInputError(
                f"event field 'functions' is required: this stack deploys {keys}"
            )
        return [dict(event)]
    artifacts = _by_key(event.get("functions"), "functions", keys)
    staged = _by_key(event.get("deployments"), "deployments", keys) if stage == "production" else {}
    events = []
    for settings in all_settings:
        artifact = artifacts[settings.key]
        one = {**event, "artifact_key": artifact.get("artifact_key")}
        one["artifact_sha256"] = artifact.get("sha256")
        if stage == "production":
            one["target_version"] = staged[settings.key].get("target_version")
        events.append(one)
    return events


def deploy(event: Mapping[str, Any], all_settings: list[Settings]) -> dict[str, Any]:
    """Deploy every app function of the release to one alias.

    Everything that can refuse the release (publishing or checking the versions, a foreign
    deployment in flight, a missing alias, a skipped approval that no longer holds) is done for
    every function before the first alias moves, so a refusal leaves all of them where they were.
    Output: the primary function's record (its fields at the top, as for one function) plus
    "deployments", every function's record with its "key"; staging's "in_production" is true only
    when production already serves every function's version.
    """
    stage = event.get("stage")
    if stage not in STAGES:
        raise InvalidInputError(f"event field 'stage' must be one of {STAGES}, got {stage!r}")
    commit = require_str(event, "commit_sha")
    events = function_events(event, stage, all_settings)
    targets = []
    for settings, one in zip(all_settings, events, strict=True):
        if stage == "staging":
            target = publish_staging_version(settings, one)
        else:
            target = check_production_version(settings, one)
            require_still_in_production(settings, one, target)
        targets.append(target)
    if len(all_settings) > 1:  # move_alias checks these too, just before moving one alias
        for settings, target in zip(all_settings, targets, strict=True):
            in_flight(settings, settings.groups[stage], stage, target)  # raises for a foreign one
            get_alias(settings, stage)
    records = []
    for settings, target in zip(all_settings, targets, strict=True):
        entry = {"key": settings.key, **move_alias(settings, stage, target, commit)}
        if stage == "staging":
            entry.update(production_state(settings, target))
        records.append(entry)
    primary = {k: v for k, v in records[0].items() if k != "key"}
    if stage == "staging":
        primary["in_production"] = all(r["in_production"] for r in records)
    return {**primary, "deployments": records}


@lambda_entrypoint(logger)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = deploy(event, Settings.all_from_env())
    logger.info("deploy finished", extra={"deployment": result})
    return result
