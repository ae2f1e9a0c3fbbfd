"""The admin operations of cognito-idp and cognito-identity signed with temporary credentials, as a back end on
AWS calls them with its role's credentials: allowed by what the role's policies (and the session policy) allow,
IAM's rules throughout, against the resource each call acts on (the user pool's or identity pool's ARN, "*" for
CreateUserPool and ListUserPools); refused with AccessDeniedException before the input is looked at, changing
nothing. A guest's session (an identity pool's unauthenticated identity) makes none of these calls whatever its
role allows, as AWS scopes such sessions down. boto3 clients signed with credentials from STS AssumeRole and
GetCredentialsForIdentity, against a real Gatehouse."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import zlib
from collections.abc import Callable
from typing import Any

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from gateway.secretbox import SecretBox
from tests.e2e.aws_support import ACCOUNT, aws_client
from tests.support import REGION, GatehouseServer

ROOT_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}
        ],
    }
)


def pool_arn(pool_id: str) -> str:
    return f"arn:aws:cognito-idp:{REGION}:{ACCOUNT}:userpool/{pool_id}"


def identity_pool_arn(pool_id: str) -> str:
    return f"arn:aws:cognito-identity:{REGION}:{ACCOUNT}:identitypool/{pool_id}"


def refusal(call: Callable[[], Any]) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response["Error"]
    return str(error["Code"]), str(error["Message"]), int(caught.value.response["ResponseMetadata"]["HTTPStatusCode"])


def session(gatehouse: GatehouseServer, role: str, statements: list[dict[str, Any]], **assume: Any) -> dict[str, str]:
    """Credentials of a new session of a new role whose one inline policy is ``statements``."""
    iam = gatehouse.client("iam")
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=ROOT_TRUST)
    policy = json.dumps({"Version": "2012-10-17", "Statement": statements})
    iam.put_role_policy(RoleName=role, PolicyName="inline", PolicyDocument=policy)
    answer = gatehouse.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{role}", RoleSessionName="back-end", **assume
    )
    return dict(answer["Credentials"])


def client_of(gatehouse: GatehouseServer, service: str, creds: dict[str, str]) -> Any:
    return aws_client(service, gatehouse.url, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])


@pytest.fixture(scope="module")
def pools(idp: Any) -> tuple[str, str]:
    """Two user pools, each with a user ``carol``."""
    made = []
    for name in ("ours", "theirs"):
        pool_id = str(idp.create_user_pool(PoolName=name)["UserPool"]["Id"])
        idp.admin_create_user(UserPoolId=pool_id, Username="carol", MessageAction="SUPPRESS")
        made.append(pool_id)
    return made[0], made[1]


def test_a_role_may_do_what_its_policy_allows_on_its_pool(
    gatehouse: GatehouseServer, idp: Any, pools: tuple[str, str]
) -> None:
    ours, theirs = pools
    creds = session(
        gatehouse,
        "user-reader",
        [
            {
                "Effect": "Allow",
                "Action": ["cognito-idp:AdminGetUser", "cognito-idp:List*"],
                "Resource": pool_arn(ours),
            },
            {"Effect": "Allow", "Action": "cognito-idp:Admin*", "Resource": pool_arn(ours)},
            {"Effect": "Deny", "Action": "cognito-idp:AdminDeleteUser", "Resource": "*"},
        ],
    )
    reader = client_of(gatehouse, "cognito-idp", creds)
    assert reader.admin_get_user(UserPoolId=ours, Username="carol")["Username"] == "carol"
    assert [u["Username"] for u in reader.list_users(UserPoolId=ours)["Users"]] == ["carol"]
    reader.admin_update_user_attributes(
        UserPoolId=ours, Username="carol", UserAttributes=[{"Name": "name", "Value": "Carol"}]
    )
    got = idp.admin_get_user(UserPoolId=ours, Username="carol")
    assert {"Name": "name", "Value": "Carol"} in got["UserAttributes"]
    role_session = f"arn:aws:sts::{ACCOUNT}:assumed-role/user-reader/back-end"
    # Another pool: no statement allows it.
    code, message, status = refusal(lambda: reader.admin_get_user(UserPoolId=theirs, Username="carol"))
    assert (code, status) == ("AccessDeniedException", 400)
    assert message == (
        f"User: {role_session} is not authorized to perform: cognito-idp:AdminGetUser on resource: "
        f"{pool_arn(theirs)} because no identity-based policy allows the cognito-idp:AdminGetUser action"
    )
    # An explicit deny wins over the Admin* allow; the user is still there.
    code, message, _ = refusal(lambda: reader.admin_delete_user(UserPoolId=ours, Username="carol"))
    assert code == "AccessDeniedException" and "cognito-idp:AdminDeleteUser" in message
    assert idp.admin_get_user(UserPoolId=ours, Username="carol")["Username"] == "carol"
    # Calls on no pool act on "*", which a pool's ARN does not cover.
    assert refusal(lambda: reader.list_user_pools(MaxResults=10))[0] == "AccessDeniedException"
    assert refusal(lambda: reader.create_user_pool(PoolName="not-mine"))[0] == "AccessDeniedException"
    assert "not-mine" not in [p["Name"] for p in idp.list_user_pools(MaxResults=60)["UserPools"]]


def test_a_refused_call_is_refused_before_its_input_is_read(gatehouse: GatehouseServer, pools: tuple[str, str]) -> None:
    """A session may not learn from validation errors what it may not call: the policy comes first."""
    creds = session(gatehouse, "nothing-allowed", [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}])
    nobody = client_of(gatehouse, "cognito-idp", creds)
    code, _, status = refusal(lambda: nobody.admin_get_user(UserPoolId=pools[0], Username="x" * 200))
    assert (code, status) == ("AccessDeniedException", 400)
    code, _, _ = refusal(lambda: nobody.admin_get_user(UserPoolId="not a pool id", Username="carol"))
    assert code == "AccessDeniedException"


def test_a_session_policy_narrows_the_role_and_wildcards_reach_every_pool(
    gatehouse: GatehouseServer, idp: Any, pools: tuple[str, str]
) -> None:
    ours, theirs = pools
    statements = [{"Effect": "Allow", "Action": "cognito-idp:*", "Resource": "*"}]
    admin_like = client_of(gatehouse, "cognito-idp", session(gatehouse, "pool-admin", statements))
    made = admin_like.create_user_pool(PoolName="made-by-a-role")["UserPool"]["Id"]
    assert idp.describe_user_pool(UserPoolId=made)["UserPool"]["Name"] == "made-by-a-role"
    assert admin_like.admin_get_user(UserPoolId=theirs, Username="carol")["Username"] == "carol"
    admin_like.delete_user_pool(UserPoolId=made)
    # The same role, narrowed by a session policy to reading users of one pool.
    narrow = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "cognito-idp:AdminGetUser", "Resource": pool_arn(ours)}],
        }
    )
    answer = gatehouse.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/pool-admin", RoleSessionName="narrow", Policy=narrow
    )
    narrowed = client_of(gatehouse, "cognito-idp", dict(answer["Credentials"]))
    assert narrowed.admin_get_user(UserPoolId=ours, Username="carol")["Username"] == "carol"
    assert refusal(lambda: narrowed.admin_get_user(UserPoolId=theirs, Username="carol"))[0] == "AccessDeniedException"
    assert refusal(lambda: narrowed.list_users(UserPoolId=ours))[0] == "AccessDeniedException"
    # A tag operation acts on the resource it names.
    tagger = client_of(
        gatehouse,
        "cognito-idp",
        session(
            gatehouse, "tagger", [{"Effect": "Allow", "Action": "cognito-idp:TagResource", "Resource": pool_arn(ours)}]
        ),
    )
    tagger.tag_resource(ResourceArn=pool_arn(ours), Tags={"team": "blue"})
    assert idp.list_tags_for_resource(ResourceArn=pool_arn(ours))["Tags"] == {"team": "blue"}
    assert refusal(lambda: tagger.tag_resource(ResourceArn=pool_arn(theirs), Tags={"team": "red"}))[0] == (
        "AccessDeniedException"
    )
    assert idp.list_tags_for_resource(ResourceArn=pool_arn(theirs))["Tags"] == {}


def test_forged_and_foreign_credentials_are_refused(
    gatehouse: GatehouseServer, idp: Any, pools: tuple[str, str]
) -> None:
    ours = pools[0]
    statements = [{"Effect": "Allow", "Action": "cognito-idp:*", "Resource": "*"}]
    creds = session(gatehouse, "forged-target", statements)
    forged = aws_client("cognito-idp", gatehouse.url, creds["AccessKeyId"], "x" * 40, creds["SessionToken"])
    assert refusal(lambda: forged.admin_delete_user(UserPoolId=ours, Username="carol"))[:1] == (
        "InvalidSignatureException",
    )
    token = creds["SessionToken"]
    tampered = token[:20] + ("A" if token[20] != "A" else "B") + token[21:]
    altered = aws_client("cognito-idp", gatehouse.url, creds["AccessKeyId"], creds["SecretAccessKey"], tampered)
    assert refusal(lambda: altered.admin_delete_user(UserPoolId=ours, Username="carol"))[0] == (
        "UnrecognizedClientException"
    )
    # The role deleted: its sessions end with it.
    iam = gatehouse.client("iam")
    iam.delete_role_policy(RoleName="forged-target", PolicyName="inline")
    iam.delete_role(RoleName="forged-target")
    gone = client_of(gatehouse, "cognito-idp", creds)
    assert refusal(lambda: gone.admin_delete_user(UserPoolId=ours, Username="carol"))[0] == (
        "UnrecognizedClientException"
    )
    assert idp.admin_get_user(UserPoolId=ours, Username="carol")["Username"] == "carol"


def test_expired_credentials_are_refused_as_the_json_wires_refuse_them(
    gatehouse: GatehouseServer, pools: tuple[str, str]
) -> None:
    """A session past its expiry: ``ExpiredTokenException`` on cognito-idp (STS and IAM say ``ExpiredToken``). The
    test holds the server's secret key, so it can seal a session token that expired a minute ago."""
    statements = [{"Effect": "Allow", "Action": "cognito-idp:*", "Resource": "*"}]
    creds = session(gatehouse, "short-lived", statements)
    key = bytes.fromhex((gatehouse.data_dir / "secret.key").read_text().strip())
    sts_key = hmac.new(key, b"gatehouse sts credentials", hashlib.sha256).digest()
    box = SecretBox(hmac.new(sts_key, b"gatehouse sts session tokens", hashlib.sha256).digest())
    aad = creds["AccessKeyId"].encode()
    claims = json.loads(zlib.decompress(box.open(creds["SessionToken"], aad=aad)))
    assert claims["exp"] > time.time()  # (the sealing is understood: these are the session's own claims)
    claims.update(iat=int(time.time()) - 3600, exp=int(time.time()) - 60)
    expired = {**creds, "SessionToken": box.seal(zlib.compress(json.dumps(claims).encode()), aad=aad)}
    code, message, status = refusal(
        lambda: client_of(gatehouse, "cognito-idp", expired).admin_get_user(UserPoolId=pools[0], Username="carol")
    )
    assert (code, message, status) == (
        "ExpiredTokenException",
        "The security token included in the request is expired",
        400,
    )
    assert refusal(lambda: client_of(gatehouse, "sts", expired).get_caller_identity())[:1] == ("ExpiredToken",)
    # The same claims sealed again unexpired still work: it is the expiry that is refused.
    claims.update(exp=int(time.time()) + 600)
    fresh = {**creds, "SessionToken": box.seal(zlib.compress(json.dumps(claims).encode()), aad=aad)}
    assert client_of(gatehouse, "cognito-idp", fresh).admin_get_user(UserPoolId=pools[0], Username="carol")


def test_identity_pool_calls_act_on_the_pools_of_their_identities(gatehouse: GatehouseServer) -> None:
    ci = gatehouse.client("cognito-identity")
    public = gatehouse.client("cognito-identity", signed=False)
    pool_ids, identities = [], []
    for name in ("ours", "theirs"):
        pool_id = ci.create_identity_pool(IdentityPoolName=name, AllowUnauthenticatedIdentities=True)["IdentityPoolId"]
        pool_ids.append(pool_id)
        identities.append(public.get_id(IdentityPoolId=pool_id)["IdentityId"])
    ours, theirs = pool_ids
    creds = session(
        gatehouse,
        "identity-admin",
        [{"Effect": "Allow", "Action": "cognito-identity:*", "Resource": identity_pool_arn(ours)}],
    )
    scoped = client_of(gatehouse, "cognito-identity", creds)
    assert scoped.describe_identity_pool(IdentityPoolId=ours)["IdentityPoolName"] == "ours"
    assert scoped.describe_identity(IdentityId=identities[0])["IdentityId"] == identities[0]
    code, message, _ = refusal(lambda: scoped.describe_identity(IdentityId=identities[1]))
    assert code == "AccessDeniedException" and identity_pool_arn(theirs) in message
    assert refusal(lambda: scoped.describe_identity_pool(IdentityPoolId=theirs))[0] == "AccessDeniedException"
    # Deleting identities of both pools: refused whole, nothing deleted.
    code, _, _ = refusal(lambda: scoped.delete_identities(IdentityIdsToDelete=identities))
    assert code == "AccessDeniedException"
    for identity in identities:
        assert ci.describe_identity(IdentityId=identity)["IdentityId"] == identity
    assert scoped.delete_identities(IdentityIdsToDelete=identities[:1])["UnprocessedIdentityIds"] == []
    assert refusal(lambda: ci.describe_identity(IdentityId=identities[0]))[0] == "ResourceNotFoundException"


def test_a_guest_session_makes_no_admin_call_whatever_its_role_allows(
    gatehouse: GatehouseServer, idp: Any, pools: tuple[str, str]
) -> None:
    ours = pools[0]
    ci = gatehouse.client("cognito-identity")
    identity_pool = ci.create_identity_pool(IdentityPoolName="guests", AllowUnauthenticatedIdentities=True)
    pool_id = identity_pool["IdentityPoolId"]
    # One role for guests of the pool and for the account's own sessions, allowed everything.
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"},
            {
                "Effect": "Allow",
                "Principal": {"Federated": "cognito-identity.amazonaws.com"},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {"cognito-identity.amazonaws.com:aud": pool_id},
                    "ForAnyValue:StringLike": {"cognito-identity.amazonaws.com:amr": "unauthenticated"},
                },
            },
        ],
    }
    iam = gatehouse.client("iam")
    role_arn = iam.create_role(RoleName="everything", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    everything = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.put_role_policy(RoleName="everything", PolicyName="all", PolicyDocument=json.dumps(everything))
    ci.set_identity_pool_roles(IdentityPoolId=pool_id, Roles={"unauthenticated": role_arn})
    public = gatehouse.client("cognito-identity", signed=False)
    guest_id = public.get_id(IdentityPoolId=pool_id)["IdentityId"]
    issued = public.get_credentials_for_identity(IdentityId=guest_id)["Credentials"]
    guest = {"AccessKeyId": issued["AccessKeyId"], "SecretAccessKey": issued["SecretKey"],
             "SessionToken": issued["SessionToken"]}  # fmt: skip
    # The account's own session of the role may; the guest's may not, on any of Gatehouse's signed APIs.
    own = client_of(gatehouse, "cognito-idp", session_of(gatehouse, role_arn))
    assert own.admin_get_user(UserPoolId=ours, Username="carol")["Username"] == "carol"
    guest_arn = f"arn:aws:sts::{ACCOUNT}:assumed-role/everything/CognitoIdentityCredentials"
    code, message, status = refusal(
        lambda: client_of(gatehouse, "cognito-idp", guest).admin_get_user(UserPoolId=ours, Username="carol")
    )
    assert (code, status) == ("AccessDeniedException", 400)
    assert message == (
        f"User: {guest_arn} is not authorized to perform: cognito-idp:AdminGetUser on resource: {pool_arn(ours)} "
        "because no session policy allows the cognito-idp:AdminGetUser action"
    )
    guest_ci = client_of(gatehouse, "cognito-identity", guest)
    assert refusal(lambda: guest_ci.delete_identity_pool(IdentityPoolId=pool_id))[0] == "AccessDeniedException"
    assert ci.describe_identity_pool(IdentityPoolId=pool_id)["IdentityPoolName"] == "guests"
    assert refusal(lambda: client_of(gatehouse, "iam", guest).list_roles())[0] == "AccessDenied"
    # Nor may it chain to a role without that limit.
    chained = refusal(
        lambda: client_of(gatehouse, "sts", guest).assume_role(RoleArn=role_arn, RoleSessionName="escape")
    )
    assert chained[0] == "AccessDenied" and "no session policy allows the sts:AssumeRole action" in chained[1]
    # Who it is, and what its role allows elsewhere, it may still ask: its services' own calls are its role's.
    assert client_of(gatehouse, "sts", guest).get_caller_identity()["Arn"] == guest_arn
    assert verified_s3_get(gatehouse, guest)["Allowed"] is True


def session_of(gatehouse: GatehouseServer, role_arn: str) -> dict[str, str]:
    answer = gatehouse.client("sts").assume_role(RoleArn=role_arn, RoleSessionName="account")
    return dict(answer["Credentials"])


def verified_s3_get(gatehouse: GatehouseServer, creds: dict[str, str]) -> dict[str, Any]:
    """What Gatehouse's verifier says of an S3 GET signed with ``creds``."""
    url = "https://files.example/report.pdf"
    request = AWSRequest(method="GET", url=url)
    key = Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    SigV4Auth(key, "s3", REGION).add_auth(request)
    question = {"method": "GET", "url": url, "headers": {"Host": "files.example", **dict(request.headers.items())},
                "body": "", "action": "s3:GetObject", "resource": "arn:aws:s3:::files/report.pdf"}  # fmt: skip
    answer = requests.post(f"{gatehouse.url}/gatehouse/verify", json=question, timeout=10)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def signed_call(
    gatehouse: GatehouseServer, service: str, operation: str, body: dict[str, Any], creds: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    """A JSON-wire call signed with ``creds`` whose body is sent as given (boto3 would drop members the model
    does not define)."""
    prefix = {"cognito-idp": "AWSCognitoIdentityProviderService", "cognito-identity": "AWSCognitoIdentityService"}
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"{prefix[service]}.{operation}"}
    request = AWSRequest(method="POST", url=gatehouse.url + "/", data=json.dumps(body), headers=headers)
    key = Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    SigV4Auth(key, service, REGION).add_auth(request)
    answer = requests.post(gatehouse.url + "/", data=request.body, headers=dict(request.headers.items()), timeout=10)
    return answer.status_code, answer.json()


def test_a_member_the_operation_does_not_have_names_no_resource(
    gatehouse: GatehouseServer, idp: Any, pools: tuple[str, str]
) -> None:
    """A member outside the operation's input shape is dropped before the handler runs, so it must not be what the
    policy is checked against: a UserPoolId on TagResource, an IdentityPoolId on
    DescribeIdentity or DeleteIdentities, naming the session's own pool while the call acts on another's."""
    ours, theirs = pools
    idp_creds = session(
        gatehouse, "decoy-idp", [{"Effect": "Allow", "Action": "cognito-idp:*", "Resource": pool_arn(ours)}]
    )
    status, answer = signed_call(
        gatehouse,
        "cognito-idp",
        "TagResource",
        {"UserPoolId": ours, "ResourceArn": pool_arn(theirs), "Tags": {"owner": "mallory"}},
        idp_creds,
    )
    assert (status, answer["__type"]) == (400, "AccessDeniedException") and pool_arn(theirs) in answer["message"]
    assert idp.list_tags_for_resource(ResourceArn=pool_arn(theirs))["Tags"] == {}
    # The same call on its own pool goes through: the refusal is the resource's, not the extra member's.
    status, _ = signed_call(
        gatehouse, "cognito-idp", "TagResource", {"UserPoolId": theirs, "ResourceArn": pool_arn(ours), "Tags": {}},
        idp_creds,
    )  # fmt: skip
    assert status == 200
    ci = gatehouse.client("cognito-identity")
    public = gatehouse.client("cognito-identity", signed=False)
    made = [
        ci.create_identity_pool(IdentityPoolName=name, AllowUnauthenticatedIdentities=True)["IdentityPoolId"]
        for name in ("decoy-ours", "decoy-theirs")
    ]
    victim = public.get_id(IdentityPoolId=made[1])["IdentityId"]
    ci_creds = session(
        gatehouse,
        "decoy-identity",
        [{"Effect": "Allow", "Action": "cognito-identity:*", "Resource": identity_pool_arn(made[0])}],
    )
    for operation, body in (
        ("DescribeIdentity", {"IdentityId": victim}),
        ("DeleteIdentities", {"IdentityIdsToDelete": [victim]}),
        ("TagResource", {"ResourceArn": identity_pool_arn(made[1]), "Tags": {"owner": "mallory"}}),
    ):
        status, answer = signed_call(
            gatehouse, "cognito-identity", operation, {"IdentityPoolId": made[0], **body}, ci_creds
        )
        assert (status, answer["__type"]) == (400, "AccessDeniedException"), (operation, answer)
    assert ci.describe_identity(IdentityId=victim)["IdentityId"] == victim
    assert ci.list_tags_for_resource(ResourceArn=identity_pool_arn(made[1]))["Tags"] == {}


def test_a_deny_by_resource_or_request_tag_holds(gatehouse: GatehouseServer, idp: Any) -> None:
    """Cognito's pools take ``aws:ResourceTag/<key>`` conditions ("In an IAM policy, you can constrain permissions
    for user pools based on specific tags", TagResource), and tag operations ``aws:RequestTag/<key>`` and
    ``aws:TagKeys``: a Deny that names them must hold, not fall away for want of the key."""
    prod = str(idp.create_user_pool(PoolName="prod", UserPoolTags={"env": "prod"})["UserPool"]["Id"])
    dev = str(idp.create_user_pool(PoolName="dev", UserPoolTags={"env": "dev"})["UserPool"]["Id"])
    for pool_id in (prod, dev):
        idp.admin_create_user(UserPoolId=pool_id, Username="dora", MessageAction="SUPPRESS")
    creds = session(
        gatehouse,
        "not-prod",
        [
            {"Effect": "Allow", "Action": "cognito-idp:*", "Resource": "*"},
            {
                "Effect": "Deny",
                "Action": "cognito-idp:*",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:ResourceTag/env": "prod"}},
            },
            {
                "Effect": "Deny",
                "Action": ["cognito-idp:TagResource", "cognito-idp:UntagResource", "cognito-idp:CreateUserPool"],
                "Resource": "*",
                "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": ["env"]}},
            },
        ],
    )
    scoped = client_of(gatehouse, "cognito-idp", creds)
    assert scoped.admin_get_user(UserPoolId=dev, Username="dora")["Username"] == "dora"
    code, message, status = refusal(lambda: scoped.admin_delete_user(UserPoolId=prod, Username="dora"))
    assert (code, status) == ("AccessDeniedException", 400) and pool_arn(prod) in message
    assert idp.admin_get_user(UserPoolId=prod, Username="dora")["Username"] == "dora"
    # Nor may it take the tag off (or move its own pool into prod), nor make a pool tagged with it.
    assert refusal(lambda: scoped.untag_resource(ResourceArn=pool_arn(dev), TagKeys=["env"]))[0] == (
        "AccessDeniedException"
    )
    assert refusal(lambda: scoped.tag_resource(ResourceArn=pool_arn(dev), Tags={"env": "prod"}))[0] == (
        "AccessDeniedException"
    )
    assert refusal(lambda: scoped.create_user_pool(PoolName="sneaky", UserPoolTags={"env": "x"}))[0] == (
        "AccessDeniedException"
    )
    scoped.tag_resource(ResourceArn=pool_arn(dev), Tags={"team": "blue"})
    assert idp.list_tags_for_resource(ResourceArn=pool_arn(dev))["Tags"] == {"env": "dev", "team": "blue"}
    # The same on an identity pool.
    ci = gatehouse.client("cognito-identity")
    made = ci.create_identity_pool(
        IdentityPoolName="prod", AllowUnauthenticatedIdentities=False, IdentityPoolTags={"env": "prod"}
    )["IdentityPoolId"]
    identity_creds = session(
        gatehouse,
        "not-prod-identity",
        [
            {"Effect": "Allow", "Action": "cognito-identity:*", "Resource": "*"},
            {
                "Effect": "Deny",
                "Action": "cognito-identity:*",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:ResourceTag/env": "prod"}},
            },
        ],
    )
    identity_scoped = client_of(gatehouse, "cognito-identity", identity_creds)
    assert refusal(lambda: identity_scoped.delete_identity_pool(IdentityPoolId=made))[0] == "AccessDeniedException"
    assert ci.describe_identity_pool(IdentityPoolId=made)["IdentityPoolName"] == "prod"


def test_handing_a_pool_a_role_needs_iam_pass_role(gatehouse: GatehouseServer, idp: Any) -> None:
    """SetIdentityPoolRoles and a group's RoleArn hand a role to Cognito to assume for others: AWS requires
    ``iam:PassRole`` on it (the Service Authorization Reference's dependent action), so a session allowed to
    administer its pools may not give them a stronger role than it was allowed to pass."""
    iam = gatehouse.client("iam")
    strong = iam.create_role(RoleName="strong", AssumeRolePolicyDocument=ROOT_TRUST)["Role"]["Arn"]
    weak = iam.create_role(RoleName="weak", AssumeRolePolicyDocument=ROOT_TRUST)["Role"]["Arn"]
    pool_id = gatehouse.client("cognito-identity").create_identity_pool(
        IdentityPoolName="handed", AllowUnauthenticatedIdentities=True
    )["IdentityPoolId"]
    user_pool = str(idp.create_user_pool(PoolName="grouped")["UserPool"]["Id"])
    creds = session(
        gatehouse,
        "pool-keeper",
        [
            {"Effect": "Allow", "Action": ["cognito-identity:*", "cognito-idp:*"], "Resource": "*"},
            {
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": weak,
                "Condition": {"StringEquals": {"iam:PassedToService": "cognito-identity.amazonaws.com"}},
            },
        ],
    )
    keeper = client_of(gatehouse, "cognito-identity", creds)
    code, message, status = refusal(
        lambda: keeper.set_identity_pool_roles(IdentityPoolId=pool_id, Roles={"unauthenticated": strong})
    )
    assert (code, status) == ("AccessDeniedException", 400)
    assert f"iam:PassRole on resource: {strong}" in message
    rule = {"Claim": "sub", "MatchType": "Equals", "Value": "x", "RoleARN": strong}
    mapping = {"Type": "Rules", "AmbiguousRoleResolution": "Deny", "RulesConfiguration": {"Rules": [rule]}}
    ci = gatehouse.client("cognito-identity")
    ci.update_identity_pool(
        IdentityPoolId=pool_id, IdentityPoolName="handed", AllowUnauthenticatedIdentities=True,
        SupportedLoginProviders={"accounts.google.com": "client"},
    )  # fmt: skip
    refused = refusal(
        lambda: keeper.set_identity_pool_roles(
            IdentityPoolId=pool_id, Roles={"unauthenticated": weak}, RoleMappings={"accounts.google.com": mapping}
        )
    )
    assert refused[0] == "AccessDeniedException" and strong in refused[1]
    assert ci.get_identity_pool_roles(IdentityPoolId=pool_id)["Roles"] == {}
    keeper.set_identity_pool_roles(IdentityPoolId=pool_id, Roles={"unauthenticated": weak})
    assert ci.get_identity_pool_roles(IdentityPoolId=pool_id)["Roles"] == {"unauthenticated": weak}
    # A user pool group's role is passed the same way (its members' tokens name it for identity pools).
    groups = client_of(gatehouse, "cognito-idp", creds)
    assert refusal(lambda: groups.create_group(UserPoolId=user_pool, GroupName="admins", RoleArn=strong))[0] == (
        "AccessDeniedException"
    )
    groups.create_group(UserPoolId=user_pool, GroupName="admins", RoleArn=weak)
    assert refusal(lambda: groups.update_group(UserPoolId=user_pool, GroupName="admins", RoleArn=strong))[0] == (
        "AccessDeniedException"
    )
    assert idp.get_group(UserPoolId=user_pool, GroupName="admins")["Group"]["RoleArn"] == weak
    # What the check reads is read before the input is validated: members of the wrong JSON type are the model's
    # to refuse (400), never a 500.
    for service, operation, body in (
        ("cognito-identity", "SetIdentityPoolRoles", {"IdentityPoolId": pool_id, "Roles": [strong],
                                                      "RoleMappings": {"a": {"RulesConfiguration": [1]}}}),
        ("cognito-idp", "CreateGroup", {"UserPoolId": user_pool, "GroupName": "g", "RoleArn": ["x"]}),
        ("cognito-idp", "TagResource", {"ResourceArn": 5, "Tags": [], "UserPoolId": user_pool}),
        ("cognito-idp", "UntagResource", {"ResourceArn": pool_arn(user_pool), "TagKeys": {"env": 1}}),
    ):  # fmt: skip
        status, answer = signed_call(gatehouse, service, operation, body, creds)
        assert status == 400 and answer["__type"] != "InternalErrorException", (operation, answer)


def test_iam_calls_see_the_roles_tags_and_the_tags_they_set(gatehouse: GatehouseServer) -> None:
    """On IAM's wire too, a Deny by ``aws:ResourceTag`` (the role's own tags), ``aws:RequestTag`` or ``aws:TagKeys``
    holds for a session: without the keys, its condition would be false and the Deny fall away."""
    iam = gatehouse.client("iam")
    tag = [{"Key": "protected", "Value": "yes"}]
    iam.create_role(RoleName="guarded", AssumeRolePolicyDocument=ROOT_TRUST, Tags=tag)
    iam.create_role(RoleName="ordinary", AssumeRolePolicyDocument=ROOT_TRUST)
    statements = [
        {"Effect": "Allow", "Action": "iam:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "iam:*", "Resource": "*",
         "Condition": {"StringEquals": {"aws:ResourceTag/protected": "yes"}}},
        {"Effect": "Deny", "Action": "iam:UntagRole", "Resource": "*",
         "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": "protected"}}},
        {"Effect": "Deny", "Action": ["iam:CreateRole", "iam:TagRole"], "Resource": "*",
         "Condition": {"StringEquals": {"aws:RequestTag/protected": "yes"}}},
    ]  # fmt: skip
    admin = client_of(gatehouse, "iam", session(gatehouse, "iam-operator", statements))
    s3 = {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}
    policy = json.dumps({"Version": "2012-10-17", "Statement": [s3]})
    admin.put_role_policy(RoleName="ordinary", PolicyName="p", PolicyDocument=policy)
    code, message, _ = refusal(lambda: admin.put_role_policy(RoleName="guarded", PolicyName="p", PolicyDocument=policy))
    assert code == "AccessDenied" and "iam:PutRolePolicy" in message
    assert refusal(lambda: admin.delete_role(RoleName="guarded"))[0] == "AccessDenied"
    assert iam.list_role_policies(RoleName="guarded")["PolicyNames"] == []
    # Nor can it take the tag away, or hand the tag to a role of its own making.
    assert refusal(lambda: admin.untag_role(RoleName="ordinary", TagKeys=["protected"]))[0] == "AccessDenied"
    assert refusal(lambda: admin.tag_role(RoleName="ordinary", Tags=tag))[0] == "AccessDenied"
    mine = refusal(lambda: admin.create_role(RoleName="mine", AssumeRolePolicyDocument=ROOT_TRUST, Tags=tag))
    assert mine[0] == "AccessDenied"
    admin.tag_role(RoleName="ordinary", Tags=[{"Key": "team", "Value": "blue"}])
    assert iam.list_role_tags(RoleName="ordinary")["Tags"] == [{"Key": "team", "Value": "blue"}]
    assert [t["Key"] for t in iam.list_role_tags(RoleName="guarded")["Tags"]] == ["protected"]
