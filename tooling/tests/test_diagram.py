"""README.md's pipeline diagram is generated from state_machine.asl.json and must agree with it.

The README checks parse the Mermaid text independently of the generator, so a diagram that
drops a state or a transition fails even if the generator and the README agree with each other.
Also here: README.md's table of make targets must list every Makefile target with its
description.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from release_tooling import asl_to_mermaid as diagram
from release_tooling import project as project_paths

ROOT = project_paths.ROOT
ASL_FILE = ROOT / "state_machine.asl.json"
README = ROOT / "README.md"
DIAGRAM = [sys.executable, "-m", "release_tooling", "diagram"]

SHAPE_OF_TYPE = {
    "Task": ("[", "]"),
    "Choice": ("{", "}"),
    "Wait": ("([", "])"),
    "Pass": ("[/", "/]"),
    "Succeed": ("((", "))"),
    "Fail": ("(((", ")))"),
    "Parallel": ("subgraph", "end"),
    "Map": ("subgraph", "end"),
}
NODE = re.compile(
    r'^\s*(?P<id>\w+)(?P<open>\(\(\(|\(\(|\(\[|\[/|\[|\{|>)"(?P<label>[^"]*)"'
    r"(?P<close>\)\)\)|\)\)|\]\)|/\]|\]|\})$"
)
SUBGRAPH = re.compile(r'^\s*subgraph (?P<id>\w+)\["(?P<label>[^"]*)"\]$')
EDGE = re.compile(r'^\s*(?P<src>\w+) (?P<arrow>-->|-\.->)(?:\|"(?P<label>[^"]*)"\|)? (?P<dst>\w+)$')
LINK_STYLE = re.compile(r"^\s*linkStyle (?P<indexes>[\d,]+) (?P<style>\S+)$")
ENTITIES = {"#quot;": '"', "#lt;": "<", "#gt;": ">", "#123;": "{", "#125;": "}", "#124;": "|"}


def unescape(label: str) -> str:
    for code, char in ENTITIES.items():
        label = label.replace(code, char)
    return label.replace("#35;", "#")


class Flowchart:
    """The parts of a Mermaid flowchart these tests need: nodes, edges, link styles."""

    def __init__(self, text: str) -> None:
        lines = text.splitlines()
        assert lines[0] == "flowchart TD", lines[0]
        self.names: dict[str, str] = {}  # node id -> state name
        self.shapes: dict[str, tuple[str, str]] = {}
        self.edges: list[tuple[str, str, str, str | None]] = []  # src, dst, arrow, label
        self.link_styles: list[tuple[set[int], str]] = []
        for line in lines[1:]:
            if match := NODE.match(line):
                name = unescape(match["label"].split("<br/>")[0])
                self.names[match["id"]] = name
                self.shapes[match["id"]] = (match["open"], match["close"])
            elif match := SUBGRAPH.match(line):
                self.names[match["id"]] = unescape(match["label"].split("<br/>")[0])
                self.shapes[match["id"]] = ("subgraph", "end")
            elif match := EDGE.match(line):
                label = unescape(match["label"]) if match["label"] is not None else None
                self.edges.append((match["src"], match["dst"], match["arrow"], label))
            elif match := LINK_STYLE.match(line):
                indexes = {int(index) for index in match["indexes"].split(",")}
                self.link_styles.append((indexes, match["style"]))

    def named_edges(self) -> Counter[tuple[str, str, str, str | None]]:
        return Counter(
            (self.names[src], self.names[dst], arrow, label)
            for src, dst, arrow, label in self.edges
        )

    def shape_of(self, state: str) -> tuple[str, str]:
        (node_id,) = [node_id for node_id, name in self.names.items() if name == state]
        return self.shapes[node_id]


def readme_flowchart() -> str:
    text = README.read_text(encoding="utf-8")
    _, inside, _ = diagram.split_readme(text, README)
    match = re.fullmatch(r"\n```mermaid\n(?P<body>.*)```\n", inside, re.DOTALL)
    assert match, f"{README}: the diagram block must be one ```mermaid fence; run make diagram"
    return match["body"]


def nested_machines(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The branches of a Parallel state and the item processor of a Map state."""
    inner = list(state.get("Branches", []))
    if "ItemProcessor" in state or "Iterator" in state:
        inner.append(state.get("ItemProcessor") or state["Iterator"])
    return inner


def all_states(machine: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every state of the machine by name, those inside Parallel branches and Maps included."""
    found = {}
    for name, state in machine["States"].items():
        found[name] = state
        for inner in nested_machines(state):
            found.update(all_states(inner))
    return found


def expected_edges(asl: dict[str, Any]) -> Counter[tuple[str, str, str, str | None]]:
    """Every transition of the state machine, as the README must draw it: a branch starts at its
    own start marker, and its End: true states reach its end marker."""
    edges: Counter[tuple[str, str, str, str | None]] = Counter()

    def add(machine: dict[str, Any], nested: bool) -> None:
        edges["start", machine["StartAt"], "-->", None] += 1
        for name, state in machine["States"].items():
            for rule in state.get("Choices", []):
                edges[name, rule["Next"], "-->", diagram.describe_rule(rule, name)] += 1
            if "Default" in state:
                edges[name, state["Default"], "-->", "default"] += 1
            if "Next" in state:
                edges[name, state["Next"], "-->", None] += 1
            if nested and state.get("End"):
                edges[name, "end", "-->", None] += 1
            for catcher in state.get("Catch", []):
                label = "catch " + ", ".join(catcher["ErrorEquals"])
                edges[name, catcher["Next"], "-.->", label] += 1
            for inner in nested_machines(state):
                add(inner, nested=True)

    add(asl, nested=False)
    return edges


@pytest.fixture(scope="module")
def asl() -> dict[str, Any]:
    return json.loads(ASL_FILE.read_text(encoding="utf-8"))


# --- the README of this repository -----------------------------------------------------------


def test_readme_diagram_matches_the_state_machine(capsys):
    status = diagram.main(["--check", str(README)])

    assert status == 0, capsys.readouterr().err


def test_readme_draws_every_state_with_the_shape_of_its_type(asl):
    chart = Flowchart(readme_flowchart())

    states = all_states(asl)
    drawn = set(chart.names.values()) - {"start", "end"}
    assert drawn == set(states)
    for name, state in states.items():
        assert chart.shape_of(name) == SHAPE_OF_TYPE[state["Type"]], name


def test_readme_draws_every_transition_and_nothing_else(asl):
    chart = Flowchart(readme_flowchart())

    # Exact multiset equality: a missing transition fails, and so would an edge drawn for Retry.
    assert chart.named_edges() == expected_edges(asl)


def test_choice_edges_carry_their_conditions(asl):
    edges = Flowchart(readme_flowchart()).named_edges()
    after_smoke = asl["States"]["SmokeTestsPassed"]["Choices"][0]["Next"]

    assert ("SmokeTestsPassed", after_smoke, "-->", "$.smoke.passed == true") in edges
    assert ("SmokeTestsPassed", "SmokeTestsFailed", "-->", "default") in edges
    assert ("StagingDeployed", "RunSmokeTests", "-->", "$.staging.status == 'Succeeded'") in edges
    assert ("ProductionDeployed", "WaitProduction", "-->", "default") in edges


def test_catch_edges_are_dashed_red_failure_edges(asl):
    chart = Flowchart(readme_flowchart())
    states = all_states(asl)
    catches = {
        (name, catcher["Next"])
        for name, state in states.items()
        for catcher in state.get("Catch", [])
    }
    dashed = {index for index, edge in enumerate(chart.edges) if edge[2] == "-.->"}

    assert catches, "the release state machine catches errors in every Task"
    for src, dst, arrow, label in chart.edges:
        pair = (chart.names[src], chart.names[dst])
        if arrow == "-.->":
            assert pair in catches and label and label.startswith("catch States.ALL"), pair
        else:
            assert label is None or not label.startswith("catch"), pair
    assert len(dashed) == sum(len(state.get("Catch", [])) for state in states.values())
    assert [indexes for indexes, _ in chart.link_styles] == [dashed]
    assert "stroke:#d93025" in chart.link_styles[0][1]


def test_every_task_names_the_lambda_it_invokes(asl):
    text = readme_flowchart()
    for name, state in asl["States"].items():
        if state["Type"] == "Task":
            lambda_name = diagram.function_name(state["Parameters"])
            assert f'{name}["{name}<br/>λ {lambda_name}' in text, name


# --- the generator ---------------------------------------------------------------------------


def test_output_is_deterministic_and_the_same_from_the_command_line(asl):
    first = diagram.render(asl)
    second = diagram.render(json.loads(ASL_FILE.read_text(encoding="utf-8")))
    printed = subprocess.run(DIAGRAM, capture_output=True, text=True, check=True).stdout

    assert first == second == printed
    assert first.endswith("\n") and not first.endswith("\n\n")


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"Variable": "$.smoke.passed", "BooleanEquals": False}, "$.smoke.passed == false"),
        ({"Variable": "$.n", "NumericGreaterThanEquals": 3}, "$.n >= 3"),
        ({"Variable": "$.n", "NumericLessThan": 2.5}, "$.n < 2.5"),
        ({"Variable": "$.a", "StringEqualsPath": "$.b"}, "$.a == $.b"),
        (
            {"Variable": "$.t", "TimestampGreaterThan": "2030-01-01T00:00:00Z"},
            "$.t > '2030-01-01T00:00:00Z'",
        ),
        ({"Variable": "$.f", "StringMatches": "log-*.txt"}, "$.f matches 'log-*.txt'"),
        ({"Variable": "$.x", "IsPresent": False}, "$.x is absent"),
        ({"Not": {"Variable": "$.x", "IsNull": True}}, "not ($.x is null)"),
        (
            {
                "And": [
                    {"Variable": "$.a", "IsNumeric": True},
                    {
                        "Or": [
                            {"Variable": "$.a", "NumericEquals": 1},
                            {"Variable": "$.a", "NumericEquals": 2},
                        ]
                    },
                ]
            },
            "$.a is numeric and ($.a == 1 or $.a == 2)",
        ),
        # JSONata conditions are shown as written ("{" + "%" keeps this file Jinja-safe).
        ({"Condition": "{" + "% $states.input.ok %" + "}"}, "{" + "% $states.input.ok %" + "}"),
    ],
)
def test_choice_conditions_read_like_expressions(rule, expected):
    assert diagram.describe_rule(rule, "Pick") == expected


def test_unknown_choice_operator_is_an_error_naming_the_rule():
    with pytest.raises(diagram.DiagramError, match=r"Pick > Choices\[0\].*\$\.x"):
        diagram.describe_rule({"Variable": "$.x", "Frobnicate": 1}, "Pick > Choices[0]")


def synthetic_machine() -> dict[str, Any]:
    return {
        "StartAt": "end",
        "States": {
            "end": {"Type": "Pass", "Next": 'Say "hi" {x} <b>'},
            'Say "hi" {x} <b>': {
                "Type": "Choice",
                "Choices": [{"Variable": "$.n", "NumericLessThan": 5, "Next": "Fan"}],
                "Default": "Later",
            },
            "Later": {"Type": "Wait", "Seconds": 120, "Next": "Fan"},
            "Fan": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}},
                    {"StartAt": "B", "States": {"B": {"Type": "Succeed"}}},
                ],
                "Next": "Each",
                "Catch": [{"ErrorEquals": ["Custom.Error", "States.Timeout"], "Next": "Boom"}],
            },
            "Each": {
                "Type": "Map",
                "ItemProcessor": {"StartAt": "Item", "States": {"Item": {"Type": "Succeed"}}},
                "End": True,
            },
            "Boom": {"Type": "Fail", "Error": "Broken"},
        },
    }


def test_names_are_escaped_and_reserved_words_get_safe_ids():
    text = diagram.render(synthetic_machine())
    chart = Flowchart(text)

    # No Jinja or HTML openers survive (spelled "{" + ... so this file stays Jinja-safe).
    assert "{" + "{" not in text and "{" + "%" not in text
    assert "<b>" not in text and '"hi"' not in text
    assert set(chart.names.values()) >= {"end", 'Say "hi" {x} <b>', "Later", "Boom"}
    end_ids = [node_id for node_id, name in chart.names.items() if name == "end"]
    assert all(node_id.lower() != "end" for node_id in end_ids)
    assert 'Later(["Later<br/>wait 2 min"])' in text
    assert ("Fan", "Boom", "-.->", "catch Custom.Error, States.Timeout") in chart.named_edges()


def test_parallel_and_map_states_are_subgraphs_with_their_inner_states():
    text = diagram.render(synthetic_machine())
    chart = Flowchart(text)
    edges = chart.named_edges()

    assert chart.shape_of("Fan") == ("subgraph", "end")
    assert chart.shape_of("Each") == ("subgraph", "end")
    assert {"A", "B", "Item"} <= set(chart.names.values())
    assert ("start", "A", "-->", None) in edges and ("start", "B", "-->", None) in edges
    assert ("start", "Item", "-->", None) in edges
    assert ("Fan", "Each", "-->", None) in edges
    assert ("Each", "end", "-->", None) in edges  # End: true reaches the end marker
    assert text.count("\n    end\n") == 2  # each subgraph is closed


def test_a_transition_to_a_missing_state_is_an_error_naming_it():
    machine = synthetic_machine()
    machine["States"]["Later"]["Next"] = "Nowhere"

    with pytest.raises(diagram.DiagramError, match=r"Later > Next: 'Nowhere' is not a state"):
        diagram.render(machine)


def test_invalid_json_is_reported_with_its_position(tmp_path):
    broken = tmp_path / "broken.asl.json"
    broken.write_text('{"StartAt": "A",\n  "States": }\n')

    result = subprocess.run([*DIAGRAM, "--asl", str(broken)], capture_output=True, text=True)

    assert result.returncode == 2
    assert f"{broken}:2:" in result.stderr and "not valid JSON" in result.stderr
    assert "Traceback" not in result.stderr


# --- --write and --check on files ------------------------------------------------------------

STALE_README = """# Title

Intro text that must survive.

<!-- pipeline-diagram:start -->
```mermaid
flowchart TD
    old --> diagram
```
<!-- pipeline-diagram:end -->

## After

More text.
"""


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DIAGRAM, *map(str, args)], capture_output=True, text=True)


def test_write_replaces_only_the_block_and_then_check_passes(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(STALE_README)
    readme.chmod(0o640)

    written = run_cli("--write", readme)

    assert written.returncode == 0, written.stderr
    assert "updated" in written.stdout
    text = readme.read_text()
    head, tail = STALE_README.split("```mermaid")[0], STALE_README.split("```\n", 1)[1]
    assert text.startswith(head) and text.endswith(tail)
    assert "flowchart TD\n" in text and "old --> diagram" not in text
    assert stat.S_IMODE(readme.stat().st_mode) == 0o640
    assert run_cli("--check", readme).returncode == 0
    again = run_cli("--write", readme)
    assert again.returncode == 0 and "already up to date" in again.stdout
    assert readme.read_text() == text
    assert sorted(path.name for path in tmp_path.iterdir()) == ["README.md"]


def test_check_fails_on_a_stale_diagram_and_says_how_to_fix_it(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(STALE_README)

    result = run_cli("--check", readme)

    assert result.returncode == 1
    assert str(readme) in result.stderr and "make diagram" in result.stderr
    assert "-    old --> diagram" in result.stderr  # the diff shows what changed
    assert readme.read_text() == STALE_README


def test_check_fails_when_only_the_state_machine_changed(tmp_path):
    asl_file = tmp_path / "state_machine.asl.json"
    asl_file.write_text(ASL_FILE.read_text(encoding="utf-8"))
    readme = tmp_path / "README.md"
    readme.write_text(STALE_README)
    assert run_cli("--asl", asl_file, "--write", readme).returncode == 0

    machine = json.loads(asl_file.read_text())
    machine["States"]["RunSmokeTests"]["Catch"][0]["Next"] = "ReleaseFailed"
    asl_file.write_text(json.dumps(machine))
    result = run_cli("--asl", asl_file, "--check", readme)

    assert result.returncode == 1
    assert '+    RunSmokeTests -.->|"catch States.ALL"| ReleaseFailed' in result.stderr


@pytest.mark.parametrize(
    "text",
    [
        "# No markers at all\n",
        "<!-- pipeline-diagram:start -->\nonly the start\n",
        "<!-- pipeline-diagram:end -->\n<!-- pipeline-diagram:start -->\n",
    ],
)
@pytest.mark.parametrize("mode", ["--write", "--check"])
def test_missing_or_misplaced_markers_are_an_error_naming_the_file(tmp_path, text, mode):
    readme = tmp_path / "README.md"
    readme.write_text(text)

    result = run_cli(mode, readme)

    assert result.returncode == 2
    assert str(readme) in result.stderr and "pipeline-diagram" in result.stderr
    assert "Traceback" not in result.stderr
    assert readme.read_text() == text
    assert sorted(path.name for path in tmp_path.iterdir()) == ["README.md"]


def test_an_interrupted_write_leaves_the_readme_untouched(tmp_path, monkeypatch):
    readme = tmp_path / "README.md"
    readme.write_text(STALE_README)

    def fail_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(diagram.os, "replace", fail_replace)
    with pytest.raises(OSError, match="disk full"):
        diagram.write_readme(readme, diagram.render(synthetic_machine()))

    assert readme.read_text() == STALE_README
    assert sorted(path.name for path in tmp_path.iterdir()) == ["README.md"]


def test_a_nested_transition_out_of_its_branch_is_an_error_naming_the_branch():
    machine = synthetic_machine()
    machine["States"]["Fan"]["Branches"][0]["States"]["A"] = {"Type": "Pass", "Next": "Later"}

    with pytest.raises(
        diagram.DiagramError, match=r"Branch 1 of Fan › A > Next: 'Later' is not a state"
    ):
        diagram.render(machine)


def test_a_legacy_map_iterator_is_drawn_like_an_item_processor():
    machine = synthetic_machine()
    each = machine["States"]["Each"]
    each["Iterator"] = each.pop("ItemProcessor")

    assert diagram.render(machine) == diagram.render(synthetic_machine())
