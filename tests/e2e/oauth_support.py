"""Helpers for the OAuth e2e tests: a pool with app clients, and a cookie-keeping HTTP client that signs in
through the hosted pages as a browser without scripts would (GET the form, POST it with its CSRF token)."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import requests

CALLBACK = "https://app.example.com/callback"
LOGOUT = "https://app.example.com/signed-out"
PASSWORD = "Correct-Horse-9"

_CSRF = re.compile(r'name="_csrf" value="([^"]+)"')
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


@dataclass
class OAuthPool:
    pool_id: str
    public_id: str  # a public client: code flow, PKCE required
    secret_id: str  # a confidential client: code flow
    secret: str
    issuer: str


def make_pool(idp: Any, base_url: str, name: str, **pool_args: Any) -> OAuthPool:
    pool_id = idp.create_user_pool(PoolName=name, **pool_args)["UserPool"]["Id"]
    common = {
        "AllowedOAuthFlowsUserPoolClient": True,
        "AllowedOAuthFlows": ["code"],
        "AllowedOAuthScopes": ["openid", "email", "profile"],
        "CallbackURLs": [CALLBACK, "http://localhost:8080/cb"],
        "LogoutURLs": [LOGOUT],
        "SupportedIdentityProviders": ["COGNITO"],
    }
    public = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="spa", **common)["UserPoolClient"]
    confidential = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="web",
        GenerateSecret=True,
        RefreshTokenRotation={"Feature": "ENABLED", "RetryGracePeriodSeconds": 0},
        **{**common, "AllowedOAuthScopes": ["openid", "email", "profile", "aws.cognito.signin.user.admin"]},
    )["UserPoolClient"]
    return OAuthPool(
        pool_id, public["ClientId"], confidential["ClientId"], confidential["ClientSecret"], f"{base_url}/{pool_id}"
    )


def make_user(idp: Any, pool_id: str, username: str, email: str | None = None) -> None:
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username=username,
        UserAttributes=[
            {"Name": "email", "Value": email or f"{username}@example.com"},
            {"Name": "email_verified", "Value": "true"},
            {"Name": "name", "Value": f"Name of {username}"},
        ],
        MessageAction="SUPPRESS",
    )
    idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)


def query_of(url: str) -> dict[str, str]:
    parts = urlsplit(url)
    return {k: v[0] for k, v in parse_qs(parts.query).items()}


def fragment_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).fragment).items()}


class Browser:
    """requests with a cookie jar, following redirects by hand so each hop can be checked."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url
        self.http = requests.Session()

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return self.http.get(urljoin(self.base, url), allow_redirects=False, timeout=10, **kwargs)

    def post(self, url: str, data: dict[str, str], **kwargs: Any) -> requests.Response:
        return self.http.post(urljoin(self.base, url), data=data, allow_redirects=False, timeout=10, **kwargs)

    def follow(self, response: requests.Response, *, stop_at: str = CALLBACK) -> requests.Response:
        """Follow redirects inside Gatehouse; stop at one that leaves it (to the app)."""
        while response.status_code in (301, 302, 303, 307, 308):
            location = response.headers["Location"]
            if not urljoin(self.base, location).startswith(self.base):
                return response
            response = self.get(location)
        return response

    @staticmethod
    def form_fields(page: requests.Response) -> dict[str, str]:
        return {name: html.unescape(value) for name, value in _HIDDEN.findall(page.text)}

    @staticmethod
    def form_action(page: requests.Response) -> str:
        match = re.search(r'<form method="post" action="([^"]+)"', page.text)
        assert match, page.text
        return html.unescape(match.group(1))

    def submit(self, page: requests.Response, fields: dict[str, str]) -> requests.Response:
        data = {**self.form_fields(page), **fields}
        return self.post(self.form_action(page), data)

    def authorize_url(self, client_id: str, *, prefix: str = "", **params: str) -> str:
        query = {"client_id": client_id, "response_type": "code", "redirect_uri": CALLBACK, **params}
        return f"{prefix}/oauth2/authorize?{urlencode(query)}"

    def sign_in(self, authorize_url: str, username: str, password: str = PASSWORD) -> requests.Response:
        """Authorize, sign in on the login page; the response that leaves Gatehouse (the redirect back)."""
        page = self.follow(self.get(authorize_url))
        if page.status_code in (301, 302, 303):
            return page  # signed in already (single sign-on)
        assert page.status_code == 200 and "Sign in" in page.text, page.text
        return self.submit(page, {"username": username, "password": password})


def signup_page(gatehouse: Any, pool_id: str, client_id: str) -> str:
    """The hosted sign-up page of a client, reached as a browser reaches it: authorize, then the login page's
    link."""
    browser = Browser(gatehouse.url)
    _, challenge = pkce_pair()
    login = browser.follow(
        browser.get(browser.authorize_url(client_id, code_challenge=challenge, code_challenge_method="S256"))
    )
    assert login.status_code == 200, login.text
    page = browser.get(f"/{pool_id}/signup?rid={query_of(login.url)['rid']}")
    assert page.status_code == 200, page.text
    return page.text


def terms_links(page: str) -> dict[str, str]:
    """A hosted sign-up page's terms links: their text to their target."""
    found = re.findall(r'<a href="([^"]+)" target="_blank" rel="noopener noreferrer">([^<]+)</a>', page)
    return {text: html.unescape(href) for href, text in found}
