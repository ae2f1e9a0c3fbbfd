"""Shared set-up of the federation e2e tests: a browser without scripts that walks the authorize -> upstream ->
callback round trip (``Flow``), ID-token verification against the pool's JWKS, and pysaml2's IdP wired to a
pool's signing certificate."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

import jwt
import requests

from tests.e2e.oauth_support import CALLBACK, pkce_pair
from tests.fakes.oauth import FakeOIDC
from tests.fakes.saml import FakeSamlIdP
from tests.providers.conftest import form_fields
from tests.support import GatehouseServer


class Flow:
    """A browser without scripts: follows redirects and submits auto-posting forms by hand."""

    def __init__(self, gatehouse: GatehouseServer, client_id: str) -> None:
        self.gatehouse = gatehouse
        self.client_id = client_id
        self.http = requests.Session()
        self.verifier, self.challenge = pkce_pair()

    def authorize_url(self, **extra: str) -> str:
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": CALLBACK,
            "scope": "openid email profile",
            "state": "app-state-1",
            "code_challenge": self.challenge,
            "code_challenge_method": "S256",
            **extra,
        }
        return f"{self.gatehouse.url}/oauth2/authorize?{urlencode(params)}"

    def run(self, url: str, *, tamper: Any = None) -> requests.Response:
        """Follow the round trip until it leaves for the client's redirect URI (or stops on a page)."""
        response = self.http.get(url, allow_redirects=False)
        for _ in range(10):
            if response.is_redirect:
                location = response.headers["Location"]
                if location.startswith(CALLBACK):
                    return response
                if tamper is not None and "/oauth2/idpresponse" in location:
                    location = tamper(location)
                response = self.http.get(location, allow_redirects=False)
                continue
            fields = form_fields(response.text)
            action = response.text.split('action="', 1)[1].split('"', 1)[0] if 'action="' in response.text else None
            if response.status_code != 200 or not fields or action is None:
                return response
            response = self.http.post(action.replace("&amp;", "&"), data=fields, allow_redirects=False)
        raise AssertionError("too many steps")

    def tokens(self, code: str) -> dict[str, Any]:
        reply = self.http.post(
            f"{self.gatehouse.url}/oauth2/token",
            data={
                "grant_type": "authorization_code",
                "client_id": self.client_id,
                "code": code,
                "redirect_uri": CALLBACK,
                "code_verifier": self.verifier,
            },
        )
        assert reply.status_code == 200, reply.text
        return dict(reply.json())


def verified_id_token(gatehouse: GatehouseServer, pool_id: str, client_id: str, token: str) -> dict[str, Any]:
    keys = jwt.PyJWKClient(f"{gatehouse.url}/{pool_id}/.well-known/jwks.json")
    return dict(
        jwt.decode(
            token,
            keys.get_signing_key_from_jwt(token).key,
            algorithms=["RS256"],
            audience=client_id,
            issuer=f"{gatehouse.url}/{pool_id}",
        )
    )


def usernames(idp: Any, pool_id: str) -> set[str]:
    return {u["Username"] for u in idp.list_users(UserPoolId=pool_id)["Users"]}


@contextmanager
def saml_idp_for(gatehouse: GatehouseServer, idp: Any, pool_id: str, *, encrypt: bool = False) -> Iterator[FakeSamlIdP]:
    """pysaml2's IdP with the pool as its SP: the pool's entity ID, ACS URL and signing certificate (which
    the IdP also encrypts assertions to when ``encrypt``)."""
    certificate = idp.get_signing_certificate(UserPoolId=pool_id)["Certificate"]
    with FakeSamlIdP(
        sp_entity_id=f"urn:amazon:cognito:sp:{pool_id}",
        acs_url=f"{gatehouse.url}/saml2/idpresponse",
        sp_cert_pem=f"-----BEGIN CERTIFICATE-----\n{certificate}\n-----END CERTIFICATE-----\n",
    ) as server:
        if encrypt:
            server.encrypt = True
        yield server


def corp_details(corp: FakeOIDC, **extra: str) -> dict[str, str]:
    """``ProviderDetails`` of an OIDC provider configured by discovery from the fake's issuer."""
    return {
        "client_id": corp.client_id,
        "client_secret": corp.client_secret,
        "authorize_scopes": "openid email",
        "oidc_issuer": corp.issuer,
        "attributes_request_method": "GET",
        **extra,
    }
