"""gateway.uris.iri_to_uri: RFC 3987 §3.1's mapping, as every redirect's Location goes out."""

from __future__ import annotations

import pytest

from gateway.uris import iri_to_uri


@pytest.mark.parametrize(
    ("iri", "uri"),
    [
        ("https://app.example.com/cb?x=1&y=%20#f", "https://app.example.com/cb?x=1&y=%20#f"),  # a URI: as it is
        ("https://app.example.com/café", "https://app.example.com/caf%C3%A9"),
        ("https://bücher.example/", "https://b%C3%BCcher.example/"),
        ('https://a.example/"<>\\^`{|}', "https://a.example/%22%3C%3E%5C%5E%60%7B%7C%7D"),
        ("https://a.example/\U0001f600", "https://a.example/%F0%9F%98%80"),
        ("myapp://cb/ü", "myapp://cb/%C3%BC"),
    ],
)
def test_iri_to_uri(iri: str, uri: str) -> None:
    assert iri_to_uri(iri) == uri
    assert iri_to_uri(uri) == uri  # idempotent: a URI maps to itself


def test_nothing_that_could_split_a_header_survives() -> None:
    for hostile in ("https://a.example/\r\nSet-Cookie: x=1", "https://a.example/\x00\x7f\t \u2028", "\ud800"):
        mapped = iri_to_uri(hostile)
        assert mapped.isascii() and mapped.isprintable() and " " not in mapped
