"""Config files built to hurt the loader: alias bombs, self-referring aliases, deep nesting, huge files. Each is
refused quickly with one message, never a hang or a stack trace."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.cli import UsageError, _env_argon2
from gateway.config_file import MAX_CONFIG_BYTES, ConfigError, load_config
from gateway.settings import Settings


def billion_laughs(levels: int) -> str:
    lines = ["version: 1", "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "\n".join([*lines, "pools: []", ""])


def refused(path: Path) -> str:
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    # Unguarded, these take hours; 30 s leaves room for a loaded machine without hiding a blow-up.
    assert time.monotonic() - started < 30
    return str(caught.value)


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    path = tmp_path / "laughs.yaml"
    path.write_text(billion_laughs(9))  # 10**9 values from 10 lines
    message = refused(path)
    assert "aliases" in message and "1000000" in message


def test_alias_bomb_through_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "laughs.yaml"
    path.write_text(billion_laughs(9))
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "config", "check", str(path)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "aliases" in result.stderr and "Traceback" not in result.stderr


def test_modest_aliases_still_work(tmp_path: Path) -> None:
    # Anchors are a fair way to share settings; only the blow-up is refused.
    path = tmp_path / "ok.yaml"
    path.write_text(billion_laughs(3).replace("pools: []", "pools: []\nserver: {}"))
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert "a0" in str(caught.value)  # an unknown top-level key, reported as such: the loader got that far


def test_alias_that_contains_itself(tmp_path: Path) -> None:
    path = tmp_path / "cycle.yaml"
    path.write_text("version: 1\npools: &p [*p]\n")
    assert "refers to a mapping or list that contains it" in refused(path)
    path.write_text("version: 1\nserver: &s {log: *s}\npools: []\n")
    assert "contains it" in refused(path)


def test_deep_nesting(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("version: 1\npools: " + "[" * 5000 + "]" * 5000 + "\n")
    assert "nested too deeply" in refused(path)


def test_huge_file(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("w") as file:
        file.write("version: 1\npools: []\n")
        file.write("# " + "x" * (MAX_CONFIG_BYTES) + "\n")
    assert f"at most {MAX_CONFIG_BYTES} bytes" in refused(path)


def test_empty_secret_is_named_as_such(tmp_path: Path) -> None:
    # An unset-but-defaulted ${VAR:-} must not start a server with an empty admin secret.
    path = tmp_path / "empty.yaml"
    path.write_text(
        "version: 1\npools: []\nserver:\n  admin:\n    access_key_id: AKIDEXAMPLE\n"
        "    secret_access_key: ${ADMIN_SECRET:-}\n"
    )
    assert (
        refused(path)
        == f"{path}: server.admin.secret_access_key: expected a secret that is not empty, got an empty one"
    )


def check(path: Path) -> subprocess.CompletedProcess[str]:
    """``gatehouse config check`` on ``path``, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "config", "check", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_a_list_or_mapping_as_a_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "complex.yaml"
    for key in ("[a, b]", "{a: 1}"):
        path.write_text(f"version: 1\n? {key}\n: 2\n")
        result = check(path)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr == (
            f"{path}: line 2, column 3: invalid YAML: expected a plain key (text or number), got a list or mapping\n"
        )


def test_wrong_types_in_the_cognito_pass_through_are_one_line_each(tmp_path: Path) -> None:
    """Such a request fails the service model's check; nothing later reads its Schema or Policies."""
    path = tmp_path / "hatch.yaml"
    for hatch, wrong in (
        ("{Schema: 'abc'}", "'Schema'"),
        ("{Schema: [1]}", "'Schema.1.member'"),
        ("{Policies: [1]}", "'Policies'"),
        ("{Schema: [{Name: a, AttributeDataType: String, StringAttributeConstraints: [1]}]}",
         "'Schema.1.member.StringAttributeConstraints'"),
    ):  # fmt: skip
        path.write_text(
            "version: 1\npools:\n  - id: us-east-1_Probe01\n    name: p\n"
            f"    users: [{{username: u, password: 'Passw0rd!'}}]\n    cognito: {hatch}\n"
        )
        result = check(path)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"{path}: pools[0].cognito: expected a valid CreateUserPool"), (
            lines
        )
        assert f"Unexpected value type for {wrong}" in lines[0]


def test_a_null_policies_in_the_cognito_pass_through_is_read_as_absent(tmp_path: Path) -> None:
    path = tmp_path / "null.yaml"
    path.write_text(
        "version: 1\npools:\n  - id: us-east-1_Probe01\n    name: p\n"
        "    users: [{username: u, password: 'Passw0rd!'}]\n    cognito: {Policies: null}\n"
    )
    assert len(load_config(path, environ={}).pools) == 1


@pytest.mark.parametrize(
    ("text", "environ", "where"),
    [
        ('  - id: us-east-1_Sur01\n    name: "s\\ud800"\n', {}, "pools[0].name"),
        ('  - id: us-east-1_Sur01\n    name: s\n    tags: {"k\\udfff": v}\n', {}, "pools[0].tags['k\\udfff']"),
        ('  - id: us-east-1_Sur01\n    name: s\n    tags: {t: "${TAGV}"}\n', {"TAGV": "a\udcffb"}, "pools[0].tags.t"),
    ],
)
def test_text_that_is_not_valid_unicode_is_refused_with_its_key(
    tmp_path: Path, text: str, environ: dict[str, str], where: str
) -> None:
    """A lone surrogate (a YAML escape, or how Python keeps an environment value's byte that is not UTF-8) would
    break the error message's rendering, or the server when it stores the value."""
    path = tmp_path / "surrogate.yaml"
    path.write_text("version: 1\npools:\n" + text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ=environ)
    message = str(caught.value)
    assert message.startswith(f"{path}: {where}: expected ") and "\n" not in message, message
    assert "valid Unicode text" in message
    message.encode("utf-8")  # printable as it is


def test_text_that_is_not_valid_unicode_through_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "surrogate.yaml"
    path.write_text('version: 1\npools:\n  - id: us-east-1_Sur01\n    name: s\n    tags: {t: "${TAGV}"}\n')
    result = subprocess.run(
        [sys.executable.encode(), b"-m", b"gateway.cli", b"config", b"check", str(path).encode()],
        capture_output=True, timeout=60, check=False, env={**os.environ, "TAGV": b"a\xffb"},  # type: ignore[dict-item]
    )  # fmt: skip
    assert result.returncode == 1 and b"Traceback" not in result.stderr, result.stderr
    lines = result.stderr.decode("utf-8").splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{path}: pools[0].tags.t: expected valid Unicode text"), lines


def test_argon2_costs_beyond_their_bounds_are_refused(tmp_path: Path) -> None:
    """argon2 takes 32-bit numbers: beyond them the file was accepted and every password hash failed."""
    path = tmp_path / "argon2.yaml"
    path.write_text("version: 1\nserver:\n  argon2: {memory_kib: 99999999999999, time_cost: 4294967296}\n")
    assert refused(path).splitlines() == [
        f"{path}: server.argon2.memory_kib: expected a number <= 4194304, got 99999999999999",
        f"{path}: server.argon2.time_cost: expected a number <= 1000, got 4294967296",
    ]


@pytest.mark.parametrize(
    ("name", "value"),
    [("GATEHOUSE_ARGON2_MEMORY_KIB", "99999999999999"), ("GATEHOUSE_ARGON2_TIME_COST", "4294967296"),
     ("GATEHOUSE_ARGON2_PARALLELISM", "65")],
)  # fmt: skip
def test_argon2_variables_beyond_their_bounds_are_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(UsageError) as caught:
        _env_argon2(Settings())
    assert str(caught.value).startswith(f"{name}: expected at most ") and str(caught.value).endswith(f", got {value}")


def test_seed_user_names_are_cognito_user_names(tmp_path: Path) -> None:
    """UsernameType: a name with a control character would be created, and no API call could name it again."""
    path = tmp_path / "names.yaml"
    path.write_text(
        "version: 1\npools:\n  - id: us-east-1_Ctl01\n    name: c\n    users:\n"
        '      - {username: "bo\\u0000b"}\n      - {username: "al\\u0007ice"}\n      - {username: "Zoë-ü_1@x.de"}\n'
    )
    lines = refused(path).splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"{path}: pools[0].users[0].username: expected a user name of letters, marks, ")
    assert lines[0].endswith("got 'bo\\x00b'") and lines[1].endswith("got 'al\\x07ice'")


def test_group_names_are_cognito_group_names(tmp_path: Path) -> None:
    """GroupNameType: a group with a control or format character would be created, and no API call (or token
    consumer) could name it again."""
    path = tmp_path / "groups.yaml"
    path.write_text(
        "version: 1\npools:\n  - id: us-east-1_Grp01\n    name: g\n    groups:\n"
        '      - {name: "ad\\u0001mins"}\n      - {name: "zero\\u200bwidth"}\n      - {name: "Équipe-ü_1.x"}\n'
    )
    lines = refused(path).splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"{path}: pools[0].groups[0].name: expected a group name of letters, marks, ")
    assert lines[1].startswith(f"{path}: pools[0].groups[1].name: expected a group name of letters, marks, ")


def test_sms_webhook_credentials_in_one_place(tmp_path: Path) -> None:
    """Credentials in the webhook URL and an Authorization header too: aiohttp would refuse every SMS."""
    path = tmp_path / "sms.yaml"
    path.write_text(
        "version: 1\nserver:\n  sms_webhook:\n    url: 'https://hook:secret@sms.example/send'\n"
        "    headers: {authorization: 'Bearer t'}\n"
    )
    lines = refused(path).splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{path}: server.sms_webhook.url: expected credentials in the url or an ")
    assert "hook:secret" not in lines[0]


def test_identity_pools_roles_and_providers_are_each_declared_once(tmp_path: Path) -> None:
    """A second identity pool of one id, a role of one name in another case (IAM's names ignore case) or a
    second OIDC provider of one issuer is refused, not applied over the first at every start."""
    trust = "{Version: '2012-10-17', Statement: [{Effect: Allow, Principal: {Federated: x}, Action: 'sts:*'}]}"
    pool = "us-east-1:6f1c8a2e-0b7d-4c55-9d3e-2a4b5c6d7e8f"
    path = tmp_path / "twice.yaml"
    path.write_text(
        "version: 1\niam:\n  oidc_providers:\n"
        "    - {url: 'https://a.example.com', client_ids: [x]}\n"
        "    - {url: 'https://a.example.com/', client_ids: [y]}\n"
        f"  roles:\n    - {{name: R1, trust_policy: {trust}}}\n    - {{name: r1, trust_policy: {trust}}}\n"
        f'identity_pools:\n  - {{id: "{pool}", name: first}}\n  - {{id: "{pool}", name: second}}\n'
    )
    lines = refused(path).splitlines()
    assert [line.split(": expected", 1)[0] for line in lines] == [
        f"{path}: iam.oidc_providers[1].url",
        f"{path}: iam.roles[1].name",
        f"{path}: identity_pools[1].id",
    ], lines


def test_provider_names_are_cognito_provider_names(tmp_path: Path) -> None:
    """ProviderNameTypeV2: no underscore after a name's second character, as CreateIdentityProvider refuses one,
    so that the profile name <ProviderName>_<subject> of one provider is never another's."""
    path = tmp_path / "providers.yaml"
    details = "{type: SAML, details: {MetadataURL: 'https://idp.example/metadata'}}"
    path.write_text(
        "version: 1\npools:\n  - id: us-east-1_Prov01\n    name: p\n    identity_providers:\n"
        f"      - {{name: Acme, {details[1:]}\n      - {{name: Acme_Partner, {details[1:]}\n"
    )
    lines = refused(path).splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{path}: pools[0].identity_providers[1].name: expected a provider name as Cognito")


@pytest.mark.parametrize("pool_id", [b"us-east-1_\xff", b"us-east-1", b"../etc/passwd", b"us-east-1_" + b"a" * 50])
def test_keys_rotate_refuses_a_malformed_pool_id(tmp_path: Path, pool_id: bytes) -> None:
    result = subprocess.run(
        [sys.executable.encode(), b"-m", b"gateway.cli", b"keys", b"rotate", b"--data-dir",
         str(tmp_path / "data").encode(), pool_id],
        capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1 and b"Traceback" not in result.stderr, result.stderr
    lines = result.stderr.decode("utf-8").splitlines()
    assert len(lines) == 1 and lines[0].startswith("gatehouse keys rotate: expected a user pool id"), lines
    assert not (tmp_path / "data").exists()  # refused before the data dir is touched
