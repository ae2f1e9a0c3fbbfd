"""Managed login branding over the wire with boto3: CreateManagedLoginBranding, Describe (by id and by client),
Update (merging what it leaves out) and Delete; Cognito's errors and limits (40 assets, 1,000,000 bytes each,
one style per client, unknown pool, client or id); a style goes with its client; and the style's logo shown
on the hosted /login page of its client and served from the URL the page names."""

from __future__ import annotations

import base64
import re
import struct
import uuid
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.oauth_support import Browser, OAuthPool, make_pool, pkce_pair
from tests.support import GatehouseServer, MailServer

MISSING_ID = "0f0e0d0c-0b0a-4909-8807-060504030201"


def _png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A real PNG file of one colour (so the served bytes can be told apart and checked as an image)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


RED_LOGO = _png(4, 2, (200, 0, 0))
BLUE_LOGO = _png(3, 3, (0, 0, 200))
DARK_LOGO = _png(2, 2, (10, 10, 10))
SVG_ICON = b'<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"><rect width="1" height="1"/></svg>'


@pytest.fixture(scope="module")
def gatehouse(tmp_path_factory: pytest.TempPathFactory, mail: MailServer) -> Iterator[GatehouseServer]:
    """Cognito takes branding requests up to 2 MB; this server accepts bodies that large too, so the asset
    size limit (not the body limit) is what a 1 MB + 1 byte image meets."""
    data_dir: Path = tmp_path_factory.mktemp("gatehouse") / "data"
    config = f"""version: 1
server:
  max_body_bytes: 2500000
  smtp:
    host: 127.0.0.1
    port: {mail.port}
pools: []
"""
    server = GatehouseServer(data_dir, config=config)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pool(gatehouse: GatehouseServer, idp: Any) -> OAuthPool:
    return make_pool(idp, gatehouse.url, "branding")


def _error(raised: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = raised.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def _asset(category: str, data: bytes, mode: str = "LIGHT", extension: str = "PNG", **extra: Any) -> dict[str, Any]:
    return {"Category": category, "ColorMode": mode, "Extension": extension, "Bytes": data, **extra}


def _new_client(idp: Any, pool_id: str, name: str) -> str:
    client_id: str = idp.create_user_pool_client(UserPoolId=pool_id, ClientName=name)["UserPoolClient"]["ClientId"]
    return client_id


def test_create_describe_update_delete_round_trip(idp: Any, pool: OAuthPool) -> None:
    client = _new_client(idp, pool.pool_id, "round-trip")
    settings = {"components": {"form": {"borderRadius": 8.0, "logo": {"location": "CENTER"}}}, "categories": {}}
    created = idp.create_managed_login_branding(
        UserPoolId=pool.pool_id,
        ClientId=client,
        Settings=settings,
        Assets=[
            _asset("FORM_LOGO", RED_LOGO, ResourceId="logo-1"),
            _asset("FAVICON_SVG", SVG_ICON, mode="DYNAMIC", extension="SVG"),
        ],
    )["ManagedLoginBranding"]
    branding_id = created["ManagedLoginBrandingId"]
    assert uuid.UUID(branding_id).version == 4 and str(uuid.UUID(branding_id)) == branding_id
    assert created["UserPoolId"] == pool.pool_id and created["UseCognitoProvidedValues"] is False
    assert created["Settings"] == settings
    assert isinstance(created["CreationDate"], datetime) and created["LastModifiedDate"] == created["CreationDate"]
    stored = [(a["Category"], a["Bytes"]) for a in created["Assets"]]
    assert stored == [("FORM_LOGO", RED_LOGO), ("FAVICON_SVG", SVG_ICON)]
    assert created["Assets"][0]["ResourceId"] == "logo-1"

    by_id = idp.describe_managed_login_branding(UserPoolId=pool.pool_id, ManagedLoginBrandingId=branding_id)
    by_client = idp.describe_managed_login_branding_by_client(UserPoolId=pool.pool_id, ClientId=client)
    merged = idp.describe_managed_login_branding_by_client(
        UserPoolId=pool.pool_id, ClientId=client, ReturnMergedResources=True
    )
    for answer in (by_id, by_client, merged):
        assert answer["ManagedLoginBranding"] == created

    # An update changes what it names and keeps the rest: settings merge, an asset replaces its slot.
    updated = idp.update_managed_login_branding(
        UserPoolId=pool.pool_id,
        ManagedLoginBrandingId=branding_id,
        Settings={"components": {"form": {"borderRadius": 2.0}}},
        Assets=[_asset("FORM_LOGO", BLUE_LOGO), _asset("FORM_LOGO", DARK_LOGO, mode="DARK")],
    )["ManagedLoginBranding"]
    assert updated["Settings"] == {
        "components": {"form": {"borderRadius": 2.0, "logo": {"location": "CENTER"}}},
        "categories": {},
    }
    slots = {(a["Category"], a["ColorMode"]): a["Bytes"] for a in updated["Assets"]}
    assert slots == {
        ("FORM_LOGO", "LIGHT"): BLUE_LOGO,
        ("FAVICON_SVG", "DYNAMIC"): SVG_ICON,
        ("FORM_LOGO", "DARK"): DARK_LOGO,
    }
    assert updated["CreationDate"] == created["CreationDate"]
    assert updated["LastModifiedDate"] >= created["LastModifiedDate"]
    again = idp.describe_managed_login_branding(UserPoolId=pool.pool_id, ManagedLoginBrandingId=branding_id)
    assert again["ManagedLoginBranding"] == updated

    # Back to Cognito's defaults: the settings and assets go.
    reset = idp.update_managed_login_branding(
        UserPoolId=pool.pool_id, ManagedLoginBrandingId=branding_id, UseCognitoProvidedValues=True
    )["ManagedLoginBranding"]
    assert reset["UseCognitoProvidedValues"] is True and reset["Assets"] == [] and "Settings" not in reset

    idp.delete_managed_login_branding(UserPoolId=pool.pool_id, ManagedLoginBrandingId=branding_id)
    with pytest.raises(ClientError) as gone:
        idp.describe_managed_login_branding(UserPoolId=pool.pool_id, ManagedLoginBrandingId=branding_id)
    assert _error(gone) == ("ResourceNotFoundException", 400)
    with pytest.raises(ClientError) as twice:
        idp.delete_managed_login_branding(UserPoolId=pool.pool_id, ManagedLoginBrandingId=branding_id)
    assert _error(twice) == ("ResourceNotFoundException", 400)
    # The client may have a style again.
    fresh = idp.create_managed_login_branding(UserPoolId=pool.pool_id, ClientId=client, UseCognitoProvidedValues=True)
    assert fresh["ManagedLoginBranding"]["ManagedLoginBrandingId"] != branding_id


def test_one_style_per_client(idp: Any, pool: OAuthPool) -> None:
    client = _new_client(idp, pool.pool_id, "one-style")
    first = idp.create_managed_login_branding(UserPoolId=pool.pool_id, ClientId=client, UseCognitoProvidedValues=True)
    with pytest.raises(ClientError) as exists:
        idp.create_managed_login_branding(UserPoolId=pool.pool_id, ClientId=client, Settings={"a": 1})
    assert _error(exists) == ("ManagedLoginBrandingExistsException", 400)
    kept = idp.describe_managed_login_branding_by_client(UserPoolId=pool.pool_id, ClientId=client)
    assert kept["ManagedLoginBranding"] == first["ManagedLoginBranding"]


def test_unknown_pool_client_and_id(idp: Any, pool: OAuthPool) -> None:
    client = _new_client(idp, pool.pool_id, "unknowns")
    other_pool = idp.create_user_pool(PoolName="branding-other")["UserPool"]["Id"]
    other_client = _new_client(idp, other_pool, "elsewhere")
    cases = [
        lambda: idp.create_managed_login_branding(UserPoolId=pool.pool_id, ClientId="nosuchclient0000000000000"),
        # A client of another pool is unknown in this one.
        lambda: idp.create_managed_login_branding(UserPoolId=pool.pool_id, ClientId=other_client),
        lambda: idp.create_managed_login_branding(UserPoolId="us-east-1_NoSuchPol", ClientId=client),
        lambda: idp.describe_managed_login_branding(UserPoolId=pool.pool_id, ManagedLoginBrandingId=MISSING_ID),
        lambda: idp.describe_managed_login_branding_by_client(UserPoolId=pool.pool_id, ClientId=client),
        lambda: idp.update_managed_login_branding(
            UserPoolId=pool.pool_id, ManagedLoginBrandingId=MISSING_ID, Settings={"a": 1}
        ),
        lambda: idp.delete_managed_login_branding(UserPoolId=pool.pool_id, ManagedLoginBrandingId=MISSING_ID),
    ]
    for call in cases:
        with pytest.raises(ClientError) as missing:
            call()
        assert _error(missing) == ("ResourceNotFoundException", 400)
    # A style is found only in its own pool.
    theirs = idp.create_managed_login_branding(UserPoolId=other_pool, ClientId=other_client, Settings={"x": 1})
    their_id = theirs["ManagedLoginBranding"]["ManagedLoginBrandingId"]
    for call in (
        lambda: idp.describe_managed_login_branding(UserPoolId=pool.pool_id, ManagedLoginBrandingId=their_id),
        lambda: idp.delete_managed_login_branding(UserPoolId=pool.pool_id, ManagedLoginBrandingId=their_id),
        lambda: idp.update_managed_login_branding(
            UserPoolId=pool.pool_id, ManagedLoginBrandingId=their_id, UseCognitoProvidedValues=True
        ),
    ):
        with pytest.raises(ClientError) as elsewhere:
            call()
        assert _error(elsewhere) == ("ResourceNotFoundException", 400)
    still = idp.describe_managed_login_branding(UserPoolId=other_pool, ManagedLoginBrandingId=their_id)
    assert still["ManagedLoginBranding"] == theirs["ManagedLoginBranding"]


def test_invalid_input_is_refused_and_nothing_is_stored(idp: Any, pool: OAuthPool) -> None:
    client = _new_client(idp, pool.pool_id, "invalid")
    too_many = [_asset("FORM_LOGO", RED_LOGO, ResourceId=f"r{i}") for i in range(41)]
    too_big = b"\x89PNG\r\n\x1a\n" + b"\x00" * (1_000_001 - 8)
    bad_requests: list[dict[str, Any]] = [
        {"Assets": too_many},
        {"Assets": [_asset("FORM_LOGO", too_big)]},
        {"UseCognitoProvidedValues": True, "Settings": {"a": 1}},
        {"UseCognitoProvidedValues": True, "Assets": [_asset("FORM_LOGO", RED_LOGO)]},
        {"Settings": ["not", "an", "object"]},
        {"Assets": [_asset("FORM_LOGO", b"GIF89a not a png")]},  # the bytes are not what Extension says
        {"Assets": [_asset("FORM_LOGO", b"<html><script>alert(1)</script>", extension="SVG")]},
        {"Assets": [{"Category": "FORM_LOGO", "ColorMode": "LIGHT", "Extension": "PNG"}]},  # no bytes
        {"Assets": [_asset("FORM_LOGO", RED_LOGO), _asset("FORM_LOGO", BLUE_LOGO)]},  # one slot twice
        {"Assets": [_asset("NOT_A_CATEGORY", RED_LOGO)]},
        {"Assets": [_asset("FORM_LOGO", RED_LOGO, ResourceId="no/slashes")]},
    ]
    for request in bad_requests:
        with pytest.raises(ClientError) as refused:
            idp.create_managed_login_branding(UserPoolId=pool.pool_id, ClientId=client, **request)
        assert _error(refused) == ("InvalidParameterException", 400), request.keys()
    with pytest.raises(ClientError) as none:
        idp.describe_managed_login_branding_by_client(UserPoolId=pool.pool_id, ClientId=client)
    assert _error(none) == ("ResourceNotFoundException", 400)
    with pytest.raises(ClientError) as bad_id:
        idp.describe_managed_login_branding(UserPoolId=pool.pool_id, ManagedLoginBrandingId="not-a-uuid")
    assert _error(bad_id) == ("InvalidParameterException", 400)


def test_limits_at_the_edge_and_on_update(idp: Any, pool: OAuthPool) -> None:
    client = _new_client(idp, pool.pool_id, "limits")
    largest = b"\x89PNG\r\n\x1a\n" + b"\x00" * (1_000_000 - 8)
    created = idp.create_managed_login_branding(
        UserPoolId=pool.pool_id, ClientId=client, Assets=[_asset("PAGE_BACKGROUND", largest)]
    )["ManagedLoginBranding"]
    assert created["Assets"][0]["Bytes"] == largest
    branding_id = created["ManagedLoginBrandingId"]
    categories = ["FAVICON_ICO", "FAVICON_SVG", "EMAIL_GRAPHIC", "SMS_GRAPHIC", "AUTH_APP_GRAPHIC", "PASSWORD_GRAPHIC"]
    categories += ["PASSKEY_GRAPHIC", "PAGE_HEADER_LOGO", "PAGE_HEADER_BACKGROUND", "PAGE_FOOTER_LOGO"]
    categories += ["PAGE_FOOTER_BACKGROUND", "FORM_BACKGROUND", "FORM_LOGO", "IDP_BUTTON_ICON"]
    slots = [(c, m) for c in categories for m in ("LIGHT", "DARK", "DYNAMIC")][:39]
    forty = [_asset(c, RED_LOGO, mode=m) for c, m in slots]
    updated = idp.update_managed_login_branding(
        UserPoolId=pool.pool_id, ManagedLoginBrandingId=branding_id, Assets=forty
    )["ManagedLoginBranding"]
    assert len(updated["Assets"]) == 40
    # One more slot would make 41 once merged with the stored ones.
    with pytest.raises(ClientError) as over:
        idp.update_managed_login_branding(
            UserPoolId=pool.pool_id,
            ManagedLoginBrandingId=branding_id,
            Assets=[_asset("PAGE_BACKGROUND", RED_LOGO, mode="DARK")],
        )
    assert _error(over) == ("InvalidParameterException", 400)
    with pytest.raises(ClientError) as unnamed:
        idp.update_managed_login_branding(UserPoolId=pool.pool_id, Settings={"a": 1})
    assert _error(unnamed) == ("InvalidParameterException", 400)
    stored = idp.describe_managed_login_branding(UserPoolId=pool.pool_id, ManagedLoginBrandingId=branding_id)
    assert len(stored["ManagedLoginBranding"]["Assets"]) == 40 and "Settings" not in stored["ManagedLoginBranding"]


def test_unsigned_calls_are_refused(public_idp: Any, idp: Any, pool: OAuthPool) -> None:
    client = _new_client(idp, pool.pool_id, "unsigned")
    with pytest.raises(ClientError) as refused:
        public_idp.create_managed_login_branding(UserPoolId=pool.pool_id, ClientId=client, Settings={"a": 1})
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] in (400, 403)
    with pytest.raises(ClientError) as none:
        idp.describe_managed_login_branding_by_client(UserPoolId=pool.pool_id, ClientId=client)
    assert _error(none) == ("ResourceNotFoundException", 400)


def test_style_goes_with_its_client_and_pool(idp: Any, pool: OAuthPool) -> None:
    client = _new_client(idp, pool.pool_id, "doomed")
    kept_client = _new_client(idp, pool.pool_id, "kept")
    doomed = idp.create_managed_login_branding(UserPoolId=pool.pool_id, ClientId=client, Settings={"a": 1})
    kept = idp.create_managed_login_branding(UserPoolId=pool.pool_id, ClientId=kept_client, Settings={"b": 2})
    idp.delete_user_pool_client(UserPoolId=pool.pool_id, ClientId=client)
    with pytest.raises(ClientError) as gone:
        idp.describe_managed_login_branding(
            UserPoolId=pool.pool_id, ManagedLoginBrandingId=doomed["ManagedLoginBranding"]["ManagedLoginBrandingId"]
        )
    assert _error(gone) == ("ResourceNotFoundException", 400)
    still = idp.describe_managed_login_branding_by_client(UserPoolId=pool.pool_id, ClientId=kept_client)
    assert still["ManagedLoginBranding"] == kept["ManagedLoginBranding"]

    other_pool = idp.create_user_pool(PoolName="branding-doomed")["UserPool"]["Id"]
    other_client = _new_client(idp, other_pool, "c")
    theirs = idp.create_managed_login_branding(UserPoolId=other_pool, ClientId=other_client, Settings={"c": 3})
    idp.delete_user_pool(UserPoolId=other_pool)
    recreated_pool = idp.create_user_pool(PoolName="branding-after")["UserPool"]["Id"]
    with pytest.raises(ClientError) as pool_gone:
        idp.describe_managed_login_branding(
            UserPoolId=other_pool, ManagedLoginBrandingId=theirs["ManagedLoginBranding"]["ManagedLoginBrandingId"]
        )
    assert _error(pool_gone) == ("ResourceNotFoundException", 400)
    assert recreated_pool != other_pool


def _login_page(gatehouse: GatehouseServer, client_id: str) -> tuple[Browser, str]:
    browser = Browser(gatehouse.url)
    _, challenge = pkce_pair()
    page = browser.follow(
        browser.get(browser.authorize_url(client_id, code_challenge=challenge, code_challenge_method="S256"))
    )
    assert page.status_code == 200 and "Sign in" in page.text, page.text
    return browser, page.text


def _logo_src(page: str) -> str | None:
    match = re.search(r'class="logo logo-customizable" src="([^"]+)"', page)
    return match.group(1).replace("&amp;", "&") if match else None


def test_logo_is_shown_on_the_hosted_login_page_of_its_client(
    gatehouse: GatehouseServer, idp: Any, pool: OAuthPool
) -> None:
    # The public client gets a style with a light-mode form logo (and a dark one the pages do not show);
    # the confidential client has none.
    created = idp.create_managed_login_branding(
        UserPoolId=pool.pool_id,
        ClientId=pool.public_id,
        Settings={"components": {}},
        Assets=[_asset("FORM_LOGO", DARK_LOGO, mode="DARK"), _asset("FORM_LOGO", RED_LOGO)],
    )["ManagedLoginBranding"]
    browser, page = _login_page(gatehouse, pool.public_id)
    logo_url = _logo_src(page)
    assert logo_url is not None and created["ManagedLoginBrandingId"] in logo_url
    served = browser.get(logo_url)
    assert served.status_code == 200 and served.content == RED_LOGO
    assert served.headers["Content-Type"] == "image/png"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in served.headers["Content-Security-Policy"]

    _, plain_page = _login_page(gatehouse, pool.secret_id)
    assert _logo_src(plain_page) is None

    # A new light logo replaces the old one on the page (a new URL, so no cache serves the old image).
    idp.update_managed_login_branding(
        UserPoolId=pool.pool_id,
        ManagedLoginBrandingId=created["ManagedLoginBrandingId"],
        Assets=[_asset("FORM_LOGO", BLUE_LOGO)],
    )
    browser, page = _login_page(gatehouse, pool.public_id)
    new_url = _logo_src(page)
    assert new_url is not None and new_url != logo_url
    assert browser.get(new_url).content == BLUE_LOGO

    # A branding id that is not there, or in another pool, serves nothing.
    assert browser.get(f"/ui/{pool.pool_id}/branding/{MISSING_ID}/logo").status_code == 404
    assert browser.get(f"/ui/us-east-1_NoSuchPol/branding/{created['ManagedLoginBrandingId']}/logo").status_code == 404

    # Without the style the page has no logo, and the old URL serves nothing.
    idp.delete_managed_login_branding(UserPoolId=pool.pool_id, ManagedLoginBrandingId=created["ManagedLoginBrandingId"])
    browser, page = _login_page(gatehouse, pool.public_id)
    assert _logo_src(page) is None
    assert browser.get(new_url).status_code == 404


def test_page_header_logo_and_svg_are_served_safely(gatehouse: GatehouseServer, idp: Any, pool: OAuthPool) -> None:
    client = idp.create_user_pool_client(
        UserPoolId=pool.pool_id,
        ClientName="svg-logo",
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid"],
        CallbackURLs=["https://app.example.com/callback"],
        SupportedIdentityProviders=["COGNITO"],
    )["UserPoolClient"]["ClientId"]
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script><rect width="9" height="9"/></svg>'
    idp.create_managed_login_branding(
        UserPoolId=pool.pool_id,
        ClientId=client,
        Assets=[_asset("PAGE_HEADER_LOGO", svg, extension="SVG"), _asset("PAGE_BACKGROUND", BLUE_LOGO)],
    )
    browser, page = _login_page(gatehouse, client)
    logo_url = _logo_src(page)
    assert logo_url is not None
    served = browser.get(logo_url)
    assert served.status_code == 200 and served.content == svg
    assert served.headers["Content-Type"] == "image/svg+xml"
    # Opened on its own, the SVG's script cannot run: no script source is allowed, and it is sandboxed.
    policy = served.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "sandbox" in policy and "script-src" not in policy
    assert base64.b64encode(svg).decode() not in page  # the page links the image, it does not inline it


def test_concurrent_updates_lose_no_asset(gatehouse: GatehouseServer, idp: Any, pool: OAuthPool) -> None:
    client = _new_client(idp, pool.pool_id, "concurrent")
    branding_id = idp.create_managed_login_branding(UserPoolId=pool.pool_id, ClientId=client, Settings={})[
        "ManagedLoginBranding"
    ]["ManagedLoginBrandingId"]
    categories = ["EMAIL_GRAPHIC", "SMS_GRAPHIC", "AUTH_APP_GRAPHIC", "PASSWORD_GRAPHIC", "PASSKEY_GRAPHIC"]
    categories += ["PAGE_FOOTER_LOGO"]

    def update(category: str) -> str | None:
        own = gatehouse.client()  # a client per thread
        try:
            own.update_managed_login_branding(
                UserPoolId=pool.pool_id,
                ManagedLoginBrandingId=branding_id,
                Settings={category: True},
                Assets=[_asset(category, RED_LOGO)],
            )
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "ConcurrentModificationException"
            return None
        return category

    with ThreadPoolExecutor(max_workers=len(categories)) as pool_of_threads:
        done = [c for c in pool_of_threads.map(update, categories) if c is not None]
    assert done  # at least one update went through
    final = idp.describe_managed_login_branding(UserPoolId=pool.pool_id, ManagedLoginBrandingId=branding_id)
    style = final["ManagedLoginBranding"]
    # Every update that was answered with success is in the style: none overwrote another's merge.
    assert {a["Category"] for a in style["Assets"]} >= set(done)
    assert {k for k, v in style["Settings"].items() if v is True} >= set(done)
