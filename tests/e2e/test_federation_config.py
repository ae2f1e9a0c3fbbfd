"""Identity providers declared in the config file are applied at start (and re-applied idempotently at the
next start), visible through boto3 like providers made with CreateIdentityProvider."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.support import GatehouseServer

CONFIG = """\
version: 1
pools:
  - id: us-east-1_FedCfg01
    name: fedcfg
    groups:
      - {name: admins}
    identity_providers:
      - name: Corp
        type: OIDC
        details: {client_id: corp-client, authorize_scopes: openid email, oidc_issuer: "https://idp.example",
                  attributes_request_method: GET, token_url: "https://idp.example/oauth/token"}
        client_secret: "${CORP_SECRET}"
        attribute_mapping: {email: email}
        idp_identifiers: [corp.example]
        group_rules:
          - {claim: groups, match: equals, value: corp-admins, group: admins}
"""


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fedcfg") / "data"


def start(data_dir: Path) -> GatehouseServer:
    server = GatehouseServer(data_dir, config=CONFIG, extra_env={"CORP_SECRET": "corp-secret-1"})
    server.start()
    return server


def test_config_providers_are_applied_and_stable_across_restarts(data_dir: Path) -> None:
    server = start(data_dir)
    try:
        idp = server.client()
        described = idp.describe_identity_provider(UserPoolId="us-east-1_FedCfg01", ProviderName="Corp")
        provider = described["IdentityProvider"]
        assert provider["ProviderDetails"]["client_secret"] == "corp-secret-1"
        assert provider["ProviderDetails"]["token_url"] == "https://idp.example/oauth/token"
        assert provider["AttributeMapping"] == {"email": "email", "username": "sub"}
        by_id = idp.get_identity_provider_by_identifier(UserPoolId="us-east-1_FedCfg01", IdpIdentifier="corp.example")
        assert by_id["IdentityProvider"]["ProviderName"] == "Corp"
        first_modified = provider["LastModifiedDate"]
    finally:
        server.stop()
    with sqlite3.connect(data_dir / "gatehouse.db") as db:
        (version,) = db.execute("SELECT version FROM identity_providers WHERE name = 'Corp'").fetchone()
        (settings,) = db.execute("SELECT settings FROM identity_providers WHERE name = 'Corp'").fetchone()
    assert "corp-admins" in settings
    server = start(data_dir)
    try:
        again = server.client().describe_identity_provider(UserPoolId="us-east-1_FedCfg01", ProviderName="Corp")
        assert again["IdentityProvider"]["LastModifiedDate"] == first_modified  # nothing rewritten
    finally:
        server.stop()
    with sqlite3.connect(data_dir / "gatehouse.db") as db:
        assert db.execute("SELECT version FROM identity_providers WHERE name = 'Corp'").fetchone() == (version,)
