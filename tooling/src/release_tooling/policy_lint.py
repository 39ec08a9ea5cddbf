#!/usr/bin/env python3
"""Lint every IAM policy Terraform rendered with parliament and cloudsplaining.

  policy_lint.py [STATE ...]   Terraform state files (default: the local rehearsal's
                               .local/bootstrap.tfstate and .local/terraform.tfstate; for an
                               account: `terraform state pull > state.json`)

Policies are read from the state, where every ARN is resolved: the identity policies of
aws_iam_role_policy and aws_iam_policy (the workload boundary) and the trust policies of
aws_iam_role. parliament checks each against AWS's action, resource and condition definitions;
cloudsplaining flags identity policies that allow privilege escalation, data exfiltration,
resource exposure, credentials exposure, service wildcards or infrastructure changes without a
resource constraint. A finding fails the run unless .iam-policy-lint.yaml suppresses it with a
reason. Exit 0 clean, 1 findings, 2 usage error.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from . import project

ROOT = project.ROOT
DEFAULT_STATES = (ROOT / ".local" / "bootstrap.tfstate", ROOT / ".local" / "terraform.tfstate")
SUPPRESSIONS = ROOT / ".iam-policy-lint.yaml"
# cloudsplaining's risk categories, as its scan-policy-file command reports them.
CLOUDSPLAINING_CHECKS = {
    "PrivilegeEscalation": "allows_privilege_escalation",
    "DataExfiltration": "allows_data_exfiltration_actions",
    "ResourceExposure": "permissions_management_without_constraints",
    "CredentialsExposure": "credentials_exposure",
    "ServiceWildcard": "service_wildcard",
    "InfrastructureModification": "infrastructure_modification",
}


class LintError(Exception):
    """A usage problem: missing state, unreadable suppressions. One line, exit 2."""


@dataclass(frozen=True)
class Policy:
    name: str  # e.g. "aws_iam_role_policy.apply" or "aws_iam_role.plan (trust)"
    kind: str  # "identity" or "trust"
    document: dict


@dataclass(frozen=True)
class Finding:
    tool: str
    issue: str
    policy: str
    detail: str
    actions: tuple[str, ...] = ()  # the IAM actions the finding is about, where it names them

    def line(self) -> str:
        return f"{self.policy}: {self.tool} {self.issue}: {self.detail}"


def policies_from_state(state: dict) -> list[Policy]:
    found = []
    for resource in state.get("resources", []):
        if resource.get("mode") != "managed":
            continue
        address = f"{resource['type']}.{resource['name']}"
        if resource.get("module"):
            address = f"{resource['module']}.{address}"
        for instance in resource.get("instances", []):
            key = instance.get("index_key")
            name = address + (f"[{json.dumps(key)}]" if key is not None else "")
            attributes = instance.get("attributes") or {}
            if resource["type"] in ("aws_iam_role_policy", "aws_iam_policy"):
                found.append(Policy(name, "identity", json.loads(attributes["policy"])))
            elif resource["type"] == "aws_iam_role":
                trust = json.loads(attributes["assume_role_policy"])
                found.append(Policy(f"{name} (trust)", "trust", trust))
    return found


def parliament_findings(policy: Policy) -> list[Finding]:
    if policy.kind != "identity":
        # parliament reads identity policies (it requires Resource); trust policies are checked by
        # tests/test_oidc_trust.py and tests/test_iam_policies.py instead.
        return []
    import parliament

    analyzed = parliament.analyze_policy_string(
        json.dumps(policy.document), include_community_auditors=False
    )
    return [
        Finding(
            "parliament",
            f.issue,
            policy.name,
            json.dumps(f.detail, default=str)[:300],
            tuple(sorted(d["action"] for d in f.detail if isinstance(d, dict) and "action" in d))
            if isinstance(f.detail, list)
            else (),
        )
        for f in analyzed.findings
    ]


def cloudsplaining_findings(policy: Policy) -> list[Finding]:
    if policy.kind != "identity":
        return []  # cloudsplaining assesses what a principal may do, not who may assume it
    from cloudsplaining.scan.policy_document import PolicyDocument

    document = PolicyDocument(policy.document)
    findings = []
    for issue, attribute in CLOUDSPLAINING_CHECKS.items():
        flagged = getattr(document, attribute)
        if flagged:
            detail = ", ".join(
                sorted(a if isinstance(a, str) else json.dumps(a, default=str) for a in flagged)
            )
            findings.append(Finding("cloudsplaining", issue, policy.name, detail))
    return findings


def load_suppressions(path: Path) -> list[dict]:
    if not path.exists():
        return []
    import yaml

    try:
        entries = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    except yaml.YAMLError as exc:
        raise LintError(f"{path.name} is not valid YAML: {exc}") from None
    for index, entry in enumerate(entries):
        missing = {"tool", "issue", "policy", "reason"} - set(entry or {})
        if missing or not str(entry.get("reason", "")).strip():
            raise LintError(
                f"{path.name} entry {index + 1} needs tool, issue, policy and a non-empty "
                f"reason (missing: {', '.join(sorted(missing)) or 'reason text'})"
            )
    return entries


def suppressed(finding: Finding, entries: list[dict]) -> bool:
    """An entry matches tool, issue and policy glob; with `actions`, it covers a finding only when
    every action the finding names is listed (a new action in the same policy still fails)."""
    return any(
        entry["tool"] == finding.tool
        and entry["issue"] == finding.issue
        and fnmatch.fnmatchcase(finding.policy, entry["policy"])
        and ("actions" not in entry or set(finding.actions) <= set(entry["actions"]))
        for entry in entries
    )


def lint(states: list[Path], suppressions: Path = SUPPRESSIONS) -> tuple[list[Finding], int]:
    entries = load_suppressions(suppressions)
    policies: list[Policy] = []
    for path in states:
        try:
            policies += policies_from_state(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError) as exc:
            raise LintError(f"cannot read IAM policies from {path}: {exc}") from None
    findings = [
        finding
        for policy in policies
        for finding in parliament_findings(policy) + cloudsplaining_findings(policy)
        if not suppressed(finding, entries)
    ]
    return findings, len(policies)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("states", nargs="*", type=Path, help="Terraform state files")
    args = parser.parse_args(argv)
    states = args.states or [path for path in DEFAULT_STATES if path.exists()]
    if not states:
        print(
            "policy_lint: no rendered policies to lint: run `make local-up` (the rehearsal "
            "renders every policy) or pass a state file (`terraform state pull > state.json`)"
        )
        return 0
    try:
        findings, count = lint(states)
    except LintError as exc:
        print(f"policy_lint: {exc}")
        return 2
    for finding in findings:
        print(finding.line())
    print(
        f"policy_lint: {count} policies, {len(findings)} finding(s) not suppressed in "
        f"{SUPPRESSIONS.name}"
    )
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
