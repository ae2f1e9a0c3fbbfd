"""The IAM JSON policy language and its evaluation logic.

Follows the IAM User Guide: "IAM JSON policy element reference" (Version, Statement, Sid, Effect,
Principal/NotPrincipal, Action/NotAction, Resource/NotResource, Condition), "IAM JSON policy elements:
Condition operators" (String*, Numeric*, Date*, Bool, BinaryEquals, IpAddress/NotIpAddress, Arn*, Null, the
``...IfExists`` suffix), "Multivalued context keys" (``ForAnyValue:`` / ``ForAllValues:``), "IAM policy
elements: Variables and tags" (``${aws:username}``, ``${aws:PrincipalTag/key}``, ``${*}``, ``${?}``,
``${$}``, and defaults ``${key, 'default'}``) and "Policy evaluation logic" (an explicit deny wins;
otherwise some allow is needed; a session policy limits the identity policy: the effective permissions are
their intersection).

A document is parsed and checked once (:func:`parse_policy`, raising :class:`PolicyError` with IAM's
``MalformedPolicyDocument`` wording) into immutable compiled statements; evaluating one against a
:class:`Request` does no JSON work and compiles no pattern that is not cached.

Matching rules worth knowing:

* actions match case-insensitively (``s3:getobject`` is ``s3:GetObject``), resources case-sensitively; ``*``
  matches any run of characters (``:`` and ``/`` included) and ``?`` any one character;
* condition keys are case-insensitive, values compare as each operator says; a key the request lacks makes
  a condition false, except for the negated operators (``StringNotEquals``, ``NotIpAddress``...), ``...IfExists``
  and ``ForAllValues:``, which are then true (as the guide's tables state);
* a value that cannot be compared (no number, date, IP address or ARN for its operator) matches nothing, and
  makes a negated operator false as well: a condition that cannot be evaluated never holds;
* ``ArnEquals`` is ``ArnLike`` (wildcards in each of the six parts), ``ArnNotEquals`` is ``ArnNotLike``;
* policy variables are substituted only in documents of ``Version: 2012-10-17`` (older ones treat
  ``${...}`` as literal text); a variable the request cannot resolve and that has no default matches nothing:
  not in ``Resource``, not in a condition (negated or not), and a ``NotResource`` naming one applies to nothing.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Final

__all__ = [
    "ContextValue",
    "Decision",
    "Policy",
    "PolicyError",
    "Request",
    "check_trust_policy",
    "evaluate",
    "is_allowed",
    "parse_policy",
]

VERSION_2012: Final = "2012-10-17"
VERSION_2008: Final = "2008-10-17"

ContextValue = str | int | float | bool | Sequence[str]


class PolicyError(ValueError):
    """The document is not a valid policy (IAM's ``MalformedPolicyDocument``)."""


class Decision(Enum):
    """A policy's verdict on one request: no statement applies, one allows, or one denies."""

    NOT_APPLICABLE = "NotApplicable"
    ALLOW = "Allow"
    DENY = "Deny"


@dataclass(frozen=True)
class Request:
    """What is asked: an action on a resource, by a principal, with the request context's keys.

    ``context`` keys are condition keys (``aws:SourceIp``, ``cognito-identity.amazonaws.com:amr``,
    ``aws:PrincipalTag/team`` ...); a value is a string (or number / boolean) or, for a multivalued key, a
    sequence of strings. ``principal`` is used only for resource-based policies such as a role's trust
    policy: a mapping of principal type (``AWS``, ``Federated``, ``Service``) to the caller's identifiers.
    """

    action: str
    resource: str = "*"
    context: Mapping[str, ContextValue] = field(default_factory=dict)
    principal: Mapping[str, Sequence[str]] | None = None

    @property
    def keys(self) -> dict[str, ContextValue]:
        """The context with lower-cased keys (condition keys are case-insensitive), made on first use.
        (Not functools.cached_property: on Python 3.11 it takes a lock on every read.)"""
        keys: dict[str, ContextValue] | None = self.__dict__.get("_keys")
        if keys is None:
            keys = {key.lower(): value for key, value in self.context.items()}
            object.__setattr__(self, "_keys", keys)
        return keys


# --- patterns -------------------------------------------------------------------------------------------


class _Glob:
    """IAM's wildcard matching: ``*`` any run of characters, ``?`` exactly one, everything else literal; a
    character preceded by :data:`_LITERAL_MARK` is literal even if it is ``*`` or ``?``.

    Not one regular expression: ``.*a.*b.*c`` backtracks polynomially in the value's length to the power of
    the stars (a resource such as an S3 key of a few hundred ``/`` against ``bucket/*/*/*/*.jpg`` took minutes,
    blocking the event loop). The pattern is split at its stars into fixed-length pieces instead; the first is
    matched at the start, the last at the end, and each one between at its leftmost place after the previous
    one -- which is where a match exists if any does -- so a value costs at most its length times the pattern's.
    """

    __slots__ = ("first", "last", "middle", "starred")

    def __init__(self, pattern: str, ignore_case: bool) -> None:
        flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
        pieces: list[list[str]] = [[]]
        index = 0
        while index < len(pattern):
            char = pattern[index]
            if char == _LITERAL_MARK and index + 1 < len(pattern):
                pieces[-1].append(re.escape(pattern[index + 1]))
                index += 2
                continue
            if char == "*":
                pieces.append([])
            else:
                pieces[-1].append("." if char == "?" else re.escape(char))
            index += 1
        compiled = [(re.compile("".join(piece), flags), len(piece)) for piece in pieces]
        self.starred = len(compiled) > 1
        self.first = compiled[0]
        self.last = compiled[-1]
        self.middle = [item for item in compiled[1:-1] if item[1]]

    def fullmatch(self, value: str) -> bool:
        first, first_length = self.first
        if not self.starred:
            return first.fullmatch(value) is not None
        last, last_length = self.last
        end = len(value) - last_length  # where the last piece must start
        if end < first_length or (first_length and first.match(value) is None):
            return False
        position = first_length
        for piece, _ in self.middle:
            found = piece.search(value, position, end)
            if found is None:
                return False
            position = found.end()
        return not last_length or last.fullmatch(value, end) is not None


@functools.lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool) -> _Glob:
    return _Glob(pattern, ignore_case)


def _glob_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    if "*" not in pattern and "?" not in pattern:
        return pattern.lower() == value.lower() if ignore_case else pattern == value
    return _glob(pattern, ignore_case).fullmatch(value)


_VARIABLE: Final = re.compile(r"\$\{([^}]*)\}")
_DEFAULT: Final = re.compile(r"^\s*([^,]+?)\s*,\s*'([^']*)'\s*$")
_SPECIAL: Final = {"*": "*", "?": "?", "$": "$"}


class _Unresolved(Exception):
    """A policy variable names a key the request does not have (and the variable has no default)."""


def _substitute(text: str, request: Request, *, literal_wildcards: bool) -> str:
    """Replace ``${key}`` with the request's value; ``${*}`` ``${?}`` ``${$}`` stand for the character itself.

    ``literal_wildcards``: a substituted value's own ``*`` and ``?`` must not act as wildcards where the
    result is matched as a pattern; they are then escaped into a form :func:`_glob` treats literally, and so is
    the escape character itself, so that no value can escape the policy's own characters after it or vanish in
    :func:`_unmark` (a value is text, whatever it holds). ``text`` is a policy's value as parsed, its own escape
    characters already escaped (:func:`_escape_marks`).
    """
    if "${" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        inner = match.group(1)
        if inner in _SPECIAL:
            return _LITERAL_MARK + inner if literal_wildcards and inner in "*?" else inner
        default: str | None = None
        found = _DEFAULT.match(inner)
        key = inner.strip()
        if found:
            key, default = found.group(1), found.group(2)
        value = request.keys.get(key.lower())
        if value is None or (isinstance(value, Sequence) and not isinstance(value, str)):
            # A multivalued key cannot be substituted into one string (the guide: such a variable is invalid).
            if default is None:
                raise _Unresolved(key)
            value = default
        text_value = _scalar_text(value)
        if literal_wildcards:
            text_value = _MARKED_IN_VALUES.sub(_LITERAL_MARK + r"\g<0>", text_value)
        return text_value

    return _VARIABLE.sub(replace, text)


# A private-use character marks the character after it as literal: a substituted '*' or '?', or the mark itself
# wherever it stands for itself (in a substituted value or in the policy's own text).
_LITERAL_MARK: Final = "\ue000"
_MARKED_IN_VALUES: Final = re.compile("[\ue000*?]")
_MARKED_PAIR: Final = re.compile("\ue000(.)", re.DOTALL)


def _escape_marks(text: str) -> str:
    """A policy's own text with its escape characters escaped, so that they stand for themselves."""
    return text.replace(_LITERAL_MARK, _LITERAL_MARK * 2) if _LITERAL_MARK in text else text


def _pattern_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """Glob match where characters marked by :data:`_LITERAL_MARK` are literal."""
    if _LITERAL_MARK not in pattern:
        return _glob_match(pattern, value, ignore_case=ignore_case)
    return _glob(pattern, ignore_case).fullmatch(value)


def _unmark(text: str) -> str:
    """The text a marked text stands for: each escaped character without its mark."""
    return _MARKED_PAIR.sub(r"\1", text) if _LITERAL_MARK in text else text


def _scalar_text(value: ContextValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- conditions -------------------------------------------------------------------------------------------


def _values_of(value: ContextValue | None) -> list[str] | None:
    if value is None:
        return None
    if type(value) is str:  # the common case, first
        return [value]
    if isinstance(value, str | int | float | bool):
        return [_scalar_text(value)]
    return [item if type(item) is str else _scalar_text(item) for item in value]


# An integer or decimal ("Numeric condition operators"), an exponent allowed; not float()'s wider syntax, which
# also reads "inf", "nan", " 5 " and "1_0".
_NUMBER: Final = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def _parse_number(text: str) -> float | None:
    if _NUMBER.fullmatch(text) is None:
        return None
    number = float(text)
    return number if math.isfinite(number) else None


def _parse_date(text: str) -> float | None:
    """ISO 8601 (W3C profile) or epoch seconds, as the Date operators accept."""
    number = _parse_number(text)
    if number is not None:
        return number
    if text != text.strip():
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _parse_bool(text: str) -> bool | None:
    lowered = text.strip().lower()
    return True if lowered == "true" else False if lowered == "false" else None


# A matcher answers whether a context value matches one policy value: True, False, or None when the two
# cannot be compared (a value that is no number, date, IP address, ARN... for the operator, or a policy variable
# with no value). None never matches, and it makes a negated operator false too: a condition that cannot be
# evaluated does not hold (the IAM User Guide, "IAM policy elements: Variables and tags": "If AWS cannot resolve
# a variable this might cause the entire statement to be invalid").
_Matcher = Callable[[str, str], bool | None]


def _arn_match(pattern: str, value: str) -> bool | None:
    """ArnEquals and ArnLike alike ("Condition operators", ARN: "Each of the six colon-delimited components of
    the ARN is checked separately and each can include multi-character match wildcards (*) or single-character
    match wildcards (?)"): wildcards never cross a ``:`` between the first five parts. A value that is no ARN of
    six parts cannot be compared."""
    pattern_parts = pattern.split(":", 5)
    value_parts = value.split(":", 5)
    if len(pattern_parts) != 6 or len(value_parts) != 6:
        return None
    return all(_pattern_match(p, v) for p, v in zip(pattern_parts, value_parts, strict=True))


def _ip_match(cidr: str, address: str) -> bool | None:
    try:
        network = ipaddress.ip_network(cidr.strip(), strict=False)
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return None
    return ip.version == network.version and ip in network


def _binary_equals(policy_value: str, value: str) -> bool | None:
    try:
        return base64.b64decode(policy_value, validate=True) == base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def _ordered(parse: Callable[[str], float | None], op: str) -> _Matcher:
    """A Numeric* or Date* operator: both values parsed (a value that does not parse cannot be compared), then
    compared."""

    def match(policy_value: str, value: str) -> bool | None:
        left, right = parse(value), parse(policy_value)
        if left is None or right is None:
            return None
        return _compare(op, left, right)

    return match


def _numeric(op: str) -> _Matcher:
    return _ordered(_parse_number, op)


def _date(op: str) -> _Matcher:
    return _ordered(_parse_date, op)


def _compare(op: str, left: float, right: float) -> bool:
    if op == "eq":
        return left == right
    if op == "lt":
        return left < right
    if op == "le":
        return left <= right
    if op == "gt":
        return left > right
    return left >= right


def _bool_match(policy_value: str, value: str) -> bool | None:
    wanted, actual = _parse_bool(policy_value), _parse_bool(value)
    if wanted is None or actual is None:
        return None
    return wanted == actual


@dataclass(frozen=True)
class _Operator:
    match: _Matcher
    negated: bool = False
    variables: bool = False  # String and Arn operators accept policy variables in their values


_OPERATORS: Final[dict[str, _Operator]] = {
    "stringequals": _Operator(lambda p, v: _unmark(p) == v, variables=True),
    "stringnotequals": _Operator(lambda p, v: _unmark(p) == v, negated=True, variables=True),
    "stringequalsignorecase": _Operator(lambda p, v: _unmark(p).lower() == v.lower(), variables=True),
    "stringnotequalsignorecase": _Operator(lambda p, v: _unmark(p).lower() == v.lower(), negated=True, variables=True),
    "stringlike": _Operator(lambda p, v: _pattern_match(p, v), variables=True),
    "stringnotlike": _Operator(lambda p, v: _pattern_match(p, v), negated=True, variables=True),
    "numericequals": _Operator(_numeric("eq")),
    "numericnotequals": _Operator(_numeric("eq"), negated=True),
    "numericlessthan": _Operator(_numeric("lt")),
    "numericlessthanequals": _Operator(_numeric("le")),
    "numericgreaterthan": _Operator(_numeric("gt")),
    "numericgreaterthanequals": _Operator(_numeric("ge")),
    "dateequals": _Operator(_date("eq")),
    "datenotequals": _Operator(_date("eq"), negated=True),
    "datelessthan": _Operator(_date("lt")),
    "datelessthanequals": _Operator(_date("le")),
    "dategreaterthan": _Operator(_date("gt")),
    "dategreaterthanequals": _Operator(_date("ge")),
    "bool": _Operator(_bool_match),
    "binaryequals": _Operator(_binary_equals),
    "ipaddress": _Operator(_ip_match),
    "notipaddress": _Operator(_ip_match, negated=True),
    # ArnEquals is ArnLike under another name (the guide describes the two together), and so are their negations.
    "arnequals": _Operator(_arn_match, variables=True),
    "arnlike": _Operator(_arn_match, variables=True),
    "arnnotequals": _Operator(_arn_match, negated=True, variables=True),
    "arnnotlike": _Operator(_arn_match, negated=True, variables=True),
}


@dataclass(frozen=True)
class _Condition:
    """One ``operator: {key: values}`` entry of a Condition block (each key is a separate clause, ANDed)."""

    operator: str  # as written, for messages
    op: _Operator | None  # None for Null
    qualifier: str | None  # "foranyvalue" / "forallvalues"
    if_exists: bool
    key: str  # lower-cased
    values: tuple[str, ...]
    substitute: bool

    def holds(self, request: Request) -> bool:
        present = _values_of(request.keys.get(self.key))
        op = self.op
        if op is None:  # Null: "true" means the key must be absent, "false" that it must be present
            wanted = [_parse_bool(value) for value in self.values]
            is_absent = present is None or present == []
            return any(flag is not None and flag == is_absent for flag in wanted)
        policy_values: Sequence[str | None] = self._policy_values(request) if self.substitute else self.values
        if self.qualifier is not None:
            if not present and self.if_exists:
                # ...IfExists: a key the request lacks (or that has no values) makes the condition true, whatever
                # the set operator ("IAM JSON policy elements: Condition operators", ...IfExists).
                return True
            return self._holds_for_set(present or [], policy_values)
        if not present:
            # Missing key: true only for IfExists and the negated operators.
            return self.if_exists or op.negated
        # Plain loops rather than nested generators: a trust policy is evaluated on every credentials call.
        match = op.match
        if op.negated:
            # Every value must be told apart from every policy value; one that cannot be compared (None) fails.
            for value in present:
                for wanted_value in policy_values:
                    if wanted_value is None or match(wanted_value, value) is not False:
                        return False
            return True
        for value in present:
            for wanted_value in policy_values:
                if wanted_value is not None and match(wanted_value, value):
                    return True
        return False

    def _holds_for_set(self, present: Sequence[str], policy_values: Sequence[str | None]) -> bool:
        every = self.qualifier == "forallvalues"
        # ForAllValues: every value in the request must satisfy it (an empty or missing set is vacuously
        # true); ForAnyValue: at least one value must (an empty or missing set is false).
        for value in present:
            if self._satisfied_by(value, policy_values):
                if not every:
                    return True
            elif every:
                return False
        return every

    def _satisfied_by(self, value: str, policy_values: Sequence[str | None]) -> bool:
        """Whether one request value satisfies the operator: matches some policy value or, negated, is told apart
        from every one (a comparison that cannot be made satisfies neither)."""
        assert self.op is not None
        match = self.op.match
        if self.op.negated:
            return all(wanted is not None and match(wanted, value) is False for wanted in policy_values)
        return any(wanted is not None and match(wanted, value) for wanted in policy_values)

    def _policy_values(self, request: Request) -> Sequence[str | None]:
        """The values with their variables substituted; None for one naming a key the request lacks."""
        if not self.substitute:
            return self.values
        resolved: list[str | None] = []
        for value in self.values:
            try:
                resolved.append(_substitute(value, request, literal_wildcards=True))
            except _Unresolved:
                resolved.append(None)  # that value can be compared with nothing
        return resolved


# --- statements -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Statement:
    sid: str | None
    effect: Decision
    actions: tuple[str, ...] | None
    not_actions: tuple[str, ...] | None
    resources: tuple[str, ...] | None
    not_resources: tuple[str, ...] | None
    principals: dict[str, tuple[str, ...]] | None
    not_principals: dict[str, tuple[str, ...]] | None
    conditions: tuple[_Condition, ...]
    substitute: bool

    def applies(self, request: Request) -> bool:
        if not self._action_matches(request.action):
            return False
        if not self._resource_matches(request):
            return False
        if (self.principals is not None or self.not_principals is not None) and not self._principal_matches(request):
            return False
        for condition in self.conditions:  # noqa: SIM110 (a loop: no generator frame per evaluation)
            if not condition.holds(request):
                return False
        return True

    def _action_matches(self, action: str) -> bool:
        # Action patterns are kept lower-cased (see _parse_statement): one lower() here, then plain matching.
        lowered = action.lower()
        patterns = self.actions if self.actions is not None else self.not_actions
        assert patterns is not None
        hit = False
        for pattern in patterns:
            if _glob_match(pattern, lowered):
                hit = True
                break
        return hit if self.actions is not None else not hit

    def _resource_matches(self, request: Request) -> bool:
        if self.resources is None and self.not_resources is None:
            return True  # a trust policy has no Resource: the role itself is the resource
        if self.resources is not None:
            return any(self._resource_pattern(pattern, request) is True for pattern in self.resources)
        assert self.not_resources is not None
        # A NotResource naming a variable with no value cannot say which resources it leaves out: the statement
        # applies to none (rather than to every one).
        return all(self._resource_pattern(pattern, request) is False for pattern in self.not_resources)

    def _resource_pattern(self, pattern: str, request: Request) -> bool | None:
        """Whether the resource matches one pattern; None when the pattern names a variable the request lacks."""
        if self.substitute:
            try:
                pattern = _substitute(pattern, request, literal_wildcards=True)
            except _Unresolved:
                return None
        return _pattern_match(pattern, request.resource)

    def _principal_matches(self, request: Request) -> bool:
        caller = request.principal or {}
        if self.principals is not None:
            return _principal_in(self.principals, caller)
        assert self.not_principals is not None
        return not _principal_in(self.not_principals, caller)


def _principal_in(allowed: Mapping[str, tuple[str, ...]], caller: Mapping[str, Sequence[str]]) -> bool:
    if "*" in allowed:  # "Principal": "*" -- anyone
        return True
    for kind, patterns in allowed.items():
        for identifier in caller.get(kind, ()):
            if "*" in patterns or identifier in patterns:
                return True
    return False


@dataclass(frozen=True)
class Policy:
    """A parsed policy document: its version and compiled statements."""

    version: str | None
    statements: tuple[_Statement, ...]
    text: str

    def evaluate(self, request: Request) -> Decision:
        """Deny if a Deny statement applies, else Allow if an Allow statement applies, else not applicable."""
        allowed = False
        for statement in self.statements:
            if statement.applies(request):
                if statement.effect is Decision.DENY:
                    return Decision.DENY
                allowed = True
        return Decision.ALLOW if allowed else Decision.NOT_APPLICABLE

    @property
    def context_keys_read(self) -> frozenset[str]:
        """Every context key (lower-cased) evaluating this policy can read: its conditions' keys and the keys its
        ``${...}`` variables name in condition values and resources (whether or not its version substitutes
        them). Its verdict on two requests with the same action, resource, principal and values of these keys
        is the same. Made on first use."""
        reads: frozenset[str] | None = self.__dict__.get("_reads")
        if reads is None:
            names: set[str] = set()
            for statement in self.statements:
                texts = [*(statement.resources or ()), *(statement.not_resources or ())]
                for condition in statement.conditions:
                    names.add(condition.key)
                    texts.extend(condition.values)
                for text in texts:
                    for inner in _VARIABLE.findall(text):
                        if inner in _SPECIAL:
                            continue
                        found = _DEFAULT.match(inner)
                        names.add((found.group(1) if found else inner.strip()).lower())
            reads = frozenset(names)
            object.__setattr__(self, "_reads", reads)
        return reads


# --- parsing ----------------------------------------------------------------------------------------------

_STATEMENT_KEYS: Final = frozenset(
    {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"}
)
_TOP_KEYS: Final = frozenset({"Version", "Id", "Statement"})
_MAX_DOCUMENT_CHARS: Final = 131072


def _not_json(constant: str) -> Any:
    """``json.loads`` reads NaN, Infinity and -Infinity, which JSON does not have (RFC 8259 §6): refused."""
    raise ValueError(f"{constant} is not JSON")


def parse_policy(document: str | Mapping[str, Any], *, resource_policy: bool = False) -> Policy:
    """Parse and check a policy document (a JSON text or an already decoded object).

    ``resource_policy``: a resource-based policy (a role's trust policy) needs ``Principal`` in every
    statement and may leave out ``Resource``; an identity or session policy must have ``Resource`` (or
    ``NotResource``) and must not have ``Principal``. Raises :class:`PolicyError`.
    """
    if isinstance(document, str):
        if len(document) > _MAX_DOCUMENT_CHARS:
            raise PolicyError("Cannot exceed quota for PolicySize")
        try:
            raw = json.loads(document, object_pairs_hook=_no_duplicate_keys, parse_constant=_not_json)
        except (ValueError, RecursionError) as exc:
            raise PolicyError("This policy contains invalid Json") from exc
        text = document
    else:
        raw = dict(document)
        text = json.dumps(raw)
    if not isinstance(raw, dict):
        raise PolicyError("This policy contains invalid Json")
    unknown = set(raw) - _TOP_KEYS
    if unknown:
        raise PolicyError(f"Syntax errors in policy: unknown field {sorted(unknown)[0]}")
    version = raw.get("Version")
    if version is not None and version not in (VERSION_2012, VERSION_2008):
        raise PolicyError("The policy must contain a valid version string")
    statements_raw = raw.get("Statement")
    if statements_raw is None:
        raise PolicyError("Syntax errors in policy: missing Statement")
    if isinstance(statements_raw, dict):
        statements_raw = [statements_raw]
    if not isinstance(statements_raw, list) or not statements_raw:
        raise PolicyError("Syntax errors in policy: Statement must be a non-empty list or an object")
    substitute = version == VERSION_2012
    statements = tuple(_parse_statement(item, substitute, resource_policy) for item in statements_raw)
    sids = [s.sid for s in statements if s.sid is not None]
    if len(sids) != len(set(sids)):
        raise PolicyError("Statement IDs (SID) in a single policy must be unique")
    return Policy(version=version, statements=statements, text=text)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key}")
        result[key] = value
    return result


def _strings(value: Any, element: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise PolicyError(f"Syntax errors in policy: {element} must be a string or a non-empty list of strings")


def check_trust_policy(policy: Policy) -> None:
    """What IAM refuses in a role's trust policy beyond a resource-based policy's rules: the role itself is
    the resource, so a ``Resource`` or ``NotResource`` ("Has prohibited field Resource"); and actions of any
    service but STS ("AssumeRole policy may only specify STS AssumeRole actions."). Raises :class:`PolicyError`.
    """
    for statement in policy.statements:
        if statement.resources is not None:
            raise PolicyError("Has prohibited field Resource")
        if statement.not_resources is not None:
            raise PolicyError("Has prohibited field NotResource")
        for action in statement.actions or ():
            if action != "*" and not action.startswith("sts:"):
                raise PolicyError("AssumeRole policy may only specify STS AssumeRole actions.")


def _parse_statement(raw: Any, substitute: bool, resource_policy: bool) -> _Statement:
    if not isinstance(raw, dict):
        raise PolicyError("Syntax errors in policy: a Statement must be an object")
    unknown = set(raw) - _STATEMENT_KEYS
    if unknown:
        raise PolicyError(f"Syntax errors in policy: unknown field {sorted(unknown)[0]}")
    sid = raw.get("Sid")
    if sid is not None and (not isinstance(sid, str) or (sid and not re.fullmatch(r"[A-Za-z0-9 ]*", sid))):
        raise PolicyError("Statement IDs (SID) must be alpha-numeric")
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise PolicyError("Syntax errors in policy: Effect must be Allow or Deny")
    if ("Action" in raw) == ("NotAction" in raw):
        raise PolicyError("Policy statement must contain actions.")
    actions = _strings(raw["Action"], "Action") if "Action" in raw else None
    not_actions = _strings(raw["NotAction"], "NotAction") if "NotAction" in raw else None
    for action in actions or not_actions or ():
        if action != "*" and not re.fullmatch(r"[A-Za-z0-9\-]+:[A-Za-z0-9*?\-]*", action):
            raise PolicyError(f"Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc. ({action})")
    if "Resource" in raw and "NotResource" in raw:
        raise PolicyError("Syntax errors in policy: Resource and NotResource in one statement")
    resources = _strings(raw["Resource"], "Resource") if "Resource" in raw else None
    not_resources = _strings(raw["NotResource"], "NotResource") if "NotResource" in raw else None
    has_principal = "Principal" in raw or "NotPrincipal" in raw
    if resource_policy:
        if not has_principal:
            raise PolicyError("Missing required field Principal")
        if "Principal" in raw and "NotPrincipal" in raw:
            raise PolicyError("Syntax errors in policy: Principal and NotPrincipal in one statement")
        if "NotPrincipal" in raw and effect != "Deny":
            # IAM User Guide, "NotPrincipal": it must be used with "Effect":"Deny". With Allow it would grant
            # every principal but the named ones -- any web identity or SAML user, for a role's trust policy.
            raise PolicyError('NotPrincipal must be used with "Effect":"Deny"')
    else:
        if has_principal:
            raise PolicyError("Policy document should not specify a principal.")
        if resources is None and not_resources is None:
            raise PolicyError("Policy statement must contain resources.")
    principals = _parse_principal(raw["Principal"]) if "Principal" in raw else None
    not_principals = _parse_principal(raw["NotPrincipal"]) if "NotPrincipal" in raw else None
    conditions = _parse_conditions(raw.get("Condition"), substitute)
    return _Statement(
        sid=sid,
        effect=Decision.ALLOW if effect == "Allow" else Decision.DENY,
        actions=tuple(a.lower() for a in actions) if actions is not None else None,
        not_actions=tuple(a.lower() for a in not_actions) if not_actions is not None else None,
        # Resources are matched as marked patterns (see _substitute); their own marks are literal.
        resources=tuple(_escape_marks(r) for r in resources) if resources is not None else None,
        not_resources=tuple(_escape_marks(r) for r in not_resources) if not_resources is not None else None,
        principals=principals,
        not_principals=not_principals,
        conditions=conditions,
        substitute=substitute,
    )


def _parse_principal(raw: Any) -> dict[str, tuple[str, ...]]:
    if raw == "*":
        return {"*": ("*",)}
    if not isinstance(raw, dict) or not raw:
        raise PolicyError("Invalid principal in policy")
    principals = {}
    for kind, value in raw.items():
        if kind not in ("AWS", "Federated", "Service", "CanonicalUser"):
            raise PolicyError(f"Invalid principal in policy: {kind}")
        identifiers = _strings(value, "Principal")
        for identifier in identifiers:
            if identifier != "*" and ("*" in identifier or "?" in identifier):
                # "You cannot use a wildcard to match part of a principal name or ARN" (IAM User Guide,
                # "Principal"): IAM refuses it, where matching it literally would trust no one without a word.
                raise PolicyError(f'Invalid principal in policy: "{kind}":"{identifier}"')
        principals[kind] = identifiers
    return principals


def _parse_conditions(raw: Any, substitute: bool) -> tuple[_Condition, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise PolicyError("Syntax errors in policy: Condition must be an object")
    conditions = []
    for operator, block in raw.items():
        if not isinstance(operator, str) or not isinstance(block, dict) or not block:
            raise PolicyError("Syntax errors in policy: a condition operator needs an object of keys")
        name = operator.lower()
        qualifier: str | None = None
        for prefix in ("foranyvalue:", "forallvalues:"):
            if name.startswith(prefix):
                qualifier = prefix[:-1]
                name = name[len(prefix) :]
        if_exists = name.endswith("ifexists") and name != "ifexists"
        if if_exists:
            name = name[: -len("ifexists")]
        op: _Operator | None
        if name == "null":
            if if_exists or qualifier:
                raise PolicyError(f"Invalid Condition type : {operator}")
            op = None
        else:
            found = _OPERATORS.get(name)
            if found is None:
                raise PolicyError(f"Invalid Condition type : {operator}")
            op = found
        for key, value in block.items():
            if isinstance(value, str | int | float | bool):
                values: tuple[str, ...] = (_scalar_text(value),)
            elif isinstance(value, list) and value and all(isinstance(v, str | int | float | bool) for v in value):
                values = tuple(_scalar_text(v) for v in value)
            else:
                raise PolicyError(f"Syntax errors in policy: condition values of {key} must be strings")
            if op is not None and op.variables:
                # String and ARN values are read as marked text (see _substitute); their own marks are literal.
                values = tuple(_escape_marks(v) for v in values)
            conditions.append(
                _Condition(
                    operator=operator,
                    op=op,
                    qualifier=qualifier,
                    if_exists=if_exists,
                    key=str(key).lower(),
                    values=values,
                    # Only a value with a ${...} has anything to substitute.
                    substitute=substitute and op is not None and op.variables and any("${" in v for v in values),
                )
            )
    return tuple(conditions)


# --- evaluation -------------------------------------------------------------------------------------------


def evaluate(policies: Iterable[Policy], request: Request) -> Decision:
    """The combined verdict of several policies of one kind: any Deny wins, then any Allow."""
    allowed = False
    for policy in policies:
        decision = policy.evaluate(request)
        if decision is Decision.DENY:
            return Decision.DENY
        if decision is Decision.ALLOW:
            allowed = True
    return Decision.ALLOW if allowed else Decision.NOT_APPLICABLE


def grant_stands(
    identity_policies: Sequence[Policy],
    request: Request,
    session_policies: Sequence[Policy] | None = None,
    *,
    session_named: bool = False,
) -> bool:
    """Whether a resource-based policy (a role's trust policy) that names the caller itself grants ``request``
    once the caller's own policies are heard: no identity policy needs to allow it, but an explicit Deny in any
    of them refuses it ("Policy evaluation logic"); and a session policy limits it -- must allow it -- unless the
    resource-based policy named the role session itself rather than its role ("Session policies", IAM User
    Guide), when only a Deny of the session policy refuses."""
    if evaluate(identity_policies, request) is Decision.DENY:
        return False
    if session_policies is not None:
        session = evaluate(session_policies, request)
        if session is Decision.DENY or (not session_named and session is not Decision.ALLOW):
            return False
    return True


def is_allowed(
    identity_policies: Sequence[Policy], request: Request, session_policies: Sequence[Policy] | None = None
) -> bool:
    """IAM's evaluation for a role session: an explicit Deny in any policy denies; otherwise the identity
    policies must allow, and -- when the session was given session policies -- so must those (the
    permissions are the intersection, "Session policies" in the IAM User Guide)."""
    identity = evaluate(identity_policies, request)
    if identity is Decision.DENY:
        return False
    if session_policies is not None:
        session = evaluate(session_policies, request)
        if session is not Decision.ALLOW:
            return False
    return identity is Decision.ALLOW
