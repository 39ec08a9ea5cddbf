"""Apply what was reviewed: record a pull request's plan, and on merge compare the new plan with it.

    release-tooling plan-review record --plan-json build/plan.json --out build/plan-review.json
        Writes the plan's changes in canonical form (the reviewed plan, uploaded as an artifact)
        and prints its digest, which the plan comment shows.
    release-tooling plan-review compare --reviewed FILE --plan-json build/plan.json
        Compares a new plan with a recorded one and says what changed since review.
    release-tooling plan-review fetch --commit SHA --out DIR
        Finds the reviewed plan of a commit on main through the GitHub API (below).
    release-tooling plan-review check --commit SHA --plan-json build/plan.json [--allow-unreviewed]
        fetch + compare: what the deploy job runs before `make apply`.

What is compared (Terraform "JSON Output Format", Plan Representation,
https://developer.hashicorp.com/terraform/internals/json-format): for every entry of
``resource_changes`` whose actions change something (not "no-op", not "read" — a data source read
changes nothing), or that imports or moves an object, its address (and deposed key), its actions,
its planned ``after`` values, ``after_unknown`` and whether it imports/moves; for every entry of
``output_changes`` that is not "no-op", its actions, ``after`` and ``after_unknown``. Nothing else:
``timestamp``, ``prior_state``, ``planned_values``, ``configuration``, ``variables``,
``before`` values, refresh-only drift and Terraform's version legitimately differ between the
pull request's plan and the merge's, and do not change what gets applied.

What must match: everything above, exactly. The pull request planned the commit GitHub built by
merging its head into main (the checkout of a `pull_request` run), and the deploy plans the commit
that landed on main; no planned value depends on which commit it is, because the Lambda zips are
byte-identical for identical sources (package.py) and the release manifest, which names the
commit, is not a Terraform input. So a different value means different sources or different
state: main moved on after the plan, a merge resolved differently, or someone changed the
infrastructure. Two differences are accepted, because they cannot make the result differ from
what was reviewed:
- a value that was "known after apply" in the reviewed plan may now be known (any value);
- a reviewed change that is now a no-op whose values match what was reviewed (or a reviewed
  delete of an object that no longer exists) is "already applied": an earlier deploy of a merge
  queue group that included this change applied it.

Sensitive values (``after_sensitive``) never enter the record in clear text: the artifact is
readable by anyone who can read the repository. Each is replaced by an HMAC-SHA256 under a random
salt stored in the record; the comparison hashes the new plan's values with the same salt. (A
guessable secret can still be guessed from its HMAC and the salt: keep secrets out of Terraform
values.)

Finding the reviewed plan of a commit on main (fetch/check), through the GitHub REST API:
1. A run of the pull-request workflow for the `merge_group` event whose head SHA is the commit:
   with a merge queue, the queue tests the merged result and pushes that very commit to main, so
   its plan is the plan of exactly what is deployed.
2. Otherwise the merged pull request of the commit ("List pull requests associated with a
   commit", https://docs.github.com/rest/commits/commits#list-pull-requests-associated-with-a-commit;
   the one whose merge_commit_sha is the commit), the newest successful `pull_request` run of the
   workflow for its head SHA ("List workflow runs for a workflow",
   https://docs.github.com/rest/actions/workflow-runs#list-workflow-runs-for-a-workflow), and that
   run's artifact ("List workflow run artifacts", "Download an artifact",
   https://docs.github.com/rest/actions/artifacts).
A commit with neither (a direct push, or workflow_dispatch of an unreviewed main) has no
reviewed plan: check refuses it, like a plan that changed since review, unless --allow-unreviewed
(the deploy workflow passes it when the repository variable ALLOW_UNREVIEWED_APPLY is "true"),
which applies either with a warning.

Exit codes: 0 the plan matches what was reviewed (compare, check) / recorded / found (fetch);
1 the plan differs from what was reviewed, or a GitHub API error; 2 bad input (a missing or
malformed file, a record whose digest does not match its content, bad arguments);
3 (fetch, and check without --allow-unreviewed) no reviewed plan exists for the commit.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import io
import json
import os
import re
import secrets
import sys
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import github_api

FORMAT = "release-tooling/plan-review/1"
ARTIFACT_NAME = "reviewed-plan"
FILE_NAME = "plan-review.json"
WORKFLOW = "pull-request.yml"
SHA_RE = re.compile(r"^[0-9a-f]{40}$")
UNCHANGING = ({"no-op"}, {"read"})
MAX_LISTED = 40
MAX_PATHS = 8


class InputError(Exception):
    """A file or argument is missing or malformed; the message says how to fix it."""


class NotReviewed(Exception):
    """No reviewed plan exists for the commit; the message says what was looked for."""


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest_of(record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "digest"}
    return "sha256:" + hashlib.sha256(canonical(body)).hexdigest()


def _mask(value: Any, sensitive: Any, salt: str) -> Any:
    """``value`` with every sensitive part replaced by its salted HMAC."""
    if sensitive is True:
        mac = hmac.new(bytes.fromhex(salt), canonical(value), hashlib.sha256).hexdigest()
        return f"(sensitive hmac-sha256:{mac})"
    if isinstance(sensitive, dict) and isinstance(value, dict):
        return {k: _mask(v, sensitive.get(k), salt) for k, v in value.items()}
    if isinstance(sensitive, list) and isinstance(value, list):
        return [
            _mask(v, sensitive[i] if i < len(sensitive) else None, salt)
            for i, v in enumerate(value)
        ]
    return value


def _key(rc: dict[str, Any]) -> str:
    address = rc.get("address")
    if not isinstance(address, str) or not address:
        raise InputError("a resource_changes entry has no address; is this a Terraform plan?")
    deposed = rc.get("deposed")
    return f"{address} (deposed {deposed})" if deposed else address


def _entry(change: dict[str, Any], salt: str, moved_from: str | None = None) -> dict[str, Any]:
    actions = change.get("actions")
    if not isinstance(actions, list):
        raise InputError("a change has no actions list; is this a Terraform plan JSON?")
    entry: dict[str, Any] = {
        "actions": list(actions),
        "after": _mask(change.get("after"), change.get("after_sensitive"), salt),
        "after_unknown": change.get("after_unknown") or False,
    }
    if change.get("importing"):
        entry["importing"] = True
    if moved_from:
        entry["moved_from"] = moved_from
    return entry


def _changes(plan: dict[str, Any], salt: str, include_unchanged: bool) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    for rc in plan.get("resource_changes") or []:
        change = rc.get("change") or {}
        moved = rc.get("previous_address")
        entry = _entry(change, salt, moved)
        unchanged = set(entry["actions"]) in UNCHANGING and "importing" not in entry and not moved
        if unchanged and (not include_unchanged or entry["actions"] == ["read"]):
            continue
        resources[_key(rc)] = entry
    outputs: dict[str, Any] = {}
    for name, change in sorted((plan.get("output_changes") or {}).items()):
        entry = _entry(change or {}, salt)
        if entry["actions"] == ["no-op"] and not include_unchanged:
            continue
        outputs[name] = entry
    return {"resources": dict(sorted(resources.items())), "outputs": outputs}


def check_plan(plan: Any, where: str) -> dict[str, Any]:
    if not isinstance(plan, dict) or "format_version" not in plan:
        raise InputError(f"{where} is not a Terraform plan JSON (terraform show -json PLANFILE)")
    if plan.get("errored"):
        raise InputError(f"{where} is the plan of a failed `terraform plan`; it cannot be applied")
    return plan


def record(plan: dict[str, Any], salt: str | None = None) -> dict[str, Any]:
    """The reviewed form of a plan: its changes, canonical, with a digest over them."""
    salt = salt or secrets.token_hex(16)
    doc = {"format": FORMAT, "salt": salt, **_changes(plan, salt, include_unchanged=False)}
    doc["digest"] = digest_of(doc)
    return doc


def load_record(raw: str, where: str) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except ValueError as err:
        raise InputError(f"{where} is not JSON ({err})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InputError(
            f"{where} is not a reviewed-plan record ({FORMAT}); write it with "
            "`release-tooling plan-review record`"
        )
    if not re.fullmatch(r"[0-9a-f]{32,}", str(doc.get("salt", ""))):
        raise InputError(f"{where} has no valid salt")
    if doc.get("digest") != digest_of(doc):
        raise InputError(
            f"{where}: its digest {doc.get('digest')} does not match its content "
            f"({digest_of(doc)}); the record was altered after it was written"
        )
    return doc


# --------------------------------------------------------------------------- comparison


def _known_match(reviewed: Any, unknown: Any, current: Any) -> bool:
    """Whether ``current`` is what was reviewed, where an unknown reviewed value allows any."""
    if unknown is True:
        return True
    if isinstance(reviewed, dict) and isinstance(current, dict):
        unknown = unknown if isinstance(unknown, dict) else {}
        keys = set(reviewed) | set(current) | set(unknown)
        return all(_known_match(reviewed.get(k), unknown.get(k), current.get(k)) for k in keys)
    if isinstance(reviewed, list) and isinstance(current, list):
        unknown = unknown if isinstance(unknown, list) else []
        if len(unknown) > len(reviewed) and len(current) == len(unknown):
            reviewed = reviewed + [None] * (len(unknown) - len(reviewed))
        if len(reviewed) != len(current):
            return False
        return all(
            _known_match(r, unknown[i] if i < len(unknown) else None, c)
            for i, (r, c) in enumerate(zip(reviewed, current, strict=True))
        )
    return reviewed == current


def _paths(reviewed: Any, unknown: Any, current: Any, prefix: str = "") -> list[str]:
    """Attribute paths where ``current`` differs from what was reviewed."""
    if _known_match(reviewed, unknown, current):
        return []
    if isinstance(reviewed, dict) and isinstance(current, dict):
        unknown = unknown if isinstance(unknown, dict) else {}
        out: list[str] = []
        for k in sorted(set(reviewed) | set(current) | set(unknown)):
            out += _paths(reviewed.get(k), unknown.get(k), current.get(k), f"{prefix}.{k}")
        return out or [prefix or "(value)"]
    return [prefix.lstrip(".") or "(value)"]


def _entry_diff(reviewed: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """How ``current`` differs from ``reviewed``; empty when it is what was reviewed."""
    notes = []
    if reviewed["actions"] != current["actions"]:
        notes.append(f"actions {_actions(reviewed)} → {_actions(current)}")
    for flag in ("importing", "moved_from"):
        if reviewed.get(flag) != current.get(flag):
            notes.append(f"{flag} {reviewed.get(flag)!r} → {current.get(flag)!r}")
    paths = [
        p.lstrip(".")
        for p in _paths(reviewed["after"], reviewed["after_unknown"], current["after"])
    ]
    # A value known at review must not have become unknown.
    newly_unknown = [
        p
        for p in _unknown_paths(current["after_unknown"])
        if not _is_unknown(reviewed["after_unknown"], p)
    ]
    changed = sorted(set(paths) | {f"{p} (now known only after apply)" for p in newly_unknown})
    if changed:
        shown = changed[:MAX_PATHS]
        more = f" and {len(changed) - MAX_PATHS} more" if len(changed) > MAX_PATHS else ""
        notes.append("values differ at " + ", ".join(shown) + more)
    return notes


def _unknown_paths(unknown: Any, prefix: str = "") -> list[str]:
    if unknown is True:
        return [prefix or "(value)"]
    if isinstance(unknown, dict):
        return [
            p for k, v in unknown.items() for p in _unknown_paths(v, f"{prefix}.{k}".lstrip("."))
        ]
    if isinstance(unknown, list):
        return [p for i, v in enumerate(unknown) for p in _unknown_paths(v, f"{prefix}[{i}]")]
    return []


def _is_unknown(unknown: Any, path: str) -> bool:
    if unknown is True:
        return True
    if path == "(value)":
        return unknown is True
    node = unknown
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if node is True:
            return True
        if part.startswith("[") and isinstance(node, list):
            i = int(part[1:-1])
            node = node[i] if i < len(node) else None
        elif isinstance(node, dict):
            node = node.get(part)
        else:
            return False
    return node is True


def _actions(entry: dict[str, Any]) -> str:
    return "/".join(entry["actions"])


@dataclass
class Comparison:
    reviewed_digest: str
    current_digest: str
    new: list[tuple[str, str]] = field(default_factory=list)  # (what, actions)
    changed: list[tuple[str, list[str]]] = field(default_factory=list)
    dropped: list[tuple[str, str]] = field(default_factory=list)
    already_applied: list[str] = field(default_factory=list)

    @property
    def matches(self) -> bool:
        return not (self.new or self.changed or self.dropped)

    def report(self) -> str:
        lines = []
        if self.matches:
            lines.append(
                f"The plan matches the reviewed plan {self.reviewed_digest}"
                + (" exactly." if self.reviewed_digest == self.current_digest else ".")
            )
        else:
            total = len(self.new) + len(self.changed) + len(self.dropped)
            lines.append(
                f"The plan differs from the reviewed plan {self.reviewed_digest} "
                f"in {total} change(s) (this plan: {self.current_digest}); nothing was applied. "
                "What changed since review:"
            )
            lines += _bounded([f"  + new: {w} ({a})" for w, a in self.new])
            lines += _bounded([f"  ~ changed: {w}: {'; '.join(n)}" for w, n in self.changed])
            lines += _bounded(
                [f"  - no longer planned: {w} (reviewed: {a})" for w, a in self.dropped]
            )
            lines.append(
                "Merge a pull request made on top of current main: its plan shows everything that "
                "would be applied, and its merge deploys it (or, having read this plan, set the "
                "repository variable ALLOW_UNREVIEWED_APPLY to true for one re-run)."
            )
        if self.already_applied:
            lines.append(
                f"Already applied since review ({len(self.already_applied)}): "
                + ", ".join(self.already_applied[:MAX_LISTED])
            )
        return "\n".join(lines)


def _bounded(lines: list[str]) -> list[str]:
    if len(lines) <= MAX_LISTED:
        return lines
    return lines[:MAX_LISTED] + [f"  ... and {len(lines) - MAX_LISTED} more"]


def compare(reviewed: dict[str, Any], plan: dict[str, Any]) -> Comparison:
    salt = reviewed["salt"]
    current_all = _changes(plan, salt, include_unchanged=True)
    current = record(plan, salt)
    result = Comparison(reviewed["digest"], current["digest"])
    for kind, label in (("resources", ""), ("outputs", "output ")):
        before: dict[str, Any] = reviewed.get(kind) or {}
        now_changing: dict[str, Any] = current[kind]
        now_all: dict[str, Any] = current_all[kind]
        for name, entry in now_changing.items():
            if name not in before:
                result.new.append((label + name, _actions(entry)))
            elif notes := _entry_diff(before[name], entry):
                result.changed.append((label + name, notes))
        for name, entry in before.items():
            if name in now_changing:
                continue
            now = now_all.get(name)
            applied = (now is None and entry["actions"] == ["delete"]) or (
                now is not None
                and now["actions"] == ["no-op"]
                and _known_match(entry["after"], entry["after_unknown"], now["after"])
            )
            if applied:
                result.already_applied.append(label + name)
            else:
                result.dropped.append((label + name, _actions(entry)))
    return result


# --------------------------------------------------------------------------- GitHub


@dataclass
class Found:
    record: dict[str, Any]
    source: str  # one line: which run and pull request it came from


def _record_from_zip(data: bytes, where: str) -> dict[str, Any]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = [n for n in archive.namelist() if n.rsplit("/", 1)[-1] == FILE_NAME]
            if len(names) != 1:
                raise InputError(f"{where} holds {len(names)} {FILE_NAME} files, expected one")
            info = archive.getinfo(names[0])
            if info.file_size > 10 * 1024 * 1024:
                raise InputError(f"{where}: {FILE_NAME} is larger than 10 MiB")
            raw = archive.read(names[0]).decode("utf-8")
    except zipfile.BadZipFile:
        raise InputError(f"{where} is not a zip archive") from None
    return load_record(raw, where)


def _artifact_of(client: github_api.GitHubClient, run: dict[str, Any], name: str) -> dict | None:
    for artifact in client.run_artifacts(run["id"], name):
        if not artifact.get("expired"):
            return artifact
    return None


def find_reviewed(
    client: github_api.GitHubClient,
    commit: str,
    workflow: str = WORKFLOW,
    artifact: str = ARTIFACT_NAME,
) -> Found:
    """The reviewed plan of ``commit`` (see the module docstring), or NotReviewed."""
    looked: list[str] = []
    for run in client.workflow_runs(workflow, commit, "merge_group"):
        found = _artifact_of(client, run, artifact)
        if found:
            data = client.download_artifact(found["id"])
            where = f"artifact {artifact!r} of merge-queue run {run.get('html_url', run['id'])}"
            return Found(_record_from_zip(data, where), f"merge queue: {where}")
        looked.append(f"merge-queue run {run.get('html_url', run['id'])} has no {artifact!r}")
    pulls = [
        p
        for p in client.commit_pulls(commit)
        if p.get("merge_commit_sha") == commit and p.get("merged_at")
    ]
    if not pulls:
        raise NotReviewed(
            f"commit {commit} was not merged from a pull request (no merged pull request has it "
            f"as its merge commit) and no successful merge-queue run of {workflow} planned it"
            + (f"; {'; '.join(looked)}" if looked else "")
        )
    pull = pulls[0]
    head = (pull.get("head") or {}).get("sha", "")
    runs = client.workflow_runs(workflow, head, "pull_request")
    if not runs:
        raise NotReviewed(
            f"pull request #{pull.get('number')} (head {head}) has no successful "
            f"pull_request run of {workflow}: its plan was never reviewed"
        )
    run = runs[0]
    found = _artifact_of(client, run, artifact)
    if not found:
        raise NotReviewed(
            f"run {run.get('html_url', run['id'])} of pull request #{pull.get('number')} has no "
            f"unexpired artifact {artifact!r} (a fork's pull request, or retention ran out)"
        )
    where = f"artifact {artifact!r} of run {run.get('html_url', run['id'])}"
    record_ = _record_from_zip(client.download_artifact(found["id"]), where)
    return Found(record_, f"pull request #{pull.get('number')}: {where}")


# --------------------------------------------------------------------------- CLI


def _read_plan(path: str) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file() or not p.stat().st_size:
        raise InputError(f"--plan-json {path} is missing or empty; run `make plan` first")
    try:
        plan = json.loads(p.read_text(encoding="utf-8"))
    except ValueError as err:
        raise InputError(f"--plan-json {path} is not valid JSON ({err})") from None
    return check_plan(plan, f"--plan-json {path}")


def _read_record(path: str) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"--reviewed {path} does not exist")
    return load_record(p.read_text(encoding="utf-8"), f"--reviewed {path}")


def _commit(value: str) -> str:
    if not SHA_RE.fullmatch(value):
        raise argparse.ArgumentTypeError(f"expected a full 40-character commit SHA, got {value!r}")
    return value


def _step_summary(env: dict[str, str], found: Found, result: Comparison) -> None:
    """The comparison in the job summary, when the job has one ($GITHUB_STEP_SUMMARY)."""
    path = env.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    icon = "✅" if result.matches else "❌"
    fence = "`" * max(3, *(len(m) + 1 for m in re.findall(r"`+", result.report())), 3)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(
            f"### {icon} Reviewed plan\n\nFrom {found.source}.\n\n{fence}text\n"
            f"{result.report()}\n{fence}\n"
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="release-tooling plan-review", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("record", help="write the reviewed form of a plan and print its digest")
    r.add_argument("--plan-json", required=True)
    r.add_argument("--out", required=True)
    c = sub.add_parser("compare", help="compare a plan with a recorded reviewed plan")
    c.add_argument("--reviewed", required=True)
    c.add_argument("--plan-json", required=True)
    for name, what in (
        ("fetch", "download the reviewed plan of a commit on main"),
        ("check", "fetch the reviewed plan of a commit and compare"),
    ):
        f = sub.add_parser(name, help=what)
        f.add_argument("--commit", required=True, type=_commit)
        f.add_argument("--workflow", default=WORKFLOW, help="the pull-request workflow file")
        f.add_argument("--artifact", default=ARTIFACT_NAME)
        if name == "fetch":
            f.add_argument("--out", required=True, help="directory for plan-review.json")
        else:
            f.add_argument("--plan-json", required=True)
            f.add_argument(
                "--provenance-out",
                type=Path,
                help="write the reviewed plan's digest and source here (release-wait --reviewed)",
            )
            f.add_argument(
                "--allow-unreviewed",
                action="store_true",
                help="apply anyway (with a warning) when there is no reviewed plan or it differs",
            )
    return parser


def main(
    argv: Iterable[str] | None = None,
    env: dict[str, str] | None = None,
    client: github_api.GitHubClient | None = None,
) -> int:
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    env = dict(os.environ) if env is None else env
    name = f"plan-review {args.command}"
    try:
        if args.command == "record":
            doc = record(_read_plan(args.plan_json))
            out = Path(args.out)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
            print(doc["digest"])
            return 0
        if args.command == "compare":
            result = compare(_read_record(args.reviewed), _read_plan(args.plan_json))
            print(result.report())
            return 0 if result.matches else 1
        plan = _read_plan(args.plan_json) if args.command == "check" else None
        client = client or github_api.GitHubClient.from_env(env)
        try:
            found = find_reviewed(client, args.commit, args.workflow, args.artifact)
        except NotReviewed as err:
            if args.command == "check" and args.allow_unreviewed:
                print(
                    f"::warning title=Unreviewed apply::{err}; applying anyway because "
                    "unreviewed applies are allowed (ALLOW_UNREVIEWED_APPLY)"
                )
                return 0
            print(f"::error title=No reviewed plan::{err}")
            print(
                f"{name}: no reviewed plan: {err}. Merge through a pull request (or the merge "
                "queue) so its plan is reviewed; to apply unreviewed commits set the "
                "repository variable ALLOW_UNREVIEWED_APPLY to true",
                file=sys.stderr,
            )
            return 3
        print(f"reviewed plan {found.record['digest']} from {found.source}")
        if args.command == "fetch":
            out = Path(args.out)
            out.mkdir(parents=True, exist_ok=True)
            (out / FILE_NAME).write_text(json.dumps(found.record, indent=1, sort_keys=True) + "\n")
            return 0
        result = compare(found.record, plan)
        print(result.report())
        _step_summary(env, found, result)
        if args.provenance_out:
            args.provenance_out.parent.mkdir(parents=True, exist_ok=True)
            args.provenance_out.write_text(
                json.dumps(
                    {
                        "digest": found.record["digest"],
                        "source": found.source,
                        "matches": result.matches,
                    }
                )
                + "\n",
                encoding="utf-8",
            )
        if result.matches:
            return 0
        first = result.report().splitlines()[0]
        if args.allow_unreviewed:
            print(
                f"::warning title=Unreviewed apply::{first}; applying anyway because "
                "unreviewed applies are allowed (ALLOW_UNREVIEWED_APPLY)"
            )
            return 0
        print(f"::error title=The plan changed since review::{first}")
        return 1
    except (InputError, github_api.ConfigError) as err:
        print(f"{name}: {err}", file=sys.stderr)
        return 2
    except github_api.GitHubError as err:
        print(f"{name}: GitHub API error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
