"""The PreSignUp hook point end to end: a first federated sign-in (fake Google, a fake OIDC provider) runs the
pool's PreSignUp hooks before its user is created.

* The built-in policy (``link_by_verified_email: true`` on the provider): a Google login whose email Google
  asserts as verified lands on the native user with that verified email -- same sub, ``identities`` gains Google;
  an unverified upstream email, a look-alike address that Unicode case folding maps onto the native one (the
  Kelvin sign), a native user whose email is unverified, or one that is disabled, is not linked.
* A Python hook named in the config file (tests/e2e/presignup_hooks.py) gets Cognito's event, can refuse (the
  app gets ``error_description=PreSignUp failed with error ...`` and no user is stored) or auto-verify the email.
* The same hook runs for native sign-ups: SignUp (``PreSignUp_SignUp``, auto-confirmed by the hook) and
  AdminCreateUser (``PreSignUp_AdminCreateUser``), refusing with ``UserLambdaValidationException``.
* AdminDisableProviderForUser with ProviderName Cognito takes a native user's password sign-in away (every
  password flow), while the linked Google sign-in still lands on the user.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from pycognito.aws_srp import AWSSRP

from tests.e2e.federation_support import Flow, verified_id_token
from tests.e2e.oauth_support import CALLBACK, query_of
from tests.fakes.oauth import FakeGoogle, FakeOIDC
from tests.support import GatehouseServer

POOL = "us-east-1_FedHooks01"
HOOKED_POOL = "us-east-1_FedHooks02"
ANN_PASSWORD = "Ann-Password-123"
BOB_PASSWORD = "Bob-Password-123"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def google() -> Iterator[FakeGoogle]:
    with FakeGoogle(client_id="google-client", client_secret="google-secret") as server:
        yield server


@pytest.fixture(scope="module")
def corp() -> Iterator[FakeOIDC]:
    with FakeOIDC(client_id="corp-client", client_secret="corp-secret") as server:
        yield server


@pytest.fixture(scope="module")
def events_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hook-events") / "events.jsonl"


@pytest.fixture(scope="module")
def gatehouse(
    tmp_path_factory: pytest.TempPathFactory, google: FakeGoogle, corp: FakeOIDC, events_file: Path
) -> Iterator[GatehouseServer]:
    details = {k: v for k, v in google.provider_details().items() if k != "client_secret"}
    config = f"""\
version: 1
pools:
  - id: {POOL}
    name: linking
    alias_attributes: [email]
    clients:
      - id: spa
        name: spa
        explicit_auth_flows: [ALLOW_USER_PASSWORD_AUTH, ALLOW_ADMIN_USER_PASSWORD_AUTH, ALLOW_USER_SRP_AUTH,
                              ALLOW_REFRESH_TOKEN_AUTH]
        allowed_oauth_flows: [code]
        allowed_oauth_scopes: [openid, email, profile]
        callback_urls: ["{CALLBACK}"]
        supported_identity_providers: [COGNITO, Google]
      - {{id: legacy, name: legacy, prevent_user_existence_errors: false}}
    users:
      - username: ann
        password: "${{ANN_PASSWORD}}"
        attributes: {{email: ann@gmail.example, email_verified: "true"}}
      - username: bob
        password: "${{BOB_PASSWORD}}"
        attributes: {{email: bob@gmail.example, email_verified: "false"}}
      - username: kate
        password: "${{ANN_PASSWORD}}"
        attributes: {{email: kate@gmail.example, email_verified: "true"}}
      - username: dora
        password: "${{ANN_PASSWORD}}"
        attributes: {{email: dora@gmail.example, email_verified: "true"}}
    identity_providers:
      - name: Google
        type: Google
        details: {json.dumps(details)}
        client_secret: google-secret
        attribute_mapping: {{email: email, email_verified: email_verified, name: name}}
        link_by_verified_email: true
  - id: {HOOKED_POOL}
    name: hooked
    hooks: {{pre_sign_up: "tests.e2e.presignup_hooks:corp_only"}}
    clients:
      - id: spa2
        name: spa2
        allowed_oauth_flows: [code]
        allowed_oauth_scopes: [openid, email]
        callback_urls: ["{CALLBACK}"]
        supported_identity_providers: [Corp]
      - {{id: signup2, name: signup2, explicit_auth_flows: [ALLOW_USER_PASSWORD_AUTH, ALLOW_REFRESH_TOKEN_AUTH]}}
    identity_providers:
      - name: Corp
        type: OIDC
        details: {{client_id: corp-client, authorize_scopes: openid email, oidc_issuer: "{corp.issuer}",
                  attributes_request_method: GET}}
        client_secret: corp-secret
        attribute_mapping: {{email: email}}
"""
    data_dir: Path = tmp_path_factory.mktemp("fedhooks") / "data"
    env = {
        "ANN_PASSWORD": ANN_PASSWORD,
        "BOB_PASSWORD": BOB_PASSWORD,
        "GATEHOUSE_TEST_HOOK_EVENTS": str(events_file),
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
    }
    server = GatehouseServer(data_dir, config=config, extra_env=env)
    server.start()
    yield server
    server.stop()


def federated_sign_in(gatehouse: GatehouseServer, pool_id: str, client_id: str, provider: str) -> dict[str, Any]:
    flow = Flow(gatehouse, client_id)
    response = flow.run(flow.authorize_url(identity_provider=provider, scope="openid email"))
    assert response.status_code == 303, response.text
    answer = query_of(response.headers["Location"])
    assert "code" in answer, answer
    tokens = flow.tokens(answer["code"])
    return verified_id_token(gatehouse, pool_id, client_id, tokens["id_token"])


def password_sign_in(idp: Any, username: str, password: str) -> dict[str, Any]:
    answer = idp.initiate_auth(
        ClientId="spa", AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": username, "PASSWORD": password}
    )
    return dict(answer["AuthenticationResult"])


def identities(idp: Any, username: str) -> list[dict[str, Any]]:
    user = idp.admin_get_user(UserPoolId=POOL, Username=username)
    found = {a["Name"]: a["Value"] for a in user["UserAttributes"]}.get("identities")
    return list(json.loads(found)) if found else []


def usernames(idp: Any, pool_id: str) -> set[str]:
    return {u["Username"] for u in idp.list_users(UserPoolId=pool_id)["Users"]}


def test_verified_google_email_lands_on_the_native_user(
    gatehouse: GatehouseServer, idp: Any, google: FakeGoogle
) -> None:
    ann = idp.admin_get_user(UserPoolId=POOL, Username="ann")
    ann_sub = {a["Name"]: a["Value"] for a in ann["UserAttributes"]}["sub"]
    google.user = {"sub": "g-ann", "email": "Ann@Gmail.example", "email_verified": True, "name": "Ann G"}
    claims = federated_sign_in(gatehouse, POOL, "spa", "Google")
    assert claims["sub"] == ann_sub and claims["cognito:username"] == "ann"
    assert [(i["providerName"], i["userId"]) for i in claims["identities"]] == [("Google", "g-ann")]
    assert [(i["providerName"], i["userId"]) for i in identities(idp, "ann")] == [("Google", "g-ann")]
    assert "google_g-ann" not in usernames(idp, POOL)
    # The native user keeps its own attributes and its password.
    attributes = {a["Name"]: a["Value"] for a in idp.admin_get_user(UserPoolId=POOL, Username="ann")["UserAttributes"]}
    assert attributes["email"] == "ann@gmail.example" and "name" not in attributes
    assert password_sign_in(idp, "ann", ANN_PASSWORD)["IdToken"]
    # And the next Google sign-in lands there again.
    assert federated_sign_in(gatehouse, POOL, "spa", "Google")["sub"] == ann_sub


def test_unverified_upstream_email_is_not_linked(gatehouse: GatehouseServer, idp: Any, google: FakeGoogle) -> None:
    """Account-takeover guard: an upstream account showing Ann's address, unverified, gets a user of its own."""
    google.user = {"sub": "g-mallory", "email": "ann@gmail.example", "email_verified": False}
    claims = federated_sign_in(gatehouse, POOL, "spa", "Google")
    assert claims["cognito:username"] == "google_g-mallory"
    ann_sub = {a["Name"]: a["Value"] for a in idp.admin_get_user(UserPoolId=POOL, Username="ann")["UserAttributes"]}
    assert claims["sub"] != ann_sub["sub"]
    assert [i["userId"] for i in identities(idp, "ann")] == ["g-ann"]


def test_native_user_with_unverified_email_is_not_linked(
    gatehouse: GatehouseServer, idp: Any, google: FakeGoogle
) -> None:
    google.user = {"sub": "g-bob", "email": "bob@gmail.example", "email_verified": True}
    claims = federated_sign_in(gatehouse, POOL, "spa", "Google")
    assert claims["cognito:username"] == "google_g-bob"
    assert identities(idp, "bob") == []


def test_a_look_alike_email_is_not_linked(gatehouse: GatehouseServer, idp: Any, google: FakeGoogle) -> None:
    """Account-takeover guard: "\u212aate" (KELVIN SIGN) lower-cases to "kate" in Python; it names another
    mailbox, so the upstream account gets a user of its own and Kate's user learns nothing."""
    google.user = {"sub": "g-kelvin", "email": "\u212aate@gmail.example", "email_verified": True}
    claims = federated_sign_in(gatehouse, POOL, "spa", "Google")
    assert claims["cognito:username"] == "google_g-kelvin"
    kate = {a["Name"]: a["Value"] for a in idp.admin_get_user(UserPoolId=POOL, Username="kate")["UserAttributes"]}
    assert claims["sub"] != kate["sub"] and identities(idp, "kate") == []
    # Surrounding space is refused the same way.
    google.user = {"sub": "g-spaced", "email": " kate@gmail.example", "email_verified": True}
    assert federated_sign_in(gatehouse, POOL, "spa", "Google")["cognito:username"] == "google_g-spaced"
    assert identities(idp, "kate") == []


def test_a_disabled_native_user_is_not_linked(gatehouse: GatehouseServer, idp: Any, google: FakeGoogle) -> None:
    """A disabled user is never linked: nothing is stored on it, and the upstream account gets a user of its own."""
    idp.admin_disable_user(UserPoolId=POOL, Username="dora")
    try:
        google.user = {"sub": "g-dora", "email": "dora@gmail.example", "email_verified": True}
        claims = federated_sign_in(gatehouse, POOL, "spa", "Google")
        assert claims["cognito:username"] == "google_g-dora"
        assert identities(idp, "dora") == []
    finally:
        idp.admin_enable_user(UserPoolId=POOL, Username="dora")


def test_disabling_the_cognito_provider_ends_password_sign_in(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, google: FakeGoogle
) -> None:
    cognito_user = {"ProviderName": "Cognito", "ProviderAttributeName": "Cognito_Subject"}
    for bad, code in (
        ({**cognito_user, "ProviderAttributeName": "email"}, "InvalidParameterException"),
        ({**cognito_user, "ProviderAttributeValue": "nobody"}, "UserNotFoundException"),
        ({"ProviderName": "Cognito"}, "InvalidParameterException"),
    ):
        with pytest.raises(ClientError) as refused:
            idp.admin_disable_provider_for_user(UserPoolId=POOL, User={"ProviderAttributeValue": "ann", **bad})
        assert refused.value.response["Error"]["Code"] == code

    def admin_password_sign_in() -> dict[str, Any]:
        parameters = {"USERNAME": "ann@gmail.example", "PASSWORD": ANN_PASSWORD}
        answer = idp.admin_initiate_auth(
            UserPoolId=POOL, ClientId="spa", AuthFlow="ADMIN_USER_PASSWORD_AUTH", AuthParameters=parameters
        )
        return dict(answer)

    def srp_sign_in() -> dict[str, Any]:
        srp = AWSSRP(username="ann", password=ANN_PASSWORD, pool_id=POOL, client_id="spa", client=public_idp)
        return dict(srp.authenticate_user())

    # Nothing changed yet: every password flow signs Ann in.
    assert password_sign_in(public_idp, "ann", ANN_PASSWORD)["IdToken"]
    assert admin_password_sign_in()["AuthenticationResult"]["IdToken"]
    assert srp_sign_in()["AuthenticationResult"]["IdToken"]

    idp.admin_disable_provider_for_user(UserPoolId=POOL, User={**cognito_user, "ProviderAttributeValue": "ann"})
    for attempt in (lambda: password_sign_in(public_idp, "ann", ANN_PASSWORD), admin_password_sign_in, srp_sign_in):
        with pytest.raises(ClientError) as refused:
            attempt()
        assert refused.value.response["Error"]["Code"] == "NotAuthorizedException"
    # ForgotPassword: a LEGACY client is told; under PreventUserExistenceErrors Ann gets the answer an unknown
    # name gets (a simulated delivery, nothing sent), which tells nothing of the user.
    with pytest.raises(ClientError) as refused:
        public_idp.forgot_password(ClientId="legacy", Username="ann")
    assert refused.value.response["Error"]["Code"] == "NotAuthorizedException"
    outbox = gatehouse.data_dir / "outbox.jsonl"
    sent_before = outbox.read_text() if outbox.exists() else ""
    for name in ("ann@gmail.example", "nobody@gmail.example"):
        delivery = public_idp.forgot_password(ClientId="spa", Username=name)["CodeDeliveryDetails"]
        assert delivery == {"Destination": f"{name[0]}***@g***", "DeliveryMedium": "EMAIL", "AttributeName": "email"}
    assert (outbox.read_text() if outbox.exists() else "") == sent_before

    # The user itself is untouched, and its linked Google identity still signs in.
    user = idp.admin_get_user(UserPoolId=POOL, Username="ann")
    assert user["Enabled"] is True and user["UserStatus"] == "CONFIRMED"
    google.user = {"sub": "g-ann", "email": "ann@gmail.example", "email_verified": True}
    assert federated_sign_in(gatehouse, POOL, "spa", "Google")["cognito:username"] == "ann"

    # An administrator's new password gives password sign-in back.
    idp.admin_set_user_password(UserPoolId=POOL, Username="ann", Password="Ann-New-Password-1", Permanent=True)
    assert password_sign_in(public_idp, "ann", "Ann-New-Password-1")["IdToken"]
    # Bob, never disabled, was not affected.
    assert password_sign_in(public_idp, "bob", BOB_PASSWORD)["IdToken"]


def read_events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_refusing_hook_stops_the_sign_in(
    gatehouse: GatehouseServer, idp: Any, corp: FakeOIDC, events_file: Path
) -> None:
    corp.user = {"sub": "outsider-1", "email": "eve@evil.example"}
    flow = Flow(gatehouse, "spa2")
    response = flow.run(flow.authorize_url(identity_provider="Corp", scope="openid email"))
    assert response.status_code == 303 and response.headers["Location"].startswith(CALLBACK), response.text
    answer = query_of(response.headers["Location"])
    assert answer["error"] == "invalid_request" and answer["state"] == "app-state-1"
    assert answer["error_description"] == "PreSignUp failed with error Only corp.example accounts may sign up."
    assert "code" not in answer
    assert usernames(idp, HOOKED_POOL) == set()
    (event,) = read_events(events_file)
    assert event["triggerSource"] == "PreSignUp_ExternalProvider" and event["userPoolId"] == HOOKED_POOL
    assert event["userName"] == "corp_outsider-1" and event["callerContext"]["clientId"] == "spa2"
    assert event["request"]["userAttributes"] == {"email": "eve@evil.example"}
    assert event["response"] == {"autoConfirmUser": False, "autoVerifyEmail": False, "autoVerifyPhone": False}


def test_a_hook_can_auto_verify_and_runs_once_per_new_user(
    gatehouse: GatehouseServer, idp: Any, corp: FakeOIDC, events_file: Path
) -> None:
    before = len(read_events(events_file))
    corp.user = {"sub": "emp-5", "email": "emp5@corp.example"}
    claims = federated_sign_in(gatehouse, HOOKED_POOL, "spa2", "Corp")
    assert claims["cognito:username"] == "corp_emp-5" and claims["email_verified"] is True
    user = idp.admin_get_user(UserPoolId=HOOKED_POOL, Username="Corp_emp-5")
    assert {a["Name"]: a["Value"] for a in user["UserAttributes"]}["email_verified"] == "true"
    assert len(read_events(events_file)) == before + 1
    # The user exists now: a later sign-in is not a sign-up, and the hook is not asked again.
    federated_sign_in(gatehouse, HOOKED_POOL, "spa2", "Corp")
    assert len(read_events(events_file)) == before + 1


def test_the_hook_runs_for_self_sign_up(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, events_file: Path
) -> None:
    with pytest.raises(ClientError) as refused:
        public_idp.sign_up(
            ClientId="signup2", Username="eve", Password="Eve-Password-123",
            UserAttributes=[{"Name": "email", "Value": "eve@evil.example"}],
        )  # fmt: skip
    error = refused.value.response["Error"]
    assert error["Code"] == "UserLambdaValidationException"
    assert error["Message"] == "PreSignUp failed with error Only corp.example accounts may sign up."
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "eve" not in usernames(idp, HOOKED_POOL)

    answer = public_idp.sign_up(
        ClientId="signup2", Username="carol", Password="Carol-Password-123",
        UserAttributes=[{"Name": "email", "Value": "carol@corp.example"}],
        ClientMetadata={"source": "e2e"}, ValidationData=[{"Name": "invite", "Value": "abc"}],
    )  # fmt: skip
    assert answer["UserConfirmed"] is True and "CodeDeliveryDetails" not in answer
    user = idp.admin_get_user(UserPoolId=HOOKED_POOL, Username="carol")
    assert user["UserStatus"] == "CONFIRMED"
    assert {a["Name"]: a["Value"] for a in user["UserAttributes"]}["email_verified"] == "true"
    signed_in = public_idp.initiate_auth(
        ClientId="signup2", AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "carol", "PASSWORD": "Carol-Password-123"},
    )  # fmt: skip
    assert signed_in["AuthenticationResult"]["IdToken"]
    event = read_events(events_file)[-1]
    assert event["triggerSource"] == "PreSignUp_SignUp" and event["userName"] == "carol"
    assert event["callerContext"]["clientId"] == "signup2"
    assert event["request"]["clientMetadata"] == {"source": "e2e"}
    assert event["request"]["validationData"] == {"invite": "abc"}
    assert event["request"]["userAttributes"] == {"email": "carol@corp.example"}


def test_the_hook_runs_for_admin_create_user(gatehouse: GatehouseServer, idp: Any, events_file: Path) -> None:
    with pytest.raises(ClientError) as refused:
        idp.admin_create_user(
            UserPoolId=HOOKED_POOL, Username="mallory", MessageAction="SUPPRESS",
            UserAttributes=[{"Name": "email", "Value": "mallory@evil.example"}],
        )  # fmt: skip
    assert refused.value.response["Error"]["Code"] == "UserLambdaValidationException"
    assert "mallory" not in usernames(idp, HOOKED_POOL)
    created = idp.admin_create_user(
        UserPoolId=HOOKED_POOL, Username="dave", MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "email", "Value": "dave@corp.example"}],
    )["User"]  # fmt: skip
    assert created["UserStatus"] == "FORCE_CHANGE_PASSWORD"
    assert {a["Name"]: a["Value"] for a in created["Attributes"]}["email_verified"] == "true"
    event = read_events(events_file)[-1]
    assert event["triggerSource"] == "PreSignUp_AdminCreateUser" and event["userName"] == "dave"
    assert event["callerContext"]["clientId"] == "CLIENT_ID_NOT_APPLICABLE"
