#!/usr/bin/env python3
"""Draw state_machine.asl.json as a Mermaid flowchart and keep README.md's copy of it in sync.

  release-tooling diagram                     print the flowchart
  release-tooling diagram --write README.md   replace the diagram between the markers
  release-tooling diagram --check README.md   exit 1 when README.md's diagram is stale

The README block sits between `<!-- pipeline-diagram:start -->` and `<!-- pipeline-diagram:end -->`.
Every state becomes a node whose shape follows its type (Task rectangle, Choice rhombus, Wait
stadium, Pass parallelogram, Succeed circle, Fail double circle, Parallel/Map subgraph). Every
transition becomes an edge: Next, each Choice rule (labelled with its condition), Default, and
Catch (dashed, red, labelled with its ErrorEquals). Retry stays inside its state, so it draws no
edge. The Terraform `${...}` placeholders sit inside JSON strings, so the file parses as it is.

Output is a pure function of the file: states in document order, no timestamps, so the README
only changes when the state machine does.

Exit status: 0 ok; 1 the README diagram is out of date (--check); 2 bad input (unreadable or
invalid state machine, README without markers).

Standard library only.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import asl, project

ROOT = project.ROOT
DEFAULT_ASL = ROOT / "state_machine.asl.json"
START_MARKER = "<!-- pipeline-diagram:start -->"
END_MARKER = "<!-- pipeline-diagram:end -->"
FIX_HINT = "run `make diagram` (release-tooling diagram --write README.md) and commit it"

# Node shapes by state type: (opening, closing) around the quoted label.
SHAPES = {
    "Task": ("[", "]"),
    "Choice": ("{", "}"),
    "Wait": ("([", "])"),
    "Pass": ("[/", "/]"),
    "Succeed": ("((", "))"),
    "Fail": ("(((", ")))"),
}
CLASS_STYLES = {
    "task": "fill:#e8f0fe,stroke:#1a73e8,color:#202124",
    "choice": "fill:#fef7e0,stroke:#f9ab00,color:#202124",
    "wait": "fill:#f3e8fd,stroke:#9334e6,color:#202124",
    "pass": "fill:#f1f3f4,stroke:#5f6368,color:#202124",
    "succeed": "fill:#e6f4ea,stroke:#188038,stroke-width:2px,color:#202124",
    "fail": "fill:#fce8e6,stroke:#d93025,stroke-width:2px,color:#202124",
    "marker": "fill:#ffffff,stroke:#5f6368,color:#202124",
}
FAILURE_LINK_STYLE = "stroke:#d93025,color:#d93025"
# Words Mermaid's flowchart grammar reserves; a state with such a name gets another node id.
RESERVED_IDS = {
    "call",
    "class",
    "classdef",
    "click",
    "default",
    "direction",
    "end",
    "flowchart",
    "flowchart-elk",
    "graph",
    "href",
    "interpolate",
    "linkstyle",
    "style",
    "subgraph",
}
COMPARISON = re.compile(
    r"^(String|Numeric|Boolean|Timestamp)"
    r"(Equals|LessThanEquals|GreaterThanEquals|LessThan|GreaterThan)(Path)?$"
)
OPERATORS = {
    "Equals": "==",
    "LessThan": "<",
    "GreaterThan": ">",
    "LessThanEquals": "<=",
    "GreaterThanEquals": ">=",
}
TYPE_TESTS = {
    "IsNull": ("is null", "is not null"),
    "IsPresent": ("is present", "is absent"),
    "IsNumeric": ("is numeric", "is not numeric"),
    "IsString": ("is a string", "is not a string"),
    "IsBoolean": ("is a boolean", "is not a boolean"),
    "IsTimestamp": ("is a timestamp", "is not a timestamp"),
}


class DiagramError(Exception):
    """The state machine or README cannot be used; the message says what and how to fix it."""


class StaleDiagramError(Exception):
    """The README's diagram differs from the one the state machine gives."""


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str | None
    failure: bool = False


@dataclass
class Graph:
    lines: list[str] = field(default_factory=list)  # node statements and subgraph blocks, in order
    edges: list[Edge] = field(default_factory=list)
    classes: dict[str, list[str]] = field(default_factory=dict)
    used_ids: set[str] = field(default_factory=set)

    def new_id(self, name: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_]", "_", name) or "state"
        if base[0].isdigit():
            base = f"s_{base}"
        if base.lower() in RESERVED_IDS:
            base = f"{base}_state"
        node_id, n = base, 2
        while node_id in self.used_ids:
            node_id, n = f"{base}_{n}", n + 1
        self.used_ids.add(node_id)
        return node_id

    def add_class(self, css_class: str, node_id: str) -> None:
        self.classes.setdefault(css_class, []).append(node_id)


def escape(text: str) -> str:
    """Text safe inside a quoted Mermaid label (entity codes), and free of Jinja/HTML openers."""
    text = " ".join(str(text).split())
    for char, code in (
        ("#", "#35;"),
        ('"', "#quot;"),
        ("<", "#lt;"),
        (">", "#gt;"),
        ("{", "#123;"),
        ("}", "#125;"),
        ("|", "#124;"),
        ("`", "#96;"),
    ):
        text = text.replace(char, code)
    return text


# --- labels ----------------------------------------------------------------------------------


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"'{value}'"
    return json.dumps(value)


def describe_rule(rule: Mapping[str, Any], location: str) -> str:
    """A Choice rule as a readable condition, e.g. `$.smoke.passed == true`."""
    if not isinstance(rule, Mapping):
        raise DiagramError(f"{location}: a Choice rule must be an object, got {rule!r}")
    if "Condition" in rule:  # JSONata query language: the expression is the condition
        return str(rule["Condition"])
    if "And" in rule or "Or" in rule:
        word = "and" if "And" in rule else "or"
        parts = rule["And"] if "And" in rule else rule["Or"]
        if not isinstance(parts, list) or not parts:
            raise DiagramError(f"{location}: {word.title()} needs a non-empty list of rules")
        return f" {word} ".join(
            f"({describe_rule(part, location)})"
            if {"And", "Or"} & set(part)
            else describe_rule(part, location)
            for part in parts
        )
    if "Not" in rule:
        return f"not ({describe_rule(rule['Not'], location)})"
    variable = rule.get("Variable")
    if not isinstance(variable, str):
        raise DiagramError(f"{location}: a Choice rule needs Variable, And, Or, Not or Condition")
    for key, value in rule.items():
        if key in TYPE_TESTS:
            yes, no = TYPE_TESTS[key]
            return f"{variable} {yes if value else no}"
        if key in ("StringMatches",):
            return f"{variable} matches {format_value(value)}"
        match = COMPARISON.match(key)
        if match:
            operator = OPERATORS[match.group(2)]
            shown = str(value) if match.group(3) else format_value(value)
            return f"{variable} {operator} {shown}"
    raise DiagramError(
        f"{location}: no comparison operator found in Choice rule on {variable} "
        f"(keys: {', '.join(sorted(rule))})"
    )


def function_name(parameters: Any) -> str | None:
    if not isinstance(parameters, Mapping):
        return None
    name = parameters.get("FunctionName")
    if not isinstance(name, str):
        return None
    placeholder = asl.PLACEHOLDER.fullmatch(name)
    if placeholder:  # ${deploy_function_arn} -> deploy
        return placeholder.group(1).removesuffix("_arn").removesuffix("_function")
    return name.split(":function:")[-1].split(":")[0]


def duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def task_detail(state: Mapping[str, Any]) -> str:
    resource = str(state.get("Resource", ""))
    parameters = state.get("Parameters", state.get("Arguments"))
    wait_for_token = resource.endswith(".waitForTaskToken")
    if resource.startswith("arn:aws:states:::lambda:invoke"):
        detail = f"λ {function_name(parameters) or 'lambda:invoke'}"
    elif resource.startswith("arn:aws:states:::"):
        detail = resource.removeprefix("arn:aws:states:::")
    elif ":function:" in resource:
        detail = f"λ {resource.split(':function:')[-1].split(':')[0]}"
    elif placeholder := asl.PLACEHOLDER.fullmatch(resource):
        detail = f"λ {placeholder.group(1)}"
    elif ":activity:" in resource:
        detail = f"activity {resource.split(':activity:')[-1]}"
    else:
        detail = resource
    if wait_for_token:
        detail += " · waits for task token"
        if isinstance(state.get("TimeoutSeconds"), int):
            detail += f" (up to {duration(state['TimeoutSeconds'])})"
    return detail


def wait_detail(state: Mapping[str, Any]) -> str:
    if isinstance(state.get("Seconds"), int):
        return f"wait {duration(state['Seconds'])}"
    if "SecondsPath" in state:
        return f"wait {state['SecondsPath']} s"
    if "Timestamp" in state:
        return f"until {state['Timestamp']}"
    if "TimestampPath" in state:
        return f"until {state['TimestampPath']}"
    return "wait"


def node_label(name: str, state: Mapping[str, Any]) -> str:
    kind = state.get("Type")
    if kind == "Task":
        detail = task_detail(state)
    elif kind == "Wait":
        detail = wait_detail(state)
    elif kind == "Fail" and isinstance(state.get("Error"), str):
        detail = state["Error"]
    else:
        detail = ""
    return escape(name) + (f"<br/>{escape(detail)}" if detail else "")


# --- graph -----------------------------------------------------------------------------------


def checked_states(scope: asl.Scope) -> dict[str, asl.State]:
    """The scope's states, or DiagramError when it cannot be drawn."""
    here = scope.label
    if not isinstance(scope.doc, Mapping):
        raise DiagramError(f"{here}: expected an object with StartAt and States")
    states = scope.states
    if not states:
        raise DiagramError(f"{here}: States must be a non-empty object")
    for state in states.values():
        if not isinstance(state.definition, Mapping) or not isinstance(state.type, str):
            raise DiagramError(f"{state.where}: a state must be an object with a Type")
    if scope.start_at not in states:
        raise DiagramError(f"{here}: StartAt {scope.start_at!r} is not one of its States")
    return states


def edge_target(ids: Mapping[str, str], transition: asl.Transition, location: str) -> str:
    """The node id a transition leads to, or DiagramError naming the transition."""
    if transition.target is None:
        needs = {"choice": "every Choice rule needs a Next", "catch": "every Catch needs a Next"}
        raise DiagramError(f"{location}: {needs.get(transition.kind, 'must name a state')}")
    if transition.target not in ids:
        raise DiagramError(f"{location}: {transition.target!r} is not a state of this machine")
    return ids[transition.target]


def add_machine(graph: Graph, scope: asl.Scope, indent: str, prefix: str = "") -> None:
    """Add one machine (the top level, a Parallel branch or a Map processor) to the graph.

    Nested machines get their own start (and end) markers, named after the enclosing state.
    """
    states = checked_states(scope)
    ids = {name: graph.new_id(name) for name in states}
    start = graph.new_id(f"{prefix}_start" if prefix else "START")
    graph.lines.append(f'{indent}{start}>"start"]')
    graph.add_class("marker", start)
    graph.edges.append(Edge(start, ids[str(scope.start_at)], None))
    end_id: str | None = None

    for name, state in states.items():
        node_id, kind, definition = ids[name], state.type, state.definition
        if kind in SHAPES:
            opening, closing = SHAPES[kind]
            graph.lines.append(
                f'{indent}{node_id}{opening}"{node_label(name, definition)}"{closing}'
            )
            graph.add_class(kind.lower(), node_id)
        elif kind in ("Parallel", "Map"):
            graph.lines.append(f'{indent}subgraph {node_id}["{escape(name)}<br/>{kind}"]')
            nested = state.scopes()
            if kind == "Parallel" and not nested:
                raise DiagramError(f"{state.where}: Parallel needs a non-empty Branches list")
            if kind == "Map" and not nested:
                raise DiagramError(f"{state.where}: Map needs an ItemProcessor")
            for number, inner in enumerate(nested, start=1):
                branch = f"{node_id}_branch{number}" if kind == "Parallel" else node_id
                add_machine(graph, inner, indent + "    ", branch)
            graph.lines.append(f"{indent}end")
        else:
            raise DiagramError(f"{state.where}: unknown state Type {kind!r}")

        rules = definition.get("Choices")
        if kind == "Choice" and not (isinstance(rules, list) and rules):
            raise DiagramError(f"{state.where}: a Choice needs a non-empty Choices list")
        ways_out = state.transitions()
        for transition in ways_out:
            if transition.kind == "catch" or (transition.kind == "next" and kind == "Choice"):
                continue  # catches are drawn last; a Choice leaves by its rules and Default
            location = f"{state.where} > {transition.field.removesuffix('.Next')}"
            target = edge_target(ids, transition, location)
            if transition.kind == "choice":
                label = describe_rule(transition.entry, location)
            else:
                label = "default" if transition.kind == "default" else None
            graph.edges.append(Edge(node_id, target, label))
        if kind != "Choice" and "Next" not in definition and definition.get("End") is True:
            if end_id is None:
                end_id = graph.new_id(f"{prefix}_end" if prefix else "END")
                graph.add_class("marker", end_id)
            graph.edges.append(Edge(node_id, end_id, None))
        for transition in ways_out:
            if transition.kind == "catch":
                location = f"{state.where} > {transition.field.removesuffix('.Next')}"
                target = edge_target(ids, transition, location)
                errors = transition.entry.get("ErrorEquals") or []
                label = "catch " + ", ".join(str(error) for error in errors)
                graph.edges.append(Edge(node_id, target, label, True))

    if end_id is not None:
        graph.lines.append(f'{indent}{end_id}>"end"]')


def render(machine: Mapping[str, Any], source_name: str = "state_machine.asl.json") -> str:
    """The Mermaid flowchart for a parsed state machine, ending with a newline."""
    graph = Graph()
    add_machine(graph, asl.top(machine), "    ")
    lines = [
        "flowchart TD",
        f"    %% Generated from {source_name} by release-tooling diagram: edit the state",
        "    %% machine, then run `make diagram`. Dashed red edges are Catch (failure) paths.",
        *graph.lines,
    ]
    failures = []
    for index, edge in enumerate(graph.edges):
        arrow = "-.->" if edge.failure else "-->"
        label = f'|"{escape(edge.label)}"|' if edge.label else ""
        lines.append(f"    {edge.source} {arrow}{label} {edge.target}")
        if edge.failure:
            failures.append(str(index))
    for css_class, style in CLASS_STYLES.items():
        if css_class in graph.classes:
            lines.append(f"    classDef {css_class} {style}")
    for css_class in CLASS_STYLES:
        if css_class in graph.classes:
            lines.append(f"    class {','.join(graph.classes[css_class])} {css_class}")
    if failures:
        lines.append(f"    linkStyle {','.join(failures)} {FAILURE_LINK_STYLE}")
    return "\n".join(lines) + "\n"


def load_asl(path: Path) -> Mapping[str, Any]:
    try:
        machine = asl.load(path)
    except asl.AslError as exc:
        if not exc.lineno:  # unreadable
            raise DiagramError(str(exc)) from None
        raise DiagramError(
            f"{path}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg}); "
            "release-tooling check-asl explains state machine problems"
        ) from None
    if not isinstance(machine, Mapping):
        raise DiagramError(f"{path}: the top level must be a JSON object")
    return machine


# --- README block ----------------------------------------------------------------------------


def block(diagram: str) -> str:
    """What goes between the markers."""
    return f"\n```mermaid\n{diagram}```\n"


def split_readme(text: str, path: Path) -> tuple[str, str, str]:
    """(before and including the start marker, the block, from the end marker on)."""
    starts, ends = text.count(START_MARKER), text.count(END_MARKER)
    if starts != 1 or ends != 1:
        raise DiagramError(
            f"{path}: needs exactly one {START_MARKER} and one {END_MARKER} line "
            f"(found {starts} and {ends}); add them where the pipeline diagram belongs"
        )
    head_end = text.index(START_MARKER) + len(START_MARKER)
    tail_start = text.index(END_MARKER)
    if tail_start < head_end:
        raise DiagramError(f"{path}: {END_MARKER} comes before {START_MARKER}")
    return text[:head_end], text[head_end:tail_start], text[tail_start:]


def read_readme(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DiagramError(f"cannot read {path}: {exc.strerror}") from None


def write_readme(path: Path, diagram: str) -> bool:
    """Replace the README block atomically; False when it was already up to date."""
    text = read_readme(path)
    head, current, tail = split_readme(text, path)
    wanted = block(diagram)
    if current == wanted:
        return False
    # Write a sibling temp file and rename it over the README, so an interrupted run never
    # leaves a half-written file behind.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(head + wanted + tail)
        os.chmod(tmp_name, path.stat().st_mode & 0o7777)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return True


def check_readme(path: Path, diagram: str) -> None:
    _, current, _ = split_readme(read_readme(path), path)
    wanted = block(diagram)
    if current != wanted:
        diff = "".join(
            difflib.unified_diff(
                current.splitlines(keepends=True),
                wanted.splitlines(keepends=True),
                f"{path} (current)",
                f"{path} (from the state machine)",
            )
        )
        raise StaleDiagramError(
            f"{path}: the pipeline diagram differs from the state machine; {FIX_HINT}\n{diff}"
        )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="asl_to_mermaid.py",
        description="Draw the release state machine as a Mermaid flowchart (stdout), or keep the "
        "copy in README.md between the pipeline-diagram markers in sync.",
        epilog="Exit status: 0 ok, 1 README diagram out of date (--check), 2 bad input.",
    )
    parser.add_argument(
        "--asl",
        type=Path,
        default=DEFAULT_ASL,
        help="state machine definition (default: state_machine.asl.json of this repository)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--write", type=Path, metavar="README", help="replace the diagram block in this file"
    )
    mode.add_argument(
        "--check",
        type=Path,
        metavar="README",
        help="exit 1 when this file's diagram block differs from the state machine",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        diagram = render(load_asl(args.asl), args.asl.name)
        if args.write:
            changed = write_readme(args.write, diagram)
            print(
                f"{args.write}: pipeline diagram {'updated' if changed else 'already up to date'}"
            )
        elif args.check:
            check_readme(args.check, diagram)
            print(f"{args.check}: pipeline diagram matches {args.asl.name}")
        else:
            sys.stdout.write(diagram)
    except StaleDiagramError as exc:
        print(exc, file=sys.stderr)
        return 1
    except DiagramError as exc:
        print(f"asl_to_mermaid.py: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
