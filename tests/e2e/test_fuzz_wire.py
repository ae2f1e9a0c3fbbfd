"""Property-based fuzzing of every Cognito user-pools operation Gatehouse implements, over real HTTP.

For each operation in ``gateway.api.cognito_idp.OPERATIONS`` a hypothesis strategy builds request bodies from
the operation's input shape in botocore's model, in five kinds:

* valid: every member within the model's constraints, ids and tokens often real, so the handler runs;
* typed: the right JSON types, but boundary lengths (min-1, max+1), out-of-range numbers, hostile and huge
  text (up to 300 000 characters), lists and maps past their limits, required members now and then missing;
* broken: a typed body with one thing wrong -- a member replaced by a wrong JSON type, null, a number as text,
  NaN / 1e400, JSON nested thousands deep -- or removed, or an unknown member added;
* odd: bodies that are not a JSON object at all (empty, cut short, duplicate keys, ``[]``, ``null``, BOM);
* seeded (sign-in, sign-up and similar flows): a request a real client would send, one or two members varied.

Each body goes to the server raw (urllib3, nothing fixes it up), signed with botocore's own SigV4 signer when
the operation is an admin one. Every answer must be AWS JSON: never a 5xx, never a stack trace, an error
``__type`` that botocore's model lists for the operation or a protocol-level one, and on success only members
of the output shape. A configuration the fuzz got accepted (a pool, a client, custom attributes) is then put to
everyday use, which must not answer 500 either. Separate properties cover badly signed admin calls and bodies
that are not UTF-8. Finally the bystander user must still sign in, the main pool and its clients must describe
exactly as before, and the server log must hold no ``api.unhandled`` (nor any error-level) event.

Each operation's fuzz gets fresh real users, tokens, a challenge session and a group in the main pool; the
operations that reconfigure or delete pools and clients get a spare pool of their own, so the main pool's
configuration is only ever read. The bystander user and its group are never handed to the generator. Runs
are derandomized, so CI sees the same examples every time; the regression tests at the end pin the inputs
the fuzz found that once answered 500.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import os
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
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
from hypothesis.strategies import SearchStrategy

from gateway.api.cognito_idp import OPERATIONS
from gateway.api.model import ServiceModel, _translate_java_pattern
from tests.support import ADMIN_KEY_ID, ADMIN_SECRET, REGION, GatehouseServer

CONTENT_TYPE: Final = "application/x-amz-json-1.1"
PREFIX: Final = "AWSCognitoIdentityProviderService."
PASSWORD: Final = "Fuzz-password-1"
SENTINEL: Final = "fuzz-sentinel"  # never given to the generator
SENTINEL_GROUP: Final = "sentinel-group"  # never given to the generator
# A longer hunt: GATEHOUSE_FUZZ_EXAMPLES=300 GATEHOUSE_FUZZ_RANDOM=1 pytest ... --hypothesis-seed=N
EXAMPLES_PER_OPERATION: Final = int(os.environ.get("GATEHOUSE_FUZZ_EXAMPLES", "25"))
DERANDOMIZE: Final = os.environ.get("GATEHOUSE_FUZZ_RANDOM") != "1"

# Errors any operation may answer: the wire's own (framing, auth) and the ones every Cognito call can give.
PROTOCOL_ERRORS: Final = frozenset(
    {
        "SerializationException",
        "InvalidParameterException",
        "UnknownOperationException",
        "MissingAuthenticationTokenException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "IncompleteSignatureException",
        "NotAuthorizedException",
        "ResourceNotFoundException",
        "TooManyRequestsException",
    }
)
# What in an error body would betray Python internals (only counted when the request did not carry it).
LEAKS: Final = ("Traceback", 'File "', "site-packages", "gateway/", "KeyError", "TypeError", "ValueError")

BOTO_MODEL: Final = botocore.session.get_session().get_service_model("cognito-idp")
MODEL: Final = ServiceModel.load("cognito-idp")
OPERATION_NAMES: Final = sorted(OPERATIONS)

# Operations that change a pool's or a client's configuration (or remove them): only the spare pool's ids.
SPARE_POOL_OPERATIONS: Final = frozenset(
    {
        "UpdateUserPool",
        "DeleteUserPool",
        "AddCustomAttributes",
        "TagResource",
        "UntagResource",
        "CreateUserPoolClient",
        "UpdateUserPoolClient",
        "DeleteUserPoolClient",
        "SetUserPoolMfaConfig",
        "AddUserPoolClientSecret",
        "DeleteUserPoolClientSecret",
        "SetUserPoolSessionConfiguration",
        "SetUserPoolClientSessionConfiguration",
        "SetLogDeliveryConfiguration",
    }
)

EXAMPLES: Counter[str] = Counter()
OUTCOMES: Counter[tuple[str, str]] = Counter()


# --- raw HTTP ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: bytes


@dataclass(frozen=True)
class Wire:
    """One keep-alive connection pool to the server, and how to sign for it."""

    url: str
    pool: urllib3.HTTPConnectionPool

    def post(self, operation: str, body: bytes, *, sign: str = "valid", content_type: str = CONTENT_TYPE) -> Reply:
        headers = {"X-Amz-Target": PREFIX + operation}
        if content_type:
            headers["Content-Type"] = content_type
        if sign == "garbage":
            headers["Authorization"] = "AWS4-HMAC-SHA256 nonsense"
        elif sign != "none" and MODEL.requires_signature(operation):
            key_id = "AKIDNOBODYKNOWS" if sign == "stranger" else ADMIN_KEY_ID
            secret = ADMIN_SECRET + "-wrong" if sign == "wrong" else ADMIN_SECRET
            request = AWSRequest(method="POST", url=self.url + "/", data=body, headers=headers)
            SigV4Auth(Credentials(key_id, secret), "cognito-idp", REGION).add_auth(request)
            headers = dict(request.headers.items())
        response = self.pool.urlopen("POST", "/", body=body, headers=headers, retries=False, redirect=False)
        return Reply(response.status, response.headers.get("Content-Type", ""), response.data)


# --- JSON with raw splices -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """JSON text spliced into a body verbatim: what ``json.dumps`` will not write (NaN, 1e400, deep nesting)."""

    text: str


def encode(value: object) -> str:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ",".join(json.dumps(str(k), ensure_ascii=False) + ":" + encode(v) for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(encode(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def shown(body: bytes) -> str:
    return body[:300].decode("utf-8", "replace") + (f"... ({len(body)} bytes)" if len(body) > 300 else "")


# --- the pool the generator may reference --------------------------------------------------------------------


def secret_hash(client_id: str, secret: str, username: str) -> str:
    digest = hmac.new(secret.encode(), (username + client_id).encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


FLOWS: Final = [
    "ALLOW_USER_PASSWORD_AUTH",
    "ALLOW_ADMIN_USER_PASSWORD_AUTH",
    "ALLOW_USER_SRP_AUTH",
    "ALLOW_REFRESH_TOKEN_AUTH",
    # GetDerivedToken's: so that the fuzz gets past the flow check to the token verification.
    "ALLOW_TOKEN_EXCHANGE_IMPERSONATION",
    "ALLOW_TOKEN_EXCHANGE_DELEGATION",
]


@dataclass
class World:
    """The main pool (its configuration only ever read by the fuzz), its clients, and what was true before."""

    idp: Any
    public_idp: Any
    pool_id: str
    pool_arn: str
    public_client: str
    secret_client: str
    client_secret: str
    described: dict[str, Any]
    clients: dict[str, dict[str, Any]]
    sentinel_attributes: dict[str, str]

    def _user(self, name: str, *, permanent: bool) -> None:
        self.idp.admin_create_user(
            UserPoolId=self.pool_id,
            Username=name,
            MessageAction="SUPPRESS",
            TemporaryPassword=PASSWORD,
            UserAttributes=[
                {"Name": "email", "Value": f"{name}@example.com"},
                {"Name": "email_verified", "Value": "true"},
            ],
        )
        if permanent:
            self.idp.admin_set_user_password(UserPoolId=self.pool_id, Username=name, Password=PASSWORD, Permanent=True)

    def _spare_pool(self, operation: str) -> dict[str, list[Any]]:
        pool = self.idp.create_user_pool(PoolName=f"spare-{operation}")["UserPool"]
        clients = [
            self.idp.create_user_pool_client(UserPoolId=pool["Id"], ClientName=name, GenerateSecret=secret)
            for name, secret in (("spare-public", False), ("spare-secret", True))
        ]
        secret_client = clients[1]["UserPoolClient"]
        listed = self.idp.list_user_pool_client_secrets(UserPoolId=pool["Id"], ClientId=secret_client["ClientId"])
        return {
            "UserPoolId": [pool["Id"]],
            "ClientId": [c["UserPoolClient"]["ClientId"] for c in clients],
            "ResourceArn": [pool["Arn"]],
            "ClientSecret": [secret_client["ClientSecret"], "Fuzz_chosen_secret_0123456789"],
            "ClientSecretId": [s["ClientSecretId"] for s in listed["ClientSecrets"]],
        }

    def reals(self, operation: str) -> dict[str, list[Any]]:
        """Real values per member name for one operation's fuzz, made fresh for it: a user with tokens, a user
        in the middle of a NEW_PASSWORD_REQUIRED challenge, a group. Operations that change or remove a pool
        or client only ever see a spare pool of their own."""
        slug = operation.lower()
        scratch, pending, group = f"s-{slug}", f"p-{slug}", f"g-{slug}"
        self._user(scratch, permanent=True)
        self._user(pending, permanent=False)
        self.idp.create_group(UserPoolId=self.pool_id, GroupName=group, Description="the fuzz may touch this")
        self.idp.admin_add_user_to_group(UserPoolId=self.pool_id, Username=scratch, GroupName=group)
        tokens = self.public_idp.initiate_auth(
            ClientId=self.public_client,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": scratch, "PASSWORD": PASSWORD},
        )["AuthenticationResult"]
        challenge = self.public_idp.initiate_auth(
            ClientId=self.public_client,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": pending, "PASSWORD": PASSWORD},
        )
        assert challenge["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
        access, refresh = str(tokens["AccessToken"]), str(tokens["RefreshToken"])
        real: dict[str, list[Any]] = {
            "UserPoolId": [self.pool_id],
            "ClientId": [self.public_client, self.secret_client],
            "ClientSecret": [self.client_secret],
            "Secret": [self.client_secret],
            "Username": [scratch, pending, scratch.upper(), f"{scratch}@example.com"],
            "GroupName": [group],
            "AccessToken": [access, access, refresh, str(tokens["IdToken"])],
            "RefreshToken": [refresh, refresh, access],
            "Token": [refresh, access],
            "SubjectToken": [access, access, str(tokens["IdToken"]), refresh],
            "ActorToken": [access, str(tokens["IdToken"]), refresh],
            "Session": [str(challenge["Session"])],
            "ResourceArn": [self.pool_arn],
            "SecretHash": [secret_hash(self.secret_client, self.client_secret, scratch)],
            "Password": [PASSWORD, "New-Fuzz-password-2", "short"],
            "ProposedPassword": [PASSWORD, "New-Fuzz-password-2", "short"],
            "PreviousPassword": [PASSWORD],
            "TemporaryPassword": [PASSWORD, "Temp-Fuzz-password-3"],
            "ConfirmationCode": ["123456", "000000"],
            "Code": ["123456"],
            "AttributeName": ["email", "phone_number", "custom:tier", "sub", "name"],
            "Filter": [f'email = "{scratch}@example.com"', 'username ^= "s-"', 'cognito:user_status = "confirmed"'],
            "NextToken": [base64.urlsafe_b64encode(group.encode()).decode(), base64.urlsafe_b64encode(b"x").decode()],
            "PaginationToken": [base64.urlsafe_b64encode(scratch.encode()).decode()],
            "DeviceKey": ["us-east-1_00000000-0000-0000-0000-000000000000"],
            # Whole AuthParameters / ChallengeResponses that a real client would send.
            "AuthParameters": [
                {"USERNAME": scratch, "PASSWORD": PASSWORD},
                {"USERNAME": pending, "PASSWORD": PASSWORD},
                {"USERNAME": scratch, "PASSWORD": "wrong"},
                {"REFRESH_TOKEN": refresh},
                {"USERNAME": scratch, "SRP_A": "ab" * 384},
                {
                    "USERNAME": scratch,
                    "PASSWORD": PASSWORD,
                    "SECRET_HASH": secret_hash(self.secret_client, self.client_secret, scratch),
                },
            ],
            "ChallengeResponses": [
                {"USERNAME": pending, "NEW_PASSWORD": "New-Fuzz-password-2"},
                {"USERNAME": pending, "NEW_PASSWORD": "short"},
                {
                    "USERNAME": scratch,
                    "PASSWORD_CLAIM_SIGNATURE": "AAAA",
                    "PASSWORD_CLAIM_SECRET_BLOCK": "AAAA",
                    "TIMESTAMP": "Mon Jan 1 00:00:00 UTC 2024",
                },
            ],
        }
        if operation in SPARE_POOL_OPERATIONS:
            real.update(self._spare_pool(operation))
        return real

    def seeds(self, operation: str, real: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
        """Whole requests a real client would send (for the operations whose every member must fit the others
        to get anywhere: sign-in and sign-up flows); the fuzz varies them a member or two at a time."""
        scratch, pending = str(real["Username"][0]), str(real["Username"][1])
        access, refresh, session = real["AccessToken"][0], real["RefreshToken"][0], real["Session"][0]
        public, secret = self.public_client, self.secret_client
        newcomer = f"n-{operation.lower()}"
        hashed = secret_hash(secret, self.client_secret, scratch)
        new_password = "New-Fuzz-password-2"
        srp = {"USERNAME": scratch, "SRP_A": "ab" * 384}
        verifier = {
            "USERNAME": scratch,
            "PASSWORD_CLAIM_SECRET_BLOCK": base64.b64encode(b"x" * 64).decode(),
            "PASSWORD_CLAIM_SIGNATURE": base64.b64encode(b"y" * 32).decode(),
            "TIMESTAMP": "Mon Jan 1 00:00:00 UTC 2024",
        }
        flows: list[dict[str, Any]] = [
            {
                "ClientId": public,
                "AuthFlow": "USER_PASSWORD_AUTH",
                "AuthParameters": {"USERNAME": scratch, "PASSWORD": PASSWORD},
            },
            {
                "ClientId": public,
                "AuthFlow": "USER_PASSWORD_AUTH",
                "AuthParameters": {"USERNAME": pending, "PASSWORD": PASSWORD},
            },
            {
                "ClientId": secret,
                "AuthFlow": "USER_PASSWORD_AUTH",
                "AuthParameters": {"USERNAME": scratch, "PASSWORD": PASSWORD, "SECRET_HASH": hashed},
            },
            {"ClientId": public, "AuthFlow": "REFRESH_TOKEN_AUTH", "AuthParameters": {"REFRESH_TOKEN": refresh}},
            {"ClientId": public, "AuthFlow": "USER_SRP_AUTH", "AuthParameters": srp},
        ]
        challenges: list[dict[str, Any]] = [
            {
                "ClientId": public,
                "ChallengeName": "NEW_PASSWORD_REQUIRED",
                "Session": session,
                "ChallengeResponses": {"USERNAME": pending, "NEW_PASSWORD": new_password},
            },
            {"ClientId": public, "ChallengeName": "PASSWORD_VERIFIER", "ChallengeResponses": verifier},
            {
                "ClientId": public,
                "ChallengeName": "PASSWORD_VERIFIER",
                "Session": session,
                "ChallengeResponses": verifier,
            },
        ]
        admin_flows = [
            {
                **body,
                "UserPoolId": self.pool_id,
                "AuthFlow": body["AuthFlow"].replace("USER_PASSWORD", "ADMIN_USER_PASSWORD"),
            }
            for body in flows
        ]
        by_operation: dict[str, list[dict[str, Any]]] = {
            "InitiateAuth": flows,
            "AdminInitiateAuth": admin_flows,
            "RespondToAuthChallenge": challenges,
            "AdminRespondToAuthChallenge": [{**body, "UserPoolId": self.pool_id} for body in challenges],
            "GetTokensFromRefreshToken": [
                {"ClientId": public, "RefreshToken": refresh},
                {"ClientId": secret, "RefreshToken": refresh, "ClientSecret": self.client_secret},
            ],
            "SignUp": [
                {
                    "ClientId": public,
                    "Username": newcomer,
                    "Password": PASSWORD,
                    "UserAttributes": [{"Name": "email", "Value": f"{newcomer}@example.com"}],
                },
                {
                    "ClientId": secret,
                    "Username": newcomer + "-s",
                    "Password": PASSWORD,
                    "SecretHash": secret_hash(secret, self.client_secret, newcomer + "-s"),
                },
            ],
            "ConfirmSignUp": [{"ClientId": public, "Username": scratch, "ConfirmationCode": "123456"}],
            "ForgotPassword": [
                {"ClientId": public, "Username": scratch},
                {"ClientId": secret, "Username": scratch, "SecretHash": hashed},
            ],
            "ConfirmForgotPassword": [
                {"ClientId": public, "Username": scratch, "ConfirmationCode": "123456", "Password": new_password}
            ],
            "ResendConfirmationCode": [{"ClientId": public, "Username": scratch}],
            "ChangePassword": [{"AccessToken": access, "PreviousPassword": PASSWORD, "ProposedPassword": new_password}],
            "UpdateUserAttributes": [
                {"AccessToken": access, "UserAttributes": [{"Name": "name", "Value": "Fuzz"}]},
                {"AccessToken": access, "UserAttributes": [{"Name": "email", "Value": "changed@example.com"}]},
            ],
            "AddCustomAttributes": [
                {
                    "UserPoolId": real["UserPoolId"][0],
                    "CustomAttributes": [
                        {"Name": "code", "StringAttributeConstraints": {"MinLength": "1", "MaxLength": "8"}},
                        {
                            "Name": "level",
                            "AttributeDataType": "Number",
                            "NumberAttributeConstraints": {"MinValue": "0"},
                        },
                        {"Name": "born", "AttributeDataType": "DateTime", "Mutable": False},
                    ],
                }
            ],
            "AdminCreateUser": [
                {
                    "UserPoolId": self.pool_id,
                    "Username": newcomer,
                    "TemporaryPassword": PASSWORD,
                    "UserAttributes": [{"Name": "email", "Value": f"{newcomer}@example.com"}],
                    "DesiredDeliveryMediums": ["EMAIL"],
                }
            ],
        }
        return by_operation.get(operation, [])


@pytest.fixture(scope="module")
def world(idp: Any, public_idp: Any) -> World:
    pool = idp.create_user_pool(
        PoolName="fuzz-main",
        AutoVerifiedAttributes=["email"],
        Schema=[{"Name": "tier", "AttributeDataType": "String", "Mutable": True}],
    )["UserPool"]
    pool_id = str(pool["Id"])
    public = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="fuzz-public", ExplicitAuthFlows=FLOWS)
    secret = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="fuzz-secret", ExplicitAuthFlows=FLOWS, GenerateSecret=True
    )
    idp.create_group(UserPoolId=pool_id, GroupName=SENTINEL_GROUP)
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username=SENTINEL,
        MessageAction="SUPPRESS",
        UserAttributes=[
            {"Name": "email", "Value": "sentinel@example.com"},
            {"Name": "email_verified", "Value": "true"},
        ],
    )
    idp.admin_set_user_password(UserPoolId=pool_id, Username=SENTINEL, Password=PASSWORD, Permanent=True)
    idp.admin_add_user_to_group(UserPoolId=pool_id, Username=SENTINEL, GroupName=SENTINEL_GROUP)
    sentinel = idp.admin_get_user(UserPoolId=pool_id, Username=SENTINEL)
    return World(
        idp=idp,
        public_idp=public_idp,
        pool_id=pool_id,
        pool_arn=str(pool["Arn"]),
        public_client=str(public["UserPoolClient"]["ClientId"]),
        secret_client=str(secret["UserPoolClient"]["ClientId"]),
        client_secret=str(secret["UserPoolClient"]["ClientSecret"]),
        described=idp.describe_user_pool(UserPoolId=pool_id)["UserPool"],
        clients={
            str(c["UserPoolClient"]["ClientId"]): idp.describe_user_pool_client(
                UserPoolId=pool_id, ClientId=c["UserPoolClient"]["ClientId"]
            )["UserPoolClient"]
            for c in (public, secret)
        },
        sentinel_attributes={a["Name"]: a["Value"] for a in sentinel["UserAttributes"]},
    )


@pytest.fixture(scope="module")
def wire(gatehouse: GatehouseServer) -> Iterator[Wire]:
    pool = urllib3.HTTPConnectionPool("127.0.0.1", gatehouse.port, maxsize=1, timeout=30.0)
    yield Wire(gatehouse.url, pool)
    pool.close()


# --- strategies built from the input shapes ------------------------------------------------------------------

HOSTILE_TEXT: Final = (
    "",
    " ",
    "\x00",
    "\x00fuzz-scratch",
    "fuzz-scratch\x00",
    "\r\n\t",
    "null",
    "undefined",
    "../../etc/passwd",
    "' OR '1'='1' --",
    '"; DROP TABLE users; --',
    "%s%s%n%x",
    "{0}{1}{__class__}",
    "${jndi:ldap://x/a}",
    "<script>alert(1)</script>",
    "\u202efuzz",
    "\ufeffBOM",
    "\u0130\u0131\u00df\ufb01",
    "😀" * 40,
    "a" * 129,
    "*",
    "%",
    "_",
    "\\",
    "us-east-1_",
    "us-east-1_AAAAAAAAA",
    "arn:aws:cognito-idp:us-east-1:000000000000:userpool/us-east-1_nope",
    "arn:aws:cognito-idp:us-east-1:000000000000:userpool/",
    "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
    "a.b.c",
    "=",
    "____",
)
HUGE_UNITS: Final = ("a", "é", "😀", " ", "{####}", "\\", "x.")
HUGE_LENGTHS: Final = (1025, 4097, 65537, 300_000)
KNOWN_ATTRIBUTES: Final = (
    "email",
    "email_verified",
    "phone_number",
    "phone_number_verified",
    "name",
    "sub",
    "custom:tier",
    "custom:nope",
    "preferred_username",
    "cognito:user_status",
    "address",
    "updated_at",
)
PARAMETER_KEYS: Final = (
    "USERNAME",
    "PASSWORD",
    "SECRET_HASH",
    "REFRESH_TOKEN",
    "SRP_A",
    "DEVICE_KEY",
    "NEW_PASSWORD",
    "PASSWORD_CLAIM_SIGNATURE",
    "PASSWORD_CLAIM_SECRET_BLOCK",
    "TIMESTAMP",
    "SMS_MFA_CODE",
    "SOFTWARE_TOKEN_MFA_CODE",
    "ANSWER",
    "userAttributes.email",
)

# \p{..} classes, approximated for generating well-formed values (the server checks with the real classes).
_UNICODE_CLASSES: Final = {
    "L": "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u4e00-\u4e0f",
    "M": "\u0300-\u0306",
    "S": "$+<=>^`|~",
    "N": "0-9",
    "P": "!-#%-*,-/:;?@\\[-\\]_{}",
    "Z": " ",
}


def weighted(*pairs: tuple[int, SearchStrategy[Any]]) -> SearchStrategy[Any]:
    """Choose among strategies with these relative weights.

    (``st.one_of`` would not do: it draws its branches evenly, and drops repeated ones.)"""
    choices = [strategy for weight, strategy in pairs for _ in range(weight)]
    return st.sampled_from(choices).flatmap(lambda strategy: strategy)


def huge_text() -> SearchStrategy[str]:
    return st.builds(lambda unit, n: unit * n, st.sampled_from(HUGE_UNITS), st.sampled_from(HUGE_LENGTHS))


def deep_json() -> SearchStrategy[Raw]:
    def nest(kind: str, depth: int) -> Raw:
        if kind == "list":
            return Raw("[" * depth + "]" * depth)
        return Raw('{"a":' * depth + "1" + "}" * depth)

    return st.builds(nest, st.sampled_from(["list", "dict"]), st.sampled_from([63, 65, 300, 1100, 5000]))


def junk_value() -> SearchStrategy[Any]:
    """Any JSON value at all, most of them the wrong type for any given member."""
    return weighted(
        (2, st.none()),
        (1, st.booleans()),
        (2, st.integers(min_value=-(2**70), max_value=2**70)),
        (1, st.floats(allow_nan=False, allow_infinity=False)),
        (1, st.sampled_from([Raw("1e400"), Raw("-1e400"), Raw("NaN"), Raw("Infinity"), Raw("-0"), Raw("1E-400")])),
        (2, st.sampled_from(["5", "1", "0", "-1", "1e3", "true", "false", "null", "[]", "{}"])),  # numbers as text
        (2, st.text(max_size=20)),
        (1, st.sampled_from(HOSTILE_TEXT)),
        (1, huge_text()),
        (2, st.lists(st.one_of(st.text(max_size=5), st.integers()), max_size=3)),
        (2, st.dictionaries(st.text(max_size=5), st.one_of(st.text(max_size=5), st.none()), max_size=3)),
        (2, deep_json()),
    )


def pattern_text(pattern: str, low: int, high: int | None) -> SearchStrategy[str]:
    """Strings (mostly) matching a model pattern, cut to its length bounds."""
    ascii_shorthands = _translate_java_pattern(pattern)
    translated = re.sub(r"\\p\{(\w)\}", lambda m: _UNICODE_CLASSES.get(m.group(1), "a-z"), ascii_shorthands)
    try:
        re.compile(translated)
        base = st.from_regex(translated, fullmatch=True)
    except re.error:
        base = st.text(min_size=1, max_size=20)
    limit = high if high is not None else 64
    return base.map(lambda s: s[:limit]).filter(lambda s: len(s) >= low)


Reals = Mapping[str, Sequence[Any]]


def string_values(shape: Any, member: str, reals: Reals, strict: bool) -> SearchStrategy[Any]:
    meta = shape.metadata
    low = int(meta.get("min", 0))
    high = meta.get("max")
    valid: list[tuple[int, SearchStrategy[Any]]] = []
    if member in reals:
        valid.append((4, st.sampled_from(list(reals[member]))))
    if meta.get("enum"):
        valid.append((4, st.sampled_from(list(meta["enum"]))))
    if meta.get("pattern"):
        valid.append((1, pattern_text(str(meta["pattern"]), low, high)))
    elif not meta.get("enum"):
        valid.append((1, st.text(min_size=low, max_size=min(int(high or 64), 64))))
    if strict:
        return weighted(*valid)
    edges: list[str] = ["a" * (low - 1)] if low > 0 else [""]
    if high is not None:
        edges += ["a" * int(high), "a" * (int(high) + 1), "\u00e9" * int(high), "😀" * int(high)]
    return weighted(
        *valid,
        (1, st.sampled_from(edges)),
        (1, st.sampled_from(HOSTILE_TEXT)),
        (1, st.text(max_size=40)),
        (1, huge_text()),
    )


def number_values(shape: Any, strict: bool) -> SearchStrategy[Any]:
    meta = shape.metadata
    if shape.type_name not in ("integer", "long"):
        return weighted((4, st.floats(allow_nan=False, allow_infinity=False)), (1, st.integers(-5, 5)))
    bound = 2**31 - 1 if shape.type_name == "integer" else 2**63 - 1
    low = int(meta["min"]) if "min" in meta else -bound - 1
    high = int(meta["max"]) if "max" in meta else bound
    if strict:
        return st.integers(low, high)
    edges = [low - 1, low, high, high + 1, -(2**31) - 1, 2**31, 2**63 - 1, 0, -1]
    return weighted((4, st.integers(low, high)), (1, st.sampled_from(edges)))


def scalar_values(shape: Any, member: str, reals: Reals, strict: bool) -> SearchStrategy[Any]:
    """Values of the right JSON type for a scalar shape (right or wrong as values)."""
    kind = shape.type_name
    if kind == "string":
        return string_values(shape, member, reals, strict)
    if kind in ("integer", "long", "double", "float"):
        return number_values(shape, strict)
    if kind == "boolean":
        return st.booleans()
    if kind == "timestamp":
        return st.one_of(st.integers(-1, 2**33), st.sampled_from(["2024-01-01T00:00:00Z", "x"]))
    if kind == "blob":
        return weighted(
            (3, st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode())),
            (1, st.sampled_from(["not base64!", "===="])),
        )
    return junk_value()


def map_values(shape: Any, member: str, reals: Reals, depth: int, strict: bool) -> SearchStrategy[Any]:
    keys: SearchStrategy[str]
    values: SearchStrategy[Any]
    if member in ("AuthParameters", "ChallengeResponses"):
        keys = weighted((4, st.sampled_from(PARAMETER_KEYS)), (1, st.text(max_size=20)))
        real_values = [v for name in ("Username", "Password", "SecretHash", "RefreshToken") for v in reals[name]]
        values = weighted(
            (3, st.sampled_from(real_values)),
            (1, st.text(alphabet="0123456789abcdefABCDEF", max_size=800)),
            (1, st.sampled_from(["0", "00", "1", "ff" * 384, "-1", "Mon Jan 1 00:00:00 UTC 2024"])),
            (1, st.sampled_from(HOSTILE_TEXT)),
            (1, st.text(max_size=40)),
        )
        # Half the time a real USERNAME, so the flows get past "who is this".
        named = st.fixed_dictionaries({"USERNAME": st.sampled_from(list(reals["Username"]))})
        entries = st.builds(
            lambda extra, fixed: {**extra, **fixed},
            st.dictionaries(keys, values, max_size=6),
            weighted((1, named), (1, st.just({}))),
        )
        whole = st.sampled_from(list(reals.get(member, [{}])))
        if strict:
            return weighted((1, whole), (1, entries))
        return weighted((3, whole), (6, entries), (1, st.dictionaries(keys, values, min_size=70, max_size=70)))
    key_shape = shape.key.metadata
    key_text = st.text(min_size=int(key_shape.get("min", 0)), max_size=int(key_shape.get("max", 40)))
    values = shape_values(shape.value, "", reals, depth + 1, strict)
    if strict:
        return st.dictionaries(key_text, values, max_size=min(5, int(shape.metadata.get("max", 5))))
    keys = weighted((3, key_text), (1, st.sampled_from(["", "a" * 129])))
    return weighted((6, st.dictionaries(keys, values, max_size=5)), (1, st.dictionaries(keys, values, min_size=60)))


def list_values(shape: Any, member: str, reals: Reals, depth: int, strict: bool) -> SearchStrategy[Any]:
    item: SearchStrategy[Any] = shape_values(shape.member, "", reals, depth + 1, strict)
    if member in ("UserAttributeNames", "AttributesToGet"):
        item = weighted((3, st.sampled_from(KNOWN_ATTRIBUTES)), (1, item))
    high = shape.metadata.get("max")
    if strict:
        low = int(shape.metadata.get("min", 0))
        return st.lists(item, min_size=low, max_size=max(low, min(4, int(high or 4))))
    strategies: list[tuple[int, SearchStrategy[Any]]] = [
        (6, st.lists(item, max_size=4)),
        (1, st.lists(st.one_of(item, st.none()), min_size=1, max_size=3)),
    ]
    if high is not None and int(high) <= 100:
        strategies.append((1, st.lists(item, min_size=int(high) + 1, max_size=int(high) + 1)))
    return weighted(*strategies)


def member_values(shape: Any, reals: Reals, depth: int, strict: bool) -> dict[str, SearchStrategy[Any]]:
    """A strategy for each member of a structure, by wire name."""
    members: dict[str, SearchStrategy[Any]] = {}
    for name, member_shape in shape.members.items():
        wire_name = str(member_shape.serialization.get("name", name))
        value = shape_values(member_shape, wire_name, reals, depth + 1, strict)
        if name == "Name" and shape.name == "AttributeType":
            value = weighted((4, st.sampled_from(KNOWN_ATTRIBUTES)), (1, value))
        members[wire_name] = value
    return members


def structure_values(shape: Any, reals: Reals, depth: int, strict: bool) -> SearchStrategy[dict[str, Any]]:
    """Objects whose members all have the right JSON type; required members present (but now and then).

    ``strict``: every value within the model's constraints too (as far as generating them allows), so the
    request gets past validation to the handler."""
    if depth > 5:
        return st.just({})
    required = set(shape.required_members)
    members = member_values(shape, reals, depth, strict)
    must = {k: v for k, v in members.items() if k in required}
    may = {k: v for k, v in members.items() if k not in required}
    if strict:
        return st.fixed_dictionaries(must, optional=may)
    return weighted(
        (10, st.fixed_dictionaries(must, optional=may)),
        (1, st.fixed_dictionaries({}, optional=members)),  # required members may go missing
    )


def shape_values(shape: Any, member: str, reals: Reals, depth: int, strict: bool) -> SearchStrategy[Any]:
    if shape.type_name == "structure":
        return structure_values(shape, reals, depth, strict)
    if shape.type_name == "list":
        return list_values(shape, member, reals, depth, strict)
    if shape.type_name == "map":
        return map_values(shape, member, reals, depth, strict)
    return scalar_values(shape, member, reals, strict)


def _slots(value: object) -> list[tuple[dict[str, Any] | list[Any], Any]]:
    """Every (container, key-or-index) in a decoded body, the body's own members included."""
    found: list[tuple[dict[str, Any] | list[Any], Any]] = []
    stack: list[object] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                found.append((item, key))
                stack.append(child)
        elif isinstance(item, list):
            for index, child in enumerate(item):
                found.append((item, index))
                stack.append(child)
    return found


UNKNOWN_MEMBERS: Final = ("__type", "__proto__", "constructor", "Action", "", "userPoolId", "USERPOOLID", "Version")


@st.composite
def mutated(draw: st.DrawFn, objects: SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    """A well-typed body with one thing broken: a member replaced by junk, removed, or one added."""
    body = copy.deepcopy(draw(objects))
    slots = _slots(body)
    action = draw(st.sampled_from(["replace"] * 4 + ["drop", "add"] if slots else ["add"]))
    if action == "add":
        containers = [body] + [c for c, k in slots if isinstance(c, dict)]
        target = draw(st.sampled_from(containers))
        key = draw(st.one_of(st.sampled_from(UNKNOWN_MEMBERS), st.text(max_size=12)))
        target[key] = draw(junk_value())
        return body
    container, key = draw(st.sampled_from(slots))
    if action == "drop" and isinstance(container, dict):
        del container[key]
    else:
        container[key] = draw(junk_value())
    return body


@st.composite
def seeded(draw: st.DrawFn, seeds: Sequence[dict[str, Any]], members: dict[str, SearchStrategy[Any]]) -> dict[str, Any]:
    """A request a real client would send, with up to two of its members replaced by generated values."""
    body = copy.deepcopy(draw(st.sampled_from(list(seeds))))
    for _ in range(draw(st.integers(0, 2))):
        name = draw(st.sampled_from(sorted(members)))
        body[name] = draw(members[name])
    return body


@dataclass(frozen=True)
class Request:
    body: bytes
    content_type: str = CONTENT_TYPE


ODD_BODIES: Final = (b"", b"   ", b"[]", b'"x"', b"null", b"0", b"true", b"{", b'{"a":1}}', b"{}{}", b"\xef\xbb\xbf{}")


def requests_for(operation: str, reals: Reals, seeds: Sequence[dict[str, Any]] = ()) -> SearchStrategy[Request]:
    shape = BOTO_MODEL.operation_model(operation).input_shape
    valid = structure_values(shape, reals, 0, strict=True).map(lambda value: encode(value).encode())
    objects = structure_values(shape, reals, 0, strict=False)
    encoded = objects.map(lambda value: encode(value).encode())
    odd = st.one_of(
        st.sampled_from(ODD_BODIES),
        encoded.map(lambda body: body[: max(1, len(body) // 2)]),  # cut short
        encoded.map(lambda body: body[:-1] + b',"UserPoolId":"dup_1","UserPoolId":5}' if len(body) > 2 else body),
        deep_json().map(lambda raw: raw.text.encode()),
    )
    broken = mutated(objects).map(lambda value: encode(value).encode())
    categories = [(8, valid), (6, encoded), (4, broken), (2, odd)]
    if seeds:
        members = member_values(shape, reals, 0, strict=False)
        categories.append((10, seeded(seeds, members).map(lambda value: encode(value).encode())))
    body = weighted(*categories)
    content_type = weighted((12, st.just(CONTENT_TYPE)), (1, st.sampled_from(["application/json", "text/plain", ""])))
    return st.builds(Request, body=body, content_type=content_type)


# --- the check -----------------------------------------------------------------------------------------------


def check_reply(operation: str, request: Request, reply: Reply) -> dict[str, Any]:
    """Everything a reply must be, whatever the request; the decoded body."""
    context = (operation, reply.status, shown(reply.body), shown(request.body))
    assert reply.status < 500, context
    assert reply.content_type.split(";")[0].strip() == CONTENT_TYPE, context
    text = reply.body.decode("utf-8")
    sent = request.body.decode("utf-8", "replace")
    for leak in LEAKS:
        assert leak not in text or leak in sent, (leak, *context)
    body = json.loads(text)
    assert isinstance(body, dict), context
    if reply.status == 200:
        assert "__type" not in body, context
        output = BOTO_MODEL.operation_model(operation).output_shape
        allowed = set(output.members) if output is not None else set()
        assert set(body) <= allowed, (set(body) - allowed, *context)
        return body
    type_name = body.get("__type")
    assert isinstance(type_name, str), context
    assert type_name in MODEL.error_names(operation) | PROTOCOL_ERRORS, context
    assert isinstance(body.get("message"), str) and body["message"], context
    return body


# --- the fuzz ------------------------------------------------------------------------------------------------


def test_every_operation_is_covered() -> None:
    assert len(OPERATION_NAMES) >= 50
    assert set(OPERATION_NAMES) <= MODEL.operation_names()
    assert set(OPERATION_NAMES) >= SPARE_POOL_OPERATIONS


@pytest.mark.parametrize("operation", OPERATION_NAMES)
def test_hostile_input_never_breaks_the_wire(world: World, wire: Wire, operation: str) -> None:
    real = world.reals(operation)

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=DERANDOMIZE,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
    @given(requests_for(operation, real, world.seeds(operation, real)))
    def fuzz(request: Request) -> None:
        EXAMPLES[operation] += 1
        reply = wire.post(operation, request.body, content_type=request.content_type)
        answer = check_reply(operation, request, reply)
        OUTCOMES[operation, str(answer.get("__type", "OK"))] += 1
        if reply.status == 200 and operation in CONFIGURING_OPERATIONS:
            probe_after(wire, operation, json.loads(request.body), answer)

    fuzz()
    assert EXAMPLES[operation] >= EXAMPLES_PER_OPERATION


# Operations whose success leaves a generated configuration behind (a pool's or a client's): every such
# configuration must then serve the everyday calls without a 500.
CONFIGURING_OPERATIONS: Final = frozenset(
    {"CreateUserPool", "UpdateUserPool", "AddCustomAttributes", "CreateUserPoolClient", "UpdateUserPoolClient"}
)
PROBES: Counter[str] = Counter()


def probe_after(wire: Wire, operation: str, params: dict[str, Any], answer: dict[str, Any]) -> None:
    """Use the pool (and client) a configuring call just accepted the way an application would."""
    if operation == "CreateUserPool":
        pool_id = str(answer["UserPool"]["Id"])
        status, created = call(wire, "CreateUserPoolClient", {"UserPoolId": pool_id, "ClientName": "probe"})
        assert status == 200, created
        client_ids = [str(created["UserPoolClient"]["ClientId"])]
    elif operation in ("CreateUserPoolClient", "UpdateUserPoolClient"):
        pool_id = str(answer["UserPoolClient"]["UserPoolId"])
        client_ids = [str(answer["UserPoolClient"]["ClientId"])]
    else:
        pool_id = str(params["UserPoolId"])
        status, listed = call(wire, "ListUserPoolClients", {"UserPoolId": pool_id, "MaxResults": 5})
        assert status == 200, listed
        client_ids = [str(c["ClientId"]) for c in listed["UserPoolClients"]]
    PROBES[operation] += 1
    name = f"probe-{sum(PROBES.values())}"
    email = [{"Name": "email", "Value": f"{name}@example.com"}]
    calls: list[tuple[str, dict[str, Any]]] = [
        ("DescribeUserPool", {"UserPoolId": pool_id}),
        ("ListUsers", {"UserPoolId": pool_id, "Limit": 5}),
        ("ListGroups", {"UserPoolId": pool_id}),
        (
            "AdminCreateUser",
            {"UserPoolId": pool_id, "Username": name, "UserAttributes": email, "TemporaryPassword": PASSWORD},
        ),
        ("AdminSetUserPassword", {"UserPoolId": pool_id, "Username": name, "Password": PASSWORD, "Permanent": True}),
        ("AdminGetUser", {"UserPoolId": pool_id, "Username": name}),
        ("AdminUpdateUserAttributes", {"UserPoolId": pool_id, "Username": name, "UserAttributes": email}),
        ("ListUsers", {"UserPoolId": pool_id, "Filter": f'email = "{name}@example.com"'}),
    ]
    for client_id in client_ids[:2]:
        login = {"USERNAME": name, "PASSWORD": PASSWORD}
        calls += [
            ("DescribeUserPoolClient", {"UserPoolId": pool_id, "ClientId": client_id}),
            ("InitiateAuth", {"ClientId": client_id, "AuthFlow": "USER_PASSWORD_AUTH", "AuthParameters": login}),
            (
                "AdminInitiateAuth",
                {
                    "UserPoolId": pool_id,
                    "ClientId": client_id,
                    "AuthFlow": "ADMIN_USER_PASSWORD_AUTH",
                    "AuthParameters": login,
                },
            ),
            (
                "SignUp",
                {"ClientId": client_id, "Username": name + "-up", "Password": PASSWORD, "UserAttributes": email},
            ),
            ("ForgotPassword", {"ClientId": client_id, "Username": name}),
        ]
    for probe, params in calls:
        call(wire, probe, params)  # checked like any fuzz reply: no 5xx, only the errors the model lists


SIGNED_OPERATIONS: Final = [name for name in OPERATION_NAMES if MODEL.requires_signature(name)]
# How an admin call can be wrongly signed, and what each must answer (before its body is even parsed).
BAD_SIGNATURES: Final = {
    "none": "MissingAuthenticationTokenException",
    "wrong": "InvalidSignatureException",
    "stranger": "UnrecognizedClientException",
    "garbage": "IncompleteSignatureException",
}


@settings(max_examples=60, deadline=None, derandomize=DERANDOMIZE, database=None)
@given(
    operation=st.sampled_from(SIGNED_OPERATIONS),
    sign=st.sampled_from(sorted(BAD_SIGNATURES)),
    body=st.one_of(st.sampled_from(ODD_BODIES), junk_value().map(lambda value: encode(value).encode())),
)
def test_badly_signed_admin_calls_are_refused_before_anything_else(
    wire: Wire, operation: str, sign: str, body: bytes
) -> None:
    reply = wire.post(operation, body, sign=sign)
    decoded = check_reply(operation, Request(body), reply)
    if reply.status == 413:  # too large is refused before the signature is looked at
        assert decoded["__type"] == "SerializationException" and len(body) > 1024 * 1024
        return
    assert reply.status == 403, (operation, sign, decoded)
    assert decoded["__type"] == BAD_SIGNATURES[sign], (operation, sign, decoded)


# Bytes that are not UTF-8: a stray continuation byte, an overlong '/', an encoded surrogate, a code point
# past U+10FFFF, a cut-off sequence, and bytes that never occur in UTF-8.
INVALID_UTF8: Final = (b"\x80", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", b"\xff", b"\xfe\xff")
# JSON escapes of lone surrogates: valid JSON grammar, but not a Unicode string.
LONE_SURROGATES: Final = (b"\\ud800", b"\\udfff", b"x\\ud83d", b"\\ude00x")


@settings(max_examples=60, deadline=None, derandomize=DERANDOMIZE, database=None)
@given(
    operation=st.sampled_from(OPERATION_NAMES),
    before=st.text(alphabet="abc-_", max_size=8),
    bad=st.sampled_from(INVALID_UTF8 + LONE_SURROGATES),
    in_key=st.booleans(),
)
def test_invalid_utf8_and_lone_surrogates_are_serialization_exceptions(
    wire: Wire, operation: str, before: str, bad: bytes, in_key: bool
) -> None:
    shape = BOTO_MODEL.operation_model(operation).input_shape
    member = sorted(shape.required_members or shape.members)[0]
    text = before.encode() + bad
    body = b'{"' + text + b'":"x"}' if in_key else b'{"' + member.encode() + b'":"' + text + b'"}'
    reply = wire.post(operation, body)
    decoded = check_reply(operation, Request(body), reply)
    assert reply.status == 400, (operation, body, decoded)
    assert decoded["__type"] == "SerializationException", (operation, body, decoded)


# --- regressions: inputs the fuzz found that once answered 500 -----------------------------------------------


def call(wire: Wire, operation: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """A raw (signed where the model wants it) call, checked like every fuzz reply; status and body."""
    body = json.dumps(params).encode()
    reply = wire.post(operation, body)
    return reply.status, check_reply(operation, Request(body), reply)


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def test_list_groups_for_user_with_a_made_up_next_token(idp: Any, wire: Wire) -> None:
    # Found by the fuzz: a NextToken that was valid base64 but not a page offset (here: another operation's
    # token shape, a group name) was int()-ed and answered 500 InternalErrorException.
    pool_id = str(idp.create_user_pool(PoolName="paging")["UserPool"]["Id"])
    idp.admin_create_user(UserPoolId=pool_id, Username="member", MessageAction="SUPPRESS")
    for name in ("g1", "g2", "g3"):
        idp.create_group(UserPoolId=pool_id, GroupName=name)
        idp.admin_add_user_to_group(UserPoolId=pool_id, Username="member", GroupName=name)
    for token in (b64("g-adminlistgroupsforuser"), b64("x"), b64("-1"), b64("\u00b2"), b64("9" * 5000), b64(" 1")):
        status, body = call(
            wire, "AdminListGroupsForUser", {"UserPoolId": pool_id, "Username": "member", "NextToken": token}
        )
        assert (status, body) == (400, {"__type": "InvalidParameterException", "message": "Invalid pagination token."})
    # Real tokens still page through every group, in order, once.
    first = idp.admin_list_groups_for_user(UserPoolId=pool_id, Username="member", Limit=2)
    second = idp.admin_list_groups_for_user(
        UserPoolId=pool_id, Username="member", Limit=2, NextToken=first["NextToken"]
    )
    assert [g["GroupName"] for g in first["Groups"] + second["Groups"]] == ["g1", "g2", "g3"]
    assert "NextToken" not in second


def test_null_members_are_absent_members(idp: Any, wire: Wire) -> None:
    # Found by the fuzz: {"RefreshTokenValidity": null} passed validation (null is absent) but reached the
    # handler as None and was int()-ed: 500. A null member is now dropped before any handler sees it.
    pool_id = str(idp.create_user_pool(PoolName="nulls")["UserPool"]["Id"])
    client_id = str(idp.create_user_pool_client(UserPoolId=pool_id, ClientName="c")["UserPoolClient"]["ClientId"])
    status, body = call(
        wire, "UpdateUserPoolClient", {"UserPoolId": pool_id, "ClientId": client_id, "RefreshTokenValidity": None}
    )
    assert status == 200
    assert body["UserPoolClient"]["RefreshTokenValidity"] == 30  # as if not given: the default
    status, body = call(
        wire,
        "CreateUserPoolClient",
        {"UserPoolId": pool_id, "ClientName": "n", "AccessTokenValidity": None, "TokenValidityUnits": None},
    )
    assert status == 200
    assert body["UserPoolClient"]["AccessTokenValidity"] == 60
    assert body["UserPoolClient"]["TokenValidityUnits"]["AccessToken"] == "minutes"
    # UpdateGroup changes only the members given, and a null one is not given.
    idp.create_group(UserPoolId=pool_id, GroupName="g", Description="kept", Precedence=3)
    status, body = call(
        wire, "UpdateGroup", {"UserPoolId": pool_id, "GroupName": "g", "Description": None, "Precedence": None}
    )
    assert status == 200
    assert (body["Group"]["Description"], body["Group"]["Precedence"]) == ("kept", 3)
    # A required member sent as null is still missing.
    status, body = call(wire, "DescribeUserPool", {"UserPoolId": None})
    assert (status, body["__type"]) == (400, "InvalidParameterException")
    assert body["message"] == (
        "1 validation error detected: Value null at 'userPoolId' failed to satisfy constraint: Member must not be null"
    )


def test_attribute_constraints_that_are_not_numbers(idp: Any, wire: Wire) -> None:
    # Found by the fuzz: StringAttributeConstraints {"MinLength": "", "MaxLength": ""} (the model types them as
    # free strings) were int()-ed: 500. A non-numeric MinLength or Number MinValue was even stored, so every
    # later write of that attribute would have answered 500.
    pool_id = str(idp.create_user_pool(PoolName="constraints")["UserPool"]["Id"])
    before = idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["SchemaAttributes"]
    bad: list[tuple[dict[str, Any], str]] = [
        (
            {"Name": "0", "StringAttributeConstraints": {"MinLength": "", "MaxLength": ""}},
            "MinLength of attribute custom:0 must be a whole number.",
        ),
        (
            {"Name": "a", "StringAttributeConstraints": {"MinLength": "abc", "MaxLength": "10"}},
            "MinLength of attribute custom:a must be a whole number.",
        ),
        (
            {"Name": "b", "StringAttributeConstraints": {"MaxLength": "-5"}},
            "MaxLength of attribute custom:b must be a whole number.",
        ),
        (
            {"Name": "c", "StringAttributeConstraints": {"MinLength": "9", "MaxLength": "3"}},
            "MinLength of attribute custom:c cannot be greater than its MaxLength.",
        ),
        (
            {"Name": "d", "StringAttributeConstraints": {"MaxLength": "9" * 5000}},
            "MaxLength of attribute custom:d must be a whole number.",
        ),
        (
            {"Name": "e", "AttributeDataType": "Number", "NumberAttributeConstraints": {"MinValue": "abc"}},
            "MinValue of attribute custom:e must be a number.",
        ),
        (
            {"Name": "f", "AttributeDataType": "Number", "NumberAttributeConstraints": {"MaxValue": "NaN"}},
            "MaxValue of attribute custom:f must be a number.",
        ),
        (
            {
                "Name": "g",
                "AttributeDataType": "Number",
                "NumberAttributeConstraints": {"MinValue": "10", "MaxValue": "1"},
            },
            "MinValue of attribute custom:g cannot be greater than its MaxValue.",
        ),
    ]
    for attribute, message in bad:
        status, body = call(wire, "AddCustomAttributes", {"UserPoolId": pool_id, "CustomAttributes": [attribute]})
        assert (status, body) == (400, {"__type": "InvalidParameterException", "message": message}), attribute
    assert idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["SchemaAttributes"] == before
    # The same check where a standard attribute's constraints are set at creation.
    status, body = call(
        wire,
        "CreateUserPool",
        {"PoolName": "bad", "Schema": [{"Name": "email", "StringAttributeConstraints": {"MinLength": "x"}}]},
    )
    assert (status, body["__type"], body["message"]) == (
        400,
        "InvalidParameterException",
        "MinLength of attribute email must be a whole number.",
    )
    # Well-formed constraints are stored (as whole numbers) and enforced on writes.
    status, _ = call(
        wire,
        "AddCustomAttributes",
        {
            "UserPoolId": pool_id,
            "CustomAttributes": [
                {"Name": "code", "StringAttributeConstraints": {"MinLength": "02", "MaxLength": "4"}},
                {"Name": "level", "AttributeDataType": "Number", "NumberAttributeConstraints": {"MaxValue": "9"}},
            ],
        },
    )
    assert status == 200
    schema = {a["Name"]: a for a in idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["SchemaAttributes"]}
    assert schema["custom:code"]["StringAttributeConstraints"] == {"MinLength": "2", "MaxLength": "4"}
    assert schema["custom:level"]["NumberAttributeConstraints"] == {"MaxValue": "9"}
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username="writer",
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "custom:code", "Value": "abc"}, {"Name": "custom:level", "Value": "9"}],
    )
    for name, value in (("custom:code", "abcde"), ("custom:level", "10")):
        status, body = call(
            wire,
            "AdminUpdateUserAttributes",
            {"UserPoolId": pool_id, "Username": "writer", "UserAttributes": [{"Name": name, "Value": value}]},
        )
        assert (status, body["__type"]) == (400, "InvalidParameterException"), body


# --- afterwards: nothing the fuzz could reach was corrupted -------------------------------------------------


def test_pool_and_bystander_survive_the_fuzz(
    gatehouse: GatehouseServer, world: World, idp: Any, public_idp: Any
) -> None:
    # The fuzz above ran (this test comes after it in the module): every operation got its examples, they
    # reached the handlers (not only the validator), and generated configurations were put to use.
    assert set(EXAMPLES) == set(OPERATION_NAMES), set(OPERATION_NAMES) - set(EXAMPLES)
    assert min(EXAMPLES.values()) >= EXAMPLES_PER_OPERATION
    succeeded = {operation for (operation, outcome) in OUTCOMES if outcome == "OK"}
    assert len(succeeded) >= len(OPERATION_NAMES) // 2, sorted(set(OPERATION_NAMES) - succeeded)
    assert {"InitiateAuth", "AdminInitiateAuth", "GetTokensFromRefreshToken", "CreateUserPool"} <= succeeded
    assert set(PROBES) == CONFIGURING_OPERATIONS, PROBES
    print(f"\nfuzz: {sum(EXAMPLES.values())} examples over {len(EXAMPLES)} operations, {len(succeeded)} of them "
          f"answered 200 at least once; {sum(PROBES.values())} generated configurations probed")  # fmt: skip

    # The bystander still signs in, with the attributes and the group it had.
    result = public_idp.initiate_auth(
        ClientId=world.public_client,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": SENTINEL, "PASSWORD": PASSWORD},
    )["AuthenticationResult"]
    assert result["TokenType"] == "Bearer"
    me = public_idp.get_user(AccessToken=result["AccessToken"])
    assert me["Username"] == SENTINEL
    assert {a["Name"]: a["Value"] for a in me["UserAttributes"]} == world.sentinel_attributes
    groups = idp.admin_list_groups_for_user(UserPoolId=world.pool_id, Username=SENTINEL)["Groups"]
    assert [g["GroupName"] for g in groups] == [SENTINEL_GROUP]

    # The pool and its clients describe exactly as before (only the user count moved).
    described = idp.describe_user_pool(UserPoolId=world.pool_id)["UserPool"]
    assert described["EstimatedNumberOfUsers"] > world.described["EstimatedNumberOfUsers"]
    assert {k: v for k, v in described.items() if k != "EstimatedNumberOfUsers"} == {
        k: v for k, v in world.described.items() if k != "EstimatedNumberOfUsers"
    }
    for client_id, before in world.clients.items():
        assert idp.describe_user_pool_client(UserPoolId=world.pool_id, ClientId=client_id)["UserPoolClient"] == before

    # Nothing went wrong inside the server that the wire did not show.
    log = gatehouse.log_text().splitlines()
    assert [line for line in log if "api.unhandled" in line] == []
    assert [line for line in log if '"level": "error"' in line or '"level": "critical"' in line] == []
