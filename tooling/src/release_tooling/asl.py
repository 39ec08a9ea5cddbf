"""One model of an Amazon States Language definition (state_machine.asl.json).

Everything that reads the state machine walks it through here: the lint policy (check_asl), the
embedded endpoint's ValidateStateMachineDefinition (local_aws.asl_validation) and the README
diagram (asl_to_mermaid). The model only walks; each caller decides what is a problem and how
to say so.

- ``parse`` / ``load``: JSON with a one-line error naming the line and column.
- ``render`` / ``template_vars``: Terraform templatefile placeholders (``${name}``).
- ``top`` / ``scopes`` / ``walk``: the top-level machine and every nested one (each Parallel
  branch, each Map ``ItemProcessor`` or legacy ``Iterator``), and every state with its scope
  path, e.g. ``Branch 1 of Fanout › Inner``.
- ``State.transitions``: Next, each Choice rule's Next, Default, each Catch's Next.
- ``Scope.reachable`` / ``Scope.unreachable``: reachability from StartAt inside one scope.

AWS: "Amazon States Language" (Step Functions developer guide): a Parallel state's Branches and
a Map state's ItemProcessor (Iterator before 2022) are each a complete machine with their own
StartAt and States, and a transition can only target a state of the same machine. A Choice
rule's Next belongs to the top-level rule only; the rules nested in And/Or/Not carry none.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PLACEHOLDER = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
STATE_TYPES = ("Task", "Pass", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map")
TERMINAL_TYPES = ("Succeed", "Fail")
SEPARATOR = " › "


class AslError(ValueError):
    """The definition cannot be read or is not JSON; the message says where."""

    def __init__(self, message: str, lineno: int = 0, colno: int = 0, msg: str = "") -> None:
        super().__init__(message)
        self.lineno, self.colno, self.msg = lineno, colno, msg or message


# --- text ------------------------------------------------------------------------------------


def parse(text: str) -> Any:
    """The parsed definition; AslError("invalid JSON at line L column C: ...") otherwise."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise AslError(
            f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
            exc.lineno,
            exc.colno,
            exc.msg,
        ) from None


def load(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AslError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise AslError(f"{path} is not UTF-8 text (byte {exc.start})") from None
    return parse(text)


def template_vars(text: str) -> list[str]:
    """Names of the ${...} placeholders Terraform's templatefile must supply."""
    return sorted(set(PLACEHOLDER.findall(text)))


def render(
    text: str,
    region: str = "us-east-2",
    account: str = "123456789012",
    values: Mapping[str, int] | None = None,
) -> str:
    """Substitute placeholders the way templatefile would: dummy Lambda ARNs for *_arn, and for
    the time budget (*_seconds, from terraform/release_budget) `values` or a sample of 3600."""

    def arn(match: re.Match[str]) -> str:
        if not match.group(1).endswith("_arn"):
            return str((values or {}).get(match.group(1), 3600))
        name = match.group(1).removesuffix("_function_arn").removesuffix("_arn")
        return f"arn:aws:lambda:{region}:{account}:function:check-{name.replace('_', '-')}"

    # "$${" is templatefile's escape for a literal "${".
    return PLACEHOLDER.sub(arn, text).replace("$${", "${")


# --- structure -------------------------------------------------------------------------------


def pointer_token(name: str) -> str:
    """A JSON-pointer reference token (RFC 6901): "~" -> "~0", "/" -> "~1"."""
    return str(name).replace("~", "~0").replace("/", "~1")


@dataclass(frozen=True)
class Transition:
    """One way out of a state. ``target`` is None when the entry has no (string) Next."""

    field: str  # "Next", "Default", "Choices[0].Next", "Catch[1].Next"
    pointer: str  # relative to the state: "/Next", "/Choices/0/Next", ...
    kind: str  # "next", "choice", "default" or "catch"
    target: str | None
    entry: Any = None  # the Choice rule or Catcher the transition belongs to


@dataclass(frozen=True)
class Scope:
    """One machine: the top level, a Parallel branch, or a Map's ItemProcessor/Iterator."""

    doc: Any  # the object with StartAt and States (whatever the file holds there)
    path: tuple[str, ...] = ()  # () at the top; ("Branch 1 of Fanout",) for a branch
    pointer: str = ""  # JSON pointer of doc: "" or "/States/Fanout/Branches/0"
    owner: State | None = None  # the Parallel or Map state it belongs to

    @property
    def label(self) -> str:
        return SEPARATOR.join(self.path) or "State machine"

    @property
    def start_at(self) -> Any:
        return self.doc.get("StartAt") if isinstance(self.doc, Mapping) else None

    @property
    def states(self) -> dict[str, State]:
        """The states of this machine by name, in document order ({} when States is no object)."""
        raw = self.doc.get("States") if isinstance(self.doc, Mapping) else None
        if not isinstance(raw, Mapping):
            return {}
        return {name: State(name, definition, self) for name, definition in raw.items()}

    def reachable(self) -> set[str]:
        """Names of the states StartAt leads to, following every transition of this scope."""
        states = self.states
        seen: set[str] = set()
        todo = [self.start_at]
        while todo:
            current = todo.pop()
            if not isinstance(current, str) or current in seen or current not in states:
                continue
            seen.add(current)
            todo.extend(t.target for t in states[current].transitions())
        return seen

    def unreachable(self) -> list[State]:
        """States of this scope no path from StartAt reaches, in document order."""
        seen = self.reachable()
        return [state for name, state in self.states.items() if name not in seen]


@dataclass(frozen=True)
class State:
    name: str
    definition: Any  # the state's JSON (normally an object with a Type)
    scope: Scope

    @property
    def type(self) -> Any:
        return self.definition.get("Type") if isinstance(self.definition, Mapping) else None

    @property
    def path(self) -> tuple[str, ...]:
        return (*self.scope.path, self.name)

    @property
    def where(self) -> str:
        """The state's name, prefixed by its scope when nested: "Branch 1 of Fanout › Inner"."""
        return SEPARATOR.join(self.path)

    @property
    def pointer(self) -> str:
        return f"{self.scope.pointer}/States/{pointer_token(self.name)}"

    @property
    def ends(self) -> bool:
        """The state ends its machine: a Succeed/Fail, or End: true."""
        return self.type in TERMINAL_TYPES or (
            isinstance(self.definition, Mapping) and self.definition.get("End") is True
        )

    def transitions(self) -> list[Transition]:
        return transitions(self.definition)

    def scopes(self) -> list[Scope]:
        """The machines nested in this state: one per Parallel branch, or a Map's processor.

        Entries that are not objects still get a Scope (with no states), so callers can report
        them; a Map without ItemProcessor/Iterator or a Parallel without a Branches list has none.
        """
        state = self.definition
        if not isinstance(state, Mapping):
            return []
        if self.type == "Parallel":
            branches = state.get("Branches")
            return [
                Scope(
                    branch,
                    (*self.scope.path, f"Branch {i + 1} of {self.name}"),
                    f"{self.pointer}/Branches/{i}",
                    self,
                )
                for i, branch in enumerate(branches if isinstance(branches, list) else [])
            ]
        if self.type == "Map":
            for key in ("ItemProcessor", "Iterator"):
                if key in state:
                    path = (*self.scope.path, f"{key} of {self.name}")
                    return [Scope(state[key], path, f"{self.pointer}/{key}", self)]
        return []


def transitions(state: Any) -> list[Transition]:
    """The ways out of one state's JSON: Next, each Choice rule's Next in order, Default, then
    each Catch's Next. Every Choice rule and Catcher gives one, with target None when it names
    no state, so callers can report it."""
    if not isinstance(state, Mapping):
        return []
    found = []
    if "Next" in state:
        found.append(Transition("Next", "/Next", "next", _name(state["Next"])))
    choices = state.get("Choices")
    for i, rule in enumerate(choices if isinstance(choices, list) else []):
        target = _name(rule.get("Next")) if isinstance(rule, Mapping) else None
        found.append(Transition(f"Choices[{i}].Next", f"/Choices/{i}/Next", "choice", target, rule))
    if "Default" in state:
        found.append(Transition("Default", "/Default", "default", _name(state["Default"])))
    catchers = state.get("Catch")
    for i, catcher in enumerate(catchers if isinstance(catchers, list) else []):
        target = _name(catcher.get("Next")) if isinstance(catcher, Mapping) else None
        found.append(Transition(f"Catch[{i}].Next", f"/Catch/{i}/Next", "catch", target, catcher))
    return found


def _name(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def top(doc: Any) -> Scope:
    return Scope(doc)


def scopes(doc: Any) -> Iterator[Scope]:
    """The top-level machine, then every nested one, depth first in document order."""
    todo = [top(doc)]
    while todo:
        scope = todo.pop(0)
        yield scope
        nested = [inner for state in scope.states.values() for inner in state.scopes()]
        todo[:0] = nested


def walk(doc: Any) -> Iterator[State]:
    """Every state of the definition, nested ones included, scope by scope (see ``scopes``)."""
    for scope in scopes(doc):
        yield from scope.states.values()
