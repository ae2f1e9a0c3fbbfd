"""GetId and GetCredentialsForIdentity keep what they read (identities, roles, checked logins) for a couple of
seconds per process; every change made through the server must still count on the very next call.

A real server, boto3's unmodified ``cognito-identity``, ``cognito-idp`` and ``iam`` clients; each case first
makes the calls that fill the caches, then changes something and expects the next call to see it.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.aws_support import identity_trust
from tests.e2e.test_identity_pools import (
    UserPool,
    error_of,
    make_user,
    make_user_pool,
    provider,
    sign_in,
)
from tests.support import GatehouseServer


@pytest.fixture(scope="module")
def users(idp: Any, gatehouse: GatehouseServer) -> UserPool:
    pool = make_user_pool(idp, gatehouse, "cache-users")
    for name in ("ann", "ben", "cat", "dan", "eve", "fay"):
        make_user(idp, pool, name)
    return pool


def identity_pool(ci: Any, iam: Any, users: UserPool, name: str, *, check: bool = False) -> tuple[str, str]:
    """An identity pool trusting the users' app client, with an authenticated role of its own."""
    pool_id = str(
        ci.create_identity_pool(
            IdentityPoolName=name,
            AllowUnauthenticatedIdentities=False,
            CognitoIdentityProviders=[provider(users, check=check)],
        )["IdentityPoolId"]
    )
    role = str(
        iam.create_role(RoleName=f"cache-{name}", AssumeRolePolicyDocument=identity_trust(pool_id))["Role"]["Arn"]
    )
    ci.set_identity_pool_roles(IdentityPoolId=pool_id, Roles={"authenticated": role})
    return pool_id, role


def warm(public_ci: Any, pool_id: str, logins: dict[str, str]) -> str:
    """GetId and GetCredentialsForIdentity twice each: whatever can be cached now is."""
    identity = ""
    for _ in range(2):
        identity = str(public_ci.get_id(IdentityPoolId=pool_id, Logins=logins)["IdentityId"])
        credentials = public_ci.get_credentials_for_identity(IdentityId=identity, Logins=logins)["Credentials"]
        assert credentials["AccessKeyId"].startswith("ASIA") and credentials["SessionToken"]
    return identity


def test_the_same_login_reaches_the_same_identity(ci: Any, iam: Any, public_ci: Any, idp: Any, users: UserPool) -> None:
    pool_id, _ = identity_pool(ci, iam, users, "stable")
    logins = {users.key: sign_in(idp, users, "ann")["IdToken"]}
    identity = warm(public_ci, pool_id, logins)
    # A new token of the same user (a new sign-in) finds the same identity, and so does the first one again.
    again = {users.key: sign_in(idp, users, "ann")["IdToken"]}
    assert public_ci.get_id(IdentityPoolId=pool_id, Logins=again)["IdentityId"] == identity
    assert public_ci.get_id(IdentityPoolId=pool_id, Logins=logins)["IdentityId"] == identity
    # Another user's token does not reach it, cached or not.
    other = {users.key: sign_in(idp, users, "ben")["IdToken"]}
    other_identity = public_ci.get_id(IdentityPoolId=pool_id, Logins=other)["IdentityId"]
    assert other_identity != identity
    code, _, status = error_of(lambda: public_ci.get_credentials_for_identity(IdentityId=identity, Logins=other))
    assert (code, status) == ("NotAuthorizedException", 400)


def test_deleted_identity_is_gone_at_once(ci: Any, iam: Any, public_ci: Any, idp: Any, users: UserPool) -> None:
    pool_id, _ = identity_pool(ci, iam, users, "deleted")
    logins = {users.key: sign_in(idp, users, "cat")["IdToken"]}
    identity = warm(public_ci, pool_id, logins)
    assert ci.delete_identities(IdentityIdsToDelete=[identity])["UnprocessedIdentityIds"] == []
    code, _, status = error_of(lambda: public_ci.get_credentials_for_identity(IdentityId=identity, Logins=logins))
    assert (code, status) == ("ResourceNotFoundException", 400)
    # The login now makes a new identity.
    fresh = public_ci.get_id(IdentityPoolId=pool_id, Logins=logins)["IdentityId"]
    assert fresh != identity
    assert public_ci.get_credentials_for_identity(IdentityId=fresh, Logins=logins)["IdentityId"] == fresh


def test_unlinked_identity_is_refused_at_once(ci: Any, iam: Any, public_ci: Any, idp: Any, users: UserPool) -> None:
    pool_id, _ = identity_pool(ci, iam, users, "unlinked")
    logins = {users.key: sign_in(idp, users, "dan")["IdToken"]}
    identity = warm(public_ci, pool_id, logins)
    public_ci.unlink_identity(IdentityId=identity, Logins=logins, LoginsToRemove=[users.key])
    # The identity lost its only login: it is disabled, and the login no longer reaches it.
    code, _, status = error_of(lambda: public_ci.get_credentials_for_identity(IdentityId=identity, Logins=logins))
    assert (code, status) == ("NotAuthorizedException", 400)
    assert public_ci.get_id(IdentityPoolId=pool_id, Logins=logins)["IdentityId"] != identity


def test_role_changes_count_on_the_next_call(ci: Any, iam: Any, public_ci: Any, idp: Any, users: UserPool) -> None:
    pool_id, role = identity_pool(ci, iam, users, "role-changes")
    name = role.rsplit("/", 1)[1]
    logins = {users.key: sign_in(idp, users, "eve")["IdToken"]}
    identity = warm(public_ci, pool_id, logins)

    def refused() -> tuple[str, int]:
        code, _, status = error_of(lambda: public_ci.get_credentials_for_identity(IdentityId=identity, Logins=logins))
        return code, status

    # A trust policy that no longer admits authenticated identities: refused on the very next call.
    iam.update_assume_role_policy(RoleName=name, PolicyDocument=identity_trust(pool_id, amr="unauthenticated"))
    assert refused() == ("InvalidIdentityPoolConfigurationException", 400)
    iam.update_assume_role_policy(RoleName=name, PolicyDocument=identity_trust(pool_id))
    assert public_ci.get_credentials_for_identity(IdentityId=identity, Logins=logins)["IdentityId"] == identity
    # The role deleted: refused at once; made again under the same name: credentials again, of the new role.
    iam.delete_role(RoleName=name)
    assert refused() == ("InvalidIdentityPoolConfigurationException", 400)
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=identity_trust(pool_id))
    assert public_ci.get_credentials_for_identity(IdentityId=identity, Logins=logins)["Credentials"]["SessionToken"]


def test_pool_configuration_changes_count_on_the_next_call(
    ci: Any, iam: Any, public_ci: Any, idp: Any, users: UserPool
) -> None:
    pool_id, _ = identity_pool(ci, iam, users, "reconfigured")
    logins = {users.key: sign_in(idp, users, "fay")["IdToken"]}
    identity = warm(public_ci, pool_id, logins)
    # The pool now trusts only the other app client: the same (cached) login is refused for its audience.
    ci.update_identity_pool(
        IdentityPoolId=pool_id,
        IdentityPoolName="reconfigured",
        AllowUnauthenticatedIdentities=False,
        CognitoIdentityProviders=[provider(users, client_id=users.other_client_id)],
    )
    for call in (
        lambda: public_ci.get_id(IdentityPoolId=pool_id, Logins=logins),
        lambda: public_ci.get_credentials_for_identity(IdentityId=identity, Logins=logins),
    ):
        code, message, status = error_of(call)
        assert (code, status) == ("NotAuthorizedException", 400) and "audience" in message


def test_server_side_token_check_is_made_on_every_call(
    ci: Any, iam: Any, public_ci: Any, idp: Any, users: UserPool
) -> None:
    pool_id, _ = identity_pool(ci, iam, users, "checked", check=True)
    tokens = sign_in(idp, users, "ann")
    logins = {users.key: tokens["IdToken"]}
    identity = warm(public_ci, pool_id, logins)
    idp.global_sign_out(AccessToken=tokens["AccessToken"])
    for call in (
        lambda: public_ci.get_id(IdentityPoolId=pool_id, Logins=logins),
        lambda: public_ci.get_credentials_for_identity(IdentityId=identity, Logins=logins),
    ):
        code, message, status = error_of(call)
        assert (code, status) == ("NotAuthorizedException", 400) and "revoked" in message


def test_server_side_token_check_switched_on_counts_on_the_next_call(
    ci: Any, iam: Any, public_ci: Any, idp: Any, users: UserPool
) -> None:
    pool_id, _ = identity_pool(ci, iam, users, "check-later")
    tokens = sign_in(idp, users, "ben")
    logins = {users.key: tokens["IdToken"]}
    identity = warm(public_ci, pool_id, logins)
    # Signed out while the pool does not ask for the check: the login still counts.
    idp.global_sign_out(AccessToken=tokens["AccessToken"])
    assert public_ci.get_id(IdentityPoolId=pool_id, Logins=logins)["IdentityId"] == identity
    # The pool now asks for ServerSideTokenCheck: the very next calls check, and refuse, the same login.
    ci.update_identity_pool(
        IdentityPoolId=pool_id,
        IdentityPoolName="check-later",
        AllowUnauthenticatedIdentities=False,
        CognitoIdentityProviders=[provider(users, check=True)],
    )
    for call in (
        lambda: public_ci.get_id(IdentityPoolId=pool_id, Logins=logins),
        lambda: public_ci.get_credentials_for_identity(IdentityId=identity, Logins=logins),
    ):
        code, message, status = error_of(call)
        assert (code, status) == ("NotAuthorizedException", 400) and "revoked" in message


def test_a_user_pool_no_longer_trusted_is_refused_on_the_next_call(
    ci: Any, iam: Any, public_ci: Any, idp: Any, users: UserPool
) -> None:
    pool_id, _ = identity_pool(ci, iam, users, "untrusted-later")
    logins = {users.key: sign_in(idp, users, "cat")["IdToken"]}
    identity = warm(public_ci, pool_id, logins)
    # The pool now names no user pool at all: the same login is from an unsupported provider.
    ci.update_identity_pool(
        IdentityPoolId=pool_id, IdentityPoolName="untrusted-later", AllowUnauthenticatedIdentities=False
    )
    for call in (
        lambda: public_ci.get_id(IdentityPoolId=pool_id, Logins=logins),
        lambda: public_ci.get_credentials_for_identity(IdentityId=identity, Logins=logins),
    ):
        code, message, status = error_of(call)
        assert (code, status) == ("NotAuthorizedException", 400) and "supported provider" in message
    # Trusted again: the same login reaches the same identity.
    ci.update_identity_pool(
        IdentityPoolId=pool_id,
        IdentityPoolName="untrusted-later",
        AllowUnauthenticatedIdentities=False,
        CognitoIdentityProviders=[provider(users)],
    )
    assert public_ci.get_id(IdentityPoolId=pool_id, Logins=logins)["IdentityId"] == identity
