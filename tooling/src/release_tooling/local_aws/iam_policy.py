"""IAM policy evaluation for the embedded AWS endpoint: pure functions, no moto.

`evaluate(request, identity_policies, boundary, resource_policy)` decides one authorization the
way AWS documents it in "Policy evaluation logic" and "Policy evaluation for requests within a
single account" (IAM User Guide, reference_policies_evaluation-logic*.html):

- an explicit Deny in any applicable policy wins;
- otherwise an Allow is needed from an identity-based policy or from a resource-based policy
  whose Principal names the caller;
- a permissions boundary (access_policies_boundaries.html) caps identity-based allows: both the
  identity policy and the boundary must allow. A resource-based policy that names the IAM user
  or the role *session* ARN is not capped by the boundary; one that names the role ARN is
  (same page, "Resource-based policies"). A resource policy that names only the account (or
  its root) grants nothing by itself: the account's identity policies decide.

Policy grammar per "IAM JSON policy elements" (reference_policies_elements_*.html): Action /
NotAction (wildcards, case-insensitive), Resource / NotResource (wildcards, case-sensitive),
Principal / NotPrincipal, and Condition with the operators of
reference_policies_elements_condition_operators.html, the `...IfExists` suffix and the
`ForAnyValue:` / `ForAllValues:` set operators (reference_policies_condition-single-vs-multi-
valued-context-keys.html).

Not supported: policy variables (`${aws:username}`...). A statement that contains one is never
used to allow (an Allow with a variable does not match) and always applies when it denies (a
Deny with a variable matches), so an unsupported feature can only fail closed; the Decision's
reason says so.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

ContextValue = str | list[str] | bool | int


class PolicyError(ValueError):
    """A policy document that IAM would reject; the message names the policy and the fault."""


@dataclass(frozen=True)
class AuthzRequest:
    action: str  # IAM action, e.g. "lambda:UpdateAlias" (matched case-insensitively)
    resource: str  # ARN, or "*" for actions without resource-level permissions
    context: Mapping[str, ContextValue] = field(default_factory=dict)
    principal_arn: str = ""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


# --- wildcard matching -------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    """`*` matches any run of characters (also none), `?` exactly one; nothing else is special."""
    regex = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile(regex, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    return _glob(pattern, ignore_case).fullmatch(value) is not None


def _arn_like(pattern: str, value: str) -> bool:
    """ArnLike/ArnEquals: each of the six colon-delimited parts is matched on its own."""
    p_parts, v_parts = pattern.split(":", 5), value.split(":", 5)
    if len(p_parts) != 6 or len(v_parts) != 6:
        return False
    return all(wildcard_match(p, v) for p, v in zip(p_parts, v_parts, strict=True))


# --- policy documents --------------------------------------------------------------------------

_VARIABLE = re.compile(r"\$\{[^}]*\}")


def _as_list(value: object) -> list:
    return value if isinstance(value, list) else [value]


def _load(name: str, document: dict | str) -> list[dict]:
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError as exc:
            raise PolicyError(f"policy {name!r} is not valid JSON: {exc}") from None
    if not isinstance(document, dict) or "Statement" not in document:
        raise PolicyError(f"policy {name!r} must be a JSON object with a Statement element")
    statements = _as_list(document["Statement"])
    for index, statement in enumerate(statements):
        where = f"policy {name!r} statement {statement_label(statement, index)}"
        if not isinstance(statement, dict):
            raise PolicyError(f"{where} is not a JSON object")
        if statement.get("Effect") not in ("Allow", "Deny"):
            raise PolicyError(f"{where}: Effect must be 'Allow' or 'Deny'")
        if ("Action" in statement) == ("NotAction" in statement):
            raise PolicyError(f"{where} needs exactly one of Action / NotAction")
        if "Resource" in statement and "NotResource" in statement:
            raise PolicyError(f"{where} has both Resource and NotResource")
        condition = statement.get("Condition", {})
        if not isinstance(condition, dict) or not all(
            isinstance(v, dict) for v in condition.values()
        ):
            raise PolicyError(f"{where}: Condition must map operators to {{key: values}} objects")
    return statements


def statement_label(statement: object, index: int) -> str:
    if isinstance(statement, dict) and statement.get("Sid"):
        return str(statement["Sid"])
    return f"#{index}"


def _has_variable(statement: dict) -> bool:
    parts: list[object] = [
        statement.get("Resource"),
        statement.get("NotResource"),
        statement.get("Condition"),
    ]
    return _VARIABLE.search(json.dumps(parts)) is not None


# --- conditions --------------------------------------------------------------------------------


def _to_str(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _parse_number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _parse_date(value: str) -> datetime | None:
    text = value.strip()
    try:
        if re.fullmatch(r"-?\d+(\.\d+)?", text):  # epoch seconds are accepted too
            return datetime.fromtimestamp(float(text), tz=UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _compare(op: str, ctx: str, pol: str) -> bool:
    """One context value against one policy value for a *positive* base operator."""
    if op == "StringEquals":
        return ctx == pol
    if op == "StringEqualsIgnoreCase":
        return ctx.casefold() == pol.casefold()
    if op == "StringLike":
        return wildcard_match(pol, ctx)
    if op in ("ArnEquals", "ArnLike"):
        return _arn_like(pol, ctx)
    if op == "Bool":
        return ctx.lower() == pol.lower()
    if op == "BinaryEquals":
        try:
            return base64.b64decode(ctx) == base64.b64decode(pol)
        except ValueError:
            return False
    if op == "IpAddress":
        try:
            return ipaddress.ip_address(ctx) in ipaddress.ip_network(pol, strict=False)
        except ValueError:
            return False
    if op.startswith("Numeric"):
        a, b = _parse_number(ctx), _parse_number(pol)
        return a is not None and b is not None and _ORDER[op[len("Numeric") :]](a, b)
    if op.startswith("Date"):
        a, b = _parse_date(ctx), _parse_date(pol)
        return a is not None and b is not None and _ORDER[op[len("Date") :]](a, b)
    raise AssertionError(op)  # pragma: no cover - _OPERATORS guards this


_ORDER = {
    "Equals": lambda a, b: a == b,
    "LessThan": lambda a, b: a < b,
    "LessThanEquals": lambda a, b: a <= b,
    "GreaterThan": lambda a, b: a > b,
    "GreaterThanEquals": lambda a, b: a >= b,
}

# Operator -> (positive base operator, negated?)
_OPERATORS: dict[str, tuple[str, bool]] = {
    "StringEquals": ("StringEquals", False),
    "StringNotEquals": ("StringEquals", True),
    "StringEqualsIgnoreCase": ("StringEqualsIgnoreCase", False),
    "StringNotEqualsIgnoreCase": ("StringEqualsIgnoreCase", True),
    "StringLike": ("StringLike", False),
    "StringNotLike": ("StringLike", True),
    "ArnEquals": ("ArnEquals", False),
    "ArnLike": ("ArnLike", False),
    "ArnNotEquals": ("ArnEquals", True),
    "ArnNotLike": ("ArnLike", True),
    "Bool": ("Bool", False),
    "BinaryEquals": ("BinaryEquals", False),
    "IpAddress": ("IpAddress", False),
    "NotIpAddress": ("IpAddress", True),
    "NumericNotEquals": ("NumericEquals", True),
    "DateNotEquals": ("DateEquals", True),
    **{f"Numeric{k}": (f"Numeric{k}", False) for k in _ORDER},
    **{f"Date{k}": (f"Date{k}", False) for k in _ORDER},
}


def _condition_holds(operator: str, key: str, policy_values: object, context: dict) -> bool:
    """One operator/key pair. Semantics per reference_policies_elements_condition_operators.html
    and reference_policies_condition-single-vs-multi-valued-context-keys.html."""
    set_op = ""
    if ":" in operator:
        set_op, operator = operator.split(":", 1)
        if set_op not in ("ForAnyValue", "ForAllValues"):
            raise PolicyError(f"unknown set operator {set_op!r} (use ForAnyValue or ForAllValues)")
    wanted = [_to_str(v) for v in _as_list(policy_values)]
    raw = context.get(key.lower())
    present = raw is not None
    values = [_to_str(v) for v in _as_list(raw)] if present else []

    if operator == "Null":
        # "true": the key must be absent; "false": it must be present (and not null).
        want_absent = wanted[0].lower() == "true" if wanted else True
        return (not present) == want_absent

    if_exists = operator.endswith("IfExists")
    base = operator[: -len("IfExists")] if if_exists else operator
    if base not in _OPERATORS:
        raise PolicyError(f"unknown condition operator {operator!r}")
    positive, negated = _OPERATORS[base]

    def matches(value: str) -> bool:
        return any(_compare(positive, value, w) for w in wanted)

    if set_op == "ForAllValues":
        # True when every request value matches (for a negated operator: matches none of the
        # policy values); vacuously true when the key is missing or empty.
        return all((not matches(v)) if negated else matches(v) for v in values)
    if set_op == "ForAnyValue":
        # True when at least one request value matches; false when the key is missing.
        return any((not matches(v)) if negated else matches(v) for v in values)
    if not present or not values:
        # A missing key: false for positive operators, true for negated ones and IfExists.
        return if_exists or negated
    hit = any(matches(v) for v in values)
    return not hit if negated else hit


def _conditions_hold(condition: Mapping, context: dict) -> bool:
    # Operators are ANDed, keys under one operator are ANDed, values under one key are ORed.
    return all(
        _condition_holds(operator, key, values, context)
        for operator, keys in condition.items()
        for key, values in keys.items()
    )


# --- statements --------------------------------------------------------------------------------


def _action_matches(statement: dict, action: str) -> bool:
    if "Action" in statement:
        return any(
            wildcard_match(p, action, ignore_case=True) for p in _as_list(statement["Action"])
        )
    return not any(
        wildcard_match(p, action, ignore_case=True) for p in _as_list(statement["NotAction"])
    )


def _resource_matches(statement: dict, resource: str) -> bool:
    if "NotResource" in statement:
        return not any(wildcard_match(p, resource) for p in _as_list(statement["NotResource"]))
    # Resource-based policies may omit Resource (the resource is implied); treat as "*".
    return any(wildcard_match(p, resource) for p in _as_list(statement.get("Resource", "*")))


def _account_of(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 and parts[0] == "arn" else ""


def _session_role_arn(principal_arn: str) -> str:
    """arn:aws:sts::123:assumed-role/Name/session -> arn:aws:iam::123:role/Name (no path kept)."""
    m = re.fullmatch(r"arn:([^:]+):sts::(\d{12}):assumed-role/([^/]+)/.+", principal_arn)
    return f"arn:{m[1]}:iam::{m[2]}:role/{m[3]}" if m else ""


# How a resource policy's Principal names the caller, from strongest to weakest.
_NAMED_EXACT, _NAMED_ROLE, _NAMED_ANYONE, _NAMED_ACCOUNT = "exact", "role", "anyone", "account"


def _principal_match(entry: object, principal_arn: str) -> str | None:
    """How `entry` (a Principal element) names `principal_arn`, or None if it does not."""
    if entry == "*":
        return _NAMED_ANYONE
    if not isinstance(entry, dict):
        raise PolicyError(f"Principal must be '*' or an object, got {entry!r}")
    best: str | None = None
    for kind, values in entry.items():
        for value in _as_list(values):
            found: str | None = None
            if kind == "AWS":
                found = _aws_principal_match(str(value), principal_arn)
            elif kind == "Service" and value == principal_arn:
                found = _NAMED_EXACT
            if found and (best is None or _RANK[found] < _RANK[best]):
                best = found
    return best


_RANK = {_NAMED_EXACT: 0, _NAMED_ROLE: 1, _NAMED_ANYONE: 2, _NAMED_ACCOUNT: 3}


def _aws_principal_match(value: str, principal_arn: str) -> str | None:
    if value == "*":
        return _NAMED_ANYONE
    if not principal_arn:
        return None
    if value == principal_arn:
        return _NAMED_EXACT
    account = _account_of(principal_arn)
    if account and value in (account, f"arn:{principal_arn.split(':')[1]}:iam::{account}:root"):
        return _NAMED_ACCOUNT
    role_arn = _session_role_arn(principal_arn)
    if role_arn and re.sub(r":role/(.+/)?", ":role/", value) == role_arn:
        return _NAMED_ROLE
    return None


@dataclass
class _Outcome:
    allow: str = ""  # label of the first Allow statement that applies
    allow_named: str = ""  # resource policies: how the allowing statement named the principal
    deny: str = ""  # label of the first Deny statement that applies
    notes: list[str] = field(default_factory=list)


def _scan(
    name: str,
    document: dict | str,
    request: AuthzRequest,
    context: dict,
    *,
    resource_policy: bool = False,
) -> _Outcome:
    outcome = _Outcome()
    for index, statement in enumerate(_load(name, document)):
        label = f"{name} statement {statement_label(statement, index)}"
        if not _action_matches(statement, request.action):
            continue
        variable = _has_variable(statement)
        if not variable and not _resource_matches(statement, request.resource):
            continue
        named = None
        if resource_policy:
            if "Principal" in statement:
                named = _principal_match(statement["Principal"], request.principal_arn)
            elif "NotPrincipal" in statement:
                excluded = _principal_match(statement["NotPrincipal"], request.principal_arn)
                named = None if excluded else _NAMED_ANYONE
            else:
                raise PolicyError(f"resource policy {label} needs a Principal or NotPrincipal")
            if named is None:
                continue
        deny = statement["Effect"] == "Deny"
        if variable:
            # Policy variables are not supported: fail closed (see module docstring).
            outcome.notes.append(f"{label} uses a policy variable, which is not supported")
            if deny and not outcome.deny:
                outcome.deny = f"{label} (applied: it uses an unsupported policy variable)"
            continue
        if not _conditions_hold(statement.get("Condition", {}), context):
            continue
        if deny:
            outcome.deny = outcome.deny or label
        elif not outcome.allow or (
            resource_policy and _RANK[named] < _RANK[outcome.allow_named]  # type: ignore[index]
        ):
            outcome.allow, outcome.allow_named = label, named or ""
    return outcome


def evaluate(
    request: AuthzRequest,
    identity_policies: Sequence[tuple[str, dict | str]],
    boundary: tuple[str, dict | str] | None = None,
    resource_policy: tuple[str, dict | str] | None = None,
) -> Decision:
    """Decide `request` for a principal in the resource's own account (no SCPs/RCPs/sessions)."""
    if not request.action or ":" not in request.action:
        raise PolicyError(f"action must be 'service:Action', got {request.action!r}")
    if not request.resource:
        raise PolicyError("resource must be an ARN or '*', got an empty string")
    context = {str(k).lower(): v for k, v in request.context.items()}
    target = f"{request.action} on {request.resource}"

    identity = [_scan(n, d, request, context) for n, d in identity_policies]
    bound = _scan(*boundary, request, context) if boundary else None
    resource = (
        _scan(*resource_policy, request, context, resource_policy=True) if resource_policy else None
    )
    outcomes = [*identity, *([bound] if bound else []), *([resource] if resource else [])]
    notes = [note for o in outcomes for note in o.notes]
    suffix = f" ({'; '.join(notes)})" if notes else ""

    for o in outcomes:
        if o.deny:
            return Decision(False, f"explicit deny in {o.deny} for {target}")

    identity_allow = next((o.allow for o in identity if o.allow), "")
    boundary_allows = bound is None or bool(bound.allow)
    # Naming the user or the role session itself is not capped by the boundary; naming the
    # role (or anyone) is (access_policies_boundaries.html, "Resource-based policies").
    resource_grants = bool(resource and resource.allow and resource.allow_named != _NAMED_ACCOUNT)
    if resource_grants and (resource.allow_named == _NAMED_EXACT or boundary_allows):  # type: ignore[union-attr]
        return Decision(True, f"allowed by {resource.allow}")  # type: ignore[union-attr]
    if identity_allow:
        if boundary_allows:
            return Decision(True, f"allowed by {identity_allow}")
        return Decision(
            False,
            f"the permissions boundary {boundary[0]} does not allow {target}{suffix}",  # type: ignore[index]
        )
    if resource and resource.allow and not boundary_allows:
        return Decision(
            False,
            f"the permissions boundary {boundary[0]} does not allow {target}{suffix}",  # type: ignore[index]
        )
    return Decision(False, f"no identity-based policy allows {target}{suffix}")


def evaluate_trust(
    name: str,
    trust_policy: dict | str,
    action: str,
    principal: Mapping[str, str],
    context: Mapping[str, object],
) -> Decision:
    """A role trust policy deciding an sts:AssumeRole* call on its own.

    `principal` is how the caller is named, e.g. {"Federated": <OIDC provider ARN>} or
    {"Service": "lambda.amazonaws.com"}. A role's trust policy is the resource policy that lets
    the principal assume it; for web identity and service principals it is the whole decision
    (IAM User Guide, "How IAM roles differ from resource-based policies" / "Role trust policy").
    """
    ctx = {str(k).lower(): v for k, v in context.items()}
    allow = ""
    for index, statement in enumerate(_load(name, trust_policy)):
        if not _action_matches(statement, action):
            continue
        named = statement.get("Principal")
        if not isinstance(named, dict) or not any(
            value in _as_list(named.get(kind)) for kind, value in principal.items()
        ):
            continue
        if not _conditions_hold(statement.get("Condition", {}), ctx):
            continue
        label = statement_label(statement, index)
        if statement["Effect"] == "Deny":
            return Decision(False, f"explicit deny in {name} statement {label}")
        allow = allow or label
    if allow:
        return Decision(True, f"allowed by {name} statement {allow}")
    who = ", ".join(f"{k} {v}" for k, v in principal.items())
    return Decision(False, f"{name} does not allow {who} to {action} (conditions: {dict(ctx)})")


def evaluate_cross_account(
    request: AuthzRequest,
    identity_policies: Sequence[tuple[str, dict | str]],
    boundary: tuple[str, dict | str] | None,
    resource_policy: tuple[str, dict | str] | None,
    resource_account: str,
) -> Decision:
    """Decide `request` for a principal of another account than the resource's.

    IAM User Guide, "Cross-account policy evaluation logic"
    (reference_policies_evaluation-logic-cross-account.html): the resource-based policy in the
    trusting account must specify the principal (or its whole account), AND the principal's
    identity-based policies in its own account (capped by its boundary) must allow the access; an
    explicit deny in either wins. A resource without a resource-based policy (CodeDeploy, Step
    Functions...) cannot be reached from another account at all: only by assuming a role there.
    """
    target = f"{request.action} on {request.resource}"
    context = {str(k).lower(): v for k, v in request.context.items()}
    resource = (
        _scan(*resource_policy, request, context, resource_policy=True) if resource_policy else None
    )
    if resource and resource.deny:
        return Decision(False, f"explicit deny in {resource.deny} for {target}")
    own = evaluate(request, identity_policies, boundary)
    if not own.allowed:
        return Decision(False, f"{own.reason} in the caller's account")
    if resource_policy is None:
        return Decision(
            False,
            f"the resource is in account {resource_account} and has no resource-based policy: "
            "a principal of another account reaches it only by assuming a role in "
            f"{resource_account}",
        )
    if not resource.allow:  # type: ignore[union-attr]
        caller_account = _account_of(request.principal_arn)
        return Decision(
            False,
            f"no statement of {resource_policy[0]} (account {resource_account}) grants "
            f"{request.principal_arn} or its account {caller_account} {target}",
        )
    return Decision(True, f"{own.reason} and by {resource.allow}")  # type: ignore[union-attr]


def evaluate_assume_role(
    request: AuthzRequest,
    identity_policies: Sequence[tuple[str, dict | str]],
    boundary: tuple[str, dict | str] | None,
    trust_policy: tuple[str, dict | str],
    role_account: str,
) -> Decision:
    """sts:AssumeRole by an IAM principal: the role's trust policy must name the caller (or its
    account) in every case.

    AWS STS API Reference, "AssumeRole": within one account either the caller's identity policy
    allows sts:AssumeRole (when the trust policy trusts the account) or the trust policy names the
    caller directly; a role in a different account also needs the caller's own account to allow
    it (the cross-account evaluation above).
    """
    context = {str(k).lower(): v for k, v in request.context.items()}
    trust = _scan(*trust_policy, request, context, resource_policy=True)
    if trust.deny:
        return Decision(False, f"explicit deny in {trust.deny} for {request.action}")
    if not trust.allow:
        return Decision(
            False,
            f"{trust_policy[0]} does not allow {request.principal_arn} (nor its account) to "
            f"{request.action}",
        )
    if _account_of(request.principal_arn) == role_account:
        return evaluate(request, identity_policies, boundary, trust_policy)
    return evaluate_cross_account(request, identity_policies, boundary, trust_policy, role_account)
