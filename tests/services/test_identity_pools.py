"""Role resolution for identity pools ("Role-based access control", Cognito developer guide): which role an
identity's credentials are for, from the pool's roles, its role mappings and the login token's claims."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.errors import InvalidIdentityPoolConfigurationException, NotAuthorizedException
from gateway.services.identity_pools import IdentityPoolView, LoginNames, RoleChoice, choose_role, rule_matches
from gateway.storage.base import IdentityPoolRecord

AUTH = "arn:aws:iam::000000000000:role/auth"
GUEST = "arn:aws:iam::000000000000:role/guest"
ADMIN = "arn:aws:iam::000000000000:role/admin"
READER = "arn:aws:iam::000000000000:role/reader"
KEY = "cognito-idp.us-east-1.amazonaws.com/us-east-1_Pool1:client1"


def pool(roles: dict[str, str] | None = None, mappings: dict[str, Any] | None = None) -> IdentityPoolView:
    settings: dict[str, Any] = {
        "Roles": roles if roles is not None else {"authenticated": AUTH, "unauthenticated": GUEST}
    }
    if mappings:
        settings["RoleMappings"] = mappings
    return IdentityPoolView(IdentityPoolRecord("us-east-1:p", "p", settings, 0.0, 0.0))


def rules(*items: tuple[str, str, str, str], ambiguous: str = "Deny") -> dict[str, Any]:
    return {
        KEY: {
            "Type": "Rules",
            "AmbiguousRoleResolution": ambiguous,
            "RulesConfiguration": {
                "Rules": [{"Claim": c, "MatchType": m, "Value": v, "RoleARN": r} for c, m, v, r in items]
            },
        }
    }


@pytest.mark.parametrize(
    ("match_type", "value", "claim", "expected"),
    [
        ("Equals", "admins", "admins", True),
        ("Equals", "admins", "admins2", False),
        ("Equals", "admins", ["staff", "admins"], True),
        ("NotEqual", "admins", "staff", True),
        ("NotEqual", "admins", ["staff", "admins"], False),
        ("StartsWith", "reader-", "reader-lena@example.com", True),
        ("StartsWith", "reader-", "lena@reader-example.com", False),
        ("Contains", "admin", ["staff", "superadmins"], True),
        ("Contains", "admin", "staff", False),
        ("Equals", "true", True, True),
        ("Equals", "42", 42, True),
        ("NotEqual", "x", None, False),  # a claim the token lacks matches no rule
    ],
)
def test_rule_match_types(match_type: str, value: str, claim: object, expected: bool) -> None:
    rule = {"Claim": "c", "MatchType": match_type, "Value": value, "RoleARN": ADMIN}
    claims = {} if claim is None else {"c": claim}
    assert rule_matches(rule, claims) is expected


def test_guest_gets_the_unauthenticated_role_or_a_configuration_error() -> None:
    assert choose_role(pool(), authenticated=False) == RoleChoice(GUEST)
    with pytest.raises(InvalidIdentityPoolConfigurationException):
        choose_role(pool({"authenticated": AUTH}), authenticated=False)
    with pytest.raises(NotAuthorizedException):
        choose_role(pool(), authenticated=False, custom_role_arn=ADMIN)


def test_without_a_mapping_the_authenticated_role() -> None:
    assert choose_role(pool(), authenticated=True, mapping_keys=(KEY,)) == RoleChoice(AUTH)
    assert choose_role(pool(), authenticated=True, custom_role_arn=AUTH) == RoleChoice(AUTH)
    with pytest.raises(InvalidIdentityPoolConfigurationException):
        choose_role(pool({"unauthenticated": GUEST}), authenticated=True)


def test_rules_first_match_wins_then_ambiguity() -> None:
    mappings = rules(
        ("cognito:groups", "Contains", "admin", ADMIN),
        ("email", "StartsWith", "reader", READER),
        ambiguous="AuthenticatedRole",
    )
    both = {"cognito:groups": ["admins"], "email": "reader@example.com"}
    assert choose_role(pool(mappings=mappings), authenticated=True, mapping_keys=(KEY,), claims=both) == RoleChoice(
        ADMIN, KEY
    )
    reader = {"email": "reader@example.com"}
    assert choose_role(pool(mappings=mappings), authenticated=True, mapping_keys=(KEY,), claims=reader).role_arn == (
        READER
    )
    assert choose_role(pool(mappings=mappings), authenticated=True, mapping_keys=(KEY,), claims={}).role_arn == AUTH
    denying = rules(("email", "Equals", "x", READER))
    with pytest.raises(NotAuthorizedException, match="ambiguous role mapping"):
        choose_role(pool(mappings=denying), authenticated=True, mapping_keys=(KEY,), claims={})
    # A mapping for another provider does not apply.
    assert choose_role(pool(mappings=denying), authenticated=True, mapping_keys=("other",), claims={}).role_arn == AUTH


def test_token_mapping_preferred_role_and_custom_role() -> None:
    mappings = {KEY: {"Type": "Token", "AmbiguousRoleResolution": "Deny"}}
    claims = {"cognito:roles": [ADMIN, READER], "cognito:preferred_role": ADMIN}
    view = pool(mappings=mappings)
    assert choose_role(view, authenticated=True, mapping_keys=(KEY,), claims=claims).role_arn == ADMIN
    assert choose_role(
        view, authenticated=True, mapping_keys=(KEY,), claims=claims, custom_role_arn=READER
    ).role_arn == (READER)
    with pytest.raises(NotAuthorizedException, match="forbidden"):
        choose_role(view, authenticated=True, mapping_keys=(KEY,), claims=claims, custom_role_arn=AUTH)
    with pytest.raises(NotAuthorizedException, match="ambiguous"):
        choose_role(view, authenticated=True, mapping_keys=(KEY,), claims={"cognito:roles": [ADMIN, READER]})
    lenient = pool(mappings={KEY: {"Type": "Token", "AmbiguousRoleResolution": "AuthenticatedRole"}})
    assert choose_role(lenient, authenticated=True, mapping_keys=(KEY,), claims={}).role_arn == AUTH


def test_login_names_of_user_pools() -> None:
    names = LoginNames("gatehouse.example:8443")
    assert names.user_pool_of("gatehouse.example:8443/us-east-1_Abc123") == "us-east-1_Abc123"
    assert names.user_pool_of("cognito-idp.us-east-1.amazonaws.com/us-east-1_Abc123") == "us-east-1_Abc123"
    # AWS's name is the pool's issuer: in the pool's own region, never another's.
    assert names.user_pool_of("cognito-idp.eu-west-1.amazonaws.com/us-east-1_Abc123") is None
    assert names.user_pool_of("cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc123") == "eu-west-1_Abc123"
    assert names.user_pool_of("other.example/us-east-1_Abc123") is None
    assert names.user_pool_of("gatehouse.example:8443/identity") is None
    assert names.user_pool_of("accounts.google.com") is None
    assert names.user_pool_names("us-east-1_Abc123") == (
        "gatehouse.example:8443/us-east-1_Abc123",
        "cognito-idp.us-east-1.amazonaws.com/us-east-1_Abc123",
    )
    assert names.user_pool_names("eu-west-1_Abc123")[1] == "cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc123"
