"""The config file's federation extras: ``link_by_verified_email`` on a provider, ``hooks.pre_sign_up`` on a pool
-- checked when the file is loaded, applied (and idempotent) into the store and the hook registry."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.config_file import ConfigError, apply_config, load_config
from gateway.services.container import Services
from tests.test_config_file import _services

PROVIDER = """\
    identity_providers:
      - name: Corp
        type: OIDC
        details: {client_id: c, authorize_scopes: openid email, oidc_issuer: "https://idp.example",
                  attributes_request_method: GET, authorize_url: "https://idp.example/a",
                  token_url: "https://idp.example/t", jwks_uri: "https://idp.example/k"}
        client_secret: s
"""


def config_text(pool_extra: str = "", provider_extra: str = "") -> str:
    return (
        textwrap.dedent(
            """\
            version: 1
            pools:
              - id: us-east-1_CfgFed01
                name: cfgfed
            """
        )
        + pool_extra
        + PROVIDER
        + provider_extra
    )


def load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "gatehouse.yaml"
    path.write_text(text)
    return load_config(path, environ={})


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    services = await _services(tmp_path)
    yield services
    await services.messenger.close()
    await services.store.close()


@pytest.mark.parametrize(
    ("pool_extra", "provider_extra", "where", "expected"),
    [
        ("", "        link_by_verified_email: true\n", "identity_providers[0].link_by_verified_email",
         "expected a pool that signs in with email"),
        ("    hooks: {pre_sign_up: 'os.system(\"x\")'}\n", "", "hooks.pre_sign_up", "expected a Python handler as"),
    ],
)  # fmt: skip
def test_the_file_is_checked_when_loaded(
    tmp_path: Path, pool_extra: str, provider_extra: str, where: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, config_text(pool_extra, provider_extra))
    assert any(where in line and expected in line for line in str(caught.value).splitlines()), str(caught.value)


def test_gatehouse_keys_in_details_are_pointed_to_their_own_keys(tmp_path: Path) -> None:
    text = config_text().replace("client_id: c,", "client_id: c, gatehouse_group_rules: '[]',")
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    assert "details.gatehouse_group_rules: expected group_rules / link_by_verified_email" in str(caught.value)


async def test_link_setting_and_hook_are_applied(tmp_path: Path, services: Services) -> None:
    text = config_text(
        "    alias_attributes: [email]\n    hooks: {pre_sign_up: 'tests.e2e.presignup_hooks:corp_only'}\n",
        "        link_by_verified_email: true\n",
    )
    config = load(tmp_path, text)
    await apply_config(services, config)  # type: ignore[arg-type]
    record = await services.identity_providers.get("us-east-1_CfgFed01", "Corp")
    assert record.settings == {"link_by_verified_email": True}
    described = services.identity_providers.provider_type(record)["ProviderDetails"]
    assert described["gatehouse_link_by_verified_email"] == "true"
    hooks = services.hooks.pre_sign_up_hooks("us-east-1_CfgFed01")
    assert [getattr(h, "__qualname__", "") for h in hooks][-1] == "tests.e2e.presignup_hooks:corp_only"
    assert services.federation.hooks is services.hooks
    # Applying again writes nothing; turning it off in the file turns it off in the store.
    await apply_config(services, config)  # type: ignore[arg-type]
    assert (await services.identity_providers.get("us-east-1_CfgFed01", "Corp")).version == record.version
    await apply_config(services, load(tmp_path, text.replace("link_by_verified_email: true", "")))  # type: ignore[arg-type]
    assert (await services.identity_providers.get("us-east-1_CfgFed01", "Corp")).settings == {}


async def test_a_hook_that_cannot_be_loaded_is_a_config_problem(tmp_path: Path, services: Services) -> None:
    config = load(tmp_path, config_text("    hooks: {pre_sign_up: 'tests.e2e.presignup_hooks:NOT_CALLABLE'}\n"))
    with pytest.raises(ConfigError) as caught:
        await apply_config(services, config)  # type: ignore[arg-type]
    assert "hooks.pre_sign_up" in str(caught.value) and "is not a callable" in str(caught.value)
    # The built-in hook is all the pool runs.
    assert len(services.hooks.pre_sign_up_hooks("us-east-1_CfgFed01")) == 1
