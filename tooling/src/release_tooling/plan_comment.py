#!/usr/bin/env python3
"""Render a Terraform plan as one pull-request comment, and post it (sticky).

    plan_comment.py render --plan-json PLAN.json [--plan-text PLAN.txt]
        [--checkov-json CHECKOV.json] [--tests-junit JUNIT.xml] [--run-url URL]
        [--manifest build/manifest.json] [--read-aliases] [--plan-review build/plan-review.json]
        (the last three: the release preview, see release_preview.py, and the reviewed plan's
        digest, see plan_review.py)
    plan_comment.py post --pr N --body-file FILE
    plan_comment.py issue --body-file FILE [--title T] [--label L]   (drift workflow)
    plan_comment.py summary --title T --file FILE [--max-bytes N | --tail-lines N]
        (a log as a fenced block for $GITHUB_STEP_SUMMARY; the fence outlasts the text's own)

The rendered body always stays under GitHub's 65,536-character limit: the plan
text is cut first, then the resource rows, then long check lists; the verdict,
counts (also per resource type), destroy/replace warnings, failed conditions and
drift are never cut (the last two are bounded). A plan of more than a few dozen
resources is grouped by action and resource type, each group's rows in natural
address order, long groups collapsed in <details>. Standard library only.

What the plan JSON holds is documented in Terraform's "JSON Output Format"
(https://developer.hashicorp.com/terraform/internals/json-format), Plan
Representation: "errored" (planning failed; the actions planned before the
failure may still be listed), "resource_drift" (changes detected outside
Terraform, same shape as "resource_changes"), "relevant_attributes" (what fed
the planned changes, to filter the drift) and "checks" (Checks Representation:
status pass/fail/error/unknown per checkable object and per instance, failure
messages in "problems"). Terraform 1.2 wrote "condition_results" instead; both
are read.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import github_api, plan_review, release_preview

MARKER = "<!-- terraform-plan-comment -->"
GITHUB_BODY_LIMIT = 65_536
# Headroom below the hard limit: GitHub counts UTF-16 code units, and the caller
# may append a line or two.
DEFAULT_BUDGET = GITHUB_BODY_LIMIT - 1_536
ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
REFRESH_RE = re.compile(
    r"^\S.*: (Refreshing state\.\.\.|Reading\.\.\.|Read complete after |Preparing import\.\.\.)"
)
CATEGORY_ORDER = ("replace", "destroy", "add", "change", "import", "move", "forget")
ACTION_LABEL = {
    "replace": "⚠️ replace",
    "destroy": "🔥 destroy",
    "add": "➕ add",
    "change": "✏️ change",
    "import": "📥 import",
    "move": "🚚 move",
    "forget": "🙈 forget",
}
REASONS = {
    "replace_because_tainted": "tainted",
    "replace_because_cannot_update": "an argument forces replacement",
    "replace_by_request": "replacement requested (-replace)",
    "replace_by_triggers": "replace_triggered_by changed",
    "delete_because_no_resource_config": "removed from the configuration",
    "delete_because_no_module": "its module was removed",
    "delete_because_wrong_repetition": "count/for_each mode changed",
    "delete_because_count_index": "count index no longer exists",
    "delete_because_each_key": "for_each key no longer exists",
    "delete_because_no_move_target": "moved target does not exist",
}


class InputError(Exception):
    """An input file is missing or malformed; the message says which and how to fix it."""


# ------------------------------------------------------------------ natural address order

# One step of an address: `.name`, `[0]` or `["key"]` (Terraform escapes `"` and `\` in keys).
_ADDR_STEP = re.compile(r'\.?([^.\["]+)|\[(\d+)\]|\["((?:[^"\\]|\\.)*)"\]')
_MODE_RANK = {"managed": 0, "data": 1, "ephemeral": 2}
_UNPARSED = 9


def _instance_key(key: int | str | None) -> tuple[int, int, str]:
    """Comparable form of an instance key: none < numbers (by value) < strings."""
    if key is None:
        return (0, 0, "")
    if isinstance(key, int):
        return (1, key, "")
    return (2, 0, key)


def address_key(address: str) -> tuple[Any, ...]:
    """Natural sort key of a resource instance address.

    Module path first, step by step (the root module before any module, `module.a[2]` before
    `module.a[10]`), then mode, type, name and instance key; numeric keys compare as numbers,
    string keys as strings. An address that does not parse sorts after the others, as text.
    """
    unparsed = ((), _UNPARSED, address, "", _instance_key(None), address)
    steps: list[list[Any]] = []  # [name, key]
    pos = 0
    while pos < len(address):
        m = _ADDR_STEP.match(address, pos)
        if m is None:
            return unparsed
        name, number, text = m.groups()
        if name is not None:
            steps.append([name, None])
        elif not steps or steps[-1][1] is not None:
            return unparsed
        else:
            steps[-1][1] = int(number) if number is not None else text
        pos = m.end()
    module: list[tuple[str, tuple[int, int, str]]] = []
    while len(steps) > 2 and steps[0] == ["module", None]:
        module.append((steps[1][0], _instance_key(steps[1][1])))
        steps = steps[2:]
    mode = "managed"
    if len(steps) == 3 and steps[0][0] in _MODE_RANK and steps[0][1] is None:
        mode = steps.pop(0)[0]
    if len(steps) != 2 or steps[0][1] is not None:
        return (tuple(module), *unparsed[1:])
    (rtype, _), (name, key) = steps
    return (tuple(module), _MODE_RANK[mode], rtype, name, _instance_key(key), address)


def address_type(address: str) -> str:
    key = address_key(address)
    return key[2] if key[1] != _UNPARSED else "?"


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class ResourceChange:
    address: str
    categories: tuple[str, ...]
    resource_type: str = ""
    previous_address: str | None = None
    import_id: str | None = None
    reason: str | None = None
    replace_paths: tuple[str, ...] = ()

    @property
    def primary(self) -> str:
        return self.categories[0]

    def note(self) -> str:
        parts = []
        # Everything from the plan goes in code spans (see code()); reasons are our own text.
        if self.previous_address:
            parts.append(f"moved from {code(self.previous_address)}")
        if self.import_id is not None:
            parts.append(f"import id {code(self.import_id)}" if self.import_id else "imported")
        if self.reason:
            parts.append(self.reason)
        if self.replace_paths:
            parts.append("forced by " + ", ".join(code(p) for p in self.replace_paths))
        return "; ".join(parts)


@dataclass(frozen=True)
class Drift:
    """A resource_drift entry: an object that changed outside Terraform since the last apply."""

    address: str
    action: str  # "changed", "deleted", or Terraform's actions joined by "/"
    relevant: bool  # it fed a planned change (relevant_attributes) or is itself being changed

    def label(self) -> str:
        return code(self.address) + ("" if self.action == "changed" else f" ({self.action})")


@dataclass(frozen=True)
class FailedCondition:
    """A precondition, postcondition, check block or variable validation that did not pass."""

    what: str  # "check block", "resource condition", "precondition", ...
    address: str
    status: str  # "fail": evaluated to false; "error": the condition could not be evaluated
    messages: tuple[str, ...] = ()


@dataclass
class PlanSummary:
    changes: list[ResourceChange] = field(default_factory=list)
    output_changes: list[str] = field(default_factory=list)
    drift: list[Drift] = field(default_factory=list)
    failed_conditions: list[FailedCondition] = field(default_factory=list)
    unknown_conditions: int = 0
    errored: bool = False
    complete: bool = True
    listed_resources: int = 0  # resource_changes entries, no-ops included

    def count(self, category: str) -> int:
        return sum(category in c.categories for c in self.changes)

    @property
    def destructive(self) -> list[ResourceChange]:
        return [c for c in self.changes if c.primary in ("destroy", "replace")]

    @property
    def refresh_only(self) -> bool:
        """Drift but no resource_changes at all: a refresh-only plan. Terraform never plans
        resource changes in that mode, while any other plan lists every resource instance,
        no-ops included (terraform/internal/terraform/context_plan.go, refreshOnlyPlan)."""
        return bool(self.drift) and not self.listed_resources

    @property
    def drifted(self) -> list[Drift]:
        """Outside changes named on top: all of them in a refresh-only plan; in another plan
        the ones relevant to a planned change (none when nothing changes, like Terraform's UI)."""
        if self.refresh_only:
            return list(self.drift)
        return [d for d in self.drift if d.relevant and self.changes]

    @property
    def other_drift(self) -> list[Drift]:
        named = self.drifted
        return [d for d in self.drift if d not in named]


def categorize(actions: list[str], importing: bool, moved: bool) -> tuple[str, ...]:
    """Map Terraform's change.actions (+ import/move flags) to comment categories."""
    acts = tuple(actions)
    if acts in (("delete", "create"), ("create", "delete")):
        cats = ["replace"]
    elif acts == ("create",):
        cats = ["add"]
    elif acts == ("delete",):
        cats = ["destroy"]
    elif acts == ("update",):
        cats = ["change"]
    elif acts == ("forget",):
        cats = ["forget"]
    elif acts in (("no-op",), ("read",), ()):
        cats = []
    else:
        raise InputError(f"unknown change.actions {list(acts)} in the plan JSON")
    if importing:
        cats.append("import")
    if moved:
        cats.append("move")
    return tuple(cats)


def replace_path_str(path: list[Any]) -> str:
    parts: list[str] = []
    for step in path:
        if isinstance(step, int):
            parts.append(f"[{step}]")
        else:
            parts.append(("." if parts else "") + str(step))
    return "".join(parts)


def parse_plan(plan: dict[str, Any]) -> PlanSummary:
    if not isinstance(plan, dict) or "format_version" not in plan:
        raise InputError(
            "the plan JSON is not `terraform show -json PLANFILE` output (no format_version); "
            "produce it with `terraform show -json build/terraform.tfplan > build/plan.json`"
        )
    summary = PlanSummary(
        errored=bool(plan.get("errored")), complete=plan.get("complete") is not False
    )
    summary.listed_resources = len(plan.get("resource_changes") or [])
    for rc in plan.get("resource_changes") or []:
        if rc.get("mode") == "data":
            continue  # data sources are read, never changed
        change = rc.get("change") or {}
        importing = change.get("importing")
        prev = rc.get("previous_address")
        moved = bool(prev) and prev != rc.get("address")
        cats = categorize(change.get("actions") or [], importing is not None, moved)
        if not cats:
            continue
        summary.changes.append(
            ResourceChange(
                address=rc.get("address", "?"),
                categories=cats,
                resource_type=str(rc.get("type") or address_type(rc.get("address", "?"))),
                previous_address=prev if moved else None,
                import_id=(importing or {}).get("id", "") if importing is not None else None,
                reason=REASONS.get(rc.get("action_reason", "")),
                replace_paths=tuple(replace_path_str(p) for p in change.get("replace_paths") or []),
            )
        )
    for name, oc in sorted((plan.get("output_changes") or {}).items()):
        if (oc.get("actions") or ["no-op"]) != ["no-op"]:
            summary.output_changes.append(name)
    # Outside changes that fed a planned change (relevant_attributes, which Terraform's own UI
    # filters by) or hit an object that is being changed anyway are named on top; the rest
    # (often attributes a provider normalised on refresh) is counted and listed collapsed.
    # With nothing planned, all drift is named: it is what a drift check is looking for.
    relevant = {ra.get("resource") for ra in plan.get("relevant_attributes") or []}
    relevant |= {c.address for c in summary.changes}
    for rd in plan.get("resource_drift") or []:
        actions = (rd.get("change") or {}).get("actions") or ["no-op"]
        if actions == ["no-op"]:
            continue  # moved without other changes: the move shows in the planned changes
        address = str(rd.get("address", "?"))
        action = {("update",): "changed", ("delete",): "deleted"}.get(
            tuple(actions), "/".join(map(str, actions))
        )
        summary.drift.append(Drift(address, action, address in relevant))
    summary.drift.sort(key=lambda d: address_key(d.address))
    parse_conditions(plan, summary)
    rank = {c: i for i, c in enumerate(CATEGORY_ORDER)}
    summary.changes.sort(key=lambda c: (rank[c.primary], c.resource_type, address_key(c.address)))
    return summary


CHECK_KINDS = {
    "resource": "resource condition",
    "output_value": "output precondition",
    "check": "check block",
    "var": "variable validation",
}
CONDITION_TYPES = {  # Terraform 1.2's condition_results
    "ResourcePrecondition": "precondition",
    "ResourcePostcondition": "postcondition",
    "OutputPrecondition": "output precondition",
}


def parse_conditions(plan: dict[str, Any], summary: PlanSummary) -> None:
    """Failed conditions from "checks" (Terraform 1.3+), else from 1.2's "condition_results".

    Checks Representation (json-format): list the instances; an object without instances
    stands for itself (an error kept Terraform from expanding it). "unknown" means the
    condition is decided only during apply, which is not a failure.
    """
    failed = summary.failed_conditions
    if "checks" in plan:
        for static in plan.get("checks") or []:
            addr = static.get("address") or {}
            what = CHECK_KINDS.get(addr.get("kind"), str(addr.get("kind") or "check"))
            display = str(addr.get("to_display") or addr.get("name") or "?")
            instances = static.get("instances") or [{"status": static.get("status")}]
            for inst in instances:
                status = inst.get("status")
                where = str((inst.get("address") or {}).get("to_display") or display)
                if status in ("fail", "error"):
                    messages = tuple(str(p.get("message", "")) for p in inst.get("problems") or [])
                    failed.append(FailedCondition(what, where, status, messages))
                elif status == "unknown":
                    summary.unknown_conditions += 1
        return
    for cr in plan.get("condition_results") or []:
        kind = str(cr.get("condition_type") or "condition")
        if cr.get("unknown"):
            summary.unknown_conditions += 1
        elif cr.get("result") is False:
            message = cr.get("error_message")
            failed.append(
                FailedCondition(
                    CONDITION_TYPES.get(kind, kind),
                    str(cr.get("address", "?")),
                    "fail",
                    (str(message),) if message else (),
                )
            )


# --------------------------------------------------------------------- other inputs


@dataclass
class CheckovResult:
    passed: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    skipped: int = 0
    parsing_errors: int = 0


def parse_checkov(data: Any) -> CheckovResult:
    """Read checkov -o json: one report, a list of reports, or the summary-only object."""
    reports = data if isinstance(data, list) else [data]
    result = CheckovResult()
    for report in reports:
        if not isinstance(report, dict):
            raise InputError(
                "checkov JSON must be an object or a list of objects (run checkov -o json)"
            )
        if "results" not in report:  # no resources scanned: checkov prints only the summary
            result.passed += int(report.get("passed", 0))
            result.parsing_errors += int(report.get("parsing_errors", 0))
            continue
        results = report.get("results") or {}
        result.passed += len(results.get("passed_checks") or [])
        result.skipped += len(results.get("skipped_checks") or [])
        result.parsing_errors += int((report.get("summary") or {}).get("parsing_errors", 0))
        for check in results.get("failed_checks") or []:
            result.failed.append(
                {
                    "check_id": str(check.get("check_id", "?")),
                    "check_name": str(check.get("check_name") or ""),
                    "resource": str(check.get("resource", "?")),
                    "file": str(check.get("file_path") or check.get("file") or ""),
                    "guideline": str(check.get("guideline") or ""),
                }
            )
    return result


@dataclass
class TestResults:
    total: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (name, first message line)
    errors: int = 0
    skipped: int = 0

    @property
    def passed(self) -> int:
        return self.total - len(self.failed) - self.skipped


def parse_junit(xml_text: str) -> TestResults:
    try:
        # Our own pytest run wrote this file; expat guards against entity expansion.
        root = ET.fromstring(xml_text)  # noqa: S314
    except ET.ParseError as err:
        raise InputError(
            f"tests JUnit XML is not valid XML ({err}); produce it with pytest --junitxml=FILE"
        ) from None
    if root.tag not in ("testsuites", "testsuite"):
        raise InputError(
            f"tests JUnit XML root is <{root.tag}>, expected <testsuites> or <testsuite>"
        )
    results = TestResults()
    for case in root.iter("testcase"):
        results.total += 1
        name = "::".join(x for x in (case.get("classname"), case.get("name")) if x)
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
            if problem is not None:
                results.errors += 1
        if problem is not None:
            message = (problem.get("message") or problem.text or "").strip().splitlines()
            results.failed.append((name, message[0][:200] if message else ""))
        elif case.find("skipped") is not None:
            results.skipped += 1
    return results


# --------------------------------------------------------------------------- render


def clean_plan_text(text: str) -> tuple[list[str], int]:
    """Strip ANSI colour and refresh chatter. Returns (lines, number of dropped lines)."""
    lines = ANSI_RE.sub("", text).replace("\r\n", "\n").split("\n")
    kept = [line for line in lines if not REFRESH_RE.match(line)]
    dropped = len(lines) - len(kept)
    while kept and not kept[0].strip():
        kept.pop(0)
    while kept and not kept[-1].strip():
        kept.pop()
    return kept, dropped


def fence_for(text: str, char: str = "`") -> str:
    """A fence of ``char`` longer than any run of ``char`` inside ``text`` (so it cannot close)."""
    longest = max((len(m) for m in re.findall(re.escape(char) + "+", text)), default=0)
    return char * max(3, longest + 1)


def code(text: str) -> str:
    """Inline code safe inside a Markdown table cell, whatever ``text`` holds.

    Plan values (resource keys, ids, paths) are attacker-chosen in a pull request: inside a code
    span nothing is Markdown or HTML and @mentions do not ping, as long as the span cannot be
    closed early. CommonMark: a span opened by N backticks closes only at a run of exactly N, so
    use one more than the longest run inside; pad with spaces when the text touches a backtick.
    """
    text = text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if text.startswith(("`", " ")) or text.endswith(("`", " ")) else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#!|~])")


def prose(value: str) -> str:
    """Plain prose from an input (check names, test messages) that renders as typed, one line.

    HTML (``<!--`` would hide the rest of the comment) becomes entities, Markdown punctuation is
    backslash-escaped, and a word joiner after ``@``/``#`` stops mentions and issue references.
    """
    value = " ".join(value.split())
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    value = MARKDOWN_SPECIAL.sub(r"\\\1", value)
    return value.replace("@", "@\u2060").replace("#", "#\u2060")


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def extract_errors(text: str, max_lines: int = 60, max_chars: int = 20_000) -> str:
    """The `Error:` blocks of a failed terraform run, box-drawing removed, each bounded."""
    blocks: list[list[str]] = []
    current: list[str] | None = None
    for raw in ANSI_RE.sub("", text).splitlines():
        if raw.startswith("╵"):  # end of a coloured diagnostic box
            current = None
            continue
        line = re.sub(r"^[│╷]\s?", "", raw)
        if line.startswith("Error:"):
            current = [line]
            blocks.append(current)
        elif current is not None:
            if line.startswith(("Warning:", "Plan:")):
                current = None
            elif len(current) < max_lines:
                current.append(line)
            elif len(current) == max_lines:
                current.append("…")
    joined = "\n\n".join("\n".join(b).strip() for b in blocks)
    if len(joined) > max_chars:
        joined = joined[:max_chars].rsplit("\n", 1)[0] + "\n…"
    return joined


def counts_line(summary: PlanSummary) -> str:
    names = {
        "add": "to add",
        "change": "to change",
        "destroy": "to destroy",
        "replace": "to replace",
        "import": "to import",
        "move": "to move",
    }
    text = ", ".join(f"**{summary.count(cat)}** {label}" for cat, label in names.items())
    forget = summary.count("forget")
    if forget:
        text += f", **{forget}** to forget"
    return text


def warnings_section(summary: PlanSummary) -> str:
    destroyed = [c for c in summary.destructive if c.primary == "destroy"]
    replaced = [c for c in summary.destructive if c.primary == "replace"]
    if not destroyed and not replaced:
        return ""
    out = ["> [!CAUTION]"]
    if destroyed:
        out.append(f"> **{len(destroyed)} resource(s) will be destroyed:**")
        out += [
            f"> - {code(c.address)}" + (f" — {c.note()}" if c.note() else "") for c in destroyed
        ]
    if replaced:
        if destroyed:
            out.append(">")
        out.append(
            f"> **{len(replaced)} resource(s) will be replaced (destroyed and re-created):**"
        )
        out += [f"> - {code(c.address)}" + (f" — {c.note()}" if c.note() else "") for c in replaced]
    return "\n".join(out)


# A plan up to this many changed resources is one flat table; a bigger one is grouped.
FLAT_TABLE_MAX_ROWS = 30
# In a grouped listing, an action with up to this many rows is open; a longer one is collapsed.
OPEN_GROUP_MAX_ROWS = 10
# Failed conditions and drifted objects are named on top, up to this many each.
HEAD_LIST_MAX = 50

ROW_HEADER = ["| Action | Resource | Note |", "| --- | --- | --- |"]


def _row(c: ResourceChange) -> str:
    action = " + ".join(ACTION_LABEL[cat] for cat in c.categories)
    return f"| {action} | {code(c.address)} | {c.note()} |"


def group_changes(changes: list[ResourceChange]) -> list[tuple[str, str, list[ResourceChange]]]:
    """(primary action, resource type, rows) in the order of ``changes`` (parse_plan's)."""
    groups: dict[tuple[str, str], list[ResourceChange]] = {}
    for c in changes:
        groups.setdefault((c.primary, c.resource_type), []).append(c)
    return [(cat, rtype, rows) for (cat, rtype), rows in groups.items()]


def resources_section(changes: list[ResourceChange], limit: int | None = None) -> str:
    """The changed resources; ``limit`` caps the rows listed (the counts stay whole).

    Up to FLAT_TABLE_MAX_ROWS: one table. Bigger plans: a count per action and resource type,
    then one block per action listing its rows by type and natural address, collapsed when
    longer than OPEN_GROUP_MAX_ROWS (destroy/replace are also named in the warnings on top).
    """
    out = ["#### Changed resources", ""]
    left = len(changes) if limit is None else limit
    listed = 0
    if len(changes) <= FLAT_TABLE_MAX_ROWS:
        rows = changes[:left]
        out += ROW_HEADER + [_row(c) for c in rows]
        listed = len(rows)
    else:
        groups = group_changes(changes)
        out += ["| Action | Resource type | Count |", "| --- | --- | --- |"]
        out += [
            f"| {ACTION_LABEL[cat]} | {code(rtype)} | {len(rows)} |" for cat, rtype, rows in groups
        ]
        by_action: dict[str, list[ResourceChange]] = {}
        for c in changes:
            by_action.setdefault(c.primary, []).append(c)
        for cat, rows in by_action.items():
            shown = rows[:left]
            if not shown:
                break
            left -= len(shown)
            listed += len(shown)
            types = len({c.resource_type for c in rows})
            title = f"{ACTION_LABEL[cat]}: {len(rows)} resource(s) of {types} type(s)"
            if len(shown) < len(rows):
                title += f", first {len(shown)} listed"
            opener = "<details open>" if len(rows) <= OPEN_GROUP_MAX_ROWS else "<details>"
            out += ["", f"{opener}<summary>{title}</summary>", "", *ROW_HEADER]
            out += [_row(c) for c in shown]
            out += ["", "</details>"]
    if listed < len(changes):
        out.append("")
        out.append(f"_{len(changes) - listed} more row(s) cut to fit GitHub's comment size limit._")
    return "\n".join(out)


def _bounded(items: list[str], limit: int = HEAD_LIST_MAX) -> list[str]:
    more = len(items) - limit
    return items[:limit] + ([f"… and {more} more"] if more > 0 else [])


def _clip(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def conditions_section(summary: PlanSummary) -> str:
    """Failed preconditions, postconditions, check blocks and validations (bounded)."""
    failed = summary.failed_conditions
    if not failed:
        return ""
    out = [
        "#### Failed conditions",
        "",
        f"❌ **{len(failed)} condition(s) did not pass.**"
        + (
            f" {summary.unknown_conditions} more can only be evaluated during apply."
            if summary.unknown_conditions
            else ""
        ),
        "",
    ]
    items = []
    for f in failed:
        line = f"{f.what} {code(f.address)}"
        if f.status == "error":
            line += " could not be evaluated (see the error)"
        if f.messages:
            line += " — " + "; ".join(prose(_clip(m)) for m in f.messages)
        items.append(line)
    out += [f"- {item}" for item in _bounded(items)]
    return "\n".join(out)


def drift_section(summary: PlanSummary) -> str:
    """Objects changed outside Terraform: the ones that matter named, the rest collapsed."""
    named, others = summary.drifted, summary.other_drift
    out = []
    if named:
        shown = named[:20]
        more = f" and {len(named) - 20} more" if len(named) > 20 else ""
        line = (
            f"ℹ️ {len(named)} object(s) changed outside Terraform since the last apply: "
            + ", ".join(d.label() for d in shown)
            + more
        )
        if summary.refresh_only:
            line += (
                ". This is a refresh-only plan: applying it records these values in the state "
                "and changes no infrastructure."
            )
        out.append(line)
    if others:
        if summary.changes:
            title = (
                f"ℹ️ {len(others)} other object(s) changed outside Terraform without affecting "
                "this plan"
            )
        else:
            title = (
                f"ℹ️ {len(others)} object(s) read back differently from the last apply (changed "
                "outside Terraform, or filled in by the provider); the configuration does not "
                "depend on the difference, so nothing is planned"
            )
        items = [f"- {d.label()}" for d in others]
        out.append(
            f"<details><summary>{title}</summary>\n\n"
            + "\n".join(_bounded(items))
            + "\n\n</details>"
        )
    return "\n\n".join(out)


def error_block(text: str | None) -> str:
    errors = extract_errors(text or "")
    if not errors:
        return ""
    fence = fence_for(errors)
    return f"{fence}text\n{errors}\n{fence}"


def checkov_section(result: CheckovResult, limit: int | None = None) -> str:
    if not result.failed:
        extra = f", {result.skipped} skipped with a reason" if result.skipped else ""
        text = f"#### Policy (checkov)\n\n✅ {result.passed} checks passed{extra}, none failed."
        if result.parsing_errors:
            text += f" ⚠️ {result.parsing_errors} file(s) could not be parsed."
        return text
    rows = result.failed if limit is None else result.failed[:limit]
    out = [
        "#### Policy (checkov)",
        "",
        f"❌ **{len(result.failed)} failed**, {result.passed} passed, {result.skipped} skipped.",
        "",
        "| Check | Resource | File |",
        "| --- | --- | --- |",
    ]
    for f in rows:
        check = code(f["check_id"]) + (f" {prose(f['check_name'])}" if f["check_name"] else "")
        out.append(f"| {check} | {code(f['resource'])} | {code(f['file']) if f['file'] else ''} |")
    if limit is not None and limit < len(result.failed):
        out += ["", f"_{len(result.failed) - limit} more failure(s) cut to fit; see the run._"]
    return "\n".join(out)


def tests_section(results: TestResults, limit: int | None = None) -> str:
    head = "#### Tests"
    if not results.failed:
        skipped = f", {results.skipped} skipped" if results.skipped else ""
        return f"{head}\n\n✅ {results.passed} passed{skipped} ({results.total} total)."
    out = [
        head,
        "",
        f"❌ **{len(results.failed)} failed**, {results.passed} passed, "
        f"{results.skipped} skipped ({results.total} total).",
        "",
    ]
    rows = results.failed if limit is None else results.failed[:limit]
    out += [f"- {code(name)}" + (f" — {prose(msg)}" if msg else "") for name, msg in rows]
    if limit is not None and limit < len(results.failed):
        out += [
            "",
            f"_{len(results.failed) - limit} more failing test(s) cut to fit; see the run._",
        ]
    return "\n".join(out)


def details_block(title: str, lines: list[str]) -> str:
    body = "\n".join(lines)
    fence = fence_for(body)
    return f"<details><summary>{title}</summary>\n\n{fence}hcl\n{body}\n{fence}\n\n</details>"


def where_full_plan(run_url: str | None) -> str:
    if run_url:
        return f"the [job summary of this run]({run_url})"
    return "the job summary of the workflow run"


@dataclass
class Inputs:
    plan: dict[str, Any] | None  # None: the plan failed (no JSON)
    plan_text: str | None = None
    checkov: CheckovResult | None = None
    tests: TestResults | None = None
    run_url: str | None = None
    release_preview: str | None = None  # release_preview.render(): what merging releases
    review_digest: str | None = None  # plan-review record's digest: what a merge may apply


def review_sections(inputs: Inputs) -> list[str]:
    """The digest of the reviewed plan and the release preview (both bounded in size)."""
    out = []
    if inputs.review_digest:
        out.append(
            f"🔏 Reviewed plan {code(inputs.review_digest)}: kept with this run (artifact "
            "`reviewed-plan`); on merge, the deploy plans again and applies only if its changes "
            "are these."
        )
    if inputs.release_preview:
        out.append(inputs.release_preview)
    return out


def render(inputs: Inputs, budget: int = DEFAULT_BUDGET) -> str:
    """Build the comment. Cuts, in order: plan text, resource rows, check lists."""
    checkov = inputs.checkov
    tests = inputs.tests
    run_link = f"\n\n[Workflow run]({inputs.run_url})" if inputs.run_url else ""

    if inputs.plan is None:
        return _render_failed(inputs, budget, None)
    summary = parse_plan(inputs.plan)
    if summary.errored and not summary.changes:
        return _render_failed(inputs, budget, summary)

    head = [MARKER]
    incomplete = (
        "ℹ️ This plan is incomplete: Terraform deferred some changes, so plan again after "
        "applying it."
    )
    if not summary.changes and not summary.output_changes:
        if summary.failed_conditions:
            head.append("⚠️ **Terraform plan: no changes.** Some conditions did not pass.")
        elif summary.refresh_only:
            head.append(
                "ℹ️ **Terraform plan: no changes.** Objects changed outside Terraform (below); "
                "nothing is planned to undo them."
            )
        else:
            head.append(
                "✅ **Terraform plan: no changes.** The infrastructure matches the configuration."
            )
        if not summary.complete:
            head.append(incomplete)
        head += review_sections(inputs)
        head += [s for s in (conditions_section(summary), drift_section(summary)) if s]
        return _fit_extras(head, checkov, tests, budget, suffix=run_link)

    if summary.errored:
        head.append(
            "❌ **Terraform plan errored.** Terraform planned the changes below and then stopped "
            "with an error: this plan cannot be applied, and it may be missing changes that "
            "come after the error. Fix the error and push again."
        )
    destructive = bool(summary.destructive)
    icon = "⚠️" if destructive else "📝"
    if summary.changes:
        verdict = (
            f"{icon} **Terraform plan: {len(summary.changes)} resource(s) change** — "
            f"{counts_line(summary)}."
        )
    else:
        verdict = "📝 **Terraform plan: only output values change.**"
    head.append(verdict)
    if not summary.complete and not summary.errored:
        head.append(incomplete)
    warning = warnings_section(summary)
    if warning:
        head.append(warning)
    if not summary.errored:
        head += review_sections(inputs)
    if summary.errored:
        head.append(error_block(inputs.plan_text) or _no_error_text(inputs))
    conditions = conditions_section(summary)
    if conditions:
        head.append(conditions)
    if summary.output_changes:
        head.append("Outputs changing: " + ", ".join(code(n) for n in summary.output_changes))
    drift = drift_section(summary)
    if drift:
        head.append(drift)

    text_lines, dropped = clean_plan_text(inputs.plan_text) if inputs.plan_text else ([], 0)
    cut_notes: list[str] = []

    def assemble(table_limit: int | None, text_limit: int | None, check_limit: int | None) -> str:
        parts = list(head)
        parts += _extras(checkov, tests, check_limit, check_limit)
        if summary.changes:
            parts.append(resources_section(summary.changes, table_limit))
        if text_lines and text_limit != 0:
            shown = text_lines if text_limit is None else text_lines[:text_limit]
            title = (
                "Full plan output"
                if text_limit is None
                else f"Plan output (first {len(shown)} of {len(text_lines)} lines)"
            )
            if dropped:
                title += f", {dropped} refresh line(s) omitted"
            parts.append(details_block(title, shown))
        notes = list(cut_notes)
        if notes:
            parts.append("> [!NOTE]\n> " + "\n> ".join(notes))
        return "\n\n".join(parts) + run_link

    body = assemble(None, None, None)
    if utf16_len(body) <= budget:
        return body

    # 1. Cut the plan text (binary search for the most lines that fit).
    if text_lines:
        cut_notes.append(
            f"The plan output was cut to fit GitHub's {GITHUB_BODY_LIMIT:,}-character "
            "comment limit; "
            f"the full plan is in {where_full_plan(inputs.run_url)}."
        )
        best = _largest_fitting(
            len(text_lines), lambda n: assemble(None, n, None), budget, minimum=1
        )
        if best is not None:
            return assemble(None, best, None)
        cut_notes[-1] = (
            f"The plan output was left out to fit GitHub's {GITHUB_BODY_LIMIT:,}-character "
            "comment limit; "
            f"the full plan is in {where_full_plan(inputs.run_url)}."
        )
        body = assemble(None, 0, None)
        if utf16_len(body) <= budget:
            return body

    # 2. Cut the resource table.
    best = _largest_fitting(len(summary.changes), lambda n: assemble(n, 0, None), budget, minimum=0)
    if best is not None:
        return assemble(best, 0, None)

    # 3. Shorten check lists; warnings and counts stay whole.
    best = _largest_fitting(
        max(len(checkov.failed) if checkov else 0, len(tests.failed) if tests else 0),
        lambda n: assemble(0, 0, n),
        budget,
        minimum=0,
    )
    if best is not None:
        return assemble(0, 0, best)
    return _emergency_cut(assemble(0, 0, 0), inputs.run_url, budget)


def _extras(
    checkov: CheckovResult | None,
    tests: TestResults | None,
    check_limit: int | None,
    test_limit: int | None,
) -> list[str]:
    out = []
    if checkov is not None:
        out.append(checkov_section(checkov, check_limit))
    if tests is not None:
        out.append(tests_section(tests, test_limit))
    return out


def _fit_extras(
    head: list[str],
    checkov: CheckovResult | None,
    tests: TestResults | None,
    budget: int,
    suffix: str,
) -> str:
    def assemble(limit: int | None) -> str:
        return "\n\n".join(head + _extras(checkov, tests, limit, limit)) + suffix

    body = assemble(None)
    if utf16_len(body) <= budget:
        return body
    size = max(len(checkov.failed) if checkov else 0, len(tests.failed) if tests else 0)
    best = _largest_fitting(size, assemble, budget, minimum=0)
    return assemble(best) if best is not None else _emergency_cut(assemble(0), None, budget)


def _largest_fitting(upper: int, build, budget: int, minimum: int) -> int | None:
    """Largest n in [minimum, upper] whose build(n) fits the budget (size grows with n)."""
    if upper < minimum or utf16_len(build(minimum)) > budget:
        return None
    lo, hi = minimum, upper
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if utf16_len(build(mid)) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _emergency_cut(body: str, run_url: str | None, budget: int) -> str:
    """Only reachable with tens of thousands of destroyed resources: hard cut, said loudly."""
    note = (
        f"\n\n> [!WARNING]\n> This comment was cut at GitHub's size limit; the full list of "
        f"destroyed/replaced resources is in {where_full_plan(run_url)}."
    )
    keep = budget - utf16_len(note)
    while utf16_len(body) > keep:
        body = body[: max(0, len(body) - max(1, (utf16_len(body) - keep)))]
    body = body[: body.rfind("\n")] if "\n" in body else body
    return body + note


def _no_error_text(inputs: Inputs) -> str:
    """What to say about an errored plan JSON whose plan text names no `Error:`."""
    # The job summary holds the plan text when there is one, so point at the step's log.
    run = f"[the workflow run]({inputs.run_url})" if inputs.run_url else "the workflow run"
    if (inputs.plan_text or "").strip():
        return (
            "The plan output below names no `Error:`; the error is in the log of the plan "
            f"step of {run}."
        )
    return (
        "No plan output came with the plan JSON; the error is in the log of the plan step "
        f"of {run}."
    )


def _render_failed(inputs: Inputs, budget: int, summary: PlanSummary | None) -> str:
    """A plan that produced no JSON (``summary`` None), or a JSON that says it errored."""
    text = inputs.plan_text or ""
    parts = [MARKER]
    if summary is None:
        parts.append(
            "❌ **Terraform plan failed.** Nothing was planned; fix the error below and push again."
        )
    else:
        parts.append(
            "❌ **Terraform plan failed.** Planning ran and stopped with an error (the plan "
            "JSON is marked `errored`), so there is nothing to apply; fix the error below and "
            "push again."
        )
    errors = error_block(text)
    if errors:
        parts.append(errors)
    elif summary is not None:
        parts.append(_no_error_text(inputs))
    elif text.strip():
        parts.append("The plan output names no `Error:`; see the output below.")
    else:
        parts.append(
            "No plan JSON and no plan output were produced — terraform did not get as far "
            "as planning "
            f"(check the init step in {where_full_plan(inputs.run_url)})."
        )
    if summary is not None:
        parts += [s for s in (conditions_section(summary), drift_section(summary)) if s]
    parts += _extras(inputs.checkov, inputs.tests, None, None)
    lines, dropped = clean_plan_text(text) if text.strip() else ([], 0)
    run_link = f"\n\n[Workflow run]({inputs.run_url})" if inputs.run_url else ""
    body = "\n\n".join(parts + ([details_block("Plan output", lines)] if lines else [])) + run_link
    if utf16_len(body) <= budget:
        return body
    note = (
        "> [!NOTE]\n> Plan output cut to fit GitHub's comment size limit; the full output is in "
        f"{where_full_plan(inputs.run_url)}."
    )
    best = _largest_fitting(
        len(lines),
        lambda n: (
            "\n\n".join(parts + [details_block(f"Plan output (first {n} lines)", lines[:n]), note])
            + run_link
        ),
        budget,
        minimum=1,
    )
    if best is not None:
        return (
            "\n\n".join(
                parts + [details_block(f"Plan output (first {best} lines)", lines[:best]), note]
            )
            + run_link
        )
    return _emergency_cut("\n\n".join(parts) + run_link, inputs.run_url, budget)


# ------------------------------------------------------------------------------ CLI


def _read_optional(path: str | None, what: str) -> str | None:
    if path is None:
        return None
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{what} file {path} does not exist")
    return p.read_text(encoding="utf-8", errors="replace")


def load_inputs(args: argparse.Namespace) -> Inputs:
    plan: dict[str, Any] | None = None
    raw = Path(args.plan_json).read_text(encoding="utf-8") if Path(args.plan_json).is_file() else ""
    if raw.strip():
        try:
            plan = json.loads(raw)
        except ValueError as err:
            raise InputError(
                f"--plan-json {args.plan_json} is not valid JSON ({err}); "
                "write it with `terraform show -json PLANFILE > FILE`"
            ) from None
    # A missing/empty plan JSON is how a failed plan arrives: render the error text.
    # The text file may be missing too when terraform died early; that is rendered, not rejected.
    plan_text = None
    if args.plan_text and Path(args.plan_text).is_file():
        plan_text = Path(args.plan_text).read_text(encoding="utf-8", errors="replace")
    if plan is None and args.plan_text is None:
        raise InputError(
            f"--plan-json {args.plan_json} is missing or empty and no --plan-text was given; "
            "pass the plan output so a failed plan can be shown"
        )
    checkov = None
    if args.checkov_json:
        raw_checkov = _read_optional(args.checkov_json, "--checkov-json") or ""
        try:
            checkov = parse_checkov(json.loads(raw_checkov)) if raw_checkov.strip() else None
        except ValueError as err:
            raise InputError(
                f"--checkov-json {args.checkov_json} is not valid JSON ({err}); run checkov -o json"
            ) from None
    tests = None
    if args.tests_junit:
        tests = parse_junit(_read_optional(args.tests_junit, "--tests-junit") or "")
    preview = review_digest = None
    if plan is not None and not plan.get("errored"):
        manifest = None
        if args.manifest:
            try:
                manifest = json.loads(_read_optional(args.manifest, "--manifest") or "")
            except ValueError as err:
                raise InputError(
                    f"--manifest {args.manifest} is not valid JSON ({err}); "
                    "write it with `release-tooling package`"
                ) from None
        if manifest is not None or args.read_aliases:
            reader = release_preview.read_alias_versions() if args.read_aliases else None
            preview = release_preview.render(release_preview.build(plan, manifest, reader))
        if args.plan_review:
            raw_review = _read_optional(args.plan_review, "--plan-review") or ""
            try:
                reviewed = plan_review.load_record(raw_review, f"--plan-review {args.plan_review}")
            except plan_review.InputError as err:
                raise InputError(str(err)) from None
            review_digest = reviewed["digest"]
            # A record left over from another plan must not put its digest under this one.
            if plan_review.record(plan, reviewed["salt"])["digest"] != review_digest:
                raise InputError(
                    f"--plan-review {args.plan_review} records another plan than "
                    f"--plan-json {args.plan_json}; run `make plan-review-record` after "
                    "`make plan`, or delete it"
                )
    # No spaces, brackets or parentheses: the URL goes into [text](url) unescaped.
    if args.run_url and not re.fullmatch(r"https?://[^\s()<>\[\]`]+", args.run_url):
        raise InputError(f"--run-url must be an http(s) URL, got {args.run_url!r}")
    return Inputs(
        plan=plan,
        plan_text=plan_text,
        checkov=checkov,
        tests=tests,
        run_url=args.run_url,
        release_preview=preview,
        review_digest=review_digest,
    )


def write_step_summary(body: str, env: dict[str, str]) -> bool:
    path = env.get("GITHUB_STEP_SUMMARY")
    if not path:
        return False
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(body.rstrip("\n") + "\n")
    return True


def cmd_post(
    args: argparse.Namespace, env: dict[str, str], client: github_api.GitHubClient | None = None
) -> int:
    body = _read_body(args.body_file)
    client = client or github_api.GitHubClient.from_env(env)
    try:
        action, comment = client.upsert_comment(args.pr, MARKER, body)
    except github_api.PermissionDenied as err:
        # A fork's pull request gets a read-only token: that is expected, not a failure.
        wrote = write_step_summary(body, env)
        where = "the job summary" if wrote else "nowhere (GITHUB_STEP_SUMMARY is not set)"
        print(
            f"::notice title=Plan comment not posted::The token may not comment on pull request "
            f"#{args.pr} ({err}); this is expected for pull requests from forks. "
            f"The comment was written to {where}."
        )
        return 0
    print(f"Plan comment {action}: {comment.get('html_url', comment.get('id'))}")
    return 0


def cmd_issue(
    args: argparse.Namespace, env: dict[str, str], client: github_api.GitHubClient | None = None
) -> int:
    body = _read_body(args.body_file)
    client = client or github_api.GitHubClient.from_env(env)
    action, issue = client.upsert_issue(
        MARKER, args.title, body, [args.label] if args.label else []
    )
    print(f"Drift issue {action}: {issue.get('html_url', issue.get('number'))}")
    return 0


def _read_body(path: str) -> str:
    p = Path(path)
    if not p.is_file():
        raise InputError(
            f"--body-file {path} does not exist; "
            f"create it with `plan_comment.py render ... > {path}`"
        )
    body = p.read_text(encoding="utf-8")
    if MARKER not in body:
        raise InputError(
            f"--body-file {path} lacks the marker {MARKER}; render it with plan_comment.py render "
            "so the comment can be found and updated next time"
        )
    if utf16_len(body) >= GITHUB_BODY_LIMIT:
        raise InputError(
            f"--body-file {path} is {utf16_len(body):,} characters; "
            f"GitHub accepts fewer than {GITHUB_BODY_LIMIT:,}"
        )
    return body


def summary_block(title: str, path: str, max_bytes: int | None, tail_lines: int | None) -> str:
    """``title`` and the file as a ``~`` fenced block no line of the file can close."""
    p = Path(path)
    if not p.is_file():
        return f"{title}\n\n_{path} was not written; see this job's log._"
    raw = p.read_bytes()
    note = ""
    if tail_lines is not None:
        lines = raw.decode("utf-8", errors="replace").splitlines()
        content = "\n".join(lines[-tail_lines:])
    else:
        content = (
            raw[:max_bytes].decode("utf-8", errors="ignore")
            if max_bytes
            else raw.decode("utf-8", errors="replace")
        )
        if max_bytes and len(raw) > max_bytes:
            note = f"\n_Cut at {max_bytes:,} bytes; the complete output is in this job's log._"
    content = ANSI_RE.sub("", content).rstrip("\n")
    fence = fence_for(content, "~")
    return f"{title}\n{fence}text\n{content}\n{fence}{note}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("render", help="print the comment Markdown to stdout")
    r.add_argument(
        "--plan-json",
        required=True,
        help="terraform show -json output (missing/empty = failed plan)",
    )
    r.add_argument("--plan-text", help="terraform plan/show text output")
    r.add_argument("--checkov-json", help="checkov -o json output")
    r.add_argument("--tests-junit", help="pytest --junitxml output")
    r.add_argument("--run-url", help="workflow run URL, where the job summary holds the full plan")
    r.add_argument("--manifest", help="build/manifest.json: adds the release preview")
    r.add_argument(
        "--read-aliases",
        action="store_true",
        help="read the aliases' current versions from AWS (lambda:GetAlias) for the preview",
    )
    r.add_argument("--plan-review", help="plan-review record: shows the reviewed plan's digest")
    p = sub.add_parser("post", help="create or update the pull request's plan comment")
    p.add_argument("--pr", required=True, type=_positive_int, help="pull request number")
    p.add_argument("--body-file", required=True, help="rendered comment")
    i = sub.add_parser("issue", help="open or update the single drift issue")
    i.add_argument("--body-file", required=True, help="rendered comment")
    i.add_argument("--title", default="Terraform drift detected", help="issue title")
    i.add_argument("--label", default="drift", help="label added when the issue is created")
    s = sub.add_parser("summary", help="print a log file as a fenced block for the job summary")
    s.add_argument("--title", required=True, help="Markdown line above the block")
    s.add_argument("--file", required=True, help="the log or plan text")
    cut = s.add_mutually_exclusive_group()
    # A step summary holds at most 1 MiB.
    cut.add_argument("--max-bytes", type=_count, default=900_000, help="keep the head")
    cut.add_argument("--tail-lines", type=_count, help="keep the last N lines instead")
    return parser


def _count(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {value!r}")
    return int(value)


def _positive_int(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a pull request number, got {value!r}")
    return int(value)


def main(argv: Iterable[str] | None = None, env: dict[str, str] | None = None) -> int:
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    env = dict(os.environ) if env is None else env
    try:
        if args.command == "render":
            sys.stdout.write(render(load_inputs(args)) + "\n")
            return 0
        if args.command == "summary":
            block = summary_block(args.title, args.file, args.max_bytes, args.tail_lines)
            sys.stdout.write(block + "\n")
            return 0
        if args.command == "post":
            return cmd_post(args, env)
        return cmd_issue(args, env)
    except (InputError, github_api.ConfigError) as err:
        print(f"plan_comment.py {args.command}: {err}", file=sys.stderr)
        return 2
    except github_api.GitHubError as err:
        print(f"plan_comment.py {args.command}: GitHub API error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
