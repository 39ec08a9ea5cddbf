"""Drift beyond Terraform: aliases that no longer serve what the last successful release left.

    release-tooling alias-drift [--state-machine-arn ARN] [--function NAME ...]
        [--alias NAME ...] [--report FILE]

Terraform ignores which version an alias points at (the release moves it, not Terraform), so a
version set by hand in the console, or a deployment stopped mid-shift that left routing weights
behind, is invisible to `terraform plan`. This compares each release alias of each app function
with the newest SUCCEEDED execution of the release state machine: the deploy function publishes
every version with the release's commit as its Description, so a released alias serves a version
whose Description is that commit, with no additional routing weights ("Lambda function aliases",
AWS Lambda Developer Guide: RoutingConfig/AdditionalVersionWeights).

While a release is running its aliases are in motion: nothing is compared, and that is said.

Exit codes: 0 no alias drift (or nothing released yet, or a release is running), 2 drift (the
report names each alias, what it serves and what the release left), 1 error. The plan role reads
all of it (terraform/bootstrap: ReadReleaseHistory and ReadFunctions).
The state machine ARN and the functions come from the options, else from `terraform output`
(state_machine_arn, app_function_name).
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from . import contract, wait_for_release

RELEASE_ALIASES = ("staging", "production")


class AliasDriftError(Exception):
    """The check could not run; the message says why and what to do."""


@dataclass(frozen=True)
class Release:
    commit: str
    execution_arn: str


@dataclass(frozen=True)
class Finding:
    function: str
    alias: str
    serves: str
    serves_commit: str | None
    weights: dict[str, float]
    expected_commit: str

    def describe(self) -> str:
        problems = []
        if self.serves_commit != self.expected_commit:
            if self.serves_commit is None:
                served = "no description: not published by a release"
            elif re.fullmatch(r"[0-9a-f]{40}", self.serves_commit):
                served = self.serves_commit[:12]
            else:
                served = f"described {self.serves_commit!r}, not a release"
            problems.append(
                f"serves version {self.serves} ({served}), not the last successful release "
                f"{self.expected_commit[:12]}"
            )
        if self.weights:
            shares = ", ".join(f"version {v} {w:.0%}" for v, w in sorted(self.weights.items()))
            problems.append(f"still routes part of its traffic elsewhere ({shares})")
        return f"`{self.function}:{self.alias}` " + " and ".join(problems)


def running_release(sfn: Any, state_machine_arn: str) -> str | None:
    listed = sfn.list_executions(
        stateMachineArn=state_machine_arn, statusFilter="RUNNING", maxResults=1
    )
    running = listed.get("executions", [])
    return running[0]["executionArn"] if running else None


def last_successful_release(sfn: Any, state_machine_arn: str) -> Release | None:
    """The newest SUCCEEDED execution (ListExecutions returns the most recent first)."""
    listed = sfn.list_executions(
        stateMachineArn=state_machine_arn, statusFilter="SUCCEEDED", maxResults=1
    )
    for item in listed.get("executions", []):
        described = sfn.describe_execution(executionArn=item["executionArn"])
        commit = contract.commit_of(described.get("input"))
        if commit:
            return Release(commit, item["executionArn"])
    return None


def version_commits(lam: Any, function: str) -> dict[str, str | None]:
    commits: dict[str, str | None] = {}
    for page in lam.get_paginator("list_versions_by_function").paginate(FunctionName=function):
        for version in page.get("Versions", []):
            commits[version["Version"]] = version.get("Description") or None
    return commits


def check_function(
    lam: Any, function: str, aliases: tuple[str, ...], release: Release
) -> list[Finding]:
    commits = version_commits(lam, function)
    findings = []
    for alias in aliases:
        described = lam.get_alias(FunctionName=function, Name=alias)
        serves = described["FunctionVersion"]
        weights = (described.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        serves_commit = commits.get(serves)
        if serves_commit != release.commit or weights:
            findings.append(
                Finding(function, alias, serves, serves_commit, dict(weights), release.commit)
            )
    return findings


def check(
    sfn: Any, lam: Any, state_machine_arn: str, functions: list[str], aliases: tuple[str, ...]
) -> tuple[int, str]:
    """(exit code, Markdown report)."""
    running = running_release(sfn, state_machine_arn)
    if running:
        return 0, (
            f"Aliases not compared: release `{running.rsplit(':', 1)[-1]}` is running, and a "
            "release moves them."
        )
    release = last_successful_release(sfn, state_machine_arn)
    if release is None:
        return 0, "Aliases not compared: no release has succeeded yet."
    findings = [f for fn in functions for f in check_function(lam, fn, aliases, release)]
    execution = release.execution_arn.rsplit(":", 1)[-1]
    if not findings:
        return 0, (
            f"Aliases match the last successful release {release.commit[:12]} "
            f"(execution `{execution}`)."
        )
    lines = [
        f"### Alias drift: {len(findings)} alias(es) changed outside the pipeline",
        "",
        f"The last successful release is {release.commit} (execution `{execution}`).",
        "",
        *[f"- {finding.describe()}" for finding in findings],
        "",
        "Release again to put them back (`make release-upload`; re-uploading a commit re-runs its "
        "release), or find who moved them in CloudTrail (lambda:UpdateAlias).",
    ]
    return 2, "\n".join(lines)


def main(argv: list[str] | None = None, clients: tuple[Any, Any] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="release-tooling alias-drift", description=__doc__.split("\n\n")[1]
    )
    parser.add_argument("--state-machine-arn", help="the release state machine")
    parser.add_argument(
        "--function", action="append", help="an app function (repeat; default: terraform output)"
    )
    parser.add_argument(
        "--alias", action="append", help=f"alias to compare (default: {', '.join(RELEASE_ALIASES)})"
    )
    parser.add_argument("--report", type=Path, help="also write the Markdown report here")
    args = parser.parse_args(argv)
    try:
        arn, functions = args.state_machine_arn, args.function
        if not arn or not functions:
            try:
                outputs = wait_for_release.terraform_outputs()
            except wait_for_release.ConfigError as exc:
                raise AliasDriftError(str(exc)) from None
            arn = arn or outputs.get("state_machine_arn")
            functions = functions or [outputs.get("app_function_name")]
        if not arn or not all(functions):
            raise AliasDriftError(
                "terraform output has no state_machine_arn/app_function_name: pass "
                "--state-machine-arn and --function"
            )
        if clients is None:
            import boto3

            region = arn.split(":")[3]
            clients = (
                boto3.client("stepfunctions", region_name=region),
                boto3.client("lambda", region_name=region),
            )
        try:
            code, report = check(
                clients[0], clients[1], arn, functions, tuple(args.alias or RELEASE_ALIASES)
            )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise AliasDriftError(
                f"{exc.operation_name} failed: {error.get('Code')}: {error.get('Message')} "
                "(the drift job runs as the plan role: terraform/bootstrap grants it "
                "ReadReleaseHistory and ReadFunctions)"
            ) from None
    except AliasDriftError as exc:
        print(f"release-tooling alias-drift: {exc}", file=sys.stderr)
        return 1
    print(report)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(report + "\n", encoding="utf-8")
    return code


if __name__ == "__main__":
    sys.exit(main())
