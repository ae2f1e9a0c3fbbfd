"""The config file's ``iam:`` section: what loads, and what is refused with its key path."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from gateway.config_file import ConfigError, load_config

TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Federated": "cognito-identity.amazonaws.com"}, "Action": "sts:*"}],
}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gatehouse.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_roles_and_providers_load(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""\
        version: 1
        iam:
          oidc_providers:
            - {{url: "https://idp.example.com/t", client_ids: [app], jwks_url: "https://idp.example.com/keys"}}
          roles:
            - name: readers
              trust_policy: {json.dumps(TRUST)}
              policies:
                home: '{{"Version": "2012-10-17", "Statement": {{"Effect": "Allow", "Action": "s3:GetObject",
                        "Resource": "arn:aws:s3:::b/$${{aws:username}}/*"}}}}'
              tags: {{team: a}}
        """,
    )
    config = load_config(path, environ={})
    assert config.iam is not None
    role = config.iam.roles[0]
    assert json.loads(role.trust_policy) == TRUST  # a YAML mapping becomes its JSON text
    assert "${aws:username}" in role.policies["home"]  # $${ is a literal ${
    assert (role.path, role.max_session_duration, role.tags) == ("/", 3600, {"team": "a"})
    assert config.iam.oidc_providers[0].jwks_url == "https://idp.example.com/keys"


def test_malformed_policies_and_values_are_reported_with_their_paths(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        version: 1
        iam:
          oidc_providers:
            - {url: "ftp://idp.example.com", client_ids: []}
          roles:
            - name: "has space"
              max_session_duration: 60
              trust_policy: {Statement: {Effect: Allow, Action: "sts:AssumeRole"}}
              policies:
                bad: {Statement: {Effect: Maybe, Action: "s3:*", Resource: "*"}}
        """,
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    text = str(caught.value)
    for where in (
        "iam.oidc_providers[0].url",
        "iam.oidc_providers[0].client_ids",
        "iam.roles[0].name",
        "iam.roles[0].max_session_duration",
        "iam.roles[0].trust_policy",
        "iam.roles[0].policies.bad",
    ):
        assert where in text, (where, text)
    assert "Principal" in text and "Effect" in text


def test_trust_policies_are_checked_as_iam_checks_them(tmp_path: Path) -> None:
    """A declared role's trust policy names no Resource and only STS actions, as CreateRole requires."""
    statement = TRUST["Statement"][0]  # type: ignore[index]
    with_resource = {"Statement": [{**statement, "Resource": "*"}]}
    other_action = {"Statement": [{**statement, "Action": "s3:GetObject"}]}
    path = write(
        tmp_path,
        f"""\
        version: 1
        iam:
          roles:
            - name: WithResource
              trust_policy: {json.dumps(with_resource)}
            - name: OtherAction
              trust_policy: {json.dumps(other_action)}
        """,
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    text = str(caught.value)
    assert "iam.roles[0].trust_policy" in text and "Has prohibited field Resource" in text, text
    assert "iam.roles[1].trust_policy" in text and "may only specify STS AssumeRole actions" in text, text


def test_unquoted_dates_and_other_yaml_values_in_policies(tmp_path: Path) -> None:
    """YAML reads ``Version: 2012-10-17`` as a date: it is the text written. A timestamp, ``!!binary`` or a key
    that is not text has no JSON form: one line each, not a traceback."""
    trust = "{Effect: Allow, Principal: {Federated: x}, Action: 'sts:AssumeRoleWithWebIdentity'}"
    ok = write(
        tmp_path,
        f"""\
        version: 1
        iam:
          roles:
            - name: Readers
              trust_policy: {{Version: 2012-10-17, Statement: [{trust}]}}
        """,
    )
    config = load_config(ok, environ={})
    assert config.iam is not None
    assert json.loads(config.iam.roles[0].trust_policy)["Version"] == "2012-10-17"
    bad = write(
        tmp_path,
        f"""\
        version: 1
        iam:
          roles:
            - name: Readers
              trust_policy: {{Version: 2012-10-17, Statement: [{trust}], Id: 2020-01-01T00:00:00Z}}
              policies:
                bytes: {{Version: "2012-10-17", Statement: {{Effect: Allow, Action: "s3:*", Resource: !!binary aGk=}}}}
                keys: {{Version: "2012-10-17", 2012-10-17: x, Statement: []}}
        """,
    )
    with pytest.raises(ConfigError) as caught:
        load_config(bad, environ={})
    lines = str(caught.value).splitlines()
    assert len(lines) == 3, lines
    assert lines[0].startswith(f"{bad}: iam.roles[0].trust_policy: expected a policy of JSON values, not an unquoted "
                               "timestamp (2020-01-01T00:00:00+00:00; quote it)")  # fmt: skip
    assert lines[1].startswith(f"{bad}: iam.roles[0].policies.bytes: expected a policy of JSON values, not binary data")
    assert lines[2].startswith(f"{bad}: iam.roles[0].policies.keys: expected a policy whose keys are text")
