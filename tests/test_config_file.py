"""The config file: loading, every kind of error, server settings, and applying it to a real SQLite store."""

from __future__ import annotations

import asyncio
import json
import textwrap
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.config_file import (
    ConfigError,
    GatehouseConfig,
    _substitute,
    apply_config,
    config_json_schema,
    load_config,
    server_settings,
)
from gateway.metrics import Metrics
from gateway.secretbox import SecretBox
from gateway.services.container import Services
from gateway.services.custom_sender import KmsSettings
from gateway.services.log_delivery import log_delivery_configuration
from gateway.services.messaging import Messenger, OutboxSender
from gateway.services.passwords import Argon2Params, PasswordHasher
from gateway.services.pools import DEFAULT_PASSWORD_POLICY
from gateway.settings import Secret, Settings
from gateway.storage.sqlite import SqliteStore

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
EXAMPLE_ENV = {
    "WEB_CLIENT_SECRET": "web-client-secret-value-1234",
    "GATEHOUSE_ADMIN_SECRET": "admin-secret-value-5678",
    "SMTP_PASSWORD": "smtp-password-value-9012",
    "SMS_WEBHOOK_TOKEN": "sms-token-value-3456",
    "LAMBDA_SECRET_ACCESS_KEY": "lambda-secret-value-7890",
    "KMS_SECRET_ACCESS_KEY": "kms-secret-value-1357",
}

Write = Callable[..., Path]


@pytest.fixture
def write(tmp_path: Path) -> Write:
    """Write a config file (dedented) and return its path."""

    def write(text: str, name: str = "gatehouse.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


def errors_of(path: Path, environ: Mapping[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ=environ or {})
    return caught.value


MINIMAL_POOL = """\
version: 1
pools:
  - id: us-east-1_Test01
    name: test
"""


# --- loading ---------------------------------------------------------------------------------------------


def test_example_file_loads() -> None:
    config = load_config(CONFIG_DIR / "gatehouse.example.yaml", environ=EXAMPLE_ENV)
    pool = config.pools[0]
    assert pool.id == "us-east-1_Example01"
    assert pool.username_attributes == ["email"]
    web = next(c for c in pool.clients if c.name == "web")
    assert web.secret is not None and web.secret.get_secret_value() == EXAMPLE_ENV["WEB_CLIENT_SECRET"]
    spa = next(c for c in pool.clients if c.name == "spa")
    assert spa.secret is None
    assert {g.name: g.precedence for g in pool.groups} == {"admins": 0, "readers": 10}
    admin = pool.users[0]
    assert admin.password is not None and admin.password.get_secret_value() == "ChangeMe-123!"
    assert admin.groups == ["admins", "readers"]
    assert admin.attributes["email_verified"] == "true"  # YAML's true becomes Cognito's "true"
    assert config.source == str(CONFIG_DIR / "gatehouse.example.yaml")


def test_example_seed_password_comes_from_the_environment_when_set() -> None:
    env = {**EXAMPLE_ENV, "GATEHOUSE_SEED_ADMIN_PASSWORD": "From-The-Env-42!"}
    config = load_config(CONFIG_DIR / "gatehouse.example.yaml", environ=env)
    password = config.pools[0].users[0].password
    assert password is not None and password.get_secret_value() == "From-The-Env-42!"


def test_default_file_loads_and_states_the_built_in_defaults() -> None:
    config = load_config(CONFIG_DIR / "default.yaml", environ={})
    assert config.pools == []
    assert server_settings(config, Settings()) == Settings()


def test_committed_schema_json_is_the_generated_one() -> None:
    committed = json.loads((CONFIG_DIR / "schema.json").read_text())
    assert committed == config_json_schema(), (
        "config/schema.json is stale: regenerate it with python -c 'import json; "
        "from gateway.config_file import config_json_schema; print(json.dumps(config_json_schema(), indent=2))'"
    )


def test_schema_describes_the_file() -> None:
    schema = config_json_schema()
    assert schema["required"] == ["version"]
    assert schema["additionalProperties"] is False
    assert "pools" in schema["properties"] and "server" in schema["properties"]


def test_environment_substitution_with_defaults(write: Write) -> None:
    path = write(
        """\
        version: 1
        server:
          host: "${HOST}"
          port: "${PORT:-9000}"
          public_url: "https://${DOMAIN:-example.org}/auth"
          default_email_sender: "${SENDER:-no-reply@example.org}"
        pools:
          - id: us-east-1_Test01
            name: test
            tags: {note: "$${NOT_A_VARIABLE} ${EMPTY:-fallback}"}
        """
    )
    config = load_config(path, environ={"HOST": "0.0.0.0", "DOMAIN": "id.example.com", "EMPTY": ""})
    assert config.server is not None
    assert config.server.host == "0.0.0.0"
    assert config.server.port == 9000  # the default, then validated like the literal 9000
    assert config.server.public_url == "https://id.example.com/auth"
    assert config.server.default_email_sender == "no-reply@example.org"
    assert config.pools[0].tags == {"note": "${NOT_A_VARIABLE} fallback"}  # $${ is a literal ${; empty -> default


def test_environment_defaults_to_os_environ(write: Write, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEHOUSE_TEST_POOL_NAME", "from-os-environ")
    path = write(MINIMAL_POOL.replace("name: test", 'name: "${GATEHOUSE_TEST_POOL_NAME}"'))
    assert load_config(path).pools[0].name == "from-os-environ"


# --- errors ------------------------------------------------------------------------------------------------


def test_unknown_key_is_an_error_with_a_suggestion(write: Write) -> None:
    path = write(
        MINIMAL_POOL
        + """\
    clients:
      - id: app
        name: app
        explict_auth_flows: [ALLOW_USER_SRP_AUTH]
"""
    )
    error = errors_of(path)
    assert str(error) == (
        f"{path}: pools[0].clients[0].explict_auth_flows: unknown key (did you mean 'explicit_auth_flows'?)"
    )


def test_unknown_key_without_a_close_match_lists_the_keys(write: Write) -> None:
    error = errors_of(write("version: 1\nfrobnicate: 3\n"))
    assert "frobnicate: unknown key; expected one of version, server, pools" in str(error)


def test_wrong_types(write: Write) -> None:
    path = write(
        """\
        version: 1
        server:
          port: eighty
          workers: [2]
        pools:
          - id: us-east-1_Test01
            name: test
            deletion_protection: maybe
            clients:
              - id: a
                name: a
              - id: b
                name: b
                explicit_auth_flows: [ALLOW_USER_SRP_AUTH, ALLOW_PASSWORD_AUTH]
        """
    )
    lines = str(errors_of(path)).splitlines()
    assert f"{path}: server.port: expected a whole number, got 'eighty'" in lines
    assert f"{path}: server.workers: expected a whole number, got [2]" in lines
    assert f"{path}: pools[0].deletion_protection: expected true or false, got 'maybe'" in lines
    flow = next(line for line in lines if "explicit_auth_flows[1]" in line)
    assert flow.startswith(f"{path}: pools[0].clients[1].explicit_auth_flows[1]: expected one of 'ALLOW_USER_SRP_AUTH'")
    assert flow.endswith(", got 'ALLOW_PASSWORD_AUTH'")


def test_bad_pool_id(write: Write) -> None:
    error = errors_of(write(MINIMAL_POOL.replace("us-east-1_Test01", "Test01")))
    assert str(error).endswith(
        "pools[0].id: expected a user pool id of the form <region>_<letters and digits>, e.g. us-east-1_Example01,"
        " got 'Test01'"
    )


def test_missing_required_key(write: Write) -> None:
    error = errors_of(write("version: 1\npools:\n  - name: test\n"))
    assert str(error).endswith("pools[0].id: required key is missing")


def test_missing_environment_variable_names_the_key_and_the_variable(write: Write) -> None:
    path = write(MINIMAL_POOL.replace("name: test", 'name: "pool-${POOL_SUFFIX}"'))
    error = errors_of(path)
    assert str(error) == (
        f"{path}: pools[0].name: expected environment variable POOL_SUFFIX to be set "
        "(or a default: ${POOL_SUFFIX:-default}), got 'pool-${POOL_SUFFIX}'"
    )


def test_malformed_reference(write: Write) -> None:
    error = errors_of(write(MINIMAL_POOL.replace("name: test", 'name: "${not valid}"')))
    assert "pools[0].name: expected ${NAME} or ${NAME:-default}" in str(error)


def test_yaml_syntax_error_gives_line_and_column(write: Write) -> None:
    path = write("version: 1\npools:\n  - id: us-east-1_Test01\n    name: [unclosed\n")
    error = errors_of(path)
    assert len(error.problems) == 1
    assert error.problems[0].where.startswith("line 5,")
    assert str(error).startswith(f"{path}: line 5, column 1: invalid YAML: ")


def test_yaml_error_inside_a_line(write: Write) -> None:
    error = errors_of(write("version: 1\nserver:\n  host: a: b\n"))
    assert str(error).endswith("line 3, column 10: invalid YAML: mapping values are not allowed here")


def test_duplicate_key_is_an_error(write: Write) -> None:
    error = errors_of(write("version: 1\npools: []\npools: []\n"))
    assert "line 3, column 1: invalid YAML: duplicate key 'pools' in one mapping" in str(error)


def test_not_a_mapping_and_empty_and_missing_files(write: Write, tmp_path: Path) -> None:
    assert str(errors_of(write("- 1\n- 2\n"))).endswith("expected a mapping with at least 'version: 1', got [1, 2]")
    assert str(errors_of(write(""))).endswith("got an empty file")
    missing = tmp_path / "nope.yaml"
    assert str(errors_of(missing)) == f"{missing}: cannot read the file: No such file or directory"


def test_wrong_version(write: Write) -> None:
    assert str(errors_of(write("version: 2\n"))).endswith("version: expected 1, got 2")


def test_user_in_an_undeclared_group(write: Write) -> None:
    path = write(
        MINIMAL_POOL
        + """\
    groups:
      - name: admins
      - name: readers
    users:
      - username: alice
        groups: [readers, editors]
"""
    )
    assert str(errors_of(path)) == (
        f"{path}: pools[0].users[0].groups[1]: expected a group declared in this pool ('admins', 'readers'), "
        "got 'editors'"
    )


def test_several_errors_are_reported_at_once(write: Write) -> None:
    path = write(
        """\
        version: 1
        server:
          prot: 80
          log: {level: loud}
        pools:
          - id: nope
            name: test
            mfa_configuration: SOMETIMES
            clients:
              - {id: "not valid", name: c, access_token_validity: 2d}
            users:
              - {username: bob, groups: [ghosts]}
          - id: us-east-1_Other
            name: other
            username: nobody
        """
    )
    error = errors_of(path)
    wheres = [p.where for p in error.problems]
    assert wheres == [
        "server.prot",
        "server.log.level",
        "pools[0].id",
        "pools[0].mfa_configuration",
        "pools[0].clients[0].id",
        "pools[0].clients[0].access_token_validity",
        "pools[1].username",
    ]
    lines = str(error).splitlines()
    assert len(lines) == 7 and all(line.startswith(f"{path}: ") for line in lines)
    assert lines[5].endswith("access_token_validity: expected a duration between 5 minutes and 1 day, got '2d'")


def test_cross_reference_and_consistency_problems(write: Write) -> None:
    path = write(
        """\
        version: 1
        pools:
          - id: us-east-1_Test01
            name: test
            username_attributes: [email]
            schema: [{name: dept}]
            clients:
              - {id: app, name: app, read_attributes: [email, custom:dpt]}
              - id: m2m
                name: m2m
                allowed_oauth_flows: [client_credentials]
              - {id: app, name: again}
            groups: [{name: g}, {name: g}]
            users:
              - {username: bob}
              - {username: carol@example.com, attributes: {custom:nope: x, email: not-an-email}}
          - id: us-east-1_Test02
            name: second
            clients: [{id: m2m, name: m2m-again}]
        """
    )
    lines = str(errors_of(path)).splitlines()
    expected = [
        "pools[0].clients[2].id: expected a value not already given by clients[0], got 'app'",
        "pools[0].groups[1].name: expected a value not already given by groups[0], got 'g'",
        "pools[0].clients[0].read_attributes[1]: expected a standard attribute or one of this pool's custom "
        "attributes (custom:dept), got 'custom:dpt'",
        "pools[0].users[0].username: expected an email address (the pool's username_attributes), got 'bob'",
        "pools[0].users[1].attributes.custom:nope: expected a standard attribute or one of this pool's custom "
        "attributes (custom:dept)",
        "pools[0].users[1].attributes.email: expected a valid value (Invalid email address format.), "
        "got 'not-an-email'",
        "pools[0].clients[1].secret: expected a secret: the client_credentials flow needs one",
    ]
    for line in expected:
        assert f"{path}: {line}" in lines
    # The second pool's duplicate client id is found once the first pool is valid.
    fixed = path.read_text().replace("groups: [{name: g}, {name: g}]", "groups: [{name: g}]")
    fixed = fixed.replace("- {id: app, name: again}", "- {id: other, name: again}")
    fixed = fixed.replace("read_attributes: [email, custom:dpt]", "read_attributes: [email]")
    fixed = fixed.replace("- {username: bob}", "- {username: bob@example.com}")
    fixed = fixed.replace("custom:nope: x, email: not-an-email", "custom:dept: x")
    fixed = fixed.replace("allowed_oauth_flows: [client_credentials]", "explicit_auth_flows: [ALLOW_USER_SRP_AUTH]")
    path.write_text(fixed)
    assert str(errors_of(path)) == (
        f"{path}: pools[1].clients[0].id: expected an id not used by pools[0].clients[1], got 'm2m'"
    )


def test_escape_hatch_members_are_checked(write: Write) -> None:
    path = write(
        MINIMAL_POOL
        + """\
    mfa_configuration: "OFF"
    cognito:
      MfaConfig: "ON"
      PoolName: other
    clients:
      - id: app
        name: app
        cognito: {GenerateSecret: true}
"""
    )
    lines = str(errors_of(path)).splitlines()
    assert (
        f"{path}: pools[0].cognito.MfaConfig: unknown CreateUserPool member (did you mean 'MfaConfiguration'?)" in lines
    )
    assert f"{path}: pools[0].cognito.PoolName: expected name: instead of this member" in lines
    assert f"{path}: pools[0].clients[0].cognito.GenerateSecret: expected secret: instead of this member" in lines


def test_escape_hatch_conflicts_and_constraints(write: Write) -> None:
    conflict = write(MINIMAL_POOL + '    mfa_configuration: "OFF"\n    cognito: {MfaConfiguration: "ON"}\n')
    assert str(errors_of(conflict)).endswith(
        "pools[0].cognito.MfaConfiguration: expected a member the file does not already set with its own keys; "
        "set it once"
    )
    invalid = write(MINIMAL_POOL + "    cognito: {UserPoolTier: GOLD}\n", name="tier.yaml")
    message = str(errors_of(invalid))
    assert message.startswith(f"{invalid}: pools[0].cognito: expected a valid CreateUserPool request (")
    assert "userPoolTier" in message
    merged = write(
        MINIMAL_POOL + "    password_policy: {minimum_length: 12}\n"
        "    cognito: {Policies: {SignInPolicy: {AllowedFirstAuthFactors: [PASSWORD]}}}\n",
        name="merged.yaml",
    )
    policies = load_config(merged, environ={}).pools[0].cognito_request()["Policies"]
    assert policies == {
        # A key left out of password_policy keeps Cognito's default policy's value (required), not false.
        "PasswordPolicy": {**DEFAULT_PASSWORD_POLICY, "MinimumLength": 12},
        "SignInPolicy": {"AllowedFirstAuthFactors": ["PASSWORD"]},
    }


def test_yaml_off_is_read_as_off(write: Write) -> None:
    config = load_config(write(MINIMAL_POOL + "    mfa_configuration: OFF\n"), environ={})
    assert config.pools[0].mfa_configuration == "OFF"


def test_unquoted_account_id_is_explained(write: Write) -> None:
    error = errors_of(write("version: 1\nserver:\n  account_id: 123456789012\n"))
    assert "server.account_id: expected 12 digits in quotes" in str(error)


SECRETS = ("hunter2-Client-Secret", "Hunter2-Password!", "hunter2-admin", "hunter2-smtp", "hunter2-header")


def test_secrets_never_appear_in_errors(write: Write) -> None:
    env = {"CLIENT_SECRET": SECRETS[0], "PASSWORD": SECRETS[1]}
    path = write(
        """\
        version: 1
        server:
          admin: {access_key_id: "bad key!", secret_access_key: [hunter2-admin]}
          smtp: {host: mail, password: {value: hunter2-smtp}}
          sms_webhook: {url: "http://sms", headers: {Authorization: [hunter2-header]}}
        pools:
          - id: us-east-1_Test01
            name: test
            password_policy: {minimum_length: 40}
            clients:
              - id: "bad id!"
                name: app
                secret: "${CLIENT_SECRET}"
                secrett: "${CLIENT_SECRET}"
            users:
              - username: alice
                password: "${PASSWORD}"
              - username: bob
                password: 12345
          - id: us-east-1_Test02
            name: test
            users: {username: carol, password: hunter2-Client-Secret}
        """
    )
    message = str(errors_of(path, env))
    for secret in (*SECRETS, "12345"):
        assert secret not in message
    lines = message.splitlines()
    assert f"{path}: server.admin.secret_access_key: expected a string, got a secret (not shown)" in lines
    assert f"{path}: server.smtp.password: expected a string, got a secret (not shown)" in lines
    assert f"{path}: server.sms_webhook.headers.Authorization: expected a string, got a secret (not shown)" in lines
    assert f"{path}: pools[0].clients[0].secrett: unknown key (did you mean 'secret'?)" in lines
    assert f"{path}: pools[1].users: expected a list, got a mapping with keys 'username', 'password'" in lines
    assert f"{path}: pools[0].users[1].password: expected a string, got a secret (not shown)" in lines
    admin = write("version: 1\nserver:\n  admin: hunter2-admin\n", name="admin.yaml")
    assert str(errors_of(admin)) == (
        f"{admin}: server.admin: expected a mapping (key: value lines), got a string (not shown: secrets belong here)"
    )


def test_password_policy_errors_never_show_the_password(write: Write) -> None:
    path = write(
        MINIMAL_POOL
        + """\
    password_policy: {minimum_length: 40}
    users:
      - {username: alice, password: "${PASSWORD}"}
      - {username: bob, password: "Hunter2-Password!", temporary: true}
"""
    )
    message = str(errors_of(path, {"PASSWORD": SECRETS[1]}))
    assert message.splitlines() == [
        f"{path}: pools[0].users[{i}].password: expected a password that meets the pool's policy "
        "(Password not long enough), got a secret (not shown)"
        for i in (0, 1)
    ]
    assert SECRETS[1] not in message


def test_missing_secret_variable_is_reported_without_its_value(write: Write) -> None:
    path = write(MINIMAL_POOL + '    clients: [{id: app, name: app, secret: "literal-part-${NOT_SET}"}]\n')
    assert str(errors_of(path)) == (
        f"{path}: pools[0].clients[0].secret: expected environment variable NOT_SET to be set "
        "(or a default: ${NOT_SET:-default})"
    )


# --- server settings ---------------------------------------------------------------------------------------


def test_server_settings_maps_every_value() -> None:
    config = load_config(CONFIG_DIR / "gatehouse.example.yaml", environ=EXAMPLE_ENV)
    base = Settings(port=1, config_path=Path("kept.yaml"))
    settings = server_settings(config, base)
    assert settings.host == "0.0.0.0"
    assert settings.port == 9229
    assert settings.public_url == "http://localhost:9229"
    assert settings.workers == 2
    assert settings.region == "us-east-1"
    assert settings.account_id == "000000000000"
    assert settings.data_dir == Path(".gatehouse")
    assert settings.max_body_bytes == 1048576
    assert settings.admin_access_key_id == "GATEHOUSEADMIN01"
    assert settings.admin_secret_access_key == Secret(EXAMPLE_ENV["GATEHOUSE_ADMIN_SECRET"])
    assert settings.argon2 == Argon2Params(memory_kib=19456, time_cost=2, parallelism=1)
    assert settings.smtp is not None
    assert (settings.smtp.host, settings.smtp.port, settings.smtp.username) == ("localhost", 587, "gatehouse")
    assert settings.smtp.password == Secret(EXAMPLE_ENV["SMTP_PASSWORD"])
    assert (settings.smtp.use_tls, settings.smtp.start_tls, settings.smtp.timeout) == (False, True, 10.0)
    assert settings.sms_webhook is not None
    assert settings.sms_webhook.url == "http://localhost:8080/sms"
    assert settings.sms_webhook.headers == {"Authorization": f"Bearer {EXAMPLE_ENV['SMS_WEBHOOK_TOKEN']}"}
    assert settings.default_email_sender == "Example <no-reply@example.com>"
    assert settings.kms == KmsSettings(
        endpoint_url="http://localhost:4566",
        region="us-east-1",
        access_key_id="AKIAIOSFODNN7EXAMPLE",
        secret_access_key=Secret(EXAMPLE_ENV["KMS_SECRET_ACCESS_KEY"]),
    )
    assert (settings.log_level, settings.log_json) == ("info", True)
    assert settings.config_path == Path("kept.yaml")  # not a server: key, kept from base


def test_database_pool_size(write: Write) -> None:
    config = load_config(write("version: 1\nserver:\n  database_pool_size: 4\n"), environ={})
    settings = server_settings(config, Settings())
    assert settings.database_pool_size == 4
    assert Settings().database_pool_size == 10
    for wrong in ("0", "1001", "lots"):
        with pytest.raises(ConfigError) as refused:
            load_config(write(f"version: 1\nserver:\n  database_pool_size: {wrong}\n"), environ={})
        assert "server.database_pool_size" in str(refused.value)


@pytest.mark.parametrize("section", ["lambda", "kms"])
def test_an_aws_key_pair_is_given_whole_or_not_at_all(write: Write, section: str) -> None:
    for half in ("access_key_id: AKIAIOSFODNN7EXAMPLE", 'secret_access_key: "${SECRET}"'):
        with pytest.raises(ConfigError) as refused:
            load_config(write(f"version: 1\nserver:\n  {section}:\n    {half}\n"), environ={"SECRET": "s3cret"})
        assert f"server.{section}.access_key_id" in str(refused.value)
        assert "expected access_key_id and secret_access_key together" in str(refused.value)
        assert "s3cret" not in str(refused.value)
    whole = f"version: 1\nserver:\n  {section}:\n    access_key_id: AKIAIOSFODNN7EXAMPLE\n    secret_access_key: x\n"
    settings = server_settings(load_config(write(whole), environ={}), Settings())
    endpoint = settings.kms if section == "kms" else settings.lambda_invoke
    assert (endpoint.access_key_id, endpoint.secret_access_key) == ("AKIAIOSFODNN7EXAMPLE", Secret("x"))


def test_server_settings_keeps_what_the_file_leaves_out(write: Write) -> None:
    path = write("version: 1\nserver:\n  argon2: {time_cost: 3}\n  log: {format: console}\n  database: x.db\n")
    base = Settings(port=1234, argon2=Argon2Params(memory_kib=4096))
    settings = server_settings(load_config(path, environ={}), base)
    assert settings.port == 1234
    assert settings.argon2 == Argon2Params(memory_kib=4096, time_cost=3)
    assert (settings.log_json, settings.log_level) == (False, "info")
    assert settings.database == Path("x.db")
    assert server_settings(load_config(write("version: 1\n", name="bare.yaml"), environ={}), base) is base


# --- applying to a real store -------------------------------------------------------------------------------


async def _services(tmp_path: Path, store: SqliteStore | None = None) -> Services:
    store = store or await SqliteStore.open(tmp_path / "db")
    outbox = OutboxSender(tmp_path / "outbox.jsonl")
    return Services.build(
        Settings(data_dir=tmp_path), store, Metrics(), SecretBox(SecretBox.generate_key()),
        PasswordHasher(Argon2Params(memory_kib=1024, time_cost=1)), Messenger(outbox, outbox),
        code_key=b"c" * 32, admin_credentials={}, fake_srp_secret=b"f" * 32,
    )  # fmt: skip


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    services = await _services(tmp_path)
    yield services
    await services.messenger.close()
    await services.store.close()


APPLY_ENV = {"WEB_SECRET": "web-secret-0123456789abcdef", "ADMIN_PASSWORD": "Admin-Pass-123!"}

APPLY_CONFIG = """\
version: 1
pools:
  - id: us-east-1_Apply01
    name: apply
    password_policy: {minimum_length: 10, require_symbols: false, password_history_size: 2}
    username_attributes: [email]
    auto_verified_attributes: [email]
    mfa_configuration: OPTIONAL
    deletion_protection: true
    schema:
      - {name: dept, max_length: 32}
    verification_message: {email_subject: Code, email_message: "Code {####}"}
    admin_create_user: {allow_admin_create_user_only: true}
    email: {from: "Apply <no-reply@apply.example>"}
    account_recovery: [verified_email]
    tags: {team: id}
    clients:
      - id: spa
        name: spa
        explicit_auth_flows: [ALLOW_USER_SRP_AUTH, ALLOW_REFRESH_TOKEN_AUTH]
        access_token_validity: 2h
        refresh_token_validity: 7d
        read_attributes: [email, custom:dept]
        prevent_user_existence_errors: false
      - id: web
        name: web
        secret: "${WEB_SECRET}"
        explicit_auth_flows: [ALLOW_USER_PASSWORD_AUTH, ALLOW_REFRESH_TOKEN_AUTH]
        refresh_token_rotation: {enabled: true, retry_grace_period_seconds: 5}
        callback_urls: ["https://web.example/cb"]
        allowed_oauth_flows: [code]
        allowed_oauth_scopes: [openid, email]
    groups:
      - {name: admins, description: Admins, role_arn: "arn:aws:iam::000000000000:role/Admins", precedence: 1}
      - {name: readers, precedence: 5}
    users:
      - username: admin@apply.example
        password: "${ADMIN_PASSWORD}"
        attributes: {email_verified: true, name: Admin, custom:dept: ops}
        groups: [admins, readers]
      - username: temp@apply.example
        password: Temp-Pass-123
        temporary: true
      - username: nopass@apply.example
        enabled: false
"""


def _load(write: Write, text: str = APPLY_CONFIG, env: Mapping[str, str] = APPLY_ENV) -> GatehouseConfig:
    return load_config(write(text), environ=env)


async def _snapshot(services: Services, pool_id: str) -> dict[str, Any]:
    """Everything apply_config may write, as stored (versions and timestamps included)."""
    store = services.store
    users = (await store.list_users(pool_id, None, 60)).items
    return {
        "pool": await store.get_pool(pool_id),
        "clients": (await store.list_clients(pool_id, None, 60)).items,
        "groups": (await store.list_groups(pool_id, None, 60)).items,
        "users": users,
        "memberships": {u.username: await store.list_groups_for_user(pool_id, u.username_key) for u in users},
    }


async def test_apply_creates_everything_with_the_configured_values(services: Services, write: Write) -> None:
    await apply_config(services, _load(write))
    pool = await services.pools.get_pool("us-east-1_Apply01")
    described = await services.pools.describe_pool(pool.id)
    assert described["Name"] == "apply"
    assert described["Policies"]["PasswordPolicy"]["MinimumLength"] == 10
    assert described["Policies"]["PasswordPolicy"]["RequireSymbols"] is False
    assert described["UsernameAttributes"] == ["email"]
    assert described["MfaConfiguration"] == "OPTIONAL"
    assert described["DeletionProtection"] == "ACTIVE"
    assert described["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert described["EmailConfiguration"]["From"] == "Apply <no-reply@apply.example>"
    assert described["VerificationMessageTemplate"]["EmailMessage"] == "Code {####}"
    assert described["AccountRecoverySetting"] == {"RecoveryMechanisms": [{"Name": "verified_email", "Priority": 1}]}
    assert described["UserPoolTags"] == {"team": "id"}
    dept = next(a for a in pool.schema if a["Name"] == "custom:dept")
    assert dept["StringAttributeConstraints"]["MaxLength"] == "32"

    spa = await services.pools.get_client(pool.id, "spa")
    assert spa.secret is None
    assert spa.token_seconds("AccessToken") == 7200
    assert spa.token_seconds("RefreshToken") == 7 * 86400
    assert spa.settings["ReadAttributes"] == ["email", "custom:dept"]
    assert spa.prevent_user_existence_errors is False
    web = await services.pools.get_client(pool.id, "web")
    assert web.secret == APPLY_ENV["WEB_SECRET"]
    assert web.rotation == (True, 5)
    assert web.settings["AllowedOAuthFlows"] == ["code"]
    assert web.settings["AllowedOAuthFlowsUserPoolClient"] is True

    admins = await services.groups.get(pool, "admins")
    assert (admins.description, admins.role_arn, admins.precedence) == (
        "Admins",
        "arn:aws:iam::000000000000:role/Admins",
        1,
    )
    assert (await services.groups.get(pool, "readers")).precedence == 5

    admin = await services.users.get(pool, "admin@apply.example")
    assert admin.status == "CONFIRMED"
    assert admin.attributes == {
        "email": "admin@apply.example", "email_verified": "true", "name": "Admin", "custom:dept": "ops",
    }  # fmt: skip
    assert admin.password_hash is not None
    assert await services.hasher.verify(admin.password_hash, APPLY_ENV["ADMIN_PASSWORD"])
    assert sorted(g.name for g in await services.groups.for_user(pool, admin)) == ["admins", "readers"]
    temp = await services.users.get(pool, "temp@apply.example")
    assert temp.status == "FORCE_CHANGE_PASSWORD"
    assert temp.password_hash is not None and await services.hasher.verify(temp.password_hash, "Temp-Pass-123")
    nopass = await services.users.get(pool, "nopass@apply.example")
    assert (nopass.status, nopass.enabled) == ("FORCE_CHANGE_PASSWORD", False)
    outbox = Path(services.settings.data_dir) / "outbox.jsonl"
    assert not outbox.exists() or outbox.read_text() == ""  # invitations suppressed


async def test_applying_twice_changes_nothing(services: Services, write: Write) -> None:
    config = _load(write)
    await apply_config(services, config)
    before = await _snapshot(services, "us-east-1_Apply01")
    await apply_config(services, config)
    await apply_config(services, _load(write))  # re-read from the file, as at a restart
    assert await _snapshot(services, "us-east-1_Apply01") == before


async def test_a_changed_password_is_never_overwritten(services: Services, write: Write) -> None:
    await apply_config(services, _load(write))
    pool = await services.pools.get_pool("us-east-1_Apply01")
    admin = await services.users.get(pool, "admin@apply.example")
    await services.users.set_password(pool, admin, "Changed-Pass-456", permanent=True)
    await apply_config(services, _load(write))
    admin = await services.users.get(pool, "admin@apply.example")
    assert admin.password_hash is not None
    assert await services.hasher.verify(admin.password_hash, "Changed-Pass-456")
    assert not await services.hasher.verify(admin.password_hash, APPLY_ENV["ADMIN_PASSWORD"])
    assert admin.status == "CONFIRMED"
    # Nor a temporary user's, once they have chosen their own.
    temp = await services.users.get(pool, "temp@apply.example")
    await services.users.set_password(pool, temp, "Own-Choice-789", permanent=True)
    await apply_config(services, _load(write))
    temp = await services.users.get(pool, "temp@apply.example")
    assert temp.password_hash is not None and await services.hasher.verify(temp.password_hash, "Own-Choice-789")


async def test_concurrent_applies_both_succeed(services: Services, write: Write) -> None:
    config = _load(write)
    await asyncio.gather(apply_config(services, config), apply_config(services, config))
    pool = await services.pools.get_pool("us-east-1_Apply01")
    assert [c.id for c in (await services.store.list_clients(pool.id, None, 60)).items] == ["spa", "web"]
    assert await services.store.count_users(pool.id) == 3
    admin = await services.users.get(pool, "admin@apply.example")
    assert admin.status == "CONFIRMED"
    assert admin.password_hash is not None
    assert await services.hasher.verify(admin.password_hash, APPLY_ENV["ADMIN_PASSWORD"])
    before = await _snapshot(services, pool.id)
    await apply_config(services, config)
    assert await _snapshot(services, pool.id) == before


async def test_concurrent_applies_from_two_processes_sharing_the_database(tmp_path: Path, write: Write) -> None:
    first = await _services(tmp_path)
    second = await _services(tmp_path, await SqliteStore.open(tmp_path / "db"))  # another connection
    try:
        config = _load(write)
        await asyncio.gather(apply_config(first, config), apply_config(second, config))
        pool = await first.pools.get_pool("us-east-1_Apply01")
        assert await first.store.count_users(pool.id) == 3
        assert len((await first.store.list_groups(pool.id, None, 60)).items) == 2
    finally:
        for services in (first, second):
            await services.messenger.close()
            await services.store.close()


async def test_changed_settings_are_applied(services: Services, write: Write) -> None:
    await apply_config(services, _load(write))
    changed = (
        APPLY_CONFIG.replace("name: apply", "name: renamed")
        .replace("mfa_configuration: OPTIONAL", 'mfa_configuration: "OFF"')
        .replace("access_token_validity: 2h", "access_token_validity: 30 minutes")
        .replace("{name: readers, precedence: 5}", "{name: readers, precedence: 7, description: Readers}")
        .replace(
            "- {name: dept, max_length: 32}", "- {name: dept, max_length: 32}\n      - {name: level, type: Number}"
        )
        .replace("    tags: {team: id}\n", "")
    )
    await apply_config(services, _load(write, changed))
    pool = await services.pools.get_pool("us-east-1_Apply01")
    assert pool.name == "renamed"
    assert pool.settings["MfaConfiguration"] == "OFF"
    assert "UserPoolTags" not in pool.settings
    assert "custom:level" in {a["Name"] for a in pool.schema}
    assert (await services.pools.get_client(pool.id, "spa")).token_seconds("AccessToken") == 1800
    readers = await services.groups.get(pool, "readers")
    assert (readers.precedence, readers.description) == (7, "Readers")
    before = await _snapshot(services, pool.id)
    await apply_config(services, _load(write, changed))
    assert await _snapshot(services, pool.id) == before


async def test_client_secret_rotates_and_cannot_be_removed(services: Services, write: Write) -> None:
    await apply_config(services, _load(write))
    await apply_config(services, _load(write, env={**APPLY_ENV, "WEB_SECRET": "rotated-secret-0123456789ab"}))
    client = await services.pools.get_client("us-east-1_Apply01", "web")
    assert client.secret == "rotated-secret-0123456789ab"
    public = APPLY_CONFIG.replace('        secret: "${WEB_SECRET}"\n', "")
    with pytest.raises(ConfigError) as caught:
        await apply_config(services, _load(write, public))
    message = str(caught.value)
    assert message.startswith(f"{write('', name='gatehouse.yaml')}: pools[0].clients[1].secret: expected the ")
    assert "rotated-secret-0123456789ab" not in message


async def test_fixed_settings_cannot_change(services: Services, write: Write) -> None:
    await apply_config(services, _load(write))
    changed = APPLY_CONFIG.replace("username_attributes: [email]", "alias_attributes: [email]").replace(
        "- {name: dept, max_length: 32}", "- {name: dept, max_length: 64}"
    )
    for user in ("admin", "temp", "nopass"):
        changed = changed.replace(f"username: {user}@apply.example", f"username: {user}")
    with pytest.raises(ConfigError) as caught:
        await apply_config(services, _load(write, changed))
    wheres = [p.where for p in caught.value.problems]
    assert wheres == ["pools[0].username_attributes", "pools[0].alias_attributes", "pools[0].schema[0]"]
    assert caught.value.problems[0].message == (
        "cannot change once the pool exists (Cognito fixes it at creation): the pool has ['email'], the file "
        "asks for none"
    )


async def test_a_failing_item_is_named_and_the_others_still_applied(services: Services, write: Write) -> None:
    text = """\
    version: 1
    pools:
      - id: us-east-1_Alias01
        name: alias
        alias_attributes: [email]
        clients: [{id: taken, name: taken}, {id: free, name: free}]
        users:
          - {username: alice, attributes: {email: shared@example.com, email_verified: true}}
          - {username: carol}
    """
    other = await services.pools.create_pool("other", {}, pool_id="us-east-1_Other01")
    await services.pools.create_client(other.id, "taken", {}, client_id="taken")
    pool = await services.pools.create_pool(
        "alias", {"AliasAttributes": ["email"], "UsernameConfiguration": {"CaseSensitive": False}},
        pool_id="us-east-1_Alias01",
    )  # fmt: skip
    await services.users.admin_create_user(
        pool, username="bob", attributes={"email": "shared@example.com", "email_verified": "true"},
        temporary_password=None, message_action="SUPPRESS", delivery_mediums=[], force_alias_creation=False,
    )  # fmt: skip
    path = write(text)
    with pytest.raises(ConfigError) as caught:
        await apply_config(services, load_config(path, environ={}))
    assert str(caught.value).splitlines() == [
        f"{path}: pools[0].clients[0].id: expected a client id not used elsewhere: 'taken' is a client of pool "
        "us-east-1_Other01",
        f"{path}: pools[0].users[0]: could not apply user 'alice': AliasExistsException: An account with the given "
        "email already exists.",
    ]
    assert (await services.pools.get_client(pool.id, "free")).record.name == "free"
    assert await services.users.find(pool, "carol") is not None


async def test_the_files_defaults_do_not_follow_the_apis(services: Services, write: Write) -> None:
    """Keys left out mean what the file format says, whatever CreateUserPool's own defaults are."""
    await apply_config(services, _load(write, MINIMAL_POOL + "    clients: [{id: app, name: app}]\n", {}))
    pool = await services.pools.get_pool("us-east-1_Test01")
    assert pool.case_sensitive is False
    client = await services.pools.get_client(pool.id, "app")
    assert client.prevent_user_existence_errors is True
    partial = MINIMAL_POOL + "    password_policy: {minimum_length: 12}\n    clients: [{id: app, name: app}]\n"
    await apply_config(services, _load(write, partial, {}))
    pool = await services.pools.get_pool("us-east-1_Test01")
    assert pool.password_policy["MinimumLength"] == 12
    assert all(pool.password_policy[k] for k in ("RequireUppercase", "RequireLowercase", "RequireNumbers"))
    assert pool.password_policy["RequireSymbols"] is True


async def test_adopting_an_api_created_pool_names_a_differing_fixed_setting(services: Services, write: Write) -> None:
    await services.pools.create_pool(
        "test", {"UsernameConfiguration": {"CaseSensitive": True}}, pool_id="us-east-1_Test01"
    )
    path = write(MINIMAL_POOL)
    with pytest.raises(ConfigError) as caught:
        await apply_config(services, load_config(path, environ={}))
    assert str(caught.value) == (
        f"{path}: pools[0].username_case_sensitive: cannot change once the pool exists (Cognito fixes it at "
        "creation): the pool has true, the file asks for false"
    )
    await apply_config(services, load_config(write(MINIMAL_POOL + "    username_case_sensitive: true\n"), environ={}))


def test_client_terms_are_checked(write: Write) -> None:
    """A client's terms name one of the two documents, Cognito's languages and http(s) links."""
    path = write(
        """\
        version: 1
        pools:
          - id: us-east-1_Terms01
            name: terms
            clients:
              - id: termsclient
                name: app
                terms:
                  cookie-policy: {"cognito:default": "https://example.com/cookies"}
                  terms-of-use: {"en": "https://example.com/terms"}
                  privacy-policy: {"cognito:default": "javascript:alert(1)"}
        """
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    text = str(caught.value)
    for where in (
        "pools[0].clients[0].terms.cookie-policy",
        "pools[0].clients[0].terms.terms-of-use",
        "pools[0].clients[0].terms.privacy-policy",
    ):
        assert where in text, (where, text)
    assert "expected an http:// or https:// URL" in text, text


async def test_a_rotation_through_the_api_survives_the_file(services: Services, write: Write) -> None:
    """A secret added by AddUserPoolClientSecret stays while the file's secret is still one of the client's, or
    was deleted through the API; a secret the file changes replaces every secret the client has (the rotation
    the file itself does)."""
    await apply_config(services, _load(write))
    pools = services.pools
    added = await pools.add_client_secret("us-east-1_Apply01", "web", None)
    await apply_config(services, _load(write))
    web = await pools.get_client("us-east-1_Apply01", "web", fresh=True)
    assert web.secrets == (APPLY_ENV["WEB_SECRET"], added["ClientSecretValue"])
    # The file's secret deleted through the API (a revocation): applying the unchanged file does not bring it
    # back, nor drop the secret the rotation added.
    [first, _] = await pools.list_client_secrets("us-east-1_Apply01", "web")
    await pools.delete_client_secret("us-east-1_Apply01", "web", first["ClientSecretId"])
    await apply_config(services, _load(write))
    web = await pools.get_client("us-east-1_Apply01", "web", fresh=True)
    assert web.secrets == (added["ClientSecretValue"],) and not web.secret_matches(APPLY_ENV["WEB_SECRET"])
    assert len(await pools.list_client_secrets("us-east-1_Apply01", "web")) == 1


MACHINE_CONFIG = """\
version: 1
pools:
  - id: us-east-1_Machine1
    name: machine
    clients:
      - id: machine
        name: machine
        secret: machine-secret-0123456789abcdef
        explicit_auth_flows: [ALLOW_CLIENT_TOKEN_AUTH]
"""


async def test_a_machine_client_with_the_client_token_flow(services: Services, write: Write) -> None:
    """ALLOW_CLIENT_TOKEN_AUTH (GetClientToken) alone, with a secret: applied, and applied again unchanged."""
    await apply_config(services, load_config(write(MACHINE_CONFIG), environ={}))
    before = await services.pools.get_client("us-east-1_Machine1", "machine", fresh=True)
    assert before.explicit_auth_flows == ["ALLOW_CLIENT_TOKEN_AUTH"]
    await apply_config(services, load_config(write(MACHINE_CONFIG), environ={}))
    assert (await services.pools.get_client("us-east-1_Machine1", "machine", fresh=True)).record == before.record


async def test_a_machine_client_with_the_token_exchange_flows(services: Services, write: Write) -> None:
    """GetDerivedToken's flows sign no user in: a machine client holds them with ALLOW_CLIENT_TOKEN_AUTH."""
    flows = "[ALLOW_CLIENT_TOKEN_AUTH, ALLOW_TOKEN_EXCHANGE_IMPERSONATION, ALLOW_TOKEN_EXCHANGE_DELEGATION]"
    await apply_config(
        services, load_config(write(MACHINE_CONFIG.replace("[ALLOW_CLIENT_TOKEN_AUTH]", flows)), environ={})
    )
    client = await services.pools.get_client("us-east-1_Machine1", "machine", fresh=True)
    assert client.explicit_auth_flows == [
        "ALLOW_CLIENT_TOKEN_AUTH",
        "ALLOW_TOKEN_EXCHANGE_IMPERSONATION",
        "ALLOW_TOKEN_EXCHANGE_DELEGATION",
    ]


def test_the_client_token_flow_alone_and_with_a_secret(write: Write) -> None:
    mixed = MACHINE_CONFIG.replace("[ALLOW_CLIENT_TOKEN_AUTH]", "[ALLOW_CLIENT_TOKEN_AUTH, ALLOW_REFRESH_TOKEN_AUTH]")
    path = write(mixed.replace("        secret: machine-secret-0123456789abcdef\n", ""))
    lines = str(errors_of(path)).splitlines()
    assert (
        f"{path}: pools[0].clients[0].explicit_auth_flows: expected ALLOW_CLIENT_TOKEN_AUTH alone (no user flows), "
        "got ['ALLOW_CLIENT_TOKEN_AUTH', 'ALLOW_REFRESH_TOKEN_AUTH']" in lines
    )
    assert f"{path}: pools[0].clients[0].secret: expected a secret: the ALLOW_CLIENT_TOKEN_AUTH flow needs one" in lines


# --- CIMD policies and session tracking ----------------------------------------------------------------------

CIMD_CONFIG = """\
version: 1
pools:
  - id: us-east-1_Cimd01
    name: cimd
    session_tracking: {enabled: true, max_token_sessions_per_user: 5}
    clients:
      - id: cimdapp
        name: app
        callback_urls: ["https://app.example.com/cb"]
        allowed_oauth_flows: [code]
        allowed_oauth_scopes: [openid]
        sso_session_max_minutes: 30
      - id: cimdother
        name: other
    cimd_policies:
      - id: partners
        name: partners
        client: cimdapp
        url_patterns: ["https://*.partners.example/client.json", "https://apps.example/*/meta.json"]
        cache_duration: 7d
      - id: tools
        name: tools
        client: cimdapp
        url_patterns: ["https://tools.example/client.json"]
"""


def test_cimd_policies_and_sessions_are_checked_with_their_key_paths(write: Write) -> None:
    path = write(
        """\
        version: 1
        pools:
          - id: us-east-1_Cimd01
            name: cimd
            session_tracking: {enabled: false, max_token_sessions_per_user: 101}
            clients:
              - {id: app, name: app, sso_session_max_minutes: 129601}
              - {id: other, name: other, sso_session_max_minutes: 10}
            cimd_policies:
              - id: Bad-Id
                name: "a name far too long for a CIMD policy name"
                client: nosuch
                url_patterns: ["http://x.example/a.json", "https://x.example", "https://a.*.example/c.json"]
                cache_duration: 2h
              - id: ok
                name: ok
                client: app
                url_patterns: []
                cache_duration: 400d
              - id: twice
                name: twice
                client: app
                url_patterns: ["https://a.example/c.json", "https://a.example/c.json"]
              - {id: twice, name: again, client: app, url_patterns: ["https://b.example/c.json"]}
        """
    )
    lines = str(errors_of(path)).splitlines()
    expected = [
        "pools[0].session_tracking.max_token_sessions_per_user: expected a number <= 100, got 101",
        "pools[0].clients[0].sso_session_max_minutes: expected a number <= 129600, got 129601",
        "pools[0].cimd_policies[0].id: expected a string matching ^[a-z0-9]+$, got 'Bad-Id'",
        "pools[0].cimd_policies[0].name: expected at most 32 characters, "
        "got 'a name far too long for a CIMD policy name'",
        "pools[0].cimd_policies[0].cache_duration: expected a duration between 1 day and 1 year, got '2h'",
        "pools[0].cimd_policies[1].url_patterns: expected at least 1 item(s), got []",
        "pools[0].cimd_policies[1].cache_duration: expected a duration between 1 day and 1 year, got '400d'",
    ]
    assert lines == [f"{path}: {line}" for line in expected]
    # Once every value has its type, the checks across keys run: cross references, the service's pattern rules.
    fixed = path.read_text().replace("101}", "10}").replace("129601", "60").replace("Bad-Id", "badid")
    fixed = fixed.replace('"a name far too long for a CIMD policy name"', "bad").replace("2h", "1d")
    fixed = fixed.replace("url_patterns: []", 'url_patterns: ["https://ok.example/c.json"]').replace("400d", "365d")
    path.write_text(fixed)
    lines = str(errors_of(path)).splitlines()
    expected = [
        "pools[0].clients[0].sso_session_max_minutes: expected the pool's session_tracking with enabled: true "
        "(a client's SSO session setting needs session tracking), got 60",
        "pools[0].clients[1].sso_session_max_minutes: expected the pool's session_tracking with enabled: true "
        "(a client's SSO session setting needs session tracking), got 10",
        "pools[0].cimd_policies[0].url_patterns[0]: expected a URL pattern (A URL pattern must start with "
        "https://), got 'http://x.example/a.json'",
        "pools[0].cimd_policies[0].url_patterns[1]: expected a URL pattern (The URL pattern https://x.example has "
        "no path), got 'https://x.example'",
        "pools[0].cimd_policies[0].url_patterns[2]: expected a URL pattern (The URL pattern "
        "https://a.*.example/c.json has an invalid host: a * may only stand for the whole first label), "
        "got 'https://a.*.example/c.json'",
        "pools[0].cimd_policies[0].client: expected a client declared in this pool ('app', 'other'), got 'nosuch'",
        "pools[0].cimd_policies[2].url_patterns[1]: expected a value not already given by url_patterns[0], "
        "got 'https://a.example/c.json'",
        "pools[0].cimd_policies[3].id: expected a value not already given by cimd_policies[2], got 'twice'",
    ]
    assert sorted(lines) == sorted(f"{path}: {line}" for line in expected)


def test_cimd_policy_ids_are_unique_across_pools_and_lite_pools_track_no_sessions(write: Write) -> None:
    path = write(
        """\
        version: 1
        pools:
          - id: us-east-1_Cimd01
            name: one
            clients: [{id: one, name: one}]
            cimd_policies: [{id: shared, name: one, client: one, url_patterns: ["https://one.example/c.json"]}]
          - id: us-east-1_Cimd02
            name: two
            cognito: {UserPoolTier: LITE}
            session_tracking: {enabled: true}
            clients: [{id: two, name: two}]
            cimd_policies: [{id: shared, name: two, client: two, url_patterns: ["https://two.example/c.json"]}]
        """
    )
    assert str(errors_of(path)).splitlines() == [
        f"{path}: pools[1].session_tracking: expected a pool in the ESSENTIALS or PLUS tier (session management "
        "is not in LITE)",
        f"{path}: pools[1].cimd_policies[0].id: expected an id not used by pools[0].cimd_policies[0], got 'shared'",
    ]


async def _policies(services: Services, pool_id: str) -> dict[str, Any]:
    return {p.policy_id: p for p in await services.store.cimd_policies_for_matching(pool_id)}


async def test_cimd_policies_and_sessions_are_applied_idempotently(services: Services, write: Write) -> None:
    config = load_config(write(CIMD_CONFIG), environ={})
    await asyncio.gather(apply_config(services, config), apply_config(services, config))  # a race, as at start
    pool = await services.pools.get_pool("us-east-1_Cimd01", fresh=True)
    assert services.sessions.pool_config(pool)["UserSessionTracking"] == "ENABLED"
    assert services.sessions.max_per_user(pool) == 5
    answer = await services.sessions.client_config(pool.id, "cimdapp")
    assert answer["SSOSession"] == {"MaxValidityMinutes": 30}
    policies = await _policies(services, pool.id)
    assert sorted(policies) == ["partners", "tools"]
    assert policies["partners"].cache_seconds == 7 * 86400
    assert policies["partners"].url_patterns == [
        "https://*.partners.example/client.json",
        "https://apps.example/*/meta.json",
    ]
    assert policies["tools"].cache_seconds == 86400  # the service's default
    before = (await services.store.get_pool(pool.id), policies)
    await apply_config(services, load_config(write(CIMD_CONFIG), environ={}))
    assert (await services.store.get_pool(pool.id), await _policies(services, pool.id)) == before

    # A policy made through the API is deleted, a changed one updated in place, one no longer declared deleted.
    await services.cimd.create(
        pool.id, {"ClientId": "cimdother", "PolicyName": "api", "URLPatterns": ["https://api.example/c.json"]}
    )
    changed = CIMD_CONFIG.replace("client: cimdapp\n        url_patterns: [\"https://*", "client: cimdother\n        "
                                  "url_patterns: [\"https://*").replace("7d", "30 days")  # fmt: skip
    changed = changed[: changed.index("      - id: tools")]
    changed = changed.replace("max_token_sessions_per_user: 5", "max_token_sessions_per_user: 7")
    changed = changed.replace("sso_session_max_minutes: 30", "sso_session_max_minutes: 0")
    await apply_config(services, load_config(write(changed), environ={}))
    policies = await _policies(services, pool.id)
    assert sorted(policies) == ["partners"]
    assert (policies["partners"].client_id, policies["partners"].cache_seconds) == ("cimdother", 30 * 86400)
    assert policies["partners"].created_at == before[1]["partners"].created_at
    pool = await services.pools.get_pool(pool.id, fresh=True)
    assert services.sessions.max_per_user(pool) == 7
    assert (await services.sessions.client_config(pool.id, "cimdapp"))["SSOSession"] == {"MaxValidityMinutes": 0}


async def test_a_cimd_policy_id_of_another_pool_is_named(services: Services, write: Write) -> None:
    await apply_config(services, load_config(write(CIMD_CONFIG), environ={}))
    other = CIMD_CONFIG.replace("us-east-1_Cimd01", "us-east-1_Cimd02").replace("cimdapp", "cimdapp2")
    other = other.replace("cimdother", "cimdother2")
    with pytest.raises(ConfigError) as caught:
        await apply_config(services, load_config(write(other, "other.yaml"), environ={}))
    assert str(caught.value).splitlines() == [
        f"{caught.value.source}: pools[0].cimd_policies[{i}].id: expected a CIMD policy id "
        f"not used elsewhere: {name!r} is a policy of another user pool"
        for i, name in enumerate(["partners", "tools"])
    ]
    assert sorted(await _policies(services, "us-east-1_Cimd01")) == ["partners", "tools"]


async def test_a_pool_tracking_sessions_through_the_api_is_not_rewritten_at_each_start(
    services: Services, write: Write
) -> None:
    """The file says nothing of sessions: what SetUserPoolSessionConfiguration set is not a difference."""
    config = load_config(write(MINIMAL_POOL), environ={})
    await apply_config(services, config)
    await services.sessions.set_pool_config("us-east-1_Test01", "ENABLED", 3)
    before = await services.store.get_pool("us-east-1_Test01")
    await apply_config(services, config)
    after = await services.store.get_pool("us-east-1_Test01")
    assert after == before
    assert after is not None and after.settings["UserSessionConfiguration"]["TokenSession"] == {"MaxPerUser": 3}


async def test_a_fixed_cimd_policy_id_must_be_a_policy_id(services: Services, write: Write) -> None:
    """CimdService.create takes the file's ids: only CIMDPolicyIdType's form, and the store refuses one taken."""
    from gateway.errors import InvalidParameterException
    from gateway.storage.base import AlreadyExists

    await apply_config(services, load_config(write(CIMD_CONFIG), environ={}))
    request = {"ClientId": "cimdapp", "PolicyName": "x", "URLPatterns": ["https://x.example/c.json"]}
    with pytest.raises(InvalidParameterException):
        await services.cimd.create("us-east-1_Cimd01", request, policy_id="Not-An-Id")
    with pytest.raises(AlreadyExists):
        await services.cimd.create("us-east-1_Cimd01", request, policy_id="partners")
    assert sorted(await _policies(services, "us-east-1_Cimd01")) == ["partners", "tools"]


# --- log export ----------------------------------------------------------------------------------------------

LOG_GROUP_ARN = "arn:aws:logs:us-east-1:123456789012:log-group:gatehouse-notifications"
STREAM_ARN = "arn:aws:firehose:us-east-1:123456789012:deliverystream/gatehouse-activity"
LOG_CONFIG = f"""\
version: 1
pools:
  - id: us-east-1_Logs01
    name: logs
    cognito: {{UserPoolTier: PLUS}}
    log_delivery:
      user_notification: {LOG_GROUP_ARN}
      user_activity: {STREAM_ARN}
"""


async def test_log_delivery_is_applied_idempotently_and_follows_the_file(services: Services, write: Write) -> None:
    await apply_config(services, load_config(write(LOG_CONFIG), environ={}))
    pool = await services.pools.get_pool("us-east-1_Logs01", fresh=True)
    assert log_delivery_configuration(pool)["LogConfigurations"] == [
        {
            "EventSource": "userNotification",
            "LogLevel": "ERROR",
            "CloudWatchLogsConfiguration": {"LogGroupArn": LOG_GROUP_ARN},
        },
        {"EventSource": "userAuthEvents", "LogLevel": "INFO", "FirehoseConfiguration": {"StreamArn": STREAM_ARN}},
    ]
    before = await services.store.get_pool(pool.id)
    await apply_config(services, load_config(write(LOG_CONFIG), environ={}))
    assert await services.store.get_pool(pool.id) == before  # nothing rewritten at a second start

    # Without the key the pool's configuration is left as it is; an empty mapping removes it.
    without = LOG_CONFIG[: LOG_CONFIG.index("    log_delivery:")]
    await apply_config(services, load_config(write(without), environ={}))
    assert await services.store.get_pool(pool.id) == before
    await apply_config(services, load_config(write(without + "    log_delivery: {}\n"), environ={}))
    pool = await services.pools.get_pool(pool.id, fresh=True)
    assert log_delivery_configuration(pool)["LogConfigurations"] == []


async def test_log_delivery_refusals_name_their_key(services: Services, write: Write) -> None:
    path = write(LOG_CONFIG.replace("cognito: {UserPoolTier: PLUS}", "cognito: {UserPoolTier: ESSENTIALS}"))
    with pytest.raises(ConfigError) as caught:
        await apply_config(services, load_config(path, environ={}))
    assert str(caught.value).splitlines() == [
        f"{path}: pools[0].log_delivery: could not apply log delivery: FeatureUnavailableInTierException: Exporting "
        "user activity logs (userAuthEvents) requires the Plus feature plan."
    ]
    pool = await services.pools.get_pool("us-east-1_Logs01", fresh=True)
    assert log_delivery_configuration(pool)["LogConfigurations"] == []  # nothing half applied

    lines = str(errors_of(write(LOG_CONFIG.replace(STREAM_ARN, "arn:aws:sqs:us-east-1:123456789012:q")))).splitlines()
    assert len(lines) == 1 and "pools[0].log_delivery.user_activity" in lines[0]


# --- values valid alone, refused together; references ------------------------------------------------------


def test_settings_that_would_fail_every_request_are_refused_at_load(write: Write) -> None:
    """Argon2 needs 8 KiB per lane (RFC 9106 §3.1; every hash would fail), SMTP takes implicit TLS or STARTTLS
    (aiosmtplib refuses both at every send), and a client secret is as long as the API's (24 to 64)."""
    path = write(
        """\
        version: 1
        server:
          argon2: {memory_kib: 8, parallelism: 4}
          smtp: {host: mail.example.com, use_tls: true, start_tls: true}
        pools:
          - id: us-east-1_Test01
            name: test
            clients:
              - {id: short, name: short, secret: "${SHORT}"}
              - {id: spaced, name: spaced, secret: "${SPACED}"}
              - {id: long, name: long, secret: "${LONG}"}
        """
    )
    env = {"SHORT": "abc", "SPACED": "has a space in the middle of it", "LONG": "x" * 65}
    lines = str(errors_of(path, env)).splitlines()
    assert sorted(lines) == [
        f"{path}: pools[0].clients[0].secret: expected at least 24 characters, got a secret (not shown)",
        f"{path}: pools[0].clients[1].secret: expected a secret without white space, got a secret (not shown)",
        f"{path}: pools[0].clients[2].secret: expected at most 64 characters, got a secret (not shown)",
        f"{path}: server.argon2.memory_kib: expected at least 8 KiB per lane (32 for parallelism 4), got 8",
        f"{path}: server.smtp.start_tls: expected use_tls or start_tls, not both (implicit TLS already encrypts the "
        "connection STARTTLS would upgrade), got True",
    ]
    fine = write("version: 1\nserver:\n  argon2: {memory_kib: 32, parallelism: 4}\n  smtp: {host: m, use_tls: true}\n")
    assert load_config(fine, environ={}).server is not None


def test_a_nested_reference_in_a_default_is_refused(write: Write) -> None:
    """${A:-${B}} would end at the first "}": refused rather than read as a wrong value."""
    path = write(MINIMAL_POOL + '    clients: [{id: app, name: app, secret: "${WEB:-${FALLBACK}}"}]\n')
    for env in ({}, {"FALLBACK": "f" * 30}, {"WEB": "w" * 30}):
        message = str(errors_of(path, env))
        assert "pools[0].clients[0].secret: expected a default without ${...} in ${WEB:-default}" in message


def test_aliases_of_a_string_with_references_stay_one_string() -> None:
    """A YAML alias is its anchor's object: substituted once and shared, so ten thousand aliases of a long string
    with references cost one copy (the value count counted them once each), not ten thousand."""
    text = 'x-anchor: &a "' + "${HOME_DIR}/" * 2_000 + '"\nunused:\n' + "".join(f"  k{i}: *a\n" for i in range(10_000))
    loaded = yaml.safe_load(text)
    problems: list[Any] = []
    substituted = _substitute(loaded, (), {"HOME_DIR": "/home/me"}, problems)
    values = list(substituted["unused"].values())
    assert problems == [] and values[0] == "/home/me/" * 2_000
    assert all(value is values[0] for value in values) and substituted["x-anchor"] is values[0]


def test_an_email_address_no_message_could_carry_is_refused_at_load(write: Write) -> None:
    """A sender or reply-to the email package cannot write as one clean header would fail every message of the
    pool: refused by ``config check`` as CreateUserPool refuses it, not only when ``serve`` applies the pool."""
    path = write(
        """\
        version: 1
        server:
          default_email_sender: "a@b..c"
        pools:
          - id: us-east-1_Test01
            name: test
            email: {from: "Support <a@[b>", reply_to: "help@example.com"}
          - id: us-east-1_Test02
            name: test2
            email: {from: "Support <support@example.com>", reply_to: "a@[b"}
        """
    )
    hint = "expected an email address, optionally with a name: 'Example <no-reply@example.com>'"
    assert sorted(str(errors_of(path)).splitlines()) == [
        f"{path}: pools[0].email.from: {hint}, got 'Support <a@[b>'",
        f"{path}: pools[1].email.reply_to: {hint}, got 'a@[b'",
        f"{path}: server.default_email_sender: {hint}, got 'a@b..c'",
    ]
