"""Roles and OIDC providers declared in the config file, applied at start and used by STS: a provider whose
keys are found only through the configured ``jwks_url`` (its discovery document is missing), and a role whose
trust and inline policies come from the file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.oidc_fake import FakeOidcProvider
from tests.saml_idp_fake import FakeAwsSamlIdP
from tests.support import GatehouseServer

ACCOUNT = "000000000000"


@pytest.fixture(scope="module")
def oidc() -> Iterator[FakeOidcProvider]:
    provider = FakeOidcProvider(discovery=False)
    provider.start()
    yield provider
    provider.stop()


SAML_METADATA = FakeAwsSamlIdP(entity_id="https://idp.config.example/saml").metadata_xml()


def config_for(oidc: FakeOidcProvider, *, extra_policy: bool) -> str:
    provider = oidc.issuer.split("://", 1)[1]
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{provider}"},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringEquals": {f"{provider}:aud": "ext-app"}},
            }
        ],
    }
    read = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::b/$${{{provider}:sub}}/*"}
        ],
    }
    policies = {"read": read}
    if extra_policy:
        policies["write"] = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:PutObject", "Resource": "*"}],
        }
    return f"""version: 1
iam:
  oidc_providers:
    - url: {oidc.issuer}
      client_ids: [ext-app]
      jwks_url: {oidc.other_jwks_url}
  saml_providers:
    - name: corp
      metadata: {json.dumps(SAML_METADATA)}
  roles:
    - name: external-readers
      max_session_duration: 7200
      trust_policy: {json.dumps(trust)}
      policies: {json.dumps(policies)}
      tags: {{team: ext}}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, oidc: FakeOidcProvider) -> Iterator[GatehouseServer]:
    data_dir: Path = tmp_path_factory.mktemp("iam-config") / "data"
    # Two worker processes apply the file at once: creates that lose the race must become updates.
    gatehouse = GatehouseServer(data_dir, config=config_for(oidc, extra_policy=True), workers=2)
    gatehouse.start()
    yield gatehouse
    gatehouse.stop()


def test_declared_role_and_provider(server: GatehouseServer, oidc: FakeOidcProvider) -> None:
    iam = server.client("iam")
    role = iam.get_role(RoleName="external-readers")["Role"]
    assert role["MaxSessionDuration"] == 7200 and role["Tags"] == [{"Key": "team", "Value": "ext"}]
    assert iam.list_role_policies(RoleName="external-readers")["PolicyNames"] == ["read", "write"]
    read = iam.get_role_policy(RoleName="external-readers", PolicyName="read")["PolicyDocument"]
    assert "${" + oidc.issuer.split("://", 1)[1] + ":sub}" in read["Statement"][0]["Resource"]
    provider_arn = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{oidc.issuer.split('://', 1)[1]}"
    assert iam.get_open_id_connect_provider(OpenIDConnectProviderArn=provider_arn)["ClientIDList"] == ["ext-app"]
    saml = iam.get_saml_provider(SAMLProviderArn=f"arn:aws:iam::{ACCOUNT}:saml-provider/corp")
    assert "https://idp.config.example/saml" in saml["SAMLMetadataDocument"]

    sts = server.client("sts", signed=False)
    answer = sts.assume_role_with_web_identity(
        RoleArn=role["Arn"], RoleSessionName="from-config", WebIdentityToken=oidc.token(), DurationSeconds=7200
    )
    assert answer["SubjectFromWebIdentityToken"] == "ext-user-1"
    assert oidc.jwks_requests >= 1  # found through jwks_url: there is no discovery document
    with pytest.raises(ClientError) as wrong_aud:
        sts.assume_role_with_web_identity(
            RoleArn=role["Arn"], RoleSessionName="from-config", WebIdentityToken=oidc.token(aud="not-listed")
        )
    assert wrong_aud.value.response["Error"]["Code"] == "InvalidIdentityToken"


def test_restart_applies_the_file_again(server: GatehouseServer, oidc: FakeOidcProvider) -> None:
    """A second start with the same data dir and a changed file: the declared role's policies follow the file,
    and its unique id (so its sessions) survive."""
    before = server.client("iam").get_role(RoleName="external-readers")["Role"]["RoleId"]
    server.stop()
    assert server.config_path is not None
    server.config_path.write_text(config_for(oidc, extra_policy=False))
    server.start()
    iam = server.client("iam")
    assert iam.get_role(RoleName="external-readers")["Role"]["RoleId"] == before
    assert iam.list_role_policies(RoleName="external-readers")["PolicyNames"] == ["read"]
