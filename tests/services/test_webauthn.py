"""The passkey relying party's settings: WebAuthnConfiguration as SetUserPoolMfaConfig takes it, and the
relying party ID and origins that follow from it and from the server's public URL."""

from __future__ import annotations

from typing import Any, cast

import pytest

from gateway.errors import InvalidParameterException, WebAuthnConfigurationMissingException, WebAuthnNotEnabledException
from gateway.services.pools import PoolView
from gateway.services.webauthn import PasskeyService, allowed_first_factors, webauthn_configuration, webauthn_settings
from gateway.storage.base import PoolRecord, Store


def pool(**settings: Any) -> PoolView:
    return PoolView(PoolRecord("us-east-1_Passkeys", "passkeys", settings, 0.0, 0.0))


def service(public_url: str) -> PasskeyService:
    return PasskeyService(cast(Store, None), public_url)  # no store is touched by what is tested here


PASSKEY_POLICY = {"SignInPolicy": {"AllowedFirstAuthFactors": ["PASSWORD", "WEB_AUTHN"]}}


def test_configuration_is_checked() -> None:
    assert webauthn_configuration({}) == {}
    given = {"RelyingPartyId": "login.example.com", "UserVerification": "required"}
    assert webauthn_configuration(given) == given
    assert webauthn_configuration({"FactorConfiguration": "MULTI_FACTOR_WITH_USER_VERIFICATION"}) == {
        "FactorConfiguration": "MULTI_FACTOR_WITH_USER_VERIFICATION"
    }
    for bad in (
        {"RelyingPartyId": "https://example.com"},
        {"RelyingPartyId": "example.com:8443"},
        {"RelyingPartyId": "example.com/path"},
        {"RelyingPartyId": "Example.COM"},
        {"RelyingPartyId": "a" * 128},
        {"UserVerification": "discouraged"},
        {"FactorConfiguration": "MAYBE"},
    ):
        with pytest.raises(InvalidParameterException):
            webauthn_configuration(bad)


def test_defaults() -> None:
    assert webauthn_settings(pool()) == {"UserVerification": "preferred", "FactorConfiguration": "SINGLE_FACTOR"}
    assert allowed_first_factors(pool()) == ["PASSWORD"]
    assert allowed_first_factors(pool(Policies=PASSKEY_POLICY)) == ["PASSWORD", "WEB_AUTHN"]


def test_relying_party_follows_the_public_url() -> None:
    rp = service("https://id.example.com/base").relying_party(pool())
    assert (rp.id, rp.origins, rp.user_verification) == ("id.example.com", ["https://id.example.com"], "preferred")
    rp = service("http://localhost:9229").relying_party(pool())
    assert (rp.id, rp.origins) == ("localhost", ["http://localhost:9229"])


def test_a_configured_relying_party_adds_its_origin() -> None:
    configured = pool(WebAuthnConfiguration={"RelyingPartyId": "example.com", "UserVerification": "required"})
    rp = service("https://id.example.com").relying_party(configured)
    assert (rp.id, rp.origins, rp.user_verification) == (
        "example.com",
        ["https://id.example.com", "https://example.com"],
        "required",
    )


def test_passkeys_must_be_enabled_and_need_a_domain() -> None:
    with pytest.raises(WebAuthnNotEnabledException):
        service("https://id.example.com").check_enabled(pool())
    service("https://id.example.com").check_enabled(pool(Policies=PASSKEY_POLICY))
    for address in ("http://127.0.0.1:9229", "http://[::1]:9229"):
        with pytest.raises(WebAuthnConfigurationMissingException):
            service(address).check_enabled(pool(Policies=PASSKEY_POLICY))
    configured = pool(Policies=PASSKEY_POLICY, WebAuthnConfiguration={"RelyingPartyId": "example.com"})
    service("http://127.0.0.1:9229").check_enabled(configured)
