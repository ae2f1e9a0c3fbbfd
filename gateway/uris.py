"""Redirect targets as URIs: the IRI-to-URI mapping of RFC 3987 §3.1.

Cognito registers callback and sign-out URLs by the pattern ``[\\p{L}\\p{M}\\p{S}\\p{N}\\p{P}]+`` (botocore's
``RedirectUrlType``): letters of any script, and punctuation and symbols that a URI may not hold as they are
(``"``, ``<``, ``>``, ``\\``, ``^``, `````, ``{``, ``|``, ``}``). An HTTP ``Location`` is a URI-reference
(RFC 9110 §10.2.2, RFC 3986), so every such character is sent percent-encoded as the UTF-8 octets it stands
for (RFC 3987 §3.1 step 2, and its note on the US-ASCII characters not allowed in URIs). Nothing else is
changed: ``%`` stays as it is (an existing escape), and so does every character a URI allows, so a URI maps to
itself and the registered string stays what ``redirect_uri`` is compared with, exactly.
"""

from __future__ import annotations

import re
from urllib.parse import quote

# RFC 3986 §2: the unreserved and reserved characters, and "%" of the escapes already there.
_URI_CHARACTERS = "!#$%&'()*+,-./0123456789:;=?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]_abcdefghijklmnopqrstuvwxyz~"
_URI = re.compile(r"[!#$%&'()*+,\-./0-9:;=?@A-Z\[\]_a-z~]*")


def iri_to_uri(iri: str) -> str:
    """``iri`` as a URI (RFC 3987 §3.1): a character a URI cannot hold becomes the percent-encoded octets of
    its UTF-8 encoding; a URI is returned as it is. Control characters and spaces are escaped too, so the
    result can never split or end an HTTP header."""
    if _URI.fullmatch(iri):
        return iri
    # surrogatepass: a lone surrogate (refused at registration, but never a reason to fail here) is escaped.
    return quote(iri, safe=_URI_CHARACTERS, errors="surrogatepass")
