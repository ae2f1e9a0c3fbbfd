"""Passkeys end to end: a real authenticator (Chromium's virtual CTAP2 authenticator, driven over the DevTools
protocol) registers a passkey with StartWebAuthnRegistration / CompleteWebAuthnRegistration and signs in with
it through USER_AUTH's WEB_AUTHN challenge; the WebAuthn calls run in a page on the Gatehouse origin, and their
JSON results travel to Gatehouse through boto3, as an app would send them.

WebAuthn needs a secure context, and http://localhost is one: this module's Gatehouse has the public URL
http://localhost:<port>, so the relying party ID is ``localhost`` and the allowed origin is that URL.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cbor2
import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support import GatehouseServer, free_port

PASSWORD = "Correct-horse-battery-1"
FLOWS = ["ALLOW_USER_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]

CREATE = """async (options) => {
    const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(options);
    const credential = await navigator.credentials.create({ publicKey });
    return credential.toJSON();
}"""
GET = """async (options) => {
    const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options);
    const credential = await navigator.credentials.get({ publicKey });
    return JSON.stringify(credential.toJSON());
}"""


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = exc.value.response["Error"]
    return str(error["Code"]), str(error.get("Message", ""))


def origin_of(server: GatehouseServer) -> str:
    return f"http://localhost:{server.port}"


def b64url(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


# --- fixtures --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gatehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatehouseServer]:
    """This module's Gatehouse, reached as http://localhost:<port> (a secure context for WebAuthn)."""
    data_dir: Path = tmp_path_factory.mktemp("passkeys") / "data"
    server = GatehouseServer(data_dir)
    server.extra_args = ["--public-url", origin_of(server)]
    server.start()
    yield server
    server.stop()


class _Blank(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<!doctype html><title>elsewhere</title><p>another site"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def elsewhere() -> Iterator[str]:
    """Another origin on localhost (another port): same relying party ID, an origin Gatehouse does not allow."""
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Blank)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://localhost:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@dataclass
class Device:
    """A browser tab with a virtual platform authenticator (a passkey store, with user verification)."""

    page: Any
    cdp: Any
    authenticator_id: str

    def create(self, options: dict[str, Any]) -> dict[str, Any]:
        created: dict[str, Any] = self.page.evaluate(CREATE, options)
        return created

    def get(self, options_json: str) -> str:
        return str(self.page.evaluate(GET, json.loads(options_json)))

    def credentials(self) -> list[dict[str, Any]]:
        found = self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": self.authenticator_id})
        return list(found["credentials"])


def add_authenticator(context: Any, page: Any) -> tuple[Any, str]:
    """A virtual platform authenticator (CTAP2, resident keys, user verification) on the page, through the
    DevTools WebAuthn domain: (the CDP session, the authenticator's id)."""
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp, str(added["authenticatorId"])


@pytest.fixture
def device(browser: Any, gatehouse: GatehouseServer) -> Iterator[Device]:
    context = browser.new_context()
    try:
        page = context.new_page()
        response = page.goto(f"{origin_of(gatehouse)}/health")
        assert response is not None and response.status == 200
        assert page.evaluate("window.isSecureContext") is True
        cdp, authenticator_id = add_authenticator(context, page)
        yield Device(page, cdp, authenticator_id)
    finally:
        context.close()


@pytest.fixture(scope="module")
def pool_id(idp: Any) -> str:
    pool = idp.create_user_pool(
        PoolName="passkeys", Policies={"SignInPolicy": {"AllowedFirstAuthFactors": ["PASSWORD", "WEB_AUTHN"]}}
    )
    return str(pool["UserPool"]["Id"])


@pytest.fixture(scope="module")
def client_id(idp: Any, pool_id: str) -> str:
    client = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="web", ExplicitAuthFlows=FLOWS, PreventUserExistenceErrors="ENABLED"
    )
    return str(client["UserPoolClient"]["ClientId"])


# --- helpers ---------------------------------------------------------------------------------------------


def make_user(idp: Any, pool_id: str, username: str) -> None:
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username=username,
        UserAttributes=[{"Name": "email", "Value": f"{username}@example.com"}],
        MessageAction="SUPPRESS",
    )
    idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)


def password_sign_in(public_idp: Any, client_id: str, username: str) -> str:
    answer = public_idp.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_AUTH",
        AuthParameters={"USERNAME": username, "PREFERRED_CHALLENGE": "PASSWORD", "PASSWORD": PASSWORD},
    )
    return str(answer["AuthenticationResult"]["AccessToken"])


def register(public_idp: Any, device: Device, access_token: str, *, attestation: str | None = None) -> dict[str, Any]:
    options = public_idp.start_web_authn_registration(AccessToken=access_token)["CredentialCreationOptions"]
    if attestation is not None:
        options = {**options, "attestation": attestation}
    credential = device.create(options)
    public_idp.complete_web_authn_registration(AccessToken=access_token, Credential=credential)
    return credential


def web_authn_challenge(public_idp: Any, client_id: str, username: str) -> dict[str, Any]:
    answer = dict(
        public_idp.initiate_auth(
            ClientId=client_id,
            AuthFlow="USER_AUTH",
            AuthParameters={"USERNAME": username, "PREFERRED_CHALLENGE": "WEB_AUTHN"},
        )
    )
    assert answer["ChallengeName"] == "WEB_AUTHN", answer
    return answer


def answer_with(public_idp: Any, client_id: str, username: str, session: str, assertion: str) -> dict[str, Any]:
    return dict(
        public_idp.respond_to_auth_challenge(
            ClientId=client_id,
            ChallengeName="WEB_AUTHN",
            Session=session,
            ChallengeResponses={"USERNAME": username, "CREDENTIAL": assertion},
        )
    )


def signed_in_as(public_idp: Any, answer: dict[str, Any]) -> str:
    return str(public_idp.get_user(AccessToken=answer["AuthenticationResult"]["AccessToken"])["Username"])


# --- registering and signing in ----------------------------------------------------------------------------


def test_register_a_passkey_and_sign_in_without_a_password(
    gatehouse: GatehouseServer, public_idp: Any, idp: Any, pool_id: str, client_id: str, device: Device
) -> None:
    make_user(idp, pool_id, "rosa")
    access = password_sign_in(public_idp, client_id, "rosa")
    assert public_idp.list_web_authn_credentials(AccessToken=access)["Credentials"] == []
    # Without a passkey, WEB_AUTHN is not among the choices.
    select = public_idp.initiate_auth(ClientId=client_id, AuthFlow="USER_AUTH", AuthParameters={"USERNAME": "rosa"})
    assert select["AvailableChallenges"] == ["PASSWORD", "PASSWORD_SRP"]

    options = public_idp.start_web_authn_registration(AccessToken=access)["CredentialCreationOptions"]
    assert options["rp"] == {"id": "localhost", "name": "passkeys"}
    assert options["user"]["name"] == "rosa"
    sub = idp.admin_get_user(UserPoolId=pool_id, Username="rosa")["UserAttributes"]
    assert b64url(options["user"]["id"]) == next(a["Value"] for a in sub if a["Name"] == "sub").encode()
    assert options["authenticatorSelection"]["residentKey"] == "required"
    credential = device.create(options)
    assert cbor2.loads(b64url(credential["response"]["attestationObject"]))["fmt"] == "none"
    public_idp.complete_web_authn_registration(AccessToken=access, Credential=credential)

    [listed] = public_idp.list_web_authn_credentials(AccessToken=access)["Credentials"]
    assert listed["CredentialId"] == credential["id"]
    assert listed["RelyingPartyId"] == "localhost"
    assert listed["AuthenticatorTransports"] == ["internal"]
    assert listed["AuthenticatorAttachment"] == "platform"
    assert listed["FriendlyCredentialName"]
    [stored] = device.credentials()
    assert stored["isResidentCredential"] is True and stored["rpId"] == "localhost"

    factors = public_idp.get_user_auth_factors(AccessToken=access)["ConfiguredUserAuthFactors"]
    assert factors == ["PASSWORD", "WEB_AUTHN"]

    # Passwordless sign-in: the preferred WEB_AUTHN challenge, answered by the authenticator.
    select = public_idp.initiate_auth(ClientId=client_id, AuthFlow="USER_AUTH", AuthParameters={"USERNAME": "rosa"})
    assert select["AvailableChallenges"] == ["PASSWORD", "PASSWORD_SRP", "WEB_AUTHN"]
    challenge = web_authn_challenge(public_idp, client_id, "rosa")
    request = json.loads(challenge["ChallengeParameters"]["CREDENTIAL_REQUEST_OPTIONS"])
    assert request["rpId"] == "localhost"
    assert [c["id"] for c in request["allowCredentials"]] == [credential["id"]]
    assertion = device.get(challenge["ChallengeParameters"]["CREDENTIAL_REQUEST_OPTIONS"])
    assert json.loads(assertion)["response"]["userHandle"] == options["user"]["id"]
    done = answer_with(public_idp, client_id, "rosa", challenge["Session"], assertion)
    assert signed_in_as(public_idp, done) == "rosa"
    assert done["AuthenticationResult"]["RefreshToken"]

    # Chosen from SELECT_CHALLENGE too.
    chosen = public_idp.respond_to_auth_challenge(
        ClientId=client_id,
        ChallengeName="SELECT_CHALLENGE",
        Session=select["Session"],
        ChallengeResponses={"USERNAME": "rosa", "ANSWER": "WEB_AUTHN"},
    )
    assert chosen["ChallengeName"] == "WEB_AUTHN"
    assertion = device.get(chosen["ChallengeParameters"]["CREDENTIAL_REQUEST_OPTIONS"])
    assert signed_in_as(public_idp, answer_with(public_idp, client_id, "rosa", chosen["Session"], assertion)) == "rosa"
    assert device.credentials()[0]["signCount"] >= 2


def test_a_packed_attestation_is_verified(
    public_idp: Any, idp: Any, pool_id: str, client_id: str, device: Device
) -> None:
    make_user(idp, pool_id, "sami")
    access = password_sign_in(public_idp, client_id, "sami")
    first = register(public_idp, device, access)
    # A second passkey, on an authenticator that no longer holds the first (which the options exclude).
    device.cdp.send("WebAuthn.clearCredentials", {"authenticatorId": device.authenticator_id})
    credential = register(public_idp, device, access, attestation="direct")
    statement = cbor2.loads(b64url(credential["response"]["attestationObject"]))
    assert statement["fmt"] == "packed" and statement["attStmt"]["sig"]
    page = public_idp.list_web_authn_credentials(AccessToken=access, MaxResults=1)
    assert [c["CredentialId"] for c in page["Credentials"]] == [first["id"]]
    rest = public_idp.list_web_authn_credentials(AccessToken=access, MaxResults=1, NextToken=page["NextToken"])
    assert [c["CredentialId"] for c in rest["Credentials"]] == [credential["id"]] and "NextToken" not in rest
    challenge = web_authn_challenge(public_idp, client_id, "sami")
    assertion = device.get(challenge["ChallengeParameters"]["CREDENTIAL_REQUEST_OPTIONS"])
    assert signed_in_as(public_idp, answer_with(public_idp, client_id, "sami", challenge["Session"], assertion)) == (
        "sami"
    )


# --- hostile answers ----------------------------------------------------------------------------------------


def test_an_assertion_answers_its_own_challenge_once(
    public_idp: Any, idp: Any, pool_id: str, client_id: str, device: Device
) -> None:
    make_user(idp, pool_id, "tove")
    register(public_idp, device, password_sign_in(public_idp, client_id, "tove"))
    first = web_authn_challenge(public_idp, client_id, "tove")
    second = web_authn_challenge(public_idp, client_id, "tove")
    assertion = device.get(first["ChallengeParameters"]["CREDENTIAL_REQUEST_OPTIONS"])

    # For another challenge: refused (and that challenge is spent).
    with pytest.raises(ClientError) as exc:
        answer_with(public_idp, client_id, "tove", second["Session"], assertion)
    assert error_of(exc) == ("NotAuthorizedException", "The passkey could not be verified.")
    # Its own challenge accepts it, once.
    done = answer_with(public_idp, client_id, "tove", first["Session"], assertion)
    assert signed_in_as(public_idp, done) == "tove"
    with pytest.raises(ClientError) as exc:
        answer_with(public_idp, client_id, "tove", first["Session"], assertion)
    assert error_of(exc)[0] == "NotAuthorizedException"
    # Replayed into a fresh challenge: refused.
    third = web_authn_challenge(public_idp, client_id, "tove")
    with pytest.raises(ClientError) as exc:
        answer_with(public_idp, client_id, "tove", third["Session"], assertion)
    assert error_of(exc) == ("NotAuthorizedException", "The passkey could not be verified.")

    # Another user's session cannot be answered with Tove's passkey.
    make_user(idp, pool_id, "ugo")
    register(public_idp, device, password_sign_in(public_idp, client_id, "ugo"))
    ugo = web_authn_challenge(public_idp, client_id, "ugo")
    tove = web_authn_challenge(public_idp, client_id, "tove")
    tove_assertion = device.get(tove["ChallengeParameters"]["CREDENTIAL_REQUEST_OPTIONS"])
    with pytest.raises(ClientError) as exc:
        answer_with(public_idp, client_id, "tove", ugo["Session"], tove_assertion)
    assert error_of(exc) == ("NotAuthorizedException", "Invalid session for the user.")
    # ... nor in Ugo's name: the credential is not his.
    ugo = web_authn_challenge(public_idp, client_id, "ugo")
    with pytest.raises(ClientError) as exc:
        answer_with(public_idp, client_id, "ugo", ugo["Session"], tove_assertion)
    assert error_of(exc) == ("NotAuthorizedException", "The passkey could not be verified.")
    # Malformed answers are refused, never a server error.
    for garbage in ("{}", "not json", json.dumps({"id": "AAAA", "rawId": "AAAA", "type": "public-key"})):
        ugo = web_authn_challenge(public_idp, client_id, "ugo")
        with pytest.raises(ClientError) as exc:
            answer_with(public_idp, client_id, "ugo", ugo["Session"], garbage)
        assert error_of(exc) == ("NotAuthorizedException", "The passkey could not be verified.")


def test_a_cloned_authenticator_behind_the_signature_counter_is_refused(
    public_idp: Any, idp: Any, pool_id: str, client_id: str, device: Device
) -> None:
    make_user(idp, pool_id, "cleo")
    register(public_idp, device, password_sign_in(public_idp, client_id, "cleo"))
    challenge = web_authn_challenge(public_idp, client_id, "cleo")
    assertion = device.get(challenge["ChallengeParameters"]["CREDENTIAL_REQUEST_OPTIONS"])
    assert signed_in_as(public_idp, answer_with(public_idp, client_id, "cleo", challenge["Session"], assertion)) == (
        "cleo"
    )
    [original] = device.credentials()
    assert original["signCount"] >= 1

    # The same key in an authenticator whose counter starts again from zero: what a cloned key looks like.
    device.cdp.send(
        "WebAuthn.removeCredential",
        {"authenticatorId": device.authenticator_id, "credentialId": original["credentialId"]},
    )
    device.cdp.send(
        "WebAuthn.addCredential",
        {"authenticatorId": device.authenticator_id, "credential": {**original, "signCount": 0}},
    )
    challenge = web_authn_challenge(public_idp, client_id, "cleo")
    assertion = device.get(challenge["ChallengeParameters"]["CREDENTIAL_REQUEST_OPTIONS"])
    assert json.loads(assertion)["id"] == original["credentialId"].rstrip("=").replace("+", "-").replace("/", "_")
    with pytest.raises(ClientError) as exc:
        answer_with(public_idp, client_id, "cleo", challenge["Session"], assertion)
    assert error_of(exc) == ("NotAuthorizedException", "The passkey could not be verified.")


def test_another_origin_is_refused(
    public_idp: Any, idp: Any, pool_id: str, client_id: str, device: Device, elsewhere: str
) -> None:
    make_user(idp, pool_id, "vera")
    access = password_sign_in(public_idp, client_id, "vera")
    register(public_idp, device, access)
    challenge = web_authn_challenge(public_idp, client_id, "vera")

    # A page on another origin (same relying party ID: the browser lets it ask) gets an assertion...
    device.page.goto(elsewhere)
    assertion = device.get(challenge["ChallengeParameters"]["CREDENTIAL_REQUEST_OPTIONS"])
    client_data = json.loads(b64url(json.loads(assertion)["response"]["clientDataJSON"]))
    assert client_data["origin"] == elsewhere.rstrip("/")
    # ... that Gatehouse refuses.
    with pytest.raises(ClientError) as exc:
        answer_with(public_idp, client_id, "vera", challenge["Session"], assertion)
    assert error_of(exc) == ("NotAuthorizedException", "The passkey could not be verified.")

    # A registration made there is refused too, and stores nothing.
    options = public_idp.start_web_authn_registration(AccessToken=access)["CredentialCreationOptions"]
    device.cdp.send("WebAuthn.clearCredentials", {"authenticatorId": device.authenticator_id})
    credential = device.create({**options, "excludeCredentials": []})
    with pytest.raises(ClientError) as exc:
        public_idp.complete_web_authn_registration(AccessToken=access, Credential=credential)
    assert error_of(exc)[0] == "WebAuthnOriginNotAllowedException"
    assert len(public_idp.list_web_authn_credentials(AccessToken=access)["Credentials"]) == 1


def test_a_deleted_passkey_no_longer_signs_in(
    public_idp: Any, idp: Any, pool_id: str, client_id: str, device: Device
) -> None:
    make_user(idp, pool_id, "wren")
    access = password_sign_in(public_idp, client_id, "wren")
    credential = register(public_idp, device, access)
    open_challenge = web_authn_challenge(public_idp, client_id, "wren")

    # Someone else cannot delete it.
    make_user(idp, pool_id, "xia")
    other = password_sign_in(public_idp, client_id, "xia")
    with pytest.raises(ClientError) as exc:
        public_idp.delete_web_authn_credential(AccessToken=other, CredentialId=credential["id"])
    assert error_of(exc)[0] == "ResourceNotFoundException"
    assert public_idp.list_web_authn_credentials(AccessToken=other)["Credentials"] == []
    assert len(public_idp.list_web_authn_credentials(AccessToken=access)["Credentials"]) == 1

    public_idp.delete_web_authn_credential(AccessToken=access, CredentialId=credential["id"])
    assert public_idp.list_web_authn_credentials(AccessToken=access)["Credentials"] == []
    with pytest.raises(ClientError) as exc:
        public_idp.delete_web_authn_credential(AccessToken=access, CredentialId=credential["id"])
    assert error_of(exc)[0] == "ResourceNotFoundException"

    # The authenticator still holds it; Gatehouse no longer accepts it.
    assertion = device.get(open_challenge["ChallengeParameters"]["CREDENTIAL_REQUEST_OPTIONS"])
    with pytest.raises(ClientError) as exc:
        answer_with(public_idp, client_id, "wren", open_challenge["Session"], assertion)
    assert error_of(exc) == ("NotAuthorizedException", "The passkey could not be verified.")
    select = public_idp.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_AUTH",
        AuthParameters={"USERNAME": "wren", "PREFERRED_CHALLENGE": "WEB_AUTHN"},
    )
    assert select["ChallengeName"] == "SELECT_CHALLENGE" and "WEB_AUTHN" not in select["AvailableChallenges"]


# --- the registration operations' own refusals ---------------------------------------------------------------


def test_registration_refusals(public_idp: Any, idp: Any, pool_id: str, client_id: str, device: Device) -> None:
    make_user(idp, pool_id, "yara")
    access = password_sign_in(public_idp, client_id, "yara")

    with pytest.raises(ClientError) as exc:
        public_idp.complete_web_authn_registration(AccessToken=access, Credential={"id": "x"})
    assert error_of(exc) == ("InvalidParameterException", "Credential is not a valid PublicKeyCredential.")
    options = public_idp.start_web_authn_registration(AccessToken=access)["CredentialCreationOptions"]
    credential = device.create(options)
    # Garbage is refused without using up the pending registration's ...
    with pytest.raises(ClientError) as exc:
        public_idp.complete_web_authn_registration(AccessToken=access, Credential={"id": "x", "type": "public-key"})
    assert error_of(exc)[0] == "InvalidParameterException"
    public_idp.complete_web_authn_registration(AccessToken=access, Credential=credential)
    # ... and the completed registration cannot be replayed.
    with pytest.raises(ClientError) as exc:
        public_idp.complete_web_authn_registration(AccessToken=access, Credential=credential)
    assert error_of(exc)[0] == "WebAuthnChallengeNotFoundException"
    assert len(public_idp.list_web_authn_credentials(AccessToken=access)["Credentials"]) == 1

    # A bad access token.
    with pytest.raises(ClientError) as exc:
        public_idp.start_web_authn_registration(AccessToken=access[:-4] + "AAAA")
    assert error_of(exc)[0] == "NotAuthorizedException"

    # The relying party changed between the start and the end of a registration.
    moved = idp.create_user_pool(
        PoolName="moved", Policies={"SignInPolicy": {"AllowedFirstAuthFactors": ["PASSWORD", "WEB_AUTHN"]}}
    )["UserPool"]["Id"]
    moved_client = idp.create_user_pool_client(UserPoolId=moved, ClientName="web", ExplicitAuthFlows=FLOWS)[
        "UserPoolClient"
    ]["ClientId"]
    make_user(idp, moved, "yves")
    moved_access = password_sign_in(public_idp, moved_client, "yves")
    options = public_idp.start_web_authn_registration(AccessToken=moved_access)["CredentialCreationOptions"]
    credential = device.create(options)
    idp.set_user_pool_mfa_config(UserPoolId=moved, WebAuthnConfiguration={"RelyingPartyId": "example.com"})
    with pytest.raises(ClientError) as exc:
        public_idp.complete_web_authn_registration(AccessToken=moved_access, Credential=credential)
    assert error_of(exc)[0] == "WebAuthnRelyingPartyMismatchException"
    assert public_idp.list_web_authn_credentials(AccessToken=moved_access)["Credentials"] == []
    options = public_idp.start_web_authn_registration(AccessToken=moved_access)["CredentialCreationOptions"]
    assert options["rp"]["id"] == "example.com"

    # A pool without passkeys among its sign-in factors.
    plain = idp.create_user_pool(PoolName="no-passkeys")["UserPool"]["Id"]
    plain_client = idp.create_user_pool_client(UserPoolId=plain, ClientName="web", ExplicitAuthFlows=FLOWS)[
        "UserPoolClient"
    ]["ClientId"]
    make_user(idp, plain, "zed")
    plain_access = password_sign_in(public_idp, plain_client, "zed")
    with pytest.raises(ClientError) as exc:
        public_idp.start_web_authn_registration(AccessToken=plain_access)
    assert error_of(exc) == ("WebAuthnNotEnabledException", "Passkeys are not enabled for this user pool.")


# --- forged authenticators ----------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forged_registration(options: dict[str, Any], origin: str, cose_key: Any, credential_id: bytes) -> dict[str, Any]:
    """What an authenticator of the caller's own making sends: a "none" attestation of ``cose_key``, with
    every other part (RP ID hash, challenge, origin) right, so only the key decides."""
    rp_id_hash = hashlib.sha256(options["rp"]["id"].encode()).digest()
    flags = bytes([0x01 | 0x04 | 0x40])  # user present, user verified, attested credential data
    auth_data = (
        rp_id_hash + flags + (0).to_bytes(4, "big") + bytes(16)
        + len(credential_id).to_bytes(2, "big") + credential_id + cbor2.dumps(cose_key)
    )  # fmt: skip
    client_data = json.dumps(
        {"type": "webauthn.create", "challenge": options["challenge"], "origin": origin, "crossOrigin": False}
    ).encode()
    attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
    return {
        "id": _b64(credential_id),
        "rawId": _b64(credential_id),
        "type": "public-key",
        "response": {"clientDataJSON": _b64(client_data), "attestationObject": _b64(attestation)},
        "clientExtensionResults": {},
    }


def _ec2_key(x: bytes, y: bytes) -> dict[int, Any]:
    return {1: 2, 3: -7, -1: 1, -2: x, -3: y}  # kty EC2, alg ES256, crv P-256


def test_forged_keys_are_refused_and_never_stored(
    gatehouse: GatehouseServer, public_idp: Any, idp: Any, pool_id: str, client_id: str
) -> None:
    """A "none" attestation proves nothing about its key, so the key itself is checked: a point off the curve,
    a key missing a coordinate or a key that is no COSE map is refused with a 400 and stored nowhere. A real
    key registers, and assertions of malformed parts are refused as a failed sign-in, never a 500."""
    make_user(idp, pool_id, "forger")
    access = password_sign_in(public_idp, client_id, "forger")
    bad_keys = [
        _ec2_key(b"\x01" * 32, b"\x01" * 32),  # not on P-256
        {1: 2, 3: -7, -1: 1, -2: b"\x01" * 32},  # no y
        {1: 2, 3: -7, -1: 1, -2: "text", -3: 5},  # coordinates of the wrong types
        7,  # no map at all
    ]
    for index, key in enumerate(bad_keys):
        options = public_idp.start_web_authn_registration(AccessToken=access)["CredentialCreationOptions"]
        forged = _forged_registration(options, origin_of(gatehouse), key, bytes([index]) * 16)
        with pytest.raises(ClientError) as exc:
            public_idp.complete_web_authn_registration(AccessToken=access, Credential=forged)
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400, (index, exc.value.response)
    assert public_idp.list_web_authn_credentials(AccessToken=access)["Credentials"] == []

    private = ec.generate_private_key(ec.SECP256R1())
    numbers = private.public_key().public_numbers()
    options = public_idp.start_web_authn_registration(AccessToken=access)["CredentialCreationOptions"]
    real_key = _ec2_key(numbers.x.to_bytes(32, "big"), numbers.y.to_bytes(32, "big"))
    credential_id = b"forged-but-real!"
    public_idp.complete_web_authn_registration(
        AccessToken=access, Credential=_forged_registration(options, origin_of(gatehouse), real_key, credential_id)
    )
    assert len(public_idp.list_web_authn_credentials(AccessToken=access)["Credentials"]) == 1

    rp_id_hash = hashlib.sha256(options["rp"]["id"].encode()).digest()
    good_data = rp_id_hash + bytes([0x05]) + (1).to_bytes(4, "big")

    def answer(auth_data: bytes, signature: bytes | None = None) -> dict[str, Any]:
        """The WEB_AUTHN answer of a new challenge: ``signature``, else the key's own over the parts."""
        challenge = web_authn_challenge(public_idp, client_id, "forger")
        request = json.loads(challenge["ChallengeParameters"]["CREDENTIAL_REQUEST_OPTIONS"])
        client_data = json.dumps(
            {"type": "webauthn.get", "challenge": request["challenge"], "origin": origin_of(gatehouse)}
        ).encode()
        if signature is None:
            signature = private.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        assertion = json.dumps(
            {
                "id": _b64(credential_id), "rawId": _b64(credential_id), "type": "public-key",
                "response": {
                    "clientDataJSON": _b64(client_data), "authenticatorData": _b64(auth_data),
                    "signature": _b64(signature),
                },
                "clientExtensionResults": {},
            }
        )  # fmt: skip
        return answer_with(public_idp, client_id, "forger", challenge["Session"], assertion)

    for auth_data, signature in [
        (good_data[:20], b"\x30\x00"),  # authenticator data cut short
        (good_data, b"\x30\x06\x02\x01\x01\x02\x01"),  # a DER signature cut short
        (good_data, b""),  # no signature
    ]:
        with pytest.raises(ClientError) as exc:
            answer(auth_data, signature)
        assert error_of(exc) == ("NotAuthorizedException", "The passkey could not be verified."), auth_data
    # A right assertion of that key signs in: the checks above refused the parts, not the key.
    assert signed_in_as(public_idp, answer(good_data)) == "forger"
    # A key stored before keys were checked at registration (an earlier release's), off its curve: an assertion
    # for it is refused as any unverifiable passkey is.
    with sqlite3.connect(gatehouse.data_dir / "gatehouse.db", timeout=10) as db:
        changed = db.execute(
            "UPDATE webauthn_credentials SET public_key = ? WHERE pool_id = ? AND credential_id = ?",
            (_b64(cbor2.dumps(_ec2_key(b"\x01" * 32, b"\x01" * 32))), pool_id, _b64(credential_id)),
        ).rowcount
    db.close()
    assert changed == 1
    with pytest.raises(ClientError) as exc:
        answer(rp_id_hash + bytes([0x05]) + (2).to_bytes(4, "big"))  # past the counter's 1
    assert error_of(exc) == ("NotAuthorizedException", "The passkey could not be verified.")
