"""Local stand-ins for the broker example's upstream identity providers, so the whole broker runs offline.

    python examples/broker/standin_idps.py --gatehouse-url http://localhost:9229 --state-dir .standin

starts three real HTTP servers that speak the real protocols with real signatures:

* Google (OpenID Connect: discovery, JWKS, RS256 ID tokens, PKCE) on ``--google-port`` (9301);
* Sign in with Apple (form_post answer, ES256 client-secret JWT checked against the key it wrote to
  ``<state-dir>/apple_key.p8``) on ``--apple-port`` (9302);
* a corporate SAML 2.0 IdP (pysaml2's own IdP: metadata, HTTP-Redirect SSO, signed assertions posted back
  through an auto-submitting form) on ``--saml-port`` (9303).

Each signs in one made-up person without asking (a stand-in, not a login page; ``--google-email`` and
``--saml-user`` pick who). The SAML stand-in neither checks AuthnRequest signatures nor encrypts assertions: it
does not know the pool's certificate. Stop with Ctrl-C. When every server is up it prints ``ready`` (and the
URLs) on stdout and writes ``<state-dir>/ready``.

This file is self-contained (aiohttp, jwcrypto, cryptography and pysaml2, all Gatehouse's own dependencies).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime
import hashlib
import html
import json
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from jwcrypto import jwk, jwt

POOL_ID = "us-east-1_Broker001"  # the pool in broker.yaml
XMLSEC = "/usr/bin/xmlsec1"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def redirect(uri: str, values: dict[str, str]) -> web.HTTPFound:
    return web.HTTPFound(uri + ("&" if "?" in uri else "?") + urlencode(values))


def auto_post(action: str, values: dict[str, str]) -> web.Response:
    """The page a browser submits by itself (OAuth form_post, the SAML HTTP-POST binding)."""
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in values.items()
    )
    page = (
        f'<html><body onload="document.forms[0].submit()"><form method="post" action="{html.escape(action)}">'
        f"{inputs}<noscript><button>Continue</button></noscript></form></body></html>"
    )
    return web.Response(text=page, content_type="text/html")


class StandInOIDC:
    """An OpenID Connect provider at Google's paths: one client, one person, consent assumed."""

    def __init__(self, url: str, *, client_id: str, client_secret: str, user: dict[str, Any]) -> None:
        self.url = url
        self.issuer = url
        self.client_id = client_id
        self.client_secret = client_secret
        self.user = user
        self.key = jwk.JWK.generate(kty="RSA", size=2048, kid="standin-1")
        self.codes: dict[str, dict[str, str]] = {}
        self.tokens: dict[str, dict[str, str]] = {}

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self.discovery)
        app.router.add_get("/o/oauth2/v2/auth", self.authorize)
        app.router.add_post("/oauth2/v4/token", self.token)
        app.router.add_get("/oauth2/v3/certs", self.jwks)
        app.router.add_get("/v1/userinfo", self.userinfo)
        return app

    async def discovery(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.url}/o/oauth2/v2/auth",
                "token_endpoint": f"{self.url}/oauth2/v4/token",
                "jwks_uri": f"{self.url}/oauth2/v3/certs",
                "userinfo_endpoint": f"{self.url}/v1/userinfo",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        )

    async def jwks(self, request: web.Request) -> web.Response:
        return web.json_response({"keys": [json.loads(self.key.export_public())]})

    def refuse(self, params: dict[str, str]) -> str | None:
        if params.get("client_id") != self.client_id or params.get("response_type") != "code":
            return "unknown client or response_type"
        if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            return "PKCE (S256) is required"
        return None

    async def authorize(self, request: web.Request) -> web.StreamResponse:
        params = dict(request.query)
        problem = self.refuse(params)
        if problem:
            return web.json_response({"error": "invalid_request", "error_description": problem}, status=400)
        code = secrets.token_urlsafe(16)
        self.codes[code] = params
        return self.answer(params["redirect_uri"], {"code": code, "state": params.get("state", "")})

    def answer(self, redirect_uri: str, values: dict[str, str]) -> web.StreamResponse:
        raise redirect(redirect_uri, values)

    def client_ok(self, form: dict[str, str]) -> bool:
        return form.get("client_id") == self.client_id and form.get("client_secret") == self.client_secret

    async def token(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        if not self.client_ok(form):
            return web.json_response({"error": "invalid_client"}, status=401)
        grant = self.codes.pop(form.get("code", ""), None)  # each code once
        if grant is None or form.get("redirect_uri") != grant["redirect_uri"]:
            return web.json_response({"error": "invalid_grant"}, status=400)
        verifier = form.get("code_verifier", "")
        if b64url(hashlib.sha256(verifier.encode()).digest()) != grant["code_challenge"]:
            return web.json_response({"error": "invalid_grant", "error_description": "PKCE"}, status=400)
        access_token = secrets.token_urlsafe(24)
        self.tokens[access_token] = grant
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": self.client_id, "iat": now, "exp": now + 600, **self.user}
        if "nonce" in grant:
            claims["nonce"] = grant["nonce"]
        id_token = jwt.JWT(header={"alg": self.alg, "kid": self.key.kid}, claims=claims)
        id_token.make_signed_token(self.key)
        return web.json_response(
            {"access_token": access_token, "token_type": "Bearer", "expires_in": 3600, "id_token": id_token.serialize()}
        )

    alg = "RS256"

    async def userinfo(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        if auth[7:] not in self.tokens:
            return web.json_response({"error": "invalid_token"}, status=401)
        return web.json_response(self.user)


class StandInApple(StandInOIDC):
    """Sign in with Apple: the answer is form_post, and the client secret is an ES256 JWT signed with the
    team's key (this stand-in made the key and wrote the private half for Gatehouse's config)."""

    def __init__(self, url: str, *, client_id: str, team_id: str, key_id: str, user: dict[str, Any]) -> None:
        super().__init__(url, client_id=client_id, client_secret="", user=user)
        self.team_id = team_id
        self.key_id = key_id
        self.team_key = jwk.JWK.generate(kty="EC", crv="P-256")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/auth/authorize", self.authorize)
        app.router.add_post("/auth/token", self.token)
        app.router.add_get("/auth/keys", self.jwks)
        return app

    def private_key_pem(self) -> str:
        return str(self.team_key.export_to_pem(private_key=True, password=None).decode())

    def answer(self, redirect_uri: str, values: dict[str, str]) -> web.StreamResponse:
        return auto_post(redirect_uri, values)

    def client_ok(self, form: dict[str, str]) -> bool:
        if form.get("client_id") != self.client_id:
            return False
        try:
            token = jwt.JWT(jwt=form.get("client_secret", ""), key=self.team_key, algs=["ES256"])
            header, claims = json.loads(token.header), json.loads(token.claims)
        except Exception:  # whatever jwcrypto raised, the secret does not verify
            return False
        return bool(
            header.get("kid") == self.key_id
            and claims.get("iss") == self.team_id
            and claims.get("sub") == self.client_id
            and claims.get("aud") == self.issuer
        )


def key_and_cert(common_name: str) -> tuple[str, str]:
    """A self-signed RSA key pair, as an operator would make with openssl."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode()


class StandInSaml:
    """A corporate SAML 2.0 IdP: pysaml2's ``saml2.server.Server`` behind aiohttp."""

    def __init__(self, url: str, *, state_dir: Path, sp_entity_id: str, acs_url: str, user: dict[str, Any]) -> None:
        from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
        from saml2.config import IdPConfig
        from saml2.server import Server

        self.url = url
        self.sp_entity_id = sp_entity_id
        self.acs_url = acs_url
        self.user = user
        key_pem, cert_pem = key_and_cert("standin-corp-idp")
        (state_dir / "saml_idp.key").write_text(key_pem)
        (state_dir / "saml_idp.crt").write_text(cert_pem)
        # pysaml2 wants the SP in its metadata; the stand-in does not know the pool's certificate, so the SP
        # entry names none (AuthnRequest signatures are not checked, assertions are not encrypted).
        sp_metadata = (
            f'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{sp_entity_id}">'
            '<md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
            f'<md:AssertionConsumerService Binding="{BINDING_HTTP_POST}" Location="{acs_url}" index="0"/>'
            "</md:SPSSODescriptor></md:EntityDescriptor>"
        )
        config = IdPConfig()
        config.load(
            {
                "entityid": f"{url}/metadata",
                "xmlsec_binary": XMLSEC,
                "key_file": str(state_dir / "saml_idp.key"),
                "cert_file": str(state_dir / "saml_idp.crt"),
                "metadata": {"inline": [sp_metadata]},
                "service": {
                    "idp": {
                        "endpoints": {
                            "single_sign_on_service": [
                                (f"{url}/sso/redirect", BINDING_HTTP_REDIRECT),
                                (f"{url}/sso/post", BINDING_HTTP_POST),
                            ]
                        },
                        "want_authn_requests_signed": False,
                        "policy": {"default": {"lifetime": {"minutes": 5}, "name_form": "unspecified"}},
                    }
                },
                "allow_unknown_attributes": True,
            }
        )
        self.server = Server(config=config)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metadata", self.metadata)
        app.router.add_get("/sso/redirect", self.sso_redirect)
        app.router.add_post("/sso/post", self.sso_post)
        return app

    async def metadata(self, request: web.Request) -> web.Response:
        from saml2.metadata import entity_descriptor

        return web.Response(text=str(entity_descriptor(self.server.config)), content_type="application/xml")

    async def sso_redirect(self, request: web.Request) -> web.Response:
        from saml2 import BINDING_HTTP_REDIRECT

        return await self._answer(request.query.get("SAMLRequest", ""), BINDING_HTTP_REDIRECT, request.query)

    async def sso_post(self, request: web.Request) -> web.Response:
        from saml2 import BINDING_HTTP_POST

        form = {k: str(v) for k, v in (await request.post()).items()}
        return await self._answer(form.get("SAMLRequest", ""), BINDING_HTTP_POST, form)

    async def _answer(self, saml_request: str, binding: str, params: Any) -> web.Response:
        relay_state = str(params.get("RelayState", ""))
        # pysaml2 parses and signs through xmlsec1 subprocesses: keep that off this server's loop too.
        try:
            response = await asyncio.to_thread(self._respond, saml_request, binding)
        except Exception as exc:  # pysaml2 raises many kinds for a bad request
            return web.Response(text=f"bad AuthnRequest: {type(exc).__name__}", status=400)
        return auto_post(self.acs_url, {"SAMLResponse": response, "RelayState": relay_state})

    def _respond(self, saml_request: str, binding: str) -> str:
        from saml2 import samlp
        from saml2.saml import (
            NAME_FORMAT_UNSPECIFIED,
            NAMEID_FORMAT_PERSISTENT,
            Attribute,
            AttributeStatement,
            AttributeValue,
            NameID,
        )
        from saml2.sigver import pre_signature_part
        from saml2.time_util import instant
        from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

        request_id = self.server.parse_authn_request(saml_request, binding).message.id
        xml = self.server.create_authn_response(
            identity={},
            in_response_to=request_id,
            destination=self.acs_url,
            sp_entity_id=self.sp_entity_id,
            name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, text=self.user["name_id"]),
            authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"},
            sign_response=False,
            sign_assertion=False,
        )
        response = samlp.response_from_string(str(xml))
        assertion = response.assertion[0] if isinstance(response.assertion, list) else response.assertion
        assertion.attribute_statement = [
            AttributeStatement(
                attribute=[
                    Attribute(
                        name=name,
                        name_format=NAME_FORMAT_UNSPECIFIED,
                        attribute_value=[AttributeValue(text=value) for value in values],
                    )
                    for name, values in self.user["attributes"].items()
                ]
            )
        ]
        now = int(time.time())
        assertion.conditions.not_before = instant(time_stamp=now - 60)
        assertion.conditions.not_on_or_after = instant(time_stamp=now + 300)
        assertion.signature = pre_signature_part(
            assertion.id, self.server.sec.my_cert, 1, sign_alg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256
        )
        signed = self.server.sec.sign_statement(
            str(response), "urn:oasis:names:tc:SAML:2.0:assertion:Assertion", node_id=assertion.id
        )
        return base64.b64encode(signed.encode()).decode()


async def serve(args: argparse.Namespace, state_dir: Path) -> None:
    host = args.host
    google = StandInOIDC(
        f"http://{host}:{args.google_port}",
        client_id="standin-google-client",
        client_secret="standin-google-secret",
        user={
            "sub": "110000000000000000001",
            "email": args.google_email,
            "email_verified": True,
            "name": "Ann Example",
            "given_name": "Ann",
            "family_name": "Example",
        },
    )
    apple = StandInApple(
        f"http://{host}:{args.apple_port}",
        client_id="com.example.broker",
        team_id="TEAMSTANDIN",
        key_id="KEYSTANDIN",
        user={"sub": "000111.standin.0001", "email": "ann@privaterelay.example", "email_verified": "true"},
    )
    (state_dir / "apple_key.p8").write_text(apple.private_key_pem())
    saml_user = args.saml_user
    corp = StandInSaml(
        f"http://{host}:{args.saml_port}",
        state_dir=state_dir,
        sp_entity_id=f"urn:amazon:cognito:sp:{POOL_ID}",
        acs_url=f"{args.gatehouse_url.rstrip('/')}/saml2/idpresponse",
        user={
            "name_id": saml_user,
            "attributes": {
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress": [saml_user],
                "http://schemas.xmlsoap.org/claims/Group": ["Domain Admins", "staff-engineering"],
            },
        },
    )
    runners = []
    for server, port in ((google, args.google_port), (apple, args.apple_port), (corp, args.saml_port)):
        runner = web.AppRunner(server.app(), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        runners.append(runner)
    print(f"ready google={google.url} apple={apple.url} saml={corp.url}/metadata", flush=True)
    (state_dir / "ready").write_text("ready\n")
    try:
        await asyncio.Event().wait()
    finally:
        for runner in runners:
            await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gatehouse-url", default="http://localhost:9229", help="the broker's public URL")
    parser.add_argument("--state-dir", default=".standin", help="where keys and the ready marker are written")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--google-port", type=int, default=9301)
    parser.add_argument("--apple-port", type=int, default=9302)
    parser.add_argument("--saml-port", type=int, default=9303)
    parser.add_argument("--google-email", default="ann@gmail.example")
    parser.add_argument("--saml-user", default="ann@corp.example")
    args = parser.parse_args()
    state_dir = Path(args.state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "ready").unlink(missing_ok=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args, state_dir))


if __name__ == "__main__":
    main()
