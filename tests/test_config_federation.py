"""Identity providers in the config file: loading, the checks that report every mistake at once (with
secrets never shown), and applying them to a store -- idempotently."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gateway.config_file import ConfigError, load_config

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"

BASE = """\
version: 1
pools:
  - id: us-east-1_Fed01
    name: fed
    schema:
      - {name: tier, type: String}
    groups:
      - {name: admins}
    identity_providers:
"""


def write(tmp_path: Path, providers: str) -> Path:
    path = tmp_path / "gatehouse.yaml"
    path.write_text(BASE + textwrap.indent(textwrap.dedent(providers), "      "))
    return path


def test_example_file_declares_providers() -> None:
    config = load_config(CONFIG_DIR / "gatehouse.example.yaml", environ={
        "WEB_CLIENT_SECRET": "w", "GATEHOUSE_ADMIN_SECRET": "a", "SMTP_PASSWORD": "s", "SMS_WEBHOOK_TOKEN": "t",
        "GOOGLE_CLIENT_SECRET": "google-secret-value",
    })  # fmt: skip
    providers = {p.name: p for p in config.pools[0].identity_providers}
    assert providers["Google"].provider_details()["client_secret"] == "google-secret-value"
    assert providers["CorpSSO"].group_rules[0].group == "admins"


def test_a_valid_provider_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        - name: Corp
          type: OIDC
          details: {client_id: abc, authorize_scopes: openid email, oidc_issuer: "https://idp.example",
                    attributes_request_method: GET}
          client_secret: "${CORP_SECRET}"
          attribute_mapping: {email: email, "custom:tier": tier}
          group_rules:
            - {claim: groups, match: regex, value: "^corp-(admins|owners)$", group: admins}
        """,
    )
    config = load_config(path, environ={"CORP_SECRET": "s3cret"})
    provider = config.pools[0].identity_providers[0]
    assert provider.provider_details()["client_secret"] == "s3cret"
    assert provider.group_rules[0].match == "regex"


def test_every_mistake_is_reported_and_secrets_are_not_shown(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        - name: MyGoogle
          type: Google
          details: {client_id: abc, authorize_scopes: email, client_secret: literal-secret-in-details}
        - name: Corp
          type: OIDC
          details: {client_id: abc, authorize_scopes: email, oidc_issuer: "https://idp.example",
                    attributes_request_method: GET}
          client_secret: "hidden-value-123"
          attribute_mapping: {"custom:nope": x}
          group_rules:
            - {claim: groups, match: regex, value: "([", group: admins}
            - {claim: groups, match: fuzzy, value: x, group: admins}
            - {claim: groups, value: x, group: nobody}
        - name: Corp
          type: Telepathy
        """,
    )
    with pytest.raises(ConfigError) as failed:
        load_config(path, environ={})
    text = str(failed.value)
    lines = text.splitlines()
    assert any("identity_providers[1].group_rules[1].match" in line for line in lines), text
    assert any("identity_providers[2].type" in line for line in lines), text
    assert "literal-secret-in-details" not in text and "hidden-value-123" not in text


def test_provider_checks_that_need_the_pool(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        - name: Corp
          type: OIDC
          details: {client_id: abc, authorize_scopes: email, oidc_issuer: "https://idp.example",
                    attributes_request_method: GET}
          client_secret: "hidden-value-123"
          attribute_mapping: {"custom:nope": x}
          group_rules:
            - {claim: groups, match: regex, value: "([", group: admins}
            - {claim: groups, value: x, group: nobody}
        - name: Corp
          type: SAML
          details: {MetadataURL: "https://idp.example/md"}
        - name: MyGoogle
          type: Google
          details: {client_id: abc, authorize_scopes: email, client_secret: literal-secret-in-details}
        """,
    )
    with pytest.raises(ConfigError) as failed:
        load_config(path, environ={})
    text = str(failed.value)
    assert "identity_providers[0].details: expected valid ProviderDetails (ProviderDetails authorize_scopes" in text
    assert "identity_providers[0].attribute_mapping.custom:nope" in text
    assert "identity_providers[0].group_rules: expected valid group rules" in text
    assert "identity_providers[0].group_rules[1].group: expected a group declared in this pool ('admins')" in text
    assert "identity_providers[1].name" in text  # a duplicate name
    assert "identity_providers[2].name: expected Google (the name of a Google provider)" in text
    assert "identity_providers[2].details.client_secret: expected client_secret as its own key" in text
    assert "hidden-value-123" not in text and "literal-secret-in-details" not in text


def test_clients_may_name_only_declared_providers(tmp_path: Path) -> None:
    path = tmp_path / "gatehouse.yaml"
    path.write_text(
        BASE.replace(
            "    identity_providers:\n",
            "    clients:\n      - {id: spa, name: spa, supported_identity_providers: [COGNITO, Corp, Ghost]}\n"
            "    identity_providers:\n"
            '      - {name: Corp, type: SAML, details: {MetadataURL: "https://idp.example/md"}}\n',
        )
    )
    with pytest.raises(ConfigError) as failed:
        load_config(path, environ={})
    problems = [p.where for p in failed.value.problems]
    assert problems == ["pools[0].clients[0].supported_identity_providers[2]"]
