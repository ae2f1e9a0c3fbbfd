"""Terms documents declared in the config file: applied at start by two workers at once, shown on the client's
sign-up page, and made to follow the file on the next start (a link changed, a document no longer declared
deleted); a client without ``terms`` keeps the documents made through the API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.oauth_support import signup_page, terms_links
from tests.support import GatehouseServer

POOL = "us-east-1_TermsFile1"
CLIENT = "termsfileclient0000000001"
OTHER = "termsfileclient0000000002"


def config_for(terms: str) -> str:
    return f"""version: 1
pools:
  - id: {POOL}
    name: terms-file
    clients:
      - id: {CLIENT}
        name: app
        callback_urls: ["https://app.example.com/callback"]
        allowed_oauth_flows: [code]
        allowed_oauth_scopes: [openid]
        supported_identity_providers: [COGNITO]
{terms}
      - id: {OTHER}
        name: other
        callback_urls: ["https://app.example.com/callback"]
        allowed_oauth_flows: [code]
        allowed_oauth_scopes: [openid]
        supported_identity_providers: [COGNITO]
"""


BOTH = """        terms:
          terms-of-use: {"cognito:default": "https://app.example.com/terms"}
          privacy-policy:
            "cognito:english": https://app.example.com/privacy
            "cognito:french": https://app.example.com/fr/privacy"""
ONE = """        terms:
          terms-of-use: {"cognito:english": "https://app.example.com/terms-v2"}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatehouseServer]:
    data_dir: Path = tmp_path_factory.mktemp("terms-config") / "data"
    # Two worker processes apply the file at once: a create that loses the race must not fail the start.
    gatehouse = GatehouseServer(data_dir, config=config_for(BOTH), workers=2)
    gatehouse.start()
    yield gatehouse
    gatehouse.stop()


def test_declared_terms_are_applied_and_follow_the_file(server: GatehouseServer) -> None:
    idp = server.client()
    listed = idp.list_terms(UserPoolId=POOL)["Terms"]
    assert sorted(t["TermsName"] for t in listed) == ["privacy-policy", "terms-of-use"]
    privacy = idp.describe_terms_by_client(UserPoolId=POOL, ClientId=CLIENT, TermsName="privacy-policy")["Terms"]
    assert privacy["Links"] == {
        "cognito:english": "https://app.example.com/privacy",
        "cognito:french": "https://app.example.com/fr/privacy",
    }
    assert terms_links(signup_page(server, POOL, CLIENT)) == {
        "Terms of use": "https://app.example.com/terms",
        "Privacy policy": "https://app.example.com/privacy",
    }
    # The other client declares no terms: what the API gives it is its own, and survives a restart.
    made = idp.create_terms(
        UserPoolId=POOL,
        ClientId=OTHER,
        TermsName="terms-of-use",
        TermsSource="LINK",
        Enforcement="NONE",
        Links={"cognito:default": "https://other.example.com/terms"},
    )["Terms"]
    terms_of_use = idp.describe_terms_by_client(UserPoolId=POOL, ClientId=CLIENT, TermsName="terms-of-use")["Terms"]

    server.stop()
    assert server.config_path is not None
    server.config_path.write_text(config_for(ONE))
    server.start()
    idp = server.client()
    changed = idp.describe_terms_by_client(UserPoolId=POOL, ClientId=CLIENT, TermsName="terms-of-use")["Terms"]
    assert changed["TermsId"] == terms_of_use["TermsId"]  # changed in place, not made again
    assert changed["Links"] == {"cognito:english": "https://app.example.com/terms-v2"}
    with pytest.raises(idp.exceptions.ResourceNotFoundException):
        idp.describe_terms_by_client(UserPoolId=POOL, ClientId=CLIENT, TermsName="privacy-policy")
    assert terms_links(signup_page(server, POOL, CLIENT)) == {}  # one document alone is not shown
    assert idp.describe_terms(UserPoolId=POOL, TermsId=made["TermsId"])["Terms"] == made
