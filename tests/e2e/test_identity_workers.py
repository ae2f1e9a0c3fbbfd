"""Identity pools on ``gatehouse serve --workers 2``: two processes sharing one store.

The same login raced through both processes at once gets one identity, not one per process; guests raced
at once get one identity each; and OpenID tokens from either process verify against the identity JWKS
whichever process serves it (both processes may make the issuer's first key at the same moment).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jwt
import pytest

from tests.e2e.aws_support import signed_in_user
from tests.support import GatehouseServer

PASSWORD = "Workers-password-1"
RACERS = 24
CONTENT_TYPE = "application/x-amz-json-1.1"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatehouseServer]:
    server = GatehouseServer(tmp_path_factory.mktemp("identity-workers") / "data", workers=2)
    server.start()
    yield server
    server.stop()


def call(server: GatehouseServer, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    """One unsigned call on a new connection, so that the calls spread over both processes."""
    request = urllib.request.Request(
        server.url + "/",
        data=json.dumps(params).encode(),
        headers={"Content-Type": CONTENT_TYPE, "X-Amz-Target": f"AWSCognitoIdentityService.{operation}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.loads(response.read())
    assert isinstance(answer, dict)
    return answer


def test_racing_logins_and_keys_across_processes(cluster: GatehouseServer) -> None:
    idp = cluster.client()
    ci = cluster.client("cognito-identity")
    pool_id, client_id, token = signed_in_user(idp, "identity-workers", "racer", PASSWORD)
    key = f"127.0.0.1:{cluster.port}/{pool_id}"
    identity_pool = ci.create_identity_pool(
        IdentityPoolName="racing",
        AllowUnauthenticatedIdentities=True,
        AllowClassicFlow=True,
        CognitoIdentityProviders=[{"ProviderName": key, "ClientId": client_id}],
    )["IdentityPoolId"]

    with ThreadPoolExecutor(max_workers=8) as executor:
        ids = list(
            executor.map(
                lambda _: call(cluster, "GetId", {"IdentityPoolId": identity_pool, "Logins": {key: token}}),
                range(RACERS),
            )
        )
        guests = list(executor.map(lambda _: call(cluster, "GetId", {"IdentityPoolId": identity_pool}), range(8)))
        tokens = list(
            executor.map(
                lambda answer: call(cluster, "GetOpenIdToken", {"IdentityId": answer["IdentityId"]})["Token"], guests
            )
        )
    assert len({answer["IdentityId"] for answer in ids}) == 1
    assert len({answer["IdentityId"] for answer in guests}) == len(guests)
    listed = ci.list_identities(IdentityPoolId=identity_pool, MaxResults=60)["Identities"]
    assert len(listed) == 1 + len(guests)

    issuer = f"{cluster.url}/identity"
    for _ in range(4):  # each JWKS fetch may land on either process
        keys = jwt.PyJWKClient(f"{issuer}/.well-known/jwks.json", cache_keys=False)
        for openid_token in tokens:
            claims = jwt.decode(
                openid_token,
                keys.get_signing_key_from_jwt(openid_token).key,
                algorithms=["RS256"],
                audience=identity_pool,
                issuer=issuer,
            )
            assert claims["amr"] == ["unauthenticated"]
