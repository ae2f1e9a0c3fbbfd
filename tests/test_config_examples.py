"""The config files the repository ships, as their readers use them: valid against ``config/schema.json`` (what
editors check them with), and ``config/gatehouse.example.yaml`` served as its header says, its IAM roles and
identity pool giving credentials to the users its comments say they do."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml
from pycognito.aws_srp import AWSSRP

from gateway.config_file import config_json_schema
from tests.support import TEST_ARGON2_ENV, GatehouseServer

REPO = Path(__file__).resolve().parent.parent
SHIPPED = sorted(str(p.relative_to(REPO)) for d in ("config", "examples") for p in (REPO / d).rglob("*.yaml"))

# The environment the example's header asks for.
EXAMPLE_ENV = {
    "WEB_CLIENT_SECRET": "web-client-secret-0123456789",
    "GATEHOUSE_ADMIN_SECRET": "admin-secret-0123456789",
    "SMTP_PASSWORD": "smtp-password",
    "SMS_WEBHOOK_TOKEN": "sms-token",
    "LAMBDA_SECRET_ACCESS_KEY": "lambda-secret",
    "KMS_SECRET_ACCESS_KEY": "kms-secret",
}
POOL = "us-east-1_Example01"
WEB = "examplewebapp00000000000001"
SPA = "examplespa0000000000000001"
IDENTITY_POOL = "us-east-1:6f1c8a2e-0b7d-4c55-9d3e-2a4b5c6d7e8f"
SEED_USER, SEED_PASSWORD = "admin@example.com", "ChangeMe-123!"  # in the admins group
ROLE = "arn:aws:iam::000000000000:role/{}"


# --- the schema -----------------------------------------------------------------------------------------------


def _validator() -> Any:
    schema = json.loads((REPO / "config" / "schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _errors(document: Any) -> set[str]:
    """Where the document is invalid and why: the innermost failures ("<key path>: <message>"), as an editor
    shows them, without the branches of an optional key that the value was never meant for."""

    def leaves(error: Any) -> Iterator[Any]:
        if error.context:
            for inner in error.context:
                yield from leaves(inner)
        else:
            yield error

    found = (leaf for error in _validator().iter_errors(document) for leaf in leaves(error))
    return {f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in found if "of type 'null'" not in e.message}


def test_shipped_config_files_are_found() -> None:
    assert {"config/default.yaml", "config/gatehouse.example.yaml", "examples/broker/broker.yaml"} <= set(SHIPPED)


@pytest.mark.parametrize("path", SHIPPED)
def test_shipped_config_file_is_valid_against_the_schema(path: str) -> None:
    assert _errors(yaml.safe_load((REPO / path).read_text())) == set()


def test_schema_takes_what_the_loader_takes_before_conversion() -> None:
    """A factor written as true, a policy written as a mapping, a ${...} reference for a number or a URL."""
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole"}]}
    document = {
        "version": 1,
        "server": {
            "port": "${PORT:-9229}",
            "public_url": "${PUBLIC_URL}",
            "smtp": {"host": "${SMTP_HOST}", "port": "${SMTP_PORT:-587}"},
        },
        "pools": [
            {
                "id": "us-east-1_Schema01",
                "name": "schema",
                "mfa": {"mode": "OPTIONAL", "sms": True, "email": True},
                "clients": [{"id": "web", "name": "web", "secret": "${WEB_SECRET}"}],
            }
        ],
        "iam": {"roles": [{"name": "r", "trust_policy": trust, "policies": {"p": trust, "q": json.dumps(trust)}}]},
    }
    assert _errors(document) == set()


def test_schema_still_refuses_what_no_reference_excuses() -> None:
    document = {
        "version": 1,
        "server": {
            "port": "not a port",  # a string without a reference where a number goes
            "public_url": "$${NOT_A_REFERENCE}",  # the escape: a literal "${" that must still be a URL
            "smtp": {"host": "localhost", "port": 70000},
        },
        "pools": [{"id": "us-east-1_Schema01", "name": "schema", "clients": [{"id": "w", "name": "w", "secret": "s"}]}],
        "iam": {"roles": [{"name": "r", "trust_policy": ["not", "a", "policy"]}]},
    }
    failing = {path.split(":")[0] for path in _errors(document)}
    assert failing == {
        "server/port", "server/public_url", "server/smtp/port", "pools/0/clients/0/secret", "iam/roles/0/trust_policy",
    }  # fmt: skip


def _schema_keys(node: Any, definitions: dict[str, Any], prefix: str = "") -> set[str]:
    """Every key path the schema describes (``pools.identity_providers.private_key``), lists and maps looked
    through."""
    if not isinstance(node, dict):
        return set()
    if "$ref" in node:
        return _schema_keys(definitions[node["$ref"].rsplit("/", 1)[-1]], definitions, prefix)
    found: set[str] = set()
    for name, sub in node.get("properties", {}).items():
        path = f"{prefix}.{name}" if prefix else name
        found |= {path} | _schema_keys(sub, definitions, path)
    for key in ("items", "additionalProperties"):
        found |= _schema_keys(node.get(key), definitions, prefix)
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in node.get(key, []):
            found |= _schema_keys(sub, definitions, prefix)
    return found


def test_the_example_names_every_key_of_the_schema() -> None:
    """README: ``config/gatehouse.example.yaml`` documents every key. Each key ``config/schema.json`` describes
    is written in it, set or in a comment, so a reader finds every setting there."""
    schema = json.loads((REPO / "config" / "schema.json").read_text())
    definitions = schema.get("$defs", {})
    text = (REPO / "config" / "gatehouse.example.yaml").read_text()
    written = set(re.findall(r"^[\s#]*(?:- )?([A-Za-z_]\w*):", text, re.MULTILINE))
    written |= set(re.findall(r"[{,]\s*([A-Za-z_]\w*):", text))
    keys = _schema_keys(schema, definitions)
    assert len(keys) > 200
    assert sorted(k for k in keys if k.rsplit(".", 1)[-1] not in written) == []


def test_committed_schema_allows_references() -> None:
    # config/schema.json is config_json_schema()'s output (tests/test_config_file.py checks it is not stale).
    port = config_json_schema()["$defs"]["SmtpConfig"]["properties"]["port"]
    assert {"type": "string", "pattern": r"(^|[^$])\$\{"} in port["anyOf"]


# --- the example served ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatehouseServer]:
    data_dir: Path = tmp_path_factory.mktemp("example") / "data"
    server = GatehouseServer(
        data_dir,
        config=(REPO / "config" / "gatehouse.example.yaml").read_text(),
        # The file's default public URL (its trust policy names that issuer); the tests' cheap password hashing.
        extra_env={
            **EXAMPLE_ENV,
            **TEST_ARGON2_ENV,
            "GATEHOUSE_PUBLIC_URL": None,
            "GATEHOUSE_SEED_ADMIN_PASSWORD": None,
        },
    )
    server.start()
    yield server
    server.stop()


def _spa_id_token(example: GatehouseServer, username: str, password: str) -> str:
    """The single-page app's sign-in (SRP, its only password flow): the ID token the identity pool takes."""
    public = example.client(signed=False)
    srp = AWSSRP(username=username, password=password, pool_id=POOL, client_id=SPA, client=public)
    return str(srp.authenticate_user()["AuthenticationResult"]["IdToken"])


def _identity_credentials(example: GatehouseServer, id_token: str) -> dict[str, Any]:
    """GetId and GetCredentialsForIdentity with the user pool login, as an app calls them (unsigned)."""
    ci = example.client("cognito-identity", signed=False)
    logins = {f"cognito-idp.us-east-1.amazonaws.com/{POOL}": id_token}
    identity = ci.get_id(IdentityPoolId=IDENTITY_POOL, Logins=logins)["IdentityId"]
    answer = ci.get_credentials_for_identity(IdentityId=identity, Logins=logins)
    return dict(answer["Credentials"])


def _caller_arn(example: GatehouseServer, credentials: dict[str, Any]) -> str:
    sts = example.client(
        "sts", key_id=credentials["AccessKeyId"], secret=credentials["SecretKey"],
        aws_session_token=credentials["SessionToken"],
    )  # fmt: skip
    return str(sts.get_caller_identity()["Arn"])


def test_web_client_id_token_assumes_the_readers_role(example: GatehouseServer) -> None:
    secret = EXAMPLE_ENV["WEB_CLIENT_SECRET"].encode()
    secret_hash = base64.b64encode(hmac.new(secret, (SEED_USER + WEB).encode(), hashlib.sha256).digest()).decode()
    signed_in = example.client(signed=False).initiate_auth(
        ClientId=WEB,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": SEED_USER, "PASSWORD": SEED_PASSWORD, "SECRET_HASH": secret_hash},
    )
    answer = example.client("sts", signed=False).assume_role_with_web_identity(
        RoleArn=ROLE.format("ExampleReaders"),
        RoleSessionName="example-web",
        WebIdentityToken=signed_in["AuthenticationResult"]["IdToken"],
    )
    assert answer["Credentials"]["AccessKeyId"]
    assert answer["AssumedRoleUser"]["Arn"] == "arn:aws:sts::000000000000:assumed-role/ExampleReaders/example-web"


def test_identity_pool_gives_a_signed_in_user_the_authenticated_role(example: GatehouseServer) -> None:
    username, password = "reader@example.com", "Reader-Pass-123!"
    idp = example.client()
    idp.admin_create_user(
        UserPoolId=POOL, Username=username, MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "email", "Value": username}, {"Name": "email_verified", "Value": "true"}],
    )  # fmt: skip
    idp.admin_set_user_password(UserPoolId=POOL, Username=username, Password=password, Permanent=True)
    credentials = _identity_credentials(example, _spa_id_token(example, username, password))
    assert ":assumed-role/ExampleReaders/" in _caller_arn(example, credentials)


def test_identity_pool_gives_the_admins_group_its_role(example: GatehouseServer) -> None:
    # The seed user is in admins, whose role_arn is its cognito:preferred_role (role_mappings Type: Token).
    credentials = _identity_credentials(example, _spa_id_token(example, SEED_USER, SEED_PASSWORD))
    assert ":assumed-role/ExampleAdmins/" in _caller_arn(example, credentials)
