"""What merging a pull request releases: the plan comment's "Release preview" section.

From three inputs, none of which needs AWS:
- build/manifest.json (release-tooling package): the commit built and each function's zip, its
  sha256 and size. Read generically: ``artifacts`` is a map of function key to {sha256, size};
  ``app_functions`` (when present) names the application functions, the others are the
  pipeline's own functions.
- the plan JSON: every ``aws_lambda_alias`` (which function and alias a release moves), the
  ``aws_codedeploy_deployment_group`` of the same instance key or named after the alias (its
  deployment_config_name is the strategy), the ``release_budget`` output (shift_minutes per
  stage, approval_timeout_seconds, state_machine_timeout_seconds) and the manual_approval
  variable. Values are read from ``planned_values`` (every resource, unchanged ones included), or
  from ``resource_changes`` ``after`` when a plan carries no planned_values.
- optionally the aliases' current versions (``read_alias_versions``: lambda:GetAlias, which the
  read-only plan role is granted in terraform/bootstrap/iam.tf). Without AWS access the preview
  says the current versions are unknown.

It also flags the plan's changes to the release pipeline itself (state machine, IAM, CodeDeploy,
CodePipeline and its triggers, the pipeline's functions) apart from the application's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

CODEDEPLOY_PREFIX = "CodeDeployDefault.Lambda"
MAX_ROWS = 20
STAGES = ("staging", "production")  # the order a release moves aliases in
# Resource types that make up the release pipeline (what a change to them changes is how every
# later release runs, not what this one releases).
PIPELINE_KINDS: tuple[tuple[str, Callable[[str, str], bool]], ...] = (
    ("state machine", lambda t, a: t.startswith("aws_sfn_")),
    ("IAM", lambda t, a: t.startswith("aws_iam_")),
    ("CodeDeploy configuration", lambda t, a: t.startswith("aws_codedeploy_")),
    (
        "pipeline trigger",
        lambda t, a: (
            t.startswith("aws_codepipeline")
            or t in ("aws_cloudwatch_event_rule", "aws_cloudwatch_event_target")
            or t == "aws_s3_bucket_notification"
        ),
    ),
    (
        "pipeline functions",
        lambda t, a: (
            t in ("aws_lambda_function", "aws_lambda_permission")
            and re.search(r"\.pipeline(_[a-z_]+)?[\[.]|\.pipeline$", a) is not None
        ),
    ),
)


def _code(text: str) -> str:
    return "`" + str(text).replace("`", "'") + "`"


# ------------------------------------------------------------------------------ reading


def _module_resources(module: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from module.get("resources") or []
    for child in module.get("child_modules") or []:
        yield from _module_resources(child)


def resources(plan: dict[str, Any], rtype: str) -> dict[str, dict[str, Any]]:
    """address -> planned values of every managed resource of ``rtype``."""
    found: dict[str, dict[str, Any]] = {}
    root = (plan.get("planned_values") or {}).get("root_module")
    if root:
        for r in _module_resources(root):
            if r.get("type") == rtype and r.get("mode", "managed") == "managed":
                found[r["address"]] = r.get("values") or {}
    for rc in plan.get("resource_changes") or []:
        if rc.get("type") != rtype or rc.get("mode", "managed") != "managed":
            continue
        after = (rc.get("change") or {}).get("after")
        if rc["address"] not in found and isinstance(after, dict):
            found[rc["address"]] = after
    return found


def output_value(plan: dict[str, Any], name: str) -> Any:
    value = ((plan.get("planned_values") or {}).get("outputs") or {}).get(name)
    if isinstance(value, dict) and "value" in value:
        return value["value"]
    change = (plan.get("output_changes") or {}).get(name)
    return change.get("after") if isinstance(change, dict) else None


def _instance_key(address: str) -> str | None:
    match = re.search(r'\[("(?:[^"\\]|\\.)*"|\d+)\]$', address)
    return match.group(1) if match else None


@dataclass
class Function:
    key: str
    sha256: str
    size: int
    app: bool


@dataclass
class AliasMove:
    function_name: str | None  # None: known only after apply (the function is being created)
    alias: str
    strategy: str | None
    shift_minutes: int | float | None
    current: str | None = None  # the version it points at now


@dataclass
class Preview:
    commit: str | None
    functions: list[Function] = field(default_factory=list)
    moves: list[AliasMove] = field(default_factory=list)
    approval_required: bool | None = None  # None: unknown
    approval_seconds: int | None = None  # how long a release waits for a person, when known
    worst_case_seconds: int | None = None
    pipeline_changes: dict[str, list[str]] = field(default_factory=dict)
    app_changes: int = 0
    versions_known: bool = False
    versions_note: str = ""


def read_functions(manifest: dict[str, Any]) -> list[Function]:
    artifacts = manifest.get("artifacts") or {}
    if isinstance(artifacts, list):  # a list of {"name": ...} entries
        artifacts = {a.get("name") or a.get("key"): a for a in artifacts if isinstance(a, dict)}
    apps = manifest.get("app_functions")
    if not isinstance(apps, list):
        apps = ["app"] if "app" in artifacts else []
    out = [
        Function(str(key), str(a.get("sha256", "?")), int(a.get("size") or 0), key in apps)
        for key, a in artifacts.items()
        if isinstance(a, dict)
    ]
    return sorted(out, key=lambda f: (not f.app, apps.index(f.key) if f.app else 0, f.key))


def _move_order(move: AliasMove) -> tuple[str, int, str]:
    stage = STAGES.index(move.alias) if move.alias in STAGES else len(STAGES)
    return (move.function_name or "", stage, move.alias)


def classify(addresses_and_types: list[tuple[str, str]]) -> tuple[dict[str, list[str]], int]:
    pipeline: dict[str, list[str]] = {}
    app = 0
    for address, rtype in addresses_and_types:
        for kind, test in PIPELINE_KINDS:
            if test(rtype, address):
                pipeline.setdefault(kind, []).append(address)
                break
        else:
            app += 1
    return pipeline, app


def build(
    plan: dict[str, Any],
    manifest: dict[str, Any] | None,
    current_version: Callable[[str, str], str | None] | None = None,
) -> Preview:
    """The preview of ``plan``; ``current_version(function_name, alias)`` reads AWS, when given.
    It returns the version or None when the alias does not exist yet, and raises to mean
    "unknown"."""
    preview = Preview(commit=(manifest or {}).get("commit"))
    if manifest:
        preview.functions = read_functions(manifest)
    budget = output_value(plan, "release_budget")
    budget = budget if isinstance(budget, dict) else {}
    shift = budget.get("shift_minutes") if isinstance(budget.get("shift_minutes"), dict) else {}
    groups = resources(plan, "aws_codedeploy_deployment_group")
    by_key = {_instance_key(a): v for a, v in groups.items()}
    by_name = {v.get("deployment_group_name"): v for v in groups.values()}
    for address, values in sorted(resources(plan, "aws_lambda_alias").items()):
        alias = values.get("name")
        if not alias:
            continue
        group = by_key.get(_instance_key(address)) or by_name.get(alias) or {}
        config = group.get("deployment_config_name")
        strategy = config.removeprefix(CODEDEPLOY_PREFIX) if isinstance(config, str) else None
        preview.moves.append(
            AliasMove(values.get("function_name"), alias, strategy, shift.get(alias))
        )
    approval = budget.get("approval_timeout_seconds")
    manual = ((plan.get("variables") or {}).get("manual_approval") or {}).get("value")
    if isinstance(approval, int | float):
        preview.approval_required = approval > 0
        preview.approval_seconds = int(approval) or None
    elif isinstance(manual, bool):
        preview.approval_required = manual
    worst = budget.get("state_machine_timeout_seconds")
    preview.worst_case_seconds = int(worst) if isinstance(worst, int | float) else None
    changing = [
        (rc["address"], rc.get("type") or rc["address"].split(".")[-2])
        for rc in plan.get("resource_changes") or []
        if set((rc.get("change") or {}).get("actions") or ["no-op"]) - {"no-op", "read"}
        and rc.get("mode", "managed") == "managed"
    ]
    preview.pipeline_changes, preview.app_changes = classify(changing)
    preview.moves.sort(key=_move_order)
    _read_versions(preview, current_version)
    return preview


def _read_versions(
    preview: Preview, current_version: Callable[[str, str], str | None] | None
) -> None:
    if current_version is None:
        preview.versions_note = "current versions unknown (the preview ran without AWS access)"
        return
    failures = 0
    for move in preview.moves:
        if move.function_name is None:
            continue
        try:
            move.current = current_version(move.function_name, move.alias) or "none yet"
        except Exception:  # noqa: BLE001 - any failure only means "unknown"
            failures += 1
    preview.versions_known = failures == 0
    if failures:
        preview.versions_note = f"current versions of {failures} alias(es) could not be read"


def read_alias_versions() -> Callable[[str, str], str | None] | None:
    """A GetAlias reader (Lambda API "GetAlias": FunctionVersion is the version the alias points
    at), or None when boto3 or credentials are not available."""
    try:
        import boto3  # noqa: PLC0415 - optional: only the plan job has AWS access
        from botocore.exceptions import ClientError  # noqa: PLC0415
    except ImportError:
        return None
    session = boto3.session.Session()
    if session.get_credentials() is None or not session.region_name:
        return None
    client = session.client("lambda")

    def current(function_name: str, alias: str) -> str | None:
        try:
            return client.get_alias(FunctionName=function_name, Name=alias)["FunctionVersion"]
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return None
            raise

    return current


# ---------------------------------------------------------------------------- rendering


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes / 60:.1f} h".replace(".0 h", " h")


def _size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / 1024 / 1024:.1f} MiB"
    return f"{size / 1024:.1f} KiB" if size >= 1024 else f"{size} B"


def _rows(rows: list[str]) -> list[str]:
    if len(rows) <= MAX_ROWS:
        return rows
    return rows[:MAX_ROWS] + [f"| … {len(rows) - MAX_ROWS} more | | |"]


def render(preview: Preview) -> str:
    lines = ["#### Release preview: what merging releases"]
    if preview.commit:
        lines.append(
            f"Zips built from commit {_code(preview.commit[:12])}, the tree this plan is of "
            "(for a pull request, its merge into the base branch); the same sources give "
            "byte-identical zips when the merge is deployed."
        )
    else:
        lines.append("No build manifest was given: the artifacts are not listed.")
    if preview.functions:
        lines += ["", "| Function | Kind | sha256 | Size |", "| --- | --- | --- | --- |"]
        lines += _rows(
            [
                f"| {_code(f.key)} | {'app' if f.app else 'pipeline'} | "
                f"{_code(f.sha256)} | {_size(f.size)} |"
                for f in preview.functions
            ]
        )
    if preview.moves:
        lines += [
            "",
            "| Alias | Moves from | Strategy | Traffic shift |",
            "| --- | --- | --- | --- |",
        ]
        rows = []
        for m in preview.moves:
            target = (
                f"{_code(m.function_name)} {_code(m.alias)}"
                if m.function_name
                else (f"{_code(m.alias)} of a function this merge creates")
            )
            if m.function_name is None:
                current = "none (new function)"
            elif m.current == "$LATEST":  # what Terraform points a new alias at
                current = "`$LATEST` (no release yet)"
            elif m.current is not None:
                current = f"version {_code(m.current)}" if m.current != "none yet" else "none yet"
            else:
                current = "unknown"
            shift = f"{m.shift_minutes} min" if isinstance(m.shift_minutes, int | float) else "?"
            strategy = _code(m.strategy) if m.strategy else "?"
            rows.append(f"| {target} | {current} | {strategy} | {shift} |")
        lines += _rows(rows)
        after = "Each alias moves to the new version the release publishes."
        if preview.versions_note:
            note = preview.versions_note
            after += f" ℹ️ {note[0].upper()}{note[1:]}."
        lines += ["", after]
    if preview.approval_required is None:
        facts = ["Approval before production: unknown (no release_budget output in the plan)"]
    elif not preview.approval_required:
        facts = ["**No approval**: production follows staging automatically"]
    elif preview.approval_seconds:
        facts = [
            "**Approval required** before production (the release waits up to "
            f"{_duration(preview.approval_seconds)} for a person)"
        ]
    else:
        facts = ["**Approval required** before production"]
    if preview.worst_case_seconds:
        facts.append(f"the whole release may take up to {_duration(preview.worst_case_seconds)}")
    lines += ["", "; ".join(facts) + "."]
    if preview.pipeline_changes:
        kinds = ", ".join(f"{k} ({len(v)})" for k, v in preview.pipeline_changes.items())
        addresses = [a for v in preview.pipeline_changes.values() for a in v]
        shown = ", ".join(_code(a) for a in addresses[:MAX_ROWS])
        more = f" and {len(addresses) - MAX_ROWS} more" if len(addresses) > MAX_ROWS else ""
        lines += [
            "",
            f"⚠️ **This merge changes the release pipeline itself**: {kinds}: {shown}{more}. "
            "It applies before this release runs, so this release already goes through it.",
        ]
    if preview.app_changes:
        lines += ["", f"Other (application) infrastructure changes: {preview.app_changes}."]
    return "\n".join(lines)
