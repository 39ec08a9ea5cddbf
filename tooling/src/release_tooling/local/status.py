"""`local status`: where each alias is, the pipeline's runs and the last executions."""

from __future__ import annotations

import json

from .. import provenance
from .common import package_module, say, short
from .environment import Env, require_env
from .release import app_functions, function_alias_versions, version_commit


def cmd_status(args) -> int:
    env = require_env()
    sfn = env.client("stepfunctions")
    executions = sorted(
        sfn.list_executions(stateMachineArn=env.outputs["state_machine_arn"])["executions"],
        key=lambda e: e["startDate"],
        reverse=True,
    )
    rows = []
    chain: list[str] = []
    for e in executions[: args.last]:
        d = sfn.describe_execution(executionArn=e["executionArn"])
        if not chain:  # the newest release, from commit to execution, as release-wait prints it
            data = provenance.execution_data(sfn, e["executionArn"], d)
            chain = provenance.chain(e["executionArn"], d.get("input"), data)
        rows.append(
            {
                "name": e["name"],
                "status": e["status"],
                # The release's identity is its input: CodePipeline names the execution.
                "commit": release_input(d).get("commit_sha"),
                "error": d.get("error"),
                "cause": d.get("cause"),
                "output": d.get("output"),
            }
        )
    functions = function_alias_versions(env)
    names = app_functions(env)
    aliases = next(iter(functions.values()))  # the primary function's
    pipeline_runs = pipeline_executions(env, args.last)
    if args.json:
        print(
            json.dumps(
                {
                    "endpoint": env.endpoint.url,
                    "iam": env.endpoint.iam,
                    "aliases": aliases,
                    # Every app function's aliases by key (the primary's are "aliases" too).
                    "functions": functions,
                    "executions": rows,
                    "pipeline_executions": pipeline_runs,
                    "provenance": chain,
                },
                indent=2,
            )
        )
        return 0
    say(f"Endpoint {env.endpoint.url} (pid {env.endpoint.pid}, IAM {env.endpoint.iam})")
    for key, versions in functions.items():
        if len(functions) > 1:
            say(f"  {key} ({names[key]})")
        for alias, version in versions.items():
            commit = version_commit(env, version, names[key])
            line = f"  {alias:<10} version {version}" + (
                f" (commit {commit[:12]})" if commit else ""
            )
            say(("  " if len(functions) > 1 else "") + line)
    say("Pipeline runs (newest first):" if pipeline_runs else "No pipeline runs yet")
    for run in pipeline_runs:
        say(f"  {run['id']}  {run['status']:<10} commit {(run['commit'] or '-')[:12]}")
    say("Executions (newest first):" if rows else "No executions yet: make local-release")
    for r in rows:
        cause = short(r["cause"] or "", 120)
        say(f"  {r['name']:<22} {r['status']:<10} {r['error'] or ''} {cause}")
    if chain:
        say("Newest release, from commit to execution:")
        for line in chain:
            say(f"  {line}")
    return 0


def release_input(described: dict) -> dict:
    try:
        value = json.loads(described.get("input") or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def pipeline_executions(env: Env, last: int) -> list[dict]:
    """The pipeline's runs, newest first, each with the commit its execution input names."""
    codepipeline = env.client("codepipeline")
    s3 = env.client("s3")
    runs = []
    summaries = codepipeline.list_pipeline_executions(
        pipelineName=env.outputs["pipeline_name"], maxResults=max(1, min(last, 100))
    ).get("pipelineExecutionSummaries", [])
    for summary in summaries:
        runs.append(
            {
                "id": summary["pipelineExecutionId"],
                "status": summary["status"],
                "commit": source_commit(s3, env.outputs["artifact_bucket"], summary),
            }
        )
    return runs


def source_commit(s3, bucket: str, summary: dict) -> str | None:
    """The commit of a run: the object version its source action took holds the commit."""
    version = next(
        (r.get("revisionId") for r in summary.get("sourceRevisions", []) if r.get("revisionId")),
        None,
    )
    if not version:
        return None
    try:
        head = s3.head_object(Bucket=bucket, Key=package_module().SOURCE_KEY, VersionId=version)
    except Exception:  # noqa: BLE001 - an expired version: the run shows without its commit
        return None
    return head.get("Metadata", {}).get("commit")
