"""The check SetUICustomization's CSS passes before the hosted pages link it.

Cognito's rules ("Customizing hosted UI (classic) branding"): only its ``*-customizable`` classes may be
styled, and property values may hold neither ``@import``, ``@supports``, ``@page`` or ``@media`` statements nor
JavaScript. The stylesheet is read as a browser would before it is judged:

* comments are taken out first, so ``.banner-customizable /* { */ , input { ... }`` cannot hide a selector
  from the check inside what looks like a comment's brace;
* escapes are resolved (CSS Syntax Level 3 §4.3.7) before looking for forbidden words, so ``@\\69mport`` or
  ``java\\73 cript:`` are seen as the ``@import`` and ``javascript:`` they are to a browser; a selector may hold
  no escape at all;
* nothing may be fetched: no ``url()`` but of a ``data:`` image, no ``image-set()``, ``image()``, ``src()``,
  ``cross-fade()`` or ``element()`` -- a URL of Gatehouse's own origin, which the pages' CSP admits, is one
  of its endpoints (``/logout``, ``/oauth2/authorize``), and a stylesheet must not call them;
* every rule's selector must be made of the customizable classes alone (joined by combinators or commas):
  no element, id, attribute, universal or pseudo-element selector, and no at-rule of any kind.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from gateway.errors import InvalidParameterException

_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
# An escape: a backslash and 1-6 hex digits (with one optional whitespace after), or any other character.
_ESCAPE = re.compile(r"\\(?:([0-9a-fA-F]{1,6})[ \t\n\r\f]?|(.))", re.DOTALL)
_CLASS = re.compile(r"\.([A-Za-z_][\w-]*(?::[a-z-]+)?)")
_COMBINATORS = re.compile(r"[\s>+~]+")
_FORBIDDEN = ("<", "@", "javascript:", "vbscript:", "expression(")
# The functions that make a browser fetch something (CSS Values 4 §4.5 url() and src(), CSS Images 4's
# image(), image-set(), cross-fade(), element()), prefixed ones included; a string in image-set() is a URL too.
_FETCHING = re.compile(r"(?<![\w-])(?:-[a-z]+-)?(url|src|image|image-set|cross-fade|element)\s*\(")


def _unescape(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            code = int(match.group(1), 16)
            return chr(code) if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else "\ufffd"
        return match.group(2)

    return _ESCAPE.sub(one, text)


def _loads_something(text: str) -> bool:
    """Whether the stylesheet (comments out) makes the browser fetch anything, read as a browser reads it.

    The pages' CSP admits images from this origin and data: only, and a URL of this origin is one of its
    endpoints: ``url(/logout)`` would sign the reader out as the page loads, ``url(/oauth2/authorize?...)``
    start a sign-in. So only a ``url()`` of a data: image (which fetches nothing) is taken."""
    plain = _unescape(text).lower()
    for match in _FETCHING.finditer(plain):
        if match.group(1) != "url" or not plain[match.end() :].lstrip(" \t\n\r\f\"'").startswith("data:"):
            return True
    return False


def _refuse(reason: str) -> InvalidParameterException:
    return InvalidParameterException(f"CSS {reason}")


def check_css(css: str, classes: Collection[str]) -> None:
    """Raise InvalidParameterException unless ``css`` is rules that style only ``classes``."""
    text = _COMMENT.sub(" ", css)
    if "/*" in text:
        raise _refuse("has a comment that is not closed.")
    # The words are looked for as written and as a browser reads them; the rules are read as written, where a
    # brace is a brace (an escaped one is part of a name), and a selector may hold no escape at all.
    if any(word in seen for seen in (text.lower(), _unescape(text).lower()) for word in _FORBIDDEN):
        raise _refuse("contains content that is not allowed.")
    if _loads_something(text):
        raise _refuse("may load nothing but data: images (a url() of an address is not allowed).")
    *rules, rest = text.split("}")
    if rest.strip():
        raise _refuse("must be a list of rules, each a selector and its declarations in braces.")
    for rule in rules:
        selector, brace, declarations = rule.partition("{")
        if not brace or "{" in declarations:
            raise _refuse("must be a list of rules, each a selector and its declarations in braces.")
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
