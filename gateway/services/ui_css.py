"""The check SetUICustomization's CSS passes before the hosted pages link it.

Cognito's rules ("Customizing hosted UI (classic) branding"): only its ``*-customizable`` classes may be
styled, and property values may hold neither ``@import``, ``@supports``, ``@page`` or ``@media`` statements nor
JavaScript. The stylesheet is judged as a browser reads it: tinycss2 parses it by CSS Syntax Level 3, the
algorithm browsers implement, so what the check sees is what the page gets. A check of its own that read
comments, strings and URLs differently from a browser could be led past: ``content: "/*"`` is a string to a
browser (§4.3.2) but would open a comment for a naive reader, hiding the rules after it; ``url(data:x,/*)`` is
one URL token (§4.3.6), not the start of a comment.

* Anything a browser would recover from (a bad string or URL, a stray closing bracket, a rule without its
  block, a comment left open) is refused, not guessed at.
* Every rule's selector is made of the customizable classes alone (joined by combinators or commas): no
  element, id, attribute, universal or pseudo-element selector, and no at-rule of any kind. Declarations hold
  no block (CSS Nesting would put rules of any selector inside one).
* Nothing may be fetched: no ``url()`` but of a ``data:`` image, no ``image-set()``, ``image()``, ``src()``,
  ``cross-fade()`` or ``element()`` -- a URL of Gatehouse's own origin, which the pages' CSP admits, is one
  of its endpoints (``/logout``, ``/oauth2/authorize``), and a stylesheet must not call them.
* ``<``, ``@``, ``javascript:``, ``vbscript:`` and ``expression(`` appear nowhere, as written or with their
  escapes resolved (``@\\69mport``, ``java\\73 cript:``).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

import tinycss2
from tinycss2 import ast

from gateway.errors import InvalidParameterException

# An escape: a backslash and 1-6 hex digits (with one optional whitespace after), or any other character.
_ESCAPE = re.compile(r"\\(?:([0-9a-fA-F]{1,6})[ \t\n\r\f]?|(.))", re.DOTALL)
_CLASS = re.compile(r"\.([A-Za-z_][\w-]*(?::[a-z-]+)?)")
_COMBINATORS = re.compile(r"[\s>+~]+")
_FORBIDDEN = ("<", "@", "javascript:", "vbscript:", "expression(")
# The functions that make a browser fetch something (CSS Values 4 §4.5 url() and src(), CSS Images 4's
# image(), image-set(), cross-fade(), element()), prefixed ones included; a string in image-set() is a URL too.
_FETCHING = re.compile(r"(?:-[a-z]+-)?(url|src|image|image-set|cross-fade|element)")
_NOT_RULES = "must be a list of rules, each a selector and its declarations in braces."


def _unescape(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            code = int(match.group(1), 16)
            return chr(code) if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else "\ufffd"
        return match.group(2)

    return _ESCAPE.sub(one, text)


def _refuse(reason: str) -> InvalidParameterException:
    return InvalidParameterException(f"CSS {reason}")


def _is_data_url(url: str) -> bool:
    return url.strip(" \t\n\r\f").lower().startswith("data:")


def _check_values(tokens: Iterable[ast.Node]) -> None:
    """A rule's declarations, at any depth: nothing unreadable, no block, nothing that fetches.

    The pages' CSP admits images from this origin and data: only, and a URL of this origin is one of its
    endpoints: ``url(/logout)`` would sign the reader out as the page loads, ``url(/oauth2/authorize?...)``
    start a sign-in. So only a ``url()`` of a data: image (which fetches nothing) is taken."""
    for token in tokens:
        if isinstance(token, ast.ParseError):
            raise _refuse(f"cannot be read: {token.message}")
        if isinstance(token, ast.CurlyBracketsBlock):
            raise _refuse(_NOT_RULES)
        if isinstance(token, ast.URLToken) and not _is_data_url(token.value):
            raise _refuse("may load nothing but data: images (a url() of an address is not allowed).")
        if isinstance(token, ast.FunctionBlock):
            fetching = _FETCHING.fullmatch(token.lower_name)
            if fetching is not None:
                arguments = [a for a in token.arguments if not isinstance(a, (ast.WhitespaceToken, ast.Comment))]
                quoted = arguments[0] if len(arguments) == 1 else None
                is_data = isinstance(quoted, ast.StringToken) and _is_data_url(quoted.value)
                if fetching.group(1) != "url" or not is_data:
                    raise _refuse("may load nothing but data: images (a url() of an address is not allowed).")
            _check_values(token.arguments)
        elif isinstance(token, (ast.ParenthesesBlock, ast.SquareBracketsBlock)):
            _check_values(token.content)


def _check_selector(prelude: list[ast.Node], classes: Collection[str]) -> None:
    selector = tinycss2.serialize(prelude)
    for one in selector.split(","):
        parts = [p for p in _COMBINATORS.split(one.strip()) if p]
        if not parts:
            raise _refuse("has a rule without a selector.")
        for part in parts:
            match = _CLASS.fullmatch(part)
            if match is None:
                raise _refuse(f"selector {part[:64]!r} is not one of the customizable classes.")
            if match.group(1) not in classes:
                raise _refuse(f"class {match.group(1).split(':')[0]} is not customizable.")


def _comments(tokens: Iterable[ast.Node]) -> Iterable[ast.Comment]:
    for token in tokens:
        if isinstance(token, ast.Comment):
            yield token
        elif isinstance(token, ast.FunctionBlock):
            yield from _comments(token.arguments)
        elif isinstance(token, (ast.CurlyBracketsBlock, ast.ParenthesesBlock, ast.SquareBracketsBlock)):
            yield from _comments(token.content)


def _comment_left_open(css: str) -> bool:
    """Whether the text ends inside a comment, which the tokenizer takes to the end (§4.3.2): the last comment
    is open when its text runs to the end, where a closed one is followed by ``*/``."""
    found = list(_comments(tinycss2.parse_component_value_list(css, skip_comments=False)))
    if not found:
        return False
    last = max(found, key=lambda c: (c.source_line, c.source_column))
    # Positions count in the text as the tokenizer preprocesses it (§3.3: CR, CRLF and FF become LF).
    text = css.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n")
    line_start = 0
    for _ in range(last.source_line - 1):
        line_start = text.index("\n", line_start) + 1
    return text[line_start + last.source_column - 1 + 2 :] == last.value


def check_css(css: str, classes: Collection[str]) -> None:
    """Raise InvalidParameterException unless ``css`` is rules that style only ``classes``."""
    nodes = tinycss2.parse_stylesheet(css, skip_comments=True, skip_whitespace=True)
    for node in nodes:
        if isinstance(node, ast.ParseError):
            raise _refuse(_NOT_RULES if node.kind == "invalid" else f"cannot be read: {node.message}")
        if not isinstance(node, ast.QualifiedRule):  # an at-rule
            raise _refuse("contains content that is not allowed.")
        _check_values(node.prelude)
        _check_values(node.content)
        _check_selector(node.prelude, classes)
    # Looked for as a browser reads the text (comments out, escapes resolved) and as written.
    text = tinycss2.serialize(nodes)
    if any(word in seen for seen in (text.lower(), _unescape(text).lower()) for word in _FORBIDDEN):
        raise _refuse("contains content that is not allowed.")
    if _comment_left_open(css):
        raise _refuse("has a comment that is not closed.")
