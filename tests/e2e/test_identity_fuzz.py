"""Model-driven hostile input against every ``cognito-identity`` operation, over raw HTTP.

For each operation of botocore's ``cognito-identity`` model, hypothesis draws request bodies from the
operation's input shape -- real ids of a live identity pool mixed with made-up ones, boundary numbers,
oversized and odd strings, and now and then a member of the wrong JSON type -- and the server must answer
every one with a JSON error or success: never a 5xx, never a body that is not ``{"__type", "message"}`` on
error, and only error types the model lists for the operation (or the protocol's own). Operations that
change or delete a pool only ever see a spare pool's id, and the live pool must come out unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import botocore.session
import pytest
import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.api.model import ServiceModel
from tests.support import ADMIN_KEY_ID, ADMIN_SECRET, REGION, GatehouseServer

SERVICE: Final = "cognito-identity"
BOTO_MODEL: Final = botocore.session.get_session().get_service_model(SERVICE)
MODEL: Final = ServiceModel.load(SERVICE)
PREFIX: Final = "AWSCognitoIdentityService."
# Errors any operation may answer: the protocol's, before the model's own are reached.
PROTOCOL_ERRORS: Final = frozenset(
    {
        "SerializationException",
        "InvalidParameterException",
        "UnknownOperationException",
        "MissingAuthenticationTokenException",
        "InvalidSignatureException",
        "IncompleteSignatureException",
        "UnrecognizedClientException",
    }
)
DESTRUCTIVE: Final = frozenset(
    {
        "DeleteIdentityPool",
        "UpdateIdentityPool",
        "SetIdentityPoolRoles",
        "SetPrincipalTagAttributeMap",
        "TagResource",
        "UntagResource",
        "DeleteIdentities",
        "UnlinkIdentity",
        "UnlinkDeveloperIdentity",
        "MergeDeveloperIdentities",
        "GetOpenIdTokenForDeveloperIdentity",
    }
)
DEVELOPER: Final = "login.fuzz.app"


@dataclass(frozen=True)
class World:
    pool_id: str
    spare_pool_id: str
    identity_id: str
    spare_identity_id: str
    login_key: str


@dataclass(frozen=True)
class Wire:
    url: str
    http: urllib3.HTTPConnectionPool

    def post(self, operation: str, body: bytes) -> tuple[int, bytes]:
        headers = {"X-Amz-Target": PREFIX + operation, "Content-Type": "application/x-amz-json-1.1"}
        if MODEL.requires_signature(operation):
            request = AWSRequest(method="POST", url=self.url + "/", data=body, headers=headers)
            SigV4Auth(Credentials(ADMIN_KEY_ID, ADMIN_SECRET), SERVICE, REGION).add_auth(request)
            headers = dict(request.headers.items())
        response = self.http.urlopen("POST", "/", body=body, headers=headers, retries=False, redirect=False)
        return response.status, response.data


@pytest.fixture(scope="module")
def wire(gatehouse: GatehouseServer) -> Iterator[Wire]:
    http = urllib3.HTTPConnectionPool("127.0.0.1", gatehouse.port, maxsize=2, timeout=30)
    yield Wire(gatehouse.url, http)
    http.close()


@pytest.fixture(scope="module")
def world(gatehouse: GatehouseServer, idp: Any) -> World:
    ci = gatehouse.client(SERVICE)
    public = gatehouse.client(SERVICE, signed=False)
    user_pool = idp.create_user_pool(PoolName="fuzz")["UserPool"]["Id"]
    client = idp.create_user_pool_client(UserPoolId=user_pool, ClientName="app")["UserPoolClient"]["ClientId"]
    login_key = f"127.0.0.1:{gatehouse.port}/{user_pool}"
    pools = [
        ci.create_identity_pool(
            IdentityPoolName=name,
            AllowUnauthenticatedIdentities=True,
            DeveloperProviderName=DEVELOPER,
            CognitoIdentityProviders=[{"ProviderName": login_key, "ClientId": client}],
        )["IdentityPoolId"]
        for name in ("fuzz live", "fuzz spare")
    ]
    live = ci.get_open_id_token_for_developer_identity(IdentityPoolId=pools[0], Logins={DEVELOPER: "live-user"})
    spare = ci.get_open_id_token_for_developer_identity(IdentityPoolId=pools[1], Logins={DEVELOPER: "spare-user"})
    public.get_id(IdentityPoolId=pools[0])
    return World(pools[0], pools[1], live["IdentityId"], spare["IdentityId"], login_key)


# --- strategies from the model --------------------------------------------------------------------------------

ODD_STRINGS: Final = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "é" * 3,
        "\ud7ff",
        "us-east-1:",
        ":",
        "us-east-1:00000000-0000-0000-0000-000000000000",
        "arn:aws:iam::000000000000:role/x",
        "arn:aws:cognito-identity:us-east-1:000000000000:identitypool/us-east-1:nope",
        "a" * 70000,
        "not.a.jwt",
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
        "cognito-identity.amazonaws.com",
        "authenticated",
    ]
)
WRONG_TYPES: Final = st.sampled_from([None, 0, -1, 1.5, True, "x", [], {}, [None], {"a": None}])


def _ids(world: World, operation: str, member: str) -> st.SearchStrategy[Any]:
    destructive = operation in DESTRUCTIVE
    pool = world.spare_pool_id if destructive else world.pool_id
    identity = world.spare_identity_id if destructive else world.identity_id
    arn = f"arn:aws:cognito-identity:{REGION}:000000000000:identitypool/{pool}"
    known = {
        "IdentityPoolId": [pool],
        "IdentityId": [identity],
        "ResourceArn": [arn],
        "DeveloperProviderName": [DEVELOPER],
        "IdentityProviderName": [world.login_key, DEVELOPER],
        "SourceUserIdentifier": ["spare-user", "live-user"] if destructive else ["x"],
        "DestinationUserIdentifier": ["spare-user"],
        "DeveloperUserIdentifier": ["spare-user" if destructive else "live-user"],
    }
    return st.sampled_from(known.get(member, ["x"]))


def strategy(
    shape: Any, world: World, operation: str, member: str = "", depth: int = 0, *, corrupt: bool = False
) -> st.SearchStrategy[Any]:
    kind = shape.type_name
    value: st.SearchStrategy[Any]
    if kind == "structure":
        members = {
            name: strategy(s, world, operation, name, depth + 1, corrupt=corrupt) for name, s in shape.members.items()
        }
        required = set(shape.required_members)
        value = st.fixed_dictionaries(
            {k: v for k, v in members.items() if k in required},
            optional={k: v for k, v in members.items() if k not in required},
        )
    elif kind == "list":
        value = st.lists(strategy(shape.member, world, operation, member, depth + 1, corrupt=corrupt), max_size=3)
    elif kind == "map":
        keys = st.one_of(st.sampled_from([world.login_key, DEVELOPER, "authenticated", "k"]), st.text(max_size=8))
        value = st.dictionaries(
            keys, strategy(shape.value, world, operation, member, depth + 1, corrupt=corrupt), max_size=3
        )
    elif kind == "string":
        enum = shape.enum
        ids = _ids(world, operation, member)
        choices = [ids, ids, ids, ODD_STRINGS, st.text(max_size=40)]
        if enum:
            choices.insert(0, st.sampled_from(list(enum)))
        value = st.one_of(*choices)
    elif kind in ("integer", "long"):
        value = st.one_of(st.sampled_from([0, 1, 60, 61, 86400, 86401, -1, 2**31, 2**63]), st.integers(-100, 100))
    elif kind == "boolean":
        value = st.booleans()
    else:
        value = st.one_of(st.integers(), st.text(max_size=10))
    # In corrupt bodies, members of the wrong JSON type.
    return st.one_of(value, WRONG_TYPES) if corrupt and depth > 0 else value


OPERATIONS: Final = sorted(MODEL.operation_names())


def test_every_operation_is_fuzzed() -> None:
    assert len(OPERATIONS) == 23


@pytest.mark.parametrize("operation", OPERATIONS)
def test_hostile_input_never_breaks_the_wire(world: World, wire: Wire, operation: str) -> None:
    allowed = MODEL.error_names(operation) | PROTOCOL_ERRORS
    shape = BOTO_MODEL.operation_model(operation).input_shape

    clean = strategy(shape, world, operation)
    # Mostly well-typed bodies (they reach the services); some with members of the wrong JSON type.
    bodies = st.one_of(clean, clean, clean, strategy(shape, world, operation, corrupt=True))

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(body=bodies)
    def fuzz(body: dict[str, Any]) -> None:
        status, raw = wire.post(operation, json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass"))
        assert status < 500, (operation, body, raw[:300])
        answer = json.loads(raw)
        assert isinstance(answer, dict)
        if status >= 400:
            assert set(answer) == {"__type", "message"}, raw[:300]
            assert answer["__type"] in allowed, (operation, answer)

    fuzz()


def test_the_live_pool_survives_the_fuzz(gatehouse: GatehouseServer, world: World) -> None:
    ci = gatehouse.client(SERVICE)
    pool = ci.describe_identity_pool(IdentityPoolId=world.pool_id)
    assert pool["IdentityPoolName"] == "fuzz live" and pool["DeveloperProviderName"] == DEVELOPER
    assert pool["CognitoIdentityProviders"][0]["ProviderName"] == world.login_key
    found = ci.lookup_developer_identity(IdentityPoolId=world.pool_id, DeveloperUserIdentifier="live-user")
    assert found["IdentityId"] == world.identity_id
