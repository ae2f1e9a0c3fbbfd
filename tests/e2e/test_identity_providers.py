"""The identity-provider API through boto3 against a running Gatehouse: Create/Describe/Update/Delete/List
IdentityProviders, GetIdentityProviderByIdentifier, AdminLinkProviderForUser, AdminDisableProviderForUser and
GetSigningCertificate, with Cognito's computed ProviderDetails and its errors."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.fakes.certs import key_and_cert
from tests.fakes.saml import FakeSamlIdP
from tests.support import GatehouseServer


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = exc.value.response["Error"]
    return str(error["Code"]), str(error.get("Message", ""))


@pytest.fixture(scope="module")
def pool_id(idp: Any) -> str:
    pool = idp.create_user_pool(
        PoolName="federated",
        Schema=[{"Name": "tier", "AttributeDataType": "String", "Mutable": True}],
    )
    return str(pool["UserPool"]["Id"])


GOOGLE = {
    "client_id": "123.apps.googleusercontent.com",
    "client_secret": "g-secret",
    "authorize_scopes": "email profile openid",
}


def test_google_gets_cognito_computed_details(idp: Any, pool_id: str) -> None:
    created = idp.create_identity_provider(
        UserPoolId=pool_id,
        ProviderName="Google",
        ProviderType="Google",
        ProviderDetails=GOOGLE,
        AttributeMapping={"email": "email", "name": "name"},
    )["IdentityProvider"]
    details = created["ProviderDetails"]
    assert details["authorize_url"] == "https://accounts.google.com/o/oauth2/v2/auth"
    assert details["token_url"] == "https://www.googleapis.com/oauth2/v4/token"
    assert details["oidc_issuer"] == "https://accounts.google.com"
    assert details["attributes_url_add_attributes"] == "true"
    assert details["client_secret"] == "g-secret"
    assert created["AttributeMapping"] == {"email": "email", "name": "name", "username": "sub"}
    described = idp.describe_identity_provider(UserPoolId=pool_id, ProviderName="Google")["IdentityProvider"]
    assert described["ProviderDetails"] == details
    assert described["ProviderType"] == "Google"


def test_client_secret_is_sealed_at_rest(gatehouse: GatehouseServer, idp: Any, pool_id: str) -> None:
    with sqlite3.connect(gatehouse.data_dir / "gatehouse.db") as db:
        rows = db.execute("SELECT details FROM identity_providers WHERE name = 'Google'").fetchall()
    assert rows and "g-secret" not in rows[0][0]
    assert json.loads(rows[0][0])["client_id"] == GOOGLE["client_id"]


def test_duplicate_provider_and_wrong_social_name(idp: Any, pool_id: str) -> None:
    with pytest.raises(ClientError) as dup:
        idp.create_identity_provider(
            UserPoolId=pool_id, ProviderName="Google", ProviderType="Google", ProviderDetails=GOOGLE
        )
    assert error_of(dup)[0] == "DuplicateProviderException"
    with pytest.raises(ClientError) as named:
        idp.create_identity_provider(
            UserPoolId=pool_id, ProviderName="MyGoogle", ProviderType="Google", ProviderDetails=GOOGLE
        )
    assert error_of(named)[0] == "InvalidParameterException"
    assert "MyGoogle" not in [p["ProviderName"] for p in idp.list_identity_providers(UserPoolId=pool_id)["Providers"]]


@pytest.mark.parametrize(
    ("details", "needle"),
    [
        (
            {"client_id": "a", "client_secret": "b", "attributes_request_method": "GET", "oidc_issuer": "https://x"},
            "authorize_scopes",
        ),
        (
            {
                "client_id": "a",
                "client_secret": "b",
                "authorize_scopes": "email",
                "attributes_request_method": "GET",
                "oidc_issuer": "https://x",
            },
            "openid",
        ),
        (
            {
                "client_id": "a",
                "client_secret": "b",
                "authorize_scopes": "openid",
                "attributes_request_method": "PUT",
                "oidc_issuer": "https://x",
            },
            "attributes_request_method",
        ),
        (
            {
                "client_id": "a",
                "client_secret": "b",
                "authorize_scopes": "openid",
                "attributes_request_method": "GET",
                "oidc_issuer": "https://x",
                "token_url": "not a url",
            },
            "token_url",
        ),
        (
            # The issuer is where discovery is read and what every ID token's iss must equal.
            {
                "client_id": "a",
                "client_secret": "b",
                "authorize_scopes": "openid",
                "attributes_request_method": "GET",
                "oidc_issuer": "not a url",
            },
            "oidc_issuer",
        ),
    ],
)
def test_oidc_details_are_validated(idp: Any, pool_id: str, details: dict[str, str], needle: str) -> None:
    with pytest.raises(ClientError) as refused:
        idp.create_identity_provider(
            UserPoolId=pool_id, ProviderName="Corp", ProviderType="OIDC", ProviderDetails=details
        )
    code, message = error_of(refused)
    assert code == "InvalidParameterException" and needle in message


def test_attribute_mapping_must_name_pool_attributes(idp: Any, pool_id: str) -> None:
    details = {
        "client_id": "a",
        "client_secret": "b",
        "authorize_scopes": "openid",
        "attributes_request_method": "GET",
        "oidc_issuer": "https://idp.example",
    }
    with pytest.raises(ClientError) as refused:
        idp.create_identity_provider(
            UserPoolId=pool_id,
            ProviderName="Corp",
            ProviderType="OIDC",
            ProviderDetails=details,
            AttributeMapping={"custom:nope": "x"},
        )
    assert error_of(refused)[0] == "InvalidParameterException"
    created = idp.create_identity_provider(
        UserPoolId=pool_id,
        ProviderName="Corp",
        ProviderType="OIDC",
        ProviderDetails=details,
        AttributeMapping={"custom:tier": "tier", "email": "email"},
        IdpIdentifiers=["corp.example", "Corp1"],
    )["IdentityProvider"]
    assert created["AttributeMapping"]["username"] == "sub"
    found = idp.get_identity_provider_by_identifier(UserPoolId=pool_id, IdpIdentifier="corp.example")
    assert found["IdentityProvider"]["ProviderName"] == "Corp"
    with pytest.raises(ClientError) as clash:
        idp.create_identity_provider(
            UserPoolId=pool_id,
            ProviderName="Corp2",
            ProviderType="OIDC",
            ProviderDetails=details,
            IdpIdentifiers=["corp.example"],
        )
    assert error_of(clash)[0] == "InvalidParameterException"


def test_update_keeps_unmentioned_keys_and_moves_identifiers(idp: Any, pool_id: str) -> None:
    updated = idp.update_identity_provider(
        UserPoolId=pool_id,
        ProviderName="Corp",
        ProviderDetails={"token_url": "https://idp.example/token2"},
        IdpIdentifiers=["corp.example.org"],
    )["IdentityProvider"]
    assert updated["ProviderDetails"]["token_url"] == "https://idp.example/token2"
    assert updated["ProviderDetails"]["client_secret"] == "b"
    assert updated["LastModifiedDate"] >= updated["CreationDate"]
    with pytest.raises(ClientError) as gone:
        idp.get_identity_provider_by_identifier(UserPoolId=pool_id, IdpIdentifier="corp.example")
    assert error_of(gone)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as missing:
        idp.update_identity_provider(UserPoolId=pool_id, ProviderName="Nobody", AttributeMapping={"email": "mail"})
    assert error_of(missing)[0] == "ResourceNotFoundException"


def test_apple_private_key_is_never_described(idp: Any, pool_id: str) -> None:
    from jwcrypto import jwk

    pem = jwk.JWK.generate(kty="EC", crv="P-256").export_to_pem(private_key=True, password=None).decode()
    created = idp.create_identity_provider(
        UserPoolId=pool_id,
        ProviderName="SignInWithApple",
        ProviderType="SignInWithApple",
        ProviderDetails={
            "client_id": "com.example",
            "team_id": "T1",
            "key_id": "K1",
            "private_key": pem,
            "authorize_scopes": "email name",
        },
    )["IdentityProvider"]
    assert "private_key" not in created["ProviderDetails"]
    assert created["ProviderDetails"]["authorize_url"] == "https://appleid.apple.com/auth/authorize"
    with pytest.raises(ClientError) as bad_key:
        idp.update_identity_provider(
            UserPoolId=pool_id, ProviderName="SignInWithApple", ProviderDetails={"private_key": "garbage"}
        )
    assert error_of(bad_key)[0] == "InvalidParameterException"


def test_saml_metadata_file_and_signing_certificate(idp: Any, pool_id: str) -> None:
    _, cert = key_and_cert("sp")
    fake = FakeSamlIdP(
        sp_entity_id=f"urn:amazon:cognito:sp:{pool_id}", acs_url="http://127.0.0.1/saml2/idpresponse", sp_cert_pem=cert
    )
    created = idp.create_identity_provider(
        UserPoolId=pool_id,
        ProviderName="CorpSAML",
        ProviderType="SAML",
        ProviderDetails={
            "MetadataFile": fake.metadata_xml(),
            "EncryptedResponses": "true",
            "RequestSigningAlgorithm": "rsa-sha256",
        },
        AttributeMapping={"email": "email"},
    )["IdentityProvider"]
    details = created["ProviderDetails"]
    assert details["SSORedirectBindingURI"] == f"{fake.url}/sso/redirect"
    assert details["SLORedirectBindingURI"] == f"{fake.url}/slo"
    certificate = idp.get_signing_certificate(UserPoolId=pool_id)["Certificate"]
    assert details["ActiveEncryptionCertificate"] == certificate and len(certificate) > 500
    with pytest.raises(ClientError) as both:
        idp.create_identity_provider(
            UserPoolId=pool_id,
            ProviderName="Both",
            ProviderType="SAML",
            ProviderDetails={"MetadataFile": fake.metadata_xml(), "MetadataURL": "https://idp.example/md"},
        )
    assert error_of(both)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as not_idp:
        idp.create_identity_provider(
            UserPoolId=pool_id, ProviderName="NotIdP", ProviderType="SAML", ProviderDetails={"MetadataFile": "<x/>"}
        )
    assert error_of(not_idp)[0] == "InvalidParameterException"
    xxe = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'
    with pytest.raises(ClientError) as entity:
        idp.create_identity_provider(
            UserPoolId=pool_id, ProviderName="Xxe", ProviderType="SAML", ProviderDetails={"MetadataFile": xxe}
        )
    assert error_of(entity)[0] == "InvalidParameterException"
    # Cognito signs requests with rsa-sha256 only: SHA-1 (or anything else) is refused, never used.
    for algorithm in ("rsa-sha1", "RSA-SHA256", "none"):
        with pytest.raises(ClientError) as weak:
            idp.create_identity_provider(
                UserPoolId=pool_id, ProviderName="Weak", ProviderType="SAML",
                ProviderDetails={"MetadataFile": fake.metadata_xml(), "RequestSigningAlgorithm": algorithm},
            )  # fmt: skip
        assert error_of(weak) == (
            "InvalidParameterException",
            "ProviderDetails RequestSigningAlgorithm must be rsa-sha256.",
        ), algorithm
    with pytest.raises(ClientError) as weakened:
        idp.update_identity_provider(
            UserPoolId=pool_id, ProviderName="CorpSAML", ProviderDetails={"RequestSigningAlgorithm": "rsa-sha1"}
        )
    assert error_of(weakened)[0] == "InvalidParameterException"
    described = idp.describe_identity_provider(UserPoolId=pool_id, ProviderName="CorpSAML")["IdentityProvider"]
    assert described["ProviderDetails"]["RequestSigningAlgorithm"] == "rsa-sha256"


def test_describe_shows_the_details_docs_federation_md_says_are_filled_in(idp: Any, pool_id: str) -> None:
    """docs/federation.md's provider table: a MetadataURL's endpoints and an OIDC issuer's are read at sign-in,
    so DescribeIdentityProvider shows only what was given; SAML endpoints come from the metadata alone (a given
    one is not kept), and ActiveEncryptionCertificate comes with EncryptedResponses."""
    saml = idp.create_identity_provider(
        UserPoolId=pool_id,
        ProviderName="ByUrl",
        ProviderType="SAML",
        ProviderDetails={
            "MetadataURL": "https://idp.example/md",
            "SSORedirectBindingURI": "https://elsewhere.example/",
        },
    )["IdentityProvider"]["ProviderDetails"]
    assert saml == {"MetadataURL": "https://idp.example/md"}
    encrypted = idp.update_identity_provider(
        UserPoolId=pool_id, ProviderName="ByUrl", ProviderDetails={"EncryptedResponses": "true"}
    )["IdentityProvider"]["ProviderDetails"]
    certificate = idp.get_signing_certificate(UserPoolId=pool_id)["Certificate"]
    assert encrypted["ActiveEncryptionCertificate"] == certificate
    assert "SSORedirectBindingURI" not in encrypted
    oidc = idp.create_identity_provider(
        UserPoolId=pool_id,
        ProviderName="Discovered",
        ProviderType="OIDC",
        ProviderDetails={
            "client_id": "c",
            "client_secret": "s",
            "authorize_scopes": "openid",
            "oidc_issuer": "https://issuer.example",
            "attributes_request_method": "GET",
            "token_url": "https://proxy.example/token",
        },
    )["IdentityProvider"]["ProviderDetails"]
    assert oidc["token_url"] == "https://proxy.example/token"
    assert not {"authorize_url", "jwks_uri", "attributes_url"} & set(oidc), oidc
    described = idp.describe_identity_provider(UserPoolId=pool_id, ProviderName="Discovered")["IdentityProvider"]
    assert described["ProviderDetails"] == oidc
    for name in ("ByUrl", "Discovered"):
        idp.delete_identity_provider(UserPoolId=pool_id, ProviderName=name)


def test_list_pages_and_delete(idp: Any, pool_id: str) -> None:
    names = []
    token: dict[str, str] = {}
    while True:
        page = idp.list_identity_providers(UserPoolId=pool_id, MaxResults=2, **token)
        names += [p["ProviderName"] for p in page["Providers"]]
        assert len(page["Providers"]) <= 2
        if "NextToken" not in page:
            break
        token = {"NextToken": page["NextToken"]}
    assert names == sorted(names) and {"Google", "Corp", "SignInWithApple", "CorpSAML"} <= set(names)
    idp.delete_identity_provider(UserPoolId=pool_id, ProviderName="CorpSAML")
    with pytest.raises(ClientError) as gone:
        idp.describe_identity_provider(UserPoolId=pool_id, ProviderName="CorpSAML")
    assert error_of(gone)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as again:
        idp.delete_identity_provider(UserPoolId=pool_id, ProviderName="CorpSAML")
    assert error_of(again)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as no_pool:
        idp.list_identity_providers(UserPoolId="us-east-1_Nope12345")
    assert error_of(no_pool)[0] == "ResourceNotFoundException"


def test_unsigned_calls_are_refused(public_idp: Any, pool_id: str) -> None:
    with pytest.raises(ClientError) as refused:
        public_idp.create_identity_provider(
            UserPoolId=pool_id,
            ProviderName="Facebook",
            ProviderType="Facebook",
            ProviderDetails={"client_id": "a", "client_secret": "b", "authorize_scopes": "email"},
        )
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] in (400, 403)


def test_link_and_disable_provider_for_user(idp: Any, pool_id: str) -> None:
    idp.admin_create_user(UserPoolId=pool_id, Username="native-ann", MessageAction="SUPPRESS")
    source = {"ProviderName": "Google", "ProviderAttributeName": "Cognito_Subject", "ProviderAttributeValue": "1001"}
    destination = {"ProviderName": "Cognito", "ProviderAttributeValue": "native-ann"}
    with pytest.raises(ClientError) as wrong_attribute:
        idp.admin_link_provider_for_user(
            UserPoolId=pool_id, DestinationUser=destination, SourceUser={**source, "ProviderAttributeName": "email"}
        )
    assert error_of(wrong_attribute)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as no_user:
        idp.admin_link_provider_for_user(
            UserPoolId=pool_id, DestinationUser={**destination, "ProviderAttributeValue": "ghost"}, SourceUser=source
        )
    assert error_of(no_user)[0] == "UserNotFoundException"
    idp.admin_link_provider_for_user(UserPoolId=pool_id, DestinationUser=destination, SourceUser=source)
    user = idp.admin_get_user(UserPoolId=pool_id, Username="native-ann")
    identities = json.loads({a["Name"]: a["Value"] for a in user["UserAttributes"]}["identities"])
    assert identities[0]["userId"] == "1001" and identities[0]["providerName"] == "Google"
    assert identities[0]["providerType"] == "Google" and identities[0]["primary"] is True
    with pytest.raises(ClientError) as twice:
        idp.admin_link_provider_for_user(UserPoolId=pool_id, DestinationUser=destination, SourceUser=source)
    assert error_of(twice)[0] == "InvalidParameterException"
    idp.admin_disable_provider_for_user(UserPoolId=pool_id, User=source)
    user = idp.admin_get_user(UserPoolId=pool_id, Username="native-ann")
    assert "identities" not in {a["Name"] for a in user["UserAttributes"]}
    with pytest.raises(ClientError) as unknown:
        idp.admin_disable_provider_for_user(UserPoolId=pool_id, User=source)
    assert error_of(unknown)[0] == "UserNotFoundException"
    with pytest.raises(ClientError) as no_provider:
        idp.admin_disable_provider_for_user(UserPoolId=pool_id, User={**source, "ProviderName": "Nope"})
    assert error_of(no_provider)[0] == "ResourceNotFoundException"


def test_linked_user_id_token_carries_identities(idp: Any, pool_id: str) -> None:
    import jwt

    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="app",
        ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    idp.admin_create_user(UserPoolId=pool_id, Username="linked-bob", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool_id, Username="linked-bob", Password="Correct-horse-1!", Permanent=True)
    idp.admin_link_provider_for_user(
        UserPoolId=pool_id,
        DestinationUser={"ProviderName": "Cognito", "ProviderAttributeValue": "linked-bob"},
        SourceUser={
            "ProviderName": "Corp",
            "ProviderAttributeName": "Cognito_Subject",
            "ProviderAttributeValue": "corp-42",
        },
    )
    tokens = idp.admin_initiate_auth(
        UserPoolId=pool_id,
        ClientId=client_id,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "linked-bob", "PASSWORD": "Correct-horse-1!"},
    )["AuthenticationResult"]
    claims = jwt.decode(tokens["IdToken"], options={"verify_signature": False})
    (identity,) = claims["identities"]
    assert identity["userId"] == "corp-42" and identity["providerName"] == "Corp" and identity["providerType"] == "OIDC"
    assert identity["primary"] == "true" and identity["dateCreated"].isdigit()
    assert identity["issuer"] is None  # Cognito writes null for OIDC and social providers


@pytest.mark.parametrize(
    "call",
    [
        {"op": "create_identity_provider", "ProviderName": "X1", "ProviderType": "SAML",
         "ProviderDetails": {"MetadataFile": "<" * 5000}},
        {"op": "create_identity_provider", "ProviderName": "X2", "ProviderType": "SAML",
         "ProviderDetails": {"MetadataURL": "javascript:alert(1)"}},
        {"op": "create_identity_provider", "ProviderName": "X3", "ProviderType": "SAML",
         "ProviderDetails": {"MetadataFile": "<x/>", "IDPInit": "maybe"}},
        {"op": "create_identity_provider", "ProviderName": "X4", "ProviderType": "OIDC",
         "ProviderDetails": {"client_id": "a", "client_secret": "b", "authorize_scopes": "openid",
                             "attributes_request_method": "GET", "oidc_issuer": "https://x"},
         "IdpIdentifiers": ["dup", "dup"]},
        {"op": "create_identity_provider", "ProviderName": "X5", "ProviderType": "OIDC",
         "ProviderDetails": {"client_id": "a", "client_secret": "b", "authorize_scopes": "openid",
                             "attributes_request_method": "GET", "oidc_issuer": "https://x"},
         "AttributeMapping": {"sub": "sub"}},
        {"op": "create_identity_provider", "ProviderName": "Cognito", "ProviderType": "OIDC",
         "ProviderDetails": {"client_id": "a", "client_secret": "b", "authorize_scopes": "openid",
                             "attributes_request_method": "GET", "oidc_issuer": "https://x"}},
        {"op": "list_identity_providers", "NextToken": "bm90LWEtcmVhbC1rZXk="},
        {"op": "admin_link_provider_for_user", "DestinationUser": {"ProviderName": "Google"},
         "SourceUser": {"ProviderName": "Cognito"}},
        {"op": "admin_disable_provider_for_user", "User": {"ProviderName": "Cognito", "ProviderAttributeValue": "x"}},
    ],
)  # fmt: skip
def test_hostile_inputs_get_a_4xx(idp: Any, pool_id: str, call: dict[str, Any]) -> None:
    params = {k: v for k, v in call.items() if k != "op"}
    before = {p["ProviderName"] for p in idp.list_identity_providers(UserPoolId=pool_id)["Providers"]}
    try:
        getattr(idp, call["op"])(UserPoolId=pool_id, **params)
    except ClientError as exc:
        status = exc.response["ResponseMetadata"]["HTTPStatusCode"]
        assert 400 <= status < 500 and exc.response["Error"]["Code"] != "InternalErrorException"
    else:
        assert call["op"] == "list_identity_providers"  # a made-up page key reads as "after that name"
    after = {p["ProviderName"] for p in idp.list_identity_providers(UserPoolId=pool_id)["Providers"]}
    assert after == before


def test_clients_may_only_support_existing_providers(idp: Any, pool_id: str) -> None:
    with pytest.raises(ClientError) as refused:
        idp.create_user_pool_client(UserPoolId=pool_id, ClientName="x", SupportedIdentityProviders=["COGNITO", "Nope"])
    code, message = error_of(refused)
    assert code == "InvalidParameterException" and "Nope" in message
    client = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="y", SupportedIdentityProviders=["COGNITO", "Google"]
    )["UserPoolClient"]
    assert client["SupportedIdentityProviders"] == ["COGNITO", "Google"]


def test_link_finds_the_destination_by_its_email_alias_in_any_case(idp: Any) -> None:
    pool = idp.create_user_pool(PoolName="link-by-alias", AliasAttributes=["email"])["UserPool"]["Id"]
    idp.create_identity_provider(
        UserPoolId=pool, ProviderName="Google", ProviderType="Google",
        ProviderDetails={"client_id": "a", "client_secret": "b", "authorize_scopes": "email"},
    )  # fmt: skip
    idp.admin_create_user(
        UserPoolId=pool, Username="bo", MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "email", "Value": "bo@x.example"}, {"Name": "email_verified", "Value": "true"}],
    )  # fmt: skip
    source = {"ProviderName": "Google", "ProviderAttributeName": "Cognito_Subject", "ProviderAttributeValue": "7"}
    destination = {"ProviderName": "Cognito", "ProviderAttributeValue": "BO@X.example"}
    idp.admin_link_provider_for_user(UserPoolId=pool, DestinationUser=destination, SourceUser=source)
    user = idp.admin_get_user(UserPoolId=pool, Username="bo")
    identities = json.loads({a["Name"]: a["Value"] for a in user["UserAttributes"]}["identities"])
    assert [(i["providerName"], i["userId"]) for i in identities] == [("Google", "7")]
