"""Input validation for the AWS JSON 1.1 wires, driven by botocore's service model.

The wire spec of every JSON service Gatehouse speaks (``cognito-idp``, ``cognito-identity``) is the service
model botocore ships (``botocore/data/<service>/<version>/service-2.json``): operation names, input shapes,
required members, length/range/pattern/enum constraints, which operations are unsigned, and which errors
each operation may answer. This module reads that model -- nothing here is hand-written per operation -- and
checks a decoded request body the way AWS's JSON services do before any handler runs:

* a member of the wrong JSON type (or a body that is not an object, or nesting deeper than 64 levels) is a
  :class:`~gateway.errors.SerializationException`, raised at the first one found, because AWS fails while
  deserialising, before it validates anything;
* constraint violations are collected over the whole input and raised as ONE
  :class:`~gateway.errors.InvalidParameterException` in AWS's words (the count is exact; at most 100 are
  spelled out)::

      2 validation errors detected: Value null at 'clientId' failed to satisfy constraint: Member must not be
      null; Value 'abc' at 'userPoolId' failed to satisfy constraint: Member must satisfy regular expression
      pattern: [\\w-]+_[0-9a-zA-Z]+

* unknown members are ignored (AWS ignores them) and removed from the body (in place), as is a JSON ``null``
  member, which counts as absent: a handler never sees ``None`` where the model allows only a value, nor a
  member the model does not have.

Paths in messages (AWS's form, as Cognito answers it):

* structure members by their wire name with the first letter lower-cased, joined with ``.``
  (``advancedSecurityOptions.sAMLOptions.masterUserName``);
* a structure (or list, or map) inside a list: ``<list>.<1-based index>.member`` then its own members
  (``userAttributes.1.member.name``); inside a map: ``<map>.<key>.member`` (``<map>.<key>.member.<field>``);
* scalar list members and scalar map keys/values are not reported one by one: as AWS does, one message is
  given at the collection itself, listing every constraint of the member shape --
  ``Value '[ok, ]' at 'attributesToGet' failed to satisfy constraint: Member must satisfy constraint:
  [Member must have length less than or equal to 32, ...]``, ``... Map keys must satisfy constraint: [...]``,
  ``... Map value must satisfy constraint: [...]``.

Values are echoed Java-style (``'abc'``, ``'5'``, ``'[a, b]'``, ``'{k=v}'``), cut to at most 256 characters;
a value whose shape is ``sensitive`` -- or lies inside, or contains, a sensitive shape -- is never echoed
(``Value at 'password' failed ...``). ``null`` is always shown as ``Value null``: it reveals nothing.
SerializationException messages name the member by its wire path and never echo the value.

Patterns in the model are Java regular expressions that must match the WHOLE value. They are run with the
``regex`` module (which knows ``\\p{L}`` and friends), after rewriting Java's ASCII-only shorthands
``\\w \\d \\s \\W \\D \\S`` into explicit ASCII classes (in ``regex``, as in ``re``, they would match
Unicode). A pattern that cannot be translated faithfully is compiled as written; one that does not compile
at all is skipped (the other constraints still apply) rather than failing every request. A few model patterns
backtrack quadratically (``...\\{##...##\\}...`` over 20000 characters takes seconds), so long values are
matched under a time limit and a value that exhausts it is reported as not matching.

Cost: each operation's validator tree is built on first use from the model and reused; validating a typical
small request takes a few microseconds.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Sized
from typing import Any, Final

import botocore.loaders
import botocore.model
import regex

from gateway.errors import InvalidParameterException, SerializationException, UnknownOperationException

__all__ = ["ServiceModel"]

# Deeper JSON than this is refused before any recursion could hurt; no real Cognito input comes close.
_MAX_DEPTH: Final = 64
# Most characters of a value echoed in a message.
_ECHO_LIMIT: Final = 256
# Most violations spelled out in one message (the count stays exact): a body of thousands of bad list
# entries must not turn into a megabyte error message.
_MAX_LISTED: Final = 100
# Values up to this length are matched without a time limit (the limit costs ~1.5 µs per match, and even
# quadratic backtracking over this few characters is quick).
_UNTIMED_MATCH_LENGTH: Final = 256
_MATCH_TIMEOUT_SECONDS: Final = 0.05

_INT_BOUNDS: Final = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}

# A path is a tuple of segments: str = structure member (wire name), int = 0-based list index,
# 1-tuple = map key. Built only when descending into containers or reporting.
_Seg = str | int | tuple[str]
_Path = tuple[_Seg, ...]


# --- Java regular expressions -------------------------------------------------------------------------


class _Untranslatable(Exception):
    """A Java construct the shorthand rewrite cannot express; the pattern is used as written."""


# Java's \w \d \s are ASCII-only (no UNICODE_CHARACTER_CLASS flag in AWS's validators); \p{..} is Unicode.
_CLASS_BODY: Final = {"w": "A-Za-z0-9_", "d": "0-9", "s": " \\t\\n\\x0b\\f\\r"}
_NEGATED_SHORTHAND: Final = {"W": "w", "D": "d", "S": "s"}


def _translate_class(java: str, start: int) -> tuple[int, str]:
    """Rewrite the character class opening at ``java[start] == '['``; return (index after it, text)."""
    i = start + 1
    n = len(java)
    negated = i < n and java[i] == "^"
    if negated:
        i += 1
    positive: list[str] = []  # expansions of \w \d \s
    negative: list[str] = []  # bodies of \W \D \S (need their own negated class)
    items: list[str] = []  # everything else, verbatim
    while True:
        if i >= n:
            raise _Untranslatable  # unterminated class
        c = java[i]
        if c == "]":
            break
        if c == "[" or java.startswith("&&", i):
            raise _Untranslatable  # Java class union / intersection
        if c == "\\" and i + 1 < n:
            e = java[i + 1]
            if e in _CLASS_BODY:
                positive.append(_CLASS_BODY[e])
            elif e in _NEGATED_SHORTHAND:
                negative.append(_CLASS_BODY[_NEGATED_SHORTHAND[e]])
            else:
                items.append(java[i : i + 2])
            i += 2
            continue
        items.append(c)
        i += 1
    rest = "".join(items)
    if positive and rest.startswith("-"):
        rest = "\\" + rest  # a '-' that was first in the class must stay a literal, not open a range
    body = "".join(positive) + rest
    if not negative:
        return i + 1, f"[{'^' if negated else ''}{body}]"
    if negated:
        raise _Untranslatable  # [^..\S..] would need class intersection
    # [X\S] == (?:[X]|[^ \t\n\x0b\f\r]) -- the regex module cannot nest a negated class inside a class.
    alternatives = ([f"[{body}]"] if body else []) + [f"[^{neg}]" for neg in negative]
    return i + 1, "(?:" + "|".join(alternatives) + ")"


# Model patterns that contradict the model's own documentation, checked by the service instead:
# DomainType allows prefixes only, yet its documentation (and Cognito) take custom domains like
# auth.example.com in the same member (gateway/services/domains.py checks both forms).
_PATTERNS_NOT_ENFORCED = frozenset({"DomainType"})
# Enum values Cognito takes that an installed botocore's model may not list yet: GetClientToken's documentation
# names the ALLOW_CLIENT_TOKEN_AUTH explicit auth flow, which botocore 1.44's ExplicitAuthFlowsType lacks (boto3
# sends it all the same: clients do not check enums). The token exchange flows (GetDerivedToken) are in botocore
# 1.44.8's model; listed too for an older botocore that lacks them.
_ENUM_ADDITIONS: dict[str, tuple[str, ...]] = {
    "ExplicitAuthFlowsType": (
        "ALLOW_CLIENT_TOKEN_AUTH",
        "ALLOW_TOKEN_EXCHANGE_IMPERSONATION",
        "ALLOW_TOKEN_EXCHANGE_DELEGATION",
    )
}
# Operations Cognito answers without a signature though the model does not mark them so: GetClientToken
# ("you can't use IAM credentials to authorize requests"; the client authenticates with its secret).
_UNSIGNED_ADDITIONS = frozenset({"GetClientToken"})
# Operations Cognito answers either way: signed with IAM credentials, or unsigned with the app client's id (and
# secret). GetDerivedToken: "you must have IAM credentials, or you must present the requesting app client's
# ClientId and, if the client has a secret, ClientSecret". A request that carries a signature has it checked.
_SIGNATURE_OPTIONAL = frozenset({"GetDerivedToken"})


def _translate_java_pattern(java: str) -> str:
    """Java regex -> ``regex`` syntax, keeping Java's ASCII meaning of \\w \\d \\s and their negations."""
    out: list[str] = []
    i = 0
    n = len(java)
    while i < n:
        c = java[i]
        if c == "\\" and i + 1 < n:
            e = java[i + 1]
            if e in _CLASS_BODY:
                out.append(f"[{_CLASS_BODY[e]}]")
            elif e in _NEGATED_SHORTHAND:
                out.append(f"[^{_CLASS_BODY[_NEGATED_SHORTHAND[e]]}]")
            else:
                out.append(java[i : i + 2])
            i += 2
        elif c == "[":
            i, text = _translate_class(java, i)
            out.append(text)
        else:
            out.append(c)
            i += 1
    return "".join(out)


# One bracket expression, repeated: matching it is linear, whatever the value, so Python's own `re` (several
# times faster than `regex` and needing no time limit) can run it. Most of the model's patterns (tokens,
# ids, names) are of this form.
_SINGLE_CLASS = re.compile(r"\[(?:[^\]\\]|\\.)*\][+*]")


@functools.cache
def _compile_java_pattern(java: str) -> regex.Pattern[str] | re.Pattern[str] | None:
    """The compiled form of a model pattern, or None when it does not compile (the check is then skipped)."""
    try:
        translated = _translate_java_pattern(java)
    except _Untranslatable:
        translated = java
    if _SINGLE_CLASS.fullmatch(translated) and "\\p" not in translated:
        try:
            return re.compile(translated)
        except re.error:
            pass
    try:
        return regex.compile(translated)
    except (regex.error, ValueError, OverflowError):
        try:  # the rewrite itself may be what broke it
            return regex.compile(java)
        except (regex.error, ValueError, OverflowError):
            return None


def _ascii_class(pattern: regex.Pattern[str] | re.Pattern[str] | None) -> tuple[bytes, bool] | None:
    """For a pattern that is one character class repeated (``[A-Za-z0-9-_=.]+``, as most of the model's are): the
    ASCII characters it takes, and whether it takes the empty string. An ASCII value matches it when deleting those
    characters leaves nothing (``bytes.translate``), several times faster than the regular expression over a
    token of a thousand characters; a value with other characters is matched by the expression itself."""
    if not isinstance(pattern, re.Pattern) or not _SINGLE_CLASS.fullmatch(pattern.pattern):
        return None
    allowed = bytes(c for c in range(128) if pattern.fullmatch(chr(c)))
    return allowed, pattern.fullmatch("") is not None


def _full_match(pattern: regex.Pattern[str] | re.Pattern[str], value: str) -> bool:
    if isinstance(pattern, re.Pattern) or len(value) <= _UNTIMED_MATCH_LENGTH:
        return pattern.fullmatch(value) is not None
    try:
        return pattern.fullmatch(value, timeout=_MATCH_TIMEOUT_SECONDS) is not None
    except TimeoutError:
        return False  # fail closed: a value built to make the matcher spin is not a valid value


# --- messages -------------------------------------------------------------------------------------------


def _aws_path(path: _Path) -> str:
    """The path as AWS prints it in validation messages: lowerCamel members, ``1.member``, ``key.member``."""
    parts: list[str] = []
    for seg in path:
        if isinstance(seg, str):
            parts.append(seg[:1].lower() + seg[1:])
        elif isinstance(seg, int):
            parts.append(f"{seg + 1}.member")
        else:
            parts.append(f"{seg[0]}.member")
    return ".".join(parts)


def _wire_path(path: _Path) -> str:
    """The path with the members' wire names, for SerializationException messages."""
    parts: list[str] = []
    for seg in path:
        if isinstance(seg, str):
            parts.append(seg)
        elif isinstance(seg, int):
            parts.append(f"{seg + 1}.member")
        else:
            parts.append(f"{seg[0]}.member")
    return ".".join(parts)


def _render(value: object, out: list[str], budget: int) -> int:
    """Append a Java-style rendering of ``value`` to ``out``; stop once ``budget`` characters are spent."""
    if budget <= 0:
        return 0
    if isinstance(value, dict):
        out.append("{")
        budget -= 1
        for index, (key, item) in enumerate(value.items()):
            if budget <= 0:
                return 0
            head = (", " if index else "") + str(key)[:budget] + "="
            out.append(head)
            budget = _render(item, out, budget - len(head))
        out.append("}")
        return budget - 1
    if isinstance(value, list):
        out.append("[")
        budget -= 1
        for index, item in enumerate(value):
            if budget <= 0:
                return 0
            if index:
                out.append(", ")
                budget -= 2
            budget = _render(item, out, budget)
        out.append("]")
        return budget - 1
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = str(value)[:budget]
    out.append(text)
    return budget - len(text)


def _show(value: object) -> str:
    out: list[str] = []
    _render(value, out, _ECHO_LIMIT + 1)
    text = "".join(out)
    return text if len(text) <= _ECHO_LIMIT else text[: _ECHO_LIMIT - 3] + "..."


def _violation(path: _Path, value: object, secret: bool, constraint: str) -> str:
    where = _aws_path(path)
    if value is None:
        return f"Value null at '{where}' failed to satisfy constraint: {constraint}"
    if secret:
        return f"Value at '{where}' failed to satisfy constraint: {constraint}"
    return f"Value '{_show(value)}' at '{where}' failed to satisfy constraint: {constraint}"


def _summary(errors: list[str]) -> str:
    count = len(errors)
    noun = "error" if count == 1 else "errors"
    return f"{count} validation {noun} detected: " + "; ".join(errors[:_MAX_LISTED])


def _number(limit: object) -> object:
    """A model bound as Java would print it in the message (``1``, not ``1.0``)."""
    return int(limit) if isinstance(limit, float) and limit.is_integer() else limit


def _too_deep() -> SerializationException:
    return SerializationException(f"The request nests JSON deeper than {_MAX_DEPTH} levels.")


def _wrong_type(path: _Path, expected: str) -> SerializationException:
    return SerializationException(f"Unexpected value type for '{_wire_path(path)}': expected {expected}")


def _check_depth(value: object, depth: int) -> None:
    """Refuse JSON nested deeper than the limit, without recursion (for values no shape describes)."""
    stack: list[tuple[object, int]] = [(value, depth)]
    while stack:
        item, level = stack.pop()
        if level > _MAX_DEPTH:
            raise _too_deep()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, dict | list):
                stack.append((child, level + 1))


# --- the validator tree ---------------------------------------------------------------------------------


class _Node:
    """One shape, compiled. ``secret``: echoing a value of this node could reveal a sensitive value."""

    __slots__ = ("secret",)

    def __init__(self, secret: bool) -> None:
        self.secret = secret

    def check(self, value: object, parent: _Path, seg: _Seg, errors: list[str], depth: int) -> None:
        """Check a non-null ``value`` found at ``parent + (seg,)``, at JSON nesting level ``depth``."""
        raise NotImplementedError


class _Scalar(_Node):
    """A leaf shape. ``constraints``: every constraint's text, in AWS's order (for collection messages)."""

    __slots__ = ("constraints", "expected")

    def __init__(self, secret: bool, expected: str, constraints: tuple[str, ...] = ()) -> None:
        super().__init__(secret)
        self.expected = expected
        self.constraints = constraints

    def reject(self, value: object) -> str | None:
        """None when ``value`` has the right JSON type, else the SerializationException message's lead."""
        raise NotImplementedError

    def failures(self, value: Any) -> list[str]:
        """The constraints a value of the right type fails (AWS's wording)."""
        return []

    def check(self, value: object, parent: _Path, seg: _Seg, errors: list[str], depth: int) -> None:
        lead = self.reject(value)
        if lead is not None:
            where = _wire_path((*parent, seg))
            raise SerializationException(f"{lead} for '{where}': expected {self.expected}")
        failed = self.failures(value)
        if failed:
            path = (*parent, seg)
            errors.extend(_violation(path, value, self.secret, text) for text in failed)


class _String(_Scalar):
    __slots__ = ("ascii_class", "enum", "enum_text", "max", "max_text", "min", "min_text", "pattern", "pattern_text")

    def __init__(
        self,
        secret: bool,
        min_len: int | None,
        max_len: int | None,
        pattern: str | None,
        enum: list[str] | None,
    ) -> None:
        self.max = max_len
        self.max_text = f"Member must have length less than or equal to {_number(max_len)}"
        self.min = min_len
        self.min_text = f"Member must have length greater than or equal to {_number(min_len)}"
        compiled = _compile_java_pattern(pattern) if pattern is not None else None
        self.pattern = compiled
        self.ascii_class = _ascii_class(compiled)
        self.pattern_text = f"Member must satisfy regular expression pattern: {pattern}"
        self.enum = frozenset(enum) if enum else None
        self.enum_text = f"Member must satisfy enum value set: [{', '.join(enum or ())}]"
        constraints = (
            ([self.max_text] if max_len is not None else [])
            + ([self.min_text] if min_len is not None else [])
            + ([self.pattern_text] if compiled is not None else [])
            + ([self.enum_text] if self.enum is not None else [])
        )
        super().__init__(secret, "string", tuple(constraints))

    def reject(self, value: object) -> str | None:
        return None if isinstance(value, str) else "Unexpected value type"

    def _matches(self, value: str) -> bool:
        if self.ascii_class is not None and value.isascii():
            allowed, empty_ok = self.ascii_class
            return (empty_ok or value != "") and not value.encode("ascii").translate(None, allowed)
        assert self.pattern is not None
        return _full_match(self.pattern, value)

    def failures(self, value: Any) -> list[str]:
        failed: list[str] = []
        size = len(value)  # code points
        if self.max is not None and size > self.max:
            failed.append(self.max_text)
        if self.min is not None and size < self.min:
            failed.append(self.min_text)
        if self.pattern is not None and not self._matches(value):
            failed.append(self.pattern_text)
        if self.enum is not None and value not in self.enum:
            failed.append(self.enum_text)
        return failed


class _Blob(_Scalar):
    """Base64 text on the wire; length constraints count the decoded bytes."""

    __slots__ = ("max", "max_text", "min", "min_text")

    def __init__(self, secret: bool, min_len: int | None, max_len: int | None) -> None:
        self.max = max_len
        self.max_text = f"Member must have length less than or equal to {_number(max_len)}"
        self.min = min_len
        self.min_text = f"Member must have length greater than or equal to {_number(min_len)}"
        constraints = ([self.max_text] if max_len is not None else []) + (
            [self.min_text] if min_len is not None else []
        )
        super().__init__(secret, "base64-encoded string", tuple(constraints))

    def reject(self, value: object) -> str | None:
        if not isinstance(value, str):
            return "Unexpected value type"
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return "Invalid base64 value"
        return None

    def failures(self, value: Any) -> list[str]:
        # Valid (validated) base64 is whole quads; '=' padding marks the missing bytes of the last one.
        size = len(value) // 4 * 3 - (len(value) - len(value.rstrip("=")))
        failed: list[str] = []
        if self.max is not None and size > self.max:
            failed.append(self.max_text)
        if self.min is not None and size < self.min:
            failed.append(self.min_text)
        return failed


class _Number(_Scalar):
    """integer / long (JSON integers in range; bool is not one) and double / float (any JSON number)."""

    __slots__ = ("bounds", "integral", "max", "max_text", "min", "min_text")

    def __init__(self, secret: bool, type_name: str, low: object, high: object) -> None:
        self.integral = type_name in _INT_BOUNDS
        self.bounds = _INT_BOUNDS.get(type_name)
        self.max = high if isinstance(high, int | float) else None
        self.max_text = f"Member must have value less than or equal to {_number(high)}"
        self.min = low if isinstance(low, int | float) else None
        self.min_text = f"Member must have value greater than or equal to {_number(low)}"
        constraints = ([self.max_text] if self.max is not None else []) + (
            [self.min_text] if self.min is not None else []
        )
        super().__init__(secret, type_name, tuple(constraints))

    def reject(self, value: object) -> str | None:
        if isinstance(value, bool):
            return "Unexpected value type"
        if self.integral:
            if not isinstance(value, int):
                return "Unexpected value type"
            assert self.bounds is not None
            if not self.bounds[0] <= value <= self.bounds[1]:
                return "Numeric value out of range"
            return None
        return None if isinstance(value, int | float) else "Unexpected value type"

    def failures(self, value: Any) -> list[str]:
        failed: list[str] = []
        if self.max is not None and value > self.max:
            failed.append(self.max_text)
        if self.min is not None and value < self.min:
            failed.append(self.min_text)
        return failed


class _Boolean(_Scalar):
    __slots__ = ()

    def __init__(self, secret: bool) -> None:
        super().__init__(secret, "boolean")

    def reject(self, value: object) -> str | None:
        return None if isinstance(value, bool) else "Unexpected value type"


class _Timestamp(_Scalar):
    """Epoch seconds (a JSON number) as the JSON protocol sends them; a string is accepted too."""

    __slots__ = ()

    def __init__(self, secret: bool) -> None:
        super().__init__(secret, "timestamp (number or string)")

    def reject(self, value: object) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            return "Unexpected value type"
        return None


class _Document(_Node):
    """Any JSON (a Smithy document, or a shape type this module does not know): only depth is checked."""

    __slots__ = ()

    def check(self, value: object, parent: _Path, seg: _Seg, errors: list[str], depth: int) -> None:
        if isinstance(value, dict | list):
            _check_depth(value, depth)


class _Structure(_Node):
    __slots__ = ("members", "names", "required")

    def __init__(self, secret: bool) -> None:
        super().__init__(secret)
        self.members: tuple[tuple[str, _Node], ...] = ()
        self.names: frozenset[str] = frozenset()
        self.required: frozenset[str] = frozenset()

    def check(self, value: object, parent: _Path, seg: _Seg, errors: list[str], depth: int) -> None:
        if not isinstance(value, dict):
            raise _wrong_type((*parent, seg), "structure (JSON object)")
        self.walk(value, (*parent, seg), errors, depth)

    def walk(self, value: dict[Any, Any], here: _Path, errors: list[str], depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise _too_deep()
        present = 0
        # Model order, not the client's key order, so the same input always gives the same message.
        for name, node in self.members:
            item = value.get(name)
            if item is None:
                if name in self.required:
                    errors.append(_violation((*here, name), None, False, "Member must not be null"))
                elif name in value:
                    del value[name]  # null is absent: handlers must not see a None they never expect
                continue
            present += 1
            node.check(item, here, name, errors, depth + 1)
        if len(value) > present:
            # Unknown members are ignored, as AWS's deserializers drop what the input shape does not define: taken
            # out here, so that no handler keeps one (a pool's nested settings are stored as they come, and an
            # unknown member would be described back, outside the output shape, up to the body limit's size).
            # They must still not smuggle in absurd nesting.
            for key in [key for key in value if key not in self.names]:
                item = value.pop(key)
                if isinstance(item, dict | list):
                    _check_depth(item, depth + 1)


class _Collection(_Node):
    """What lists and maps share: the length constraints on the number of entries."""

    __slots__ = ("max", "max_text", "min", "min_text")

    def __init__(self, secret: bool, min_len: int | None, max_len: int | None) -> None:
        super().__init__(secret)
        self.max = max_len
        self.max_text = f"Member must have length less than or equal to {_number(max_len)}"
        self.min = min_len
        self.min_text = f"Member must have length greater than or equal to {_number(min_len)}"

    def check_size(self, value: Sized, here: _Path, errors: list[str], depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise _too_deep()
        if self.max is not None and len(value) > self.max:
            errors.append(_violation(here, value, self.secret, self.max_text))
        if self.min is not None and len(value) < self.min:
            errors.append(_violation(here, value, self.secret, self.min_text))


class _List(_Collection):
    __slots__ = ("member",)

    def __init__(self, secret: bool, min_len: int | None, max_len: int | None) -> None:
        super().__init__(secret, min_len, max_len)
        self.member: _Node = _Document(secret)

    def check(self, value: object, parent: _Path, seg: _Seg, errors: list[str], depth: int) -> None:
        if not isinstance(value, list):
            raise _wrong_type((*parent, seg), "list (JSON array)")
        here = (*parent, seg)
        self.check_size(value, here, errors, depth)
        member = self.member
        if not isinstance(member, _Scalar):
            for index, item in enumerate(value):
                if item is None:
                    errors.append(_violation((*here, index), None, False, "Member must not be null"))
                else:
                    member.check(item, here, index, errors, depth + 1)
            return
        # AWS reports scalar members once, at the list, naming all of the member shape's constraints.
        has_null = failed = False
        for index, item in enumerate(value):
            if item is None:
                has_null = True
                continue
            lead = member.reject(item)
            if lead is not None:
                where = _wire_path((*here, index))
                raise SerializationException(f"{lead} for '{where}': expected {member.expected}")
            failed = failed or bool(member.failures(item))
        if has_null or failed:
            texts = (("Member must not be null",) if has_null else ()) + member.constraints
            constraint = f"Member must satisfy constraint: [{', '.join(texts)}]"
            errors.append(_violation(here, value, self.secret, constraint))


class _Map(_Collection):
    __slots__ = ("key", "value")

    def __init__(self, secret: bool, min_len: int | None, max_len: int | None) -> None:
        super().__init__(secret, min_len, max_len)
        self.key: _Scalar = _String(secret, None, None, None, None)
        self.value: _Node = _Document(secret)

    def check(self, value: object, parent: _Path, seg: _Seg, errors: list[str], depth: int) -> None:
        if not isinstance(value, dict):
            raise _wrong_type((*parent, seg), "map (JSON object)")
        here = (*parent, seg)
        self.check_size(value, here, errors, depth)
        key_node = self.key
        value_node = self.value
        bad_key = bad_value = False
        dropped: list[object] = []
        for key, item in value.items():
            lead = key_node.reject(key)
            if lead is not None:
                where = _wire_path(here)
                raise SerializationException(f"{lead} for a key of '{where}': expected {key_node.expected}")
            bad_key = bad_key or bool(key_node.failures(key))
            if not isinstance(value_node, _Scalar):
                if item is None:
                    errors.append(_violation((*here, (key,)), None, False, "Member must not be null"))
                else:
                    value_node.check(item, here, (key,), errors, depth + 1)
            elif item is None:
                # A null scalar value counts as absent, like a null member: amazon-cognito-identity-js answers
                # a challenge again with {"DEVICE_KEY": null} to drop a device the server no longer knows.
                dropped.append(key)
            else:
                lead = value_node.reject(item)
                if lead is not None:
                    where = _wire_path((*here, (key,)))
                    raise SerializationException(f"{lead} for '{where}': expected {value_node.expected}")
                bad_value = bad_value or bool(value_node.failures(item))
        for key in dropped:
            del value[key]
        # As AWS does: one message per map for its keys, one for its scalar values, naming all constraints.
        if bad_key:
            constraint = f"Map keys must satisfy constraint: [{', '.join(key_node.constraints)}]"
            errors.append(_violation(here, value, self.secret, constraint))
        if bad_value and isinstance(value_node, _Scalar):
            constraint = f"Map value must satisfy constraint: [{', '.join(value_node.constraints)}]"
            errors.append(_violation(here, value, self.secret, constraint))


class _Builder:
    """Compiles botocore shapes into validator nodes, sharing one node per (shape, secrecy) in a service."""

    def __init__(self) -> None:
        self._nodes: dict[tuple[str, bool], _Node] = {}

    def build(self, shape: Any, inherited_secret: bool) -> _Node:
        meta = shape.metadata
        # Anything under a sensitive shape is sensitive too (e.g. UserContextData's IpAddress).
        secret = inherited_secret or bool(meta.get("sensitive"))
        key = (str(shape.name), secret)
        cached = self._nodes.get(key)
        if cached is not None:
            return cached
        type_name = str(shape.type_name)
        node: _Node
        if type_name == "structure" and not meta.get("document"):
            structure = _Structure(secret)
            self._nodes[key] = structure  # before the members: a shape may contain itself
            members = tuple(
                (str(member.serialization.get("name", name)), self.build(member, secret))
                for name, member in shape.members.items()
            )
            wire = {name: str(member.serialization.get("name", name)) for name, member in shape.members.items()}
            structure.members = members
            structure.names = frozenset(name for name, _ in members)
            structure.required = frozenset(wire[name] for name in shape.required_members if name in wire)
            structure.secret = secret or any(child.secret for _, child in members)
            return structure
        if type_name == "list":
            sequence = _List(secret, meta.get("min"), meta.get("max"))
            self._nodes[key] = sequence
            sequence.member = self.build(shape.member, secret)
            sequence.secret = secret or sequence.member.secret
            return sequence
        if type_name == "map":
            mapping = _Map(secret, meta.get("min"), meta.get("max"))
            self._nodes[key] = mapping
            key_node = self.build(shape.key, secret)
            if isinstance(key_node, _Scalar):
                mapping.key = key_node
            mapping.value = self.build(shape.value, secret)
            mapping.secret = secret or mapping.key.secret or mapping.value.secret
            return mapping
        if type_name == "string":
            pattern = None if shape.name in _PATTERNS_NOT_ENFORCED else meta.get("pattern")
            enum = meta.get("enum")
            if enum:
                enum = [*enum, *(v for v in _ENUM_ADDITIONS.get(shape.name, ()) if v not in enum)]
            node = _String(secret, meta.get("min"), meta.get("max"), pattern, enum)
        elif type_name == "blob":
            node = _Blob(secret, meta.get("min"), meta.get("max"))
        elif type_name in ("integer", "long", "double", "float"):
            node = _Number(secret, type_name, meta.get("min"), meta.get("max"))
        elif type_name == "boolean":
            node = _Boolean(secret)
        elif type_name == "timestamp":
            node = _Timestamp(secret)
        else:  # document structures, and any type a future model adds: accept, bounded in depth
            node = _Document(secret)
        self._nodes[key] = node
        return node


# --- the public face ------------------------------------------------------------------------------------


class ServiceModel:
    """One AWS JSON service as botocore models it: its operations, their auth, inputs and errors."""

    def __init__(self, model: Any, raw: dict[str, Any]) -> None:
        self._model = model
        # Query-protocol services (iam, sts) have no X-Amz-Target prefix.
        self._target_prefix = str(raw["metadata"].get("targetPrefix", ""))
        operations: dict[str, Any] = raw["operations"]
        self._operations = frozenset(operations)
        self._unsigned = frozenset(
            name
            for name, spec in operations.items()
            if spec.get("authtype") == "none"
            or spec.get("auth") == ["smithy.api#noAuth"]
            or (raw["metadata"].get("endpointPrefix") == "cognito-idp" and name in _UNSIGNED_ADDITIONS)
        )
        self._optional = frozenset(
            name
            for name in operations
            if raw["metadata"].get("endpointPrefix") == "cognito-idp" and name in _SIGNATURE_OPTIONAL
        )
        self._builder = _Builder()
        self._validators: dict[str, _Structure] = {}
        self._errors: dict[str, frozenset[str]] = {}

    @classmethod
    def load(cls, service_name: str) -> ServiceModel:
        """The model of ``service_name`` (e.g. ``"cognito-idp"``), loaded once per process."""
        return _load(service_name)

    @property
    def target_prefix(self) -> str:
        """The ``X-Amz-Target`` prefix, e.g. ``AWSCognitoIdentityProviderService``."""
        return self._target_prefix

    def has_operation(self, name: str) -> bool:
        return name in self._operations

    def operation_names(self) -> frozenset[str]:
        return self._operations

    def requires_signature(self, operation: str) -> bool:
        """False for operations the model marks unauthenticated (``authtype: none``/``smithy.api#noAuth``)."""
        self._require(operation)
        return operation not in self._unsigned and operation not in self._optional

    def signature_optional(self, operation: str) -> bool:
        """True for operations answered signed (admin) or unsigned (an app client's credentials): a request
        that carries a signature must have a valid one, and its handler sees who signed it."""
        return operation in self._optional

    def error_names(self, operation: str) -> frozenset[str]:
        """The ``__type`` names the model lists as this operation's errors."""
        names = self._errors.get(operation)
        if names is None:
            self._require(operation)
            shapes = self._model.operation_model(operation).error_shapes
            names = self._errors[operation] = frozenset(str(shape.name) for shape in shapes)
        return names

    def input_members(self, operation: str) -> frozenset[str]:
        """The member names (as on the wire) of the operation's input shape: all a handler ever sees of a request,
        since :meth:`validate_input` drops the rest."""
        root = self._validators.get(operation)
        if root is None:
            root = self._compile(operation)
        return root.names

    def validate_input(self, operation: str, params: object) -> None:
        """Check a decoded request body against the operation's input shape.

        Raises UnknownOperationException for an operation the model does not have, SerializationException
        for a body that is not an object, a wrongly typed member or too deep a nesting, and one
        InvalidParameterException listing every constraint violation. Null structure members are removed
        from ``params`` as it is checked (null means absent).
        """
        root = self._validators.get(operation)
        if root is None:
            root = self._compile(operation)
        if not isinstance(params, dict):
            raise SerializationException("The request body must be a JSON object.")
        errors: list[str] = []
        root.walk(params, (), errors, 1)
        if errors:
            raise InvalidParameterException(_summary(errors))

    def _require(self, operation: str) -> None:
        if operation not in self._operations:
            raise UnknownOperationException(f"Operation {operation} is not supported.")

    def _compile(self, operation: str) -> _Structure:
        self._require(operation)
        shape = self._model.operation_model(operation).input_shape
        root = self._builder.build(shape, False) if shape is not None else _Structure(False)
        if not isinstance(root, _Structure):  # an input is always a structure; be safe if one is not
            root = _Structure(False)
        self._validators[operation] = root
        return root


@functools.cache
def _load(service_name: str) -> ServiceModel:
    raw: dict[str, Any] = botocore.loaders.Loader().load_service_model(service_name, "service-2")
    return ServiceModel(botocore.model.ServiceModel(raw, service_name=service_name), raw)
