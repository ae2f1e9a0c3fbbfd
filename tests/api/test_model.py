"""Tests of gateway.api.model: botocore's service model as the validator of AWS JSON 1.1 inputs."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest

from gateway.api.model import (
    ServiceModel,
    _compile_java_pattern,
    _String,
    _Timestamp,
    _translate_java_pattern,
)
from gateway.errors import InvalidParameterException, SerializationException, UnknownOperationException

POOL = "us-east-1_AbC123xyz"
USER_POOL_ID_PATTERN = r"[\w-]+_[0-9a-zA-Z]+"


@pytest.fixture(scope="module")
def idp() -> ServiceModel:
    return ServiceModel.load("cognito-idp")


@pytest.fixture(scope="module")
def identity() -> ServiceModel:
    return ServiceModel.load("cognito-identity")


def invalid(model: ServiceModel, operation: str, params: object) -> str:
    """The message of the InvalidParameterException the input must raise."""
    with pytest.raises(InvalidParameterException) as caught:
        model.validate_input(operation, params)
    return caught.value.message


def malformed(model: ServiceModel, operation: str, params: object) -> str:
    """The message of the SerializationException the input must raise."""
    with pytest.raises(SerializationException) as caught:
        model.validate_input(operation, params)
    return caught.value.message


def nested_list(levels: int) -> list[Any]:
    """A JSON array nested ``levels`` deep (``levels == 1`` is ``[]``)."""
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    return value


# --- loading and metadata --------------------------------------------------------------------------------


def test_load_is_cached_per_service(idp: ServiceModel, identity: ServiceModel) -> None:
    assert ServiceModel.load("cognito-idp") is idp
    assert ServiceModel.load("cognito-identity") is identity
    assert idp is not identity


def test_target_prefixes(idp: ServiceModel, identity: ServiceModel) -> None:
    assert idp.target_prefix == "AWSCognitoIdentityProviderService"
    assert identity.target_prefix == "AWSCognitoIdentityService"


def test_operations(idp: ServiceModel, identity: ServiceModel) -> None:
    assert idp.has_operation("InitiateAuth")
    assert not idp.has_operation("GetId")
    assert identity.has_operation("GetId")
    assert {"InitiateAuth", "SignUp", "AdminCreateUser", "CreateUserPool", "ListUsers"} <= idp.operation_names()
    assert isinstance(idp.operation_names(), frozenset)


@pytest.mark.parametrize("operation", ["SignUp", "InitiateAuth", "GetUser", "RespondToAuthChallenge", "GetClientToken"])
def test_public_operations_are_unsigned(idp: ServiceModel, operation: str) -> None:
    assert idp.requires_signature(operation) is False


@pytest.mark.parametrize(
    "operation", ["AdminCreateUser", "CreateUserPool", "AdminInitiateAuth", "ListUsers", "AddUserPoolClientSecret"]
)
def test_admin_operations_require_a_signature(idp: ServiceModel, operation: str) -> None:
    assert idp.requires_signature(operation) is True


def test_the_client_token_flow_is_an_explicit_auth_flow(idp: ServiceModel) -> None:
    """GetClientToken's documentation names ALLOW_CLIENT_TOKEN_AUTH, which botocore 1.44's enum lacks."""
    idp.validate_input(
        "CreateUserPoolClient",
        {"UserPoolId": "us-east-1_abc", "ClientName": "m2m", "ExplicitAuthFlows": ["ALLOW_CLIENT_TOKEN_AUTH"]},
    )
    with pytest.raises(InvalidParameterException) as caught:
        idp.validate_input(
            "CreateUserPoolClient",
            {"UserPoolId": "us-east-1_abc", "ClientName": "m2m", "ExplicitAuthFlows": ["ALLOW_NOTHING"]},
        )
    assert "ALLOW_CLIENT_TOKEN_AUTH" in caught.value.message


def test_cognito_identity_auth(identity: ServiceModel) -> None:
    assert identity.requires_signature("GetId") is False
    assert identity.requires_signature("GetCredentialsForIdentity") is False
    assert identity.requires_signature("GetOpenIdTokenForDeveloperIdentity") is True


def test_error_names(idp: ServiceModel) -> None:
    errors = idp.error_names("InitiateAuth")
    assert {"NotAuthorizedException", "UserNotFoundException", "InvalidParameterException"} <= errors
    assert "UsernameExistsException" not in errors
    assert "UsernameExistsException" in idp.error_names("SignUp")


def test_unknown_operation(idp: ServiceModel) -> None:
    with pytest.raises(UnknownOperationException) as caught:
        idp.validate_input("DropAllTables", {})
    assert caught.value.message == "Operation DropAllTables is not supported."
    with pytest.raises(UnknownOperationException):
        idp.requires_signature("DropAllTables")
    with pytest.raises(UnknownOperationException):
        idp.error_names("DropAllTables")


# --- valid inputs ----------------------------------------------------------------------------------------


def test_valid_create_user_pool(idp: ServiceModel) -> None:
    idp.validate_input(
        "CreateUserPool",
        {
            "PoolName": "my pool",
            "Policies": {
                "PasswordPolicy": {
                    "MinimumLength": 8,
                    "RequireUppercase": True,
                    "RequireLowercase": True,
                    "RequireNumbers": True,
                    "RequireSymbols": False,
                    "TemporaryPasswordValidityDays": 7,
                }
            },
            "AutoVerifiedAttributes": ["email"],
            "UsernameAttributes": ["email"],
            "MfaConfiguration": "OFF",
            "Schema": [
                {
                    "Name": "email",
                    "AttributeDataType": "String",
                    "Mutable": True,
                    "Required": True,
                    "StringAttributeConstraints": {"MinLength": "0", "MaxLength": "2048"},
                },
                {"Name": "tenant", "AttributeDataType": "String", "DeveloperOnlyAttribute": False},
                {"Name": "level", "AttributeDataType": "Number", "NumberAttributeConstraints": {"MinValue": "1"}},
            ],
            "UserPoolTags": {"team": "identity", "env": ""},
            "LambdaConfig": {"PreSignUp": "arn:aws:lambda:us-east-1:123456789012:function:pre"},
            "VerificationMessageTemplate": {"EmailMessageByLink": "Click {##Verify##}"},
        },
    )


def test_valid_admin_create_user(idp: ServiceModel) -> None:
    idp.validate_input(
        "AdminCreateUser",
        {
            "UserPoolId": POOL,
            "Username": "alice",
            "UserAttributes": [
                {"Name": "email", "Value": "alice@example.com"},
                {"Name": "email_verified", "Value": "true"},
                {"Name": "custom:tenant", "Value": "acme"},
            ],
            "TemporaryPassword": "Tmp-Passw0rd!",
            "MessageAction": "SUPPRESS",
            "DesiredDeliveryMediums": ["EMAIL", "SMS"],
            "ClientMetadata": {"source": "test"},
        },
    )


def test_valid_initiate_auth(idp: ServiceModel) -> None:
    idp.validate_input(
        "InitiateAuth",
        {
            "AuthFlow": "USER_PASSWORD_AUTH",
            "ClientId": "1example23456789",
            "AuthParameters": {"USERNAME": "alice", "PASSWORD": "Passw0rd!", "SECRET_HASH": "abc="},
            "UserContextData": {"IpAddress": "192.0.2.1"},
        },
    )


def test_valid_list_users(idp: ServiceModel) -> None:
    idp.validate_input(
        "ListUsers",
        {
            "UserPoolId": POOL,
            "AttributesToGet": ["email", "given_name"],
            "Limit": 60,
            "Filter": 'email ^= "alice"',
            "PaginationToken": "opaque-token",
        },
    )


def test_unicode_values_match_p_classes(idp: ServiceModel) -> None:
    # \p{L} is Unicode in Java and here: non-ASCII usernames are fine.
    idp.validate_input("AdminGetUser", {"UserPoolId": POOL, "Username": "José-Müller_日本"})


def test_valid_get_id_on_cognito_identity(identity: ServiceModel) -> None:
    identity.validate_input(
        "GetId",
        {
            "IdentityPoolId": "us-east-1:0123abcd-0000-1111-2222-333344445555",
            "Logins": {"cognito-idp.us-east-1.amazonaws.com/us-east-1_X": "eyJ.token.sig"},
        },
    )


def test_empty_input_for_an_operation_without_required_members(idp: ServiceModel) -> None:
    idp.validate_input("ListUserPools", {"MaxResults": 10})


# --- constraint violations: AWS's exact messages --------------------------------------------------------


def test_pattern_violation(idp: ServiceModel) -> None:
    message = invalid(idp, "AdminGetUser", {"UserPoolId": "abc", "Username": "bob"})
    assert message == (
        "1 validation error detected: Value 'abc' at 'userPoolId' failed to satisfy constraint: "
        rf"Member must satisfy regular expression pattern: {USER_POOL_ID_PATTERN}"
    )


def test_pattern_must_match_the_whole_value(idp: ServiceModel) -> None:
    message = invalid(idp, "AdminGetUser", {"UserPoolId": POOL + "!", "Username": "bob"})
    assert message.startswith(f"1 validation error detected: Value '{POOL}!' at 'userPoolId'")


def test_required_member_missing_or_null(idp: ServiceModel) -> None:
    expected = (
        "1 validation error detected: Value null at 'clientId' failed to satisfy constraint: Member must not be null"
    )
    assert invalid(idp, "InitiateAuth", {"AuthFlow": "USER_SRP_AUTH"}) == expected
    assert invalid(idp, "InitiateAuth", {"AuthFlow": "USER_SRP_AUTH", "ClientId": None}) == expected


def test_several_violations_are_counted_and_joined(idp: ServiceModel) -> None:
    assert invalid(idp, "InitiateAuth", {}) == (
        "2 validation errors detected: "
        "Value null at 'authFlow' failed to satisfy constraint: Member must not be null; "
        "Value null at 'clientId' failed to satisfy constraint: Member must not be null"
    )


def test_min_length_and_pattern_on_one_value(idp: ServiceModel) -> None:
    assert invalid(idp, "AdminGetUser", {"UserPoolId": "", "Username": "bob"}) == (
        "2 validation errors detected: "
        "Value '' at 'userPoolId' failed to satisfy constraint: Member must have length greater than or equal to 1; "
        "Value '' at 'userPoolId' failed to satisfy constraint: "
        rf"Member must satisfy regular expression pattern: {USER_POOL_ID_PATTERN}"
    )


def test_max_length_counts_code_points(idp: ServiceModel) -> None:
    # 256 characters that are 4 bytes each in UTF-8 are still 256: within UserFilterType's max.
    idp.validate_input("ListUsers", {"UserPoolId": POOL, "Filter": "😀" * 256})
    message = invalid(idp, "ListUsers", {"UserPoolId": POOL, "Filter": "😀" * 257})
    assert message.endswith(
        "at 'filter' failed to satisfy constraint: Member must have length less than or equal to 256"
    )


def test_long_values_are_echoed_truncated(idp: ServiceModel) -> None:
    message = invalid(idp, "ListUsers", {"UserPoolId": POOL, "Filter": "x" * 5000})
    echoed = message.split("Value '", 1)[1].split("' at 'filter'", 1)[0]
    assert len(echoed) == 256
    assert echoed == "x" * 253 + "..."


def test_integer_range(idp: ServiceModel) -> None:
    assert invalid(idp, "ListUsers", {"UserPoolId": POOL, "Limit": 61}) == (
        "1 validation error detected: Value '61' at 'limit' failed to satisfy constraint: "
        "Member must have value less than or equal to 60"
    )
    assert invalid(idp, "ListUsers", {"UserPoolId": POOL, "Limit": -1}) == (
        "1 validation error detected: Value '-1' at 'limit' failed to satisfy constraint: "
        "Member must have value greater than or equal to 0"
    )


def test_nested_structure_path_is_lower_camel(idp: ServiceModel) -> None:
    message = invalid(idp, "CreateUserPool", {"PoolName": "p", "Policies": {"PasswordPolicy": {"MinimumLength": 5}}})
    assert message == (
        "1 validation error detected: Value '5' at 'policies.passwordPolicy.minimumLength' failed to satisfy "
        "constraint: Member must have value greater than or equal to 6"
    )


def test_enum_violation(idp: ServiceModel) -> None:
    import botocore.loaders

    raw = botocore.loaders.Loader().load_service_model("cognito-idp", "service-2")
    values = raw["shapes"]["AuthFlowType"]["enum"]
    message = invalid(idp, "InitiateAuth", {"AuthFlow": "PASSWORD", "ClientId": "abc"})
    assert message == (
        "1 validation error detected: Value 'PASSWORD' at 'authFlow' failed to satisfy constraint: "
        f"Member must satisfy enum value set: [{', '.join(values)}]"
    )
    assert "USER_PASSWORD_AUTH, " in message


def test_list_length(idp: ServiceModel) -> None:
    assert invalid(idp, "CreateUserPool", {"PoolName": "p", "Schema": []}) == (
        "1 validation error detected: Value '[]' at 'schema' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1"
    )
    schema = [{"Name": f"a{i}"} for i in range(51)]
    message = invalid(idp, "CreateUserPool", {"PoolName": "p", "Schema": schema})
    assert message.startswith("1 validation error detected: Value '[{Name=a0}, {Name=a1}, ")
    assert message.endswith(
        "...' at 'schema' failed to satisfy constraint: Member must have length less than or equal to 50"
    )


def test_structure_in_list_paths(idp: ServiceModel) -> None:
    message = invalid(
        idp,
        "AdminCreateUser",
        {
            "UserPoolId": POOL,
            "Username": "bob",
            "UserAttributes": [{"Name": "email", "Value": "a@b.c"}, {"Value": "x"}, None],
        },
    )
    assert message == (
        "2 validation errors detected: "
        "Value null at 'userAttributes.2.member.name' failed to satisfy constraint: Member must not be null; "
        "Value null at 'userAttributes.3.member' failed to satisfy constraint: Member must not be null"
    )


def test_schema_attribute_name_too_long(idp: ServiceModel) -> None:
    # The error CDK users met from real Cognito (aws-cdk#14699), word for word.
    message = invalid(idp, "CreateUserPool", {"PoolName": "p", "Schema": [{"Name": "phone_number_verified"}]})
    assert message == (
        "1 validation error detected: Value 'phone_number_verified' at 'schema.1.member.name' failed to "
        "satisfy constraint: Member must have length less than or equal to 20"
    )


def test_scalar_list_members_are_reported_at_the_list(idp: ServiceModel) -> None:
    message = invalid(idp, "ListUsers", {"UserPoolId": POOL, "AttributesToGet": ["email", ""]})
    assert message == (
        "1 validation error detected: Value '[email, ]' at 'attributesToGet' failed to satisfy constraint: "
        "Member must satisfy constraint: [Member must have length less than or equal to 32, "
        "Member must have length greater than or equal to 1, "
        r"Member must satisfy regular expression pattern: [\p{L}\p{M}\p{S}\p{N}\p{P}\t\n\r ]+]"
    )


def test_map_keys_and_values(idp: ServiceModel) -> None:
    message = invalid(idp, "CreateUserPool", {"PoolName": "p", "UserPoolTags": {"": "v", "k": "x" * 257}})
    assert message.startswith("2 validation errors detected: Value '{=v, k=xxx")
    assert (
        "at 'userPoolTags' failed to satisfy constraint: Map keys must satisfy constraint: "
        "[Member must have length less than or equal to 128, Member must have length greater than or equal to 1]; "
    ) in message
    assert message.endswith(
        "at 'userPoolTags' failed to satisfy constraint: Map value must satisfy constraint: "
        "[Member must have length less than or equal to 256, Member must have length greater than or equal to 0]"
    )


def test_long_range_on_cognito_identity(identity: ServiceModel) -> None:
    params = {"IdentityPoolId": "us-east-1:abc", "Logins": {"login.example": "t"}, "TokenDuration": 0}
    assert invalid(identity, "GetOpenIdTokenForDeveloperIdentity", params) == (
        "1 validation error detected: Value '0' at 'tokenDuration' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1"
    )


def test_many_violations_are_counted_but_only_100_spelled_out(idp: ServiceModel) -> None:
    attributes = [{"Value": "x"} for _ in range(150)]
    message = invalid(idp, "AdminCreateUser", {"UserPoolId": POOL, "Username": "bob", "UserAttributes": attributes})
    assert message.startswith("150 validation errors detected: ")
    assert message.count("failed to satisfy constraint") == 100
    assert "'userAttributes.100.member.name'" in message
    assert "'userAttributes.101.member.name'" not in message


# --- sensitive values ------------------------------------------------------------------------------------


def test_sensitive_password_is_not_echoed(idp: ServiceModel) -> None:
    secret = "hunter2 with spaces"
    message = invalid(idp, "SignUp", {"ClientId": "abc", "Username": "bob", "Password": secret})
    assert message == (
        "1 validation error detected: Value at 'password' failed to satisfy constraint: "
        r"Member must satisfy regular expression pattern: [\S]+"
    )
    assert secret not in message and "hunter2" not in message


def test_sensitive_too_long_password_is_not_echoed(idp: ServiceModel) -> None:
    message = invalid(idp, "SignUp", {"ClientId": "abc", "Username": "bob", "Password": "p" * 300})
    assert message == (
        "1 validation error detected: Value at 'password' failed to satisfy constraint: "
        "Member must have length less than or equal to 256"
    )


def test_sensitive_client_id_and_null_are_reported_without_value(idp: ServiceModel) -> None:
    message = invalid(idp, "SignUp", {"ClientId": "not a client!", "Password": "x"})
    assert message == (
        "2 validation errors detected: "
        r"Value at 'clientId' failed to satisfy constraint: Member must satisfy regular expression pattern: [\w+]+; "
        "Value null at 'username' failed to satisfy constraint: Member must not be null"
    )


def test_collections_holding_sensitive_values_are_not_echoed(identity: ServiceModel) -> None:
    # LoginsMap's values (IdentityProviderToken) are sensitive, so the map is never echoed.
    logins = {f"provider{i}": "SECRET-TOKEN" for i in range(11)}
    message = invalid(identity, "GetId", {"IdentityPoolId": "us-east-1:abc", "Logins": logins})
    assert message == (
        "1 validation error detected: Value at 'logins' failed to satisfy constraint: "
        "Member must have length less than or equal to 10"
    )


def test_members_under_a_sensitive_structure_are_not_echoed(idp: ServiceModel) -> None:
    # UserContextDataType is sensitive; its plain StringType members inherit that.
    message = invalid(
        idp,
        "InitiateAuth",
        {"AuthFlow": "USER_SRP_AUTH", "ClientId": "abc", "UserContextData": {"IpAddress": "1" * 131073}},
    )
    assert message == (
        "1 validation error detected: Value at 'userContextData.ipAddress' failed to satisfy constraint: "
        "Member must have length less than or equal to 131072"
    )


def test_sensitive_map_values_are_not_echoed(idp: ServiceModel) -> None:
    # ChallengeResponsesType is a sensitive map of StringType (max 131072).
    responses = {"NEW_PASSWORD": "TOPSECRET" * 14564}
    message = invalid(
        idp,
        "RespondToAuthChallenge",
        {"ClientId": "abc", "ChallengeName": "NEW_PASSWORD_REQUIRED", "ChallengeResponses": responses},
    )
    assert message == (
        "1 validation error detected: Value at 'challengeResponses' failed to satisfy constraint: "
        "Map value must satisfy constraint: [Member must have length less than or equal to 131072, "
        "Member must have length greater than or equal to 0]"
    )


# --- wrong JSON types ------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [None, [], "{}", 1, True])
def test_body_must_be_an_object(idp: ServiceModel, body: object) -> None:
    assert malformed(idp, "InitiateAuth", body) == "The request body must be a JSON object."


def test_wrong_scalar_type_names_the_member(idp: ServiceModel) -> None:
    assert malformed(idp, "AdminGetUser", {"UserPoolId": 5, "Username": "bob"}) == (
        "Unexpected value type for 'UserPoolId': expected string"
    )


@pytest.mark.parametrize("limit", [True, "5", 5.0, [5], {"n": 5}])
def test_integer_member_takes_only_json_integers(idp: ServiceModel, limit: object) -> None:
    assert malformed(idp, "ListUsers", {"UserPoolId": POOL, "Limit": limit}) == (
        "Unexpected value type for 'Limit': expected integer"
    )


def test_integer_out_of_32_bit_range(idp: ServiceModel) -> None:
    assert malformed(idp, "ListUsers", {"UserPoolId": POOL, "Limit": 2**31}) == (
        "Numeric value out of range for 'Limit': expected integer"
    )


def test_long_out_of_64_bit_range(identity: ServiceModel) -> None:
    params = {"IdentityPoolId": "us-east-1:abc", "Logins": {"p": "t"}, "TokenDuration": 2**63}
    message = malformed(identity, "GetOpenIdTokenForDeveloperIdentity", params)
    assert message == "Numeric value out of range for 'TokenDuration': expected long"


def test_boolean_member_takes_only_json_booleans(idp: ServiceModel) -> None:
    params = {"PoolName": "p", "Policies": {"PasswordPolicy": {"RequireNumbers": "true"}}}
    assert malformed(idp, "CreateUserPool", params) == (
        "Unexpected value type for 'Policies.PasswordPolicy.RequireNumbers': expected boolean"
    )


def test_containers_of_the_wrong_kind(idp: ServiceModel) -> None:
    base = {"UserPoolId": POOL, "Username": "bob"}
    assert malformed(idp, "AdminCreateUser", {**base, "UserAttributes": {"Name": "email"}}) == (
        "Unexpected value type for 'UserAttributes': expected list (JSON array)"
    )
    assert malformed(idp, "AdminCreateUser", {**base, "UserAttributes": ["email"]}) == (
        "Unexpected value type for 'UserAttributes.1.member': expected structure (JSON object)"
    )
    assert malformed(idp, "AdminCreateUser", {**base, "ClientMetadata": ["a"]}) == (
        "Unexpected value type for 'ClientMetadata': expected map (JSON object)"
    )
    assert malformed(idp, "AdminCreateUser", {**base, "DesiredDeliveryMediums": ["EMAIL", 1]}) == (
        "Unexpected value type for 'DesiredDeliveryMediums.2.member': expected string"
    )


def test_wrong_type_in_a_sensitive_map_does_not_echo_it(idp: ServiceModel) -> None:
    params = {"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": "abc", "AuthParameters": {"PASSWORD": 987654321}}
    message = malformed(idp, "InitiateAuth", params)
    assert message == "Unexpected value type for 'AuthParameters.PASSWORD.member': expected string"
    assert "987654321" not in message


def test_blob_is_base64_and_its_length_counts_bytes(idp: ServiceModel) -> None:
    idp.validate_input("SetUICustomization", {"UserPoolId": POOL, "ImageFile": base64.b64encode(b"png!").decode()})
    assert malformed(idp, "SetUICustomization", {"UserPoolId": POOL, "ImageFile": "not base64!"}) == (
        "Invalid base64 value for 'ImageFile': expected base64-encoded string"
    )
    too_big = base64.b64encode(b"\0" * 131073).decode()
    message = invalid(idp, "SetUICustomization", {"UserPoolId": POOL, "ImageFile": too_big})
    assert message.endswith(
        "at 'imageFile' failed to satisfy constraint: Member must have length less than or equal to 131072"
    )
    idp.validate_input(
        "SetUICustomization", {"UserPoolId": POOL, "ImageFile": base64.b64encode(b"\0" * 131072).decode()}
    )


def test_timestamp_takes_a_number_or_a_string() -> None:
    # No cognito input carries a timestamp today; the node is what a future one would get.
    node = _Timestamp(False)
    assert node.reject(1700000000) is None
    assert node.reject(1700000000.5) is None
    assert node.reject("2024-01-01T00:00:00Z") is None
    assert node.reject(True) == "Unexpected value type"
    assert node.reject([1]) == "Unexpected value type"


# --- unknown members, depth ------------------------------------------------------------------------------


def test_unknown_members_are_ignored_and_removed(idp: ServiceModel) -> None:
    params: dict[str, Any] = {
        "AuthFlow": "USER_SRP_AUTH",
        "ClientId": "abc",
        "NotInTheModel": {"anything": [1, "two", None]},
        "AlsoUnknown": 5,
    }
    idp.validate_input("InitiateAuth", params)
    assert params == {"AuthFlow": "USER_SRP_AUTH", "ClientId": "abc"}
    # Nested structures too: a handler that stores a structure as it comes stores only modelled members.
    nested: dict[str, Any] = {
        "PoolName": "p",
        "Policies": {"PasswordPolicy": {"MinimumLength": 8, "Zzz": "x"}, "Extra": 1},
        "DeviceConfiguration": {"ChallengeRequiredOnNewDevice": True, "Pad": "y" * 100},
    }
    idp.validate_input("CreateUserPool", nested)
    assert nested["Policies"] == {"PasswordPolicy": {"MinimumLength": 8}}
    assert nested["DeviceConfiguration"] == {"ChallengeRequiredOnNewDevice": True}


def test_nesting_up_to_64_levels_is_accepted(idp: ServiceModel) -> None:
    # The body is level 1, so an array nested 63 deep inside it makes 64 levels.
    idp.validate_input("AdminGetUser", {"UserPoolId": POOL, "Username": "bob", "Extra": nested_list(63)})


def test_nesting_deeper_than_64_levels_is_refused(idp: ServiceModel) -> None:
    message = malformed(idp, "AdminGetUser", {"UserPoolId": POOL, "Username": "bob", "Extra": nested_list(64)})
    assert message == "The request nests JSON deeper than 64 levels."


def test_document_members_accept_any_json_but_bounded_depth(idp: ServiceModel) -> None:
    params: dict[str, Any] = {"AccessToken": "token", "Credential": {"id": "x", "response": {"a": [1, None]}}}
    idp.validate_input("CompleteWebAuthnRegistration", params)
    params["Credential"] = {"deep": nested_list(70)}
    assert malformed(idp, "CompleteWebAuthnRegistration", params) == "The request nests JSON deeper than 64 levels."


def test_absurd_nesting_does_not_hit_the_recursion_limit(idp: ServiceModel) -> None:
    message = malformed(idp, "AdminGetUser", {"UserPoolId": POOL, "Username": "bob", "Extra": nested_list(5000)})
    assert "deeper than 64 levels" in message


# --- Java patterns ---------------------------------------------------------------------------------------


def test_java_word_class_is_ascii_only(idp: ServiceModel) -> None:
    # [\w-]+_... : Java's \w has no accented letters, Python's would.
    message = invalid(idp, "AdminGetUser", {"UserPoolId": "é-1_abc", "Username": "bob"})
    assert message.startswith("1 validation error detected: Value 'é-1_abc' at 'userPoolId'")


def test_java_non_space_class_accepts_unicode_spaces(idp: ServiceModel) -> None:
    # [\S]+ : only ASCII whitespace is whitespace to Java, so a no-break space is allowed in a password...
    idp.validate_input("SignUp", {"ClientId": "abc", "Username": "bob", "Password": "pass\u00a0word"})
    # ...and a tab is not.
    assert "'password'" in invalid(idp, "SignUp", {"ClientId": "abc", "Username": "bob", "Password": "a\tb"})


@pytest.mark.parametrize(
    ("java", "python"),
    [
        (r"[\w-]+_[0-9a-zA-Z]+", r"[A-Za-z0-9_\-]+_[0-9a-zA-Z]+"),
        (r"[\S]+", r"(?:[^ \t\n\x0b\f\r])+"),
        (r"\d+", r"[0-9]+"),
        (r"[\w\s+=,.@-]+", r"[A-Za-z0-9_ \t\n\x0b\f\r+=,.@-]+"),
        (r"[\p{L}\p{M}\p{S}\p{N}\p{P}]+", r"[\p{L}\p{M}\p{S}\p{N}\p{P}]+"),
    ],
)
def test_java_pattern_translation(java: str, python: str) -> None:
    assert _translate_java_pattern(java) == python


def test_uncompilable_pattern_is_skipped() -> None:
    assert _compile_java_pattern("[unclosed") is None
    node = _String(False, 1, 5, "[unclosed", None)
    assert node.failures("anything goes") == ["Member must have length less than or equal to 5"]
    assert node.failures("ok") == []
    assert node.constraints == (
        "Member must have length less than or equal to 5",
        "Member must have length greater than or equal to 1",
    )


def test_patterns_are_compiled_once() -> None:
    assert _compile_java_pattern(USER_POOL_ID_PATTERN) is _compile_java_pattern(USER_POOL_ID_PATTERN)


def test_backtracking_pattern_is_bounded_in_time(idp: ServiceModel) -> None:
    # EmailVerificationMessageByLinkType's pattern backtracks quadratically; 20000 characters would take
    # seconds unbounded. The value is refused, quickly.
    hostile = ("{##" * 6667)[:19999] + "\0"
    started = time.perf_counter()
    message = invalid(
        idp, "CreateUserPool", {"PoolName": "p", "VerificationMessageTemplate": {"EmailMessageByLink": hostile}}
    )
    assert time.perf_counter() - started < 1.0
    assert "at 'verificationMessageTemplate.emailMessageByLink'" in message
    assert message.endswith(r"\{##[\p{L}\p{M}\p{S}\p{N}\p{P}\s*]*##\}[\p{L}\p{M}\p{S}\p{N}\p{P}\s*]*")
    # A long legitimate template still matches.
    template = "Hello, " * 2800 + "click {##Verify email##}."
    idp.validate_input(
        "CreateUserPool", {"PoolName": "p", "VerificationMessageTemplate": {"EmailMessageByLink": template}}
    )


@pytest.mark.parametrize("service", ["cognito-idp", "cognito-identity", "iam", "sts"])
def test_the_ascii_class_shortcut_agrees_with_the_pattern(service: str) -> None:
    """Every string shape of the model whose pattern is one repeated character class answers, for ASCII values,
    by deleting the class's characters (model._ascii_class); the answer must be the regular expression's own, for
    every ASCII character alone, the empty string, and mixed values (non-ASCII ones take the expression)."""
    import random

    import botocore.session

    shapes = botocore.session.get_session().get_service_model(service).shape_names
    model = botocore.session.get_session().get_service_model(service)
    samples = ["", "a", "A-z_0.9=", "x y", "tab\there", "é", "aé", "\x00", "\x7f", "~!@#$%^&*()", "a" * 2000]
    samples += [chr(c) for c in range(128)]
    rng = random.Random(7)
    samples += ["".join(chr(rng.randrange(0x20, 0x7F)) for _ in range(rng.randrange(1, 40))) for _ in range(200)]
    checked = 0
    for name in shapes:
        shape = model.shape_for(name)
        pattern = shape.metadata.get("pattern") if shape.type_name == "string" else None
        if pattern is None:
            continue
        string = _String(False, None, None, pattern, None)
        if string.ascii_class is None:
            continue
        checked += 1
        assert string.pattern is not None
        for value in samples:
            assert string._matches(value) == (string.pattern.fullmatch(value) is not None), (name, pattern, value)
    assert checked >= (10 if service in ("cognito-idp", "iam") else 1)


def test_every_operation_of_the_models_has_a_handler(idp: ServiceModel, identity: ServiceModel) -> None:
    """Every operation of the botocore models Gatehouse serves has a handler, which does the work or says why it
    cannot (the point-in-time recovery operations, for one), but the provisioned API limits: Gatehouse limits
    unsigned calls per app client and per address (server.rate_limits), not per API category, so it has no
    category's rate to report, and those two answer UnknownOperationException."""
    from gateway.api.cognito_identity import OPERATIONS as IDENTITY_OPERATIONS
    from gateway.api.cognito_idp import OPERATIONS as IDP_OPERATIONS

    assert sorted(idp.operation_names() - set(IDP_OPERATIONS)) == ["GetProvisionedLimit", "UpdateProvisionedLimit"]
    assert sorted(identity.operation_names() - set(IDENTITY_OPERATIONS)) == []
