"""The pure parts of managed login branding: checking assets, merging settings, choosing the pages' logo."""

from __future__ import annotations

import base64

import pytest

from gateway.errors import InvalidParameterException
from gateway.services.branding import _check_assets, _merged, logo_asset
from gateway.storage.base import ManagedLoginBrandingRecord

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"rest").decode()
SVG = base64.b64encode(b'<?xml version="1.0"?><SVG xmlns="http://www.w3.org/2000/svg"/>').decode()


def _asset(category: str, mode: str = "LIGHT", extension: str = "PNG", data: str = PNG) -> dict[str, str]:
    return {"Category": category, "ColorMode": mode, "Extension": extension, "Bytes": data}


def _record(*assets: dict[str, str]) -> ManagedLoginBrandingRecord:
    return ManagedLoginBrandingRecord("us-east-1_a", "id", "client", False, None, list(assets), 0.0, 0.0)


def test_assets_are_checked_against_their_extension() -> None:
    assert _check_assets([_asset("FORM_LOGO"), _asset("FAVICON_SVG", extension="SVG", data=SVG)])
    webp = base64.b64encode(b"RIFF\x00\x00\x00\x00WEBPVP8 ").decode()
    ico = base64.b64encode(b"\x00\x00\x01\x00\x01\x00").decode()
    jpeg = base64.b64encode(b"\xff\xd8\xff\xe0").decode()
    assert len(_check_assets([_asset("A", extension="WEBP", data=webp), _asset("B", extension="ICO", data=ico)])) == 2
    assert _check_assets([_asset("C", extension="JPEG", data=jpeg)])[0]["Extension"] == "JPEG"
    for bad in (
        _asset("FORM_LOGO", extension="JPEG"),  # PNG bytes called JPEG
        _asset("FORM_LOGO", extension="SVG", data=base64.b64encode(b"\xff\xfe not text").decode()),
        _asset("FORM_LOGO", extension="GIF"),
        _asset("FORM_LOGO", data="not base64!"),
        _asset("FORM_LOGO", data=""),
    ):
        with pytest.raises(InvalidParameterException):
            _check_assets([bad])


def test_unknown_members_are_not_kept() -> None:
    checked = _check_assets([{**_asset("FORM_LOGO"), "Url": "https://evil.example/x.png"}])
    assert set(checked[0]) == {"Category", "ColorMode", "Extension", "Bytes"}


def test_settings_merge_objects_and_replace_the_rest() -> None:
    stored = {"a": {"b": 1, "c": [1, 2]}, "d": "x"}
    assert _merged(stored, {"a": {"c": [3]}, "e": None}) == {"a": {"b": 1, "c": [3]}, "d": "x", "e": None}
    assert _merged(stored, {"a": 5}) == {"a": 5, "d": "x"}
    assert stored == {"a": {"b": 1, "c": [1, 2]}, "d": "x"}  # the stored document is not changed in place


def test_logo_prefers_the_form_logo_in_light_mode() -> None:
    header = _asset("PAGE_HEADER_LOGO")
    form_dynamic = _asset("FORM_LOGO", mode="DYNAMIC")
    form_light = _asset("FORM_LOGO")
    assert logo_asset(_record(header, form_dynamic, form_light)) == form_light
    assert logo_asset(_record(header, form_dynamic)) == form_dynamic
    assert logo_asset(_record(header, _asset("FORM_LOGO", mode="DARK"))) == header
    assert logo_asset(_record(_asset("FORM_LOGO", mode="DARK"), _asset("PAGE_BACKGROUND"))) is None
