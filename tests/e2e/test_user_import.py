"""User import jobs through boto3 and a real upload against a running Gatehouse: GetCSVHeader,
CreateUserImportJob, the CSV file PUT to the job's PreSignedUrl (served by Gatehouse itself), StartUserImportJob,
StopUserImportJob, DescribeUserImportJob and ListUserImportJobs, and the imported users' first way in (a password
reset). The spec is botocore's cognito-idp model and the developer guide's "Importing users into user pools from
a CSV file" pages."""

from __future__ import annotations

import asyncio
import http.client
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp
import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from pycognito.aws_srp import AWSSRP

from tests.support import ADMIN_KEY_ID, ADMIN_SECRET, REGION, GatehouseServer, MailServer, code_in, smtp_config

ROLE_ARN = "arn:aws:iam::111111111111:role/CognitoImportRole"
NEW_PASSWORD = "Imported-user-pass-1"
# Small enough that an oversized upload is cheap to send.
MAX_BYTES = 1024 * 1024
DEFAULT_HEADER = [
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "email",
    "email_verified",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "phone_number",
    "phone_number_verified",
    "address",
    "updated_at",
]
TERMINAL = {"Succeeded", "Failed", "Stopped", "Expired"}


# --- fixtures and helpers ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gatehouse(tmp_path_factory: pytest.TempPathFactory, mail: MailServer) -> Iterator[GatehouseServer]:
    data_dir: Path = tmp_path_factory.mktemp("gatehouse") / "data"
    server = GatehouseServer(
        data_dir, config=smtp_config(mail), extra_env={"GATEHOUSE_USER_IMPORT_MAX_BYTES": str(MAX_BYTES)}
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def raw_idp(gatehouse: GatehouseServer) -> Any:
    """Signed, with boto3's own parameter checks off, so that the server's validation is what answers."""
    return boto3.client(
        "cognito-idp",
        endpoint_url=gatehouse.url,
        region_name=REGION,
        aws_access_key_id=ADMIN_KEY_ID,
        aws_secret_access_key=ADMIN_SECRET,
        config=Config(parameter_validation=False, retries={"max_attempts": 1, "mode": "standard"}),
    )


@pytest.fixture(scope="module")
def pool_id(idp: Any) -> str:
    created = idp.create_user_pool(
        PoolName="imports",
        AutoVerifiedAttributes=["email"],
        Schema=[{"Name": "tier", "AttributeDataType": "String", "Mutable": True}],
    )
    return str(created["UserPool"]["Id"])


@pytest.fixture(scope="module")
def client_id(idp: Any, pool_id: str) -> str:
    client = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="app",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        PreventUserExistenceErrors="LEGACY",
    )
    return str(client["UserPoolClient"]["ClientId"])


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = exc.value.response["Error"]
    return str(error["Code"]), str(error.get("Message", ""))


def header_of(idp: Any, pool_id: str) -> list[str]:
    return list(idp.get_csv_header(UserPoolId=pool_id)["CSVHeader"])


def csv_text(header: list[str], rows: list[Mapping[str, str]]) -> str:
    """A CSV file as Cognito's guide formats it: the header, then one line per user, values unquoted."""
    lines = [",".join(header)]
    for row in rows:
        lines.append(",".join(row.get(column, "") for column in header))
    return "\n".join(lines) + "\n"


def user_row(username: str, **attributes: str) -> dict[str, str]:
    row = {"cognito:username": username, "cognito:mfa_enabled": "false", "email_verified": "true"}
    row.setdefault("email", f"{username}@example.com")
    row.update(attributes)
    return row


def create_job(idp: Any, pool_id: str, name: str = "import-job") -> dict[str, Any]:
    return dict(
        idp.create_user_import_job(UserPoolId=pool_id, JobName=name, CloudWatchLogsRoleArn=ROLE_ARN)["UserImportJob"]
    )


def put(url: str, body: bytes, headers: Mapping[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    """PUT the file as curl -T does, with the header the guide's example sends."""
    request = urllib.request.Request(
        url, data=body, method="PUT", headers={"x-amz-server-side-encryption": "aws:kms", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, dict(refused.headers), refused.read().decode()


def put_chunked(url: str, pieces: Iterator[bytes]) -> tuple[int, str]:
    """PUT without a Content-Length (chunked transfer encoding): the server learns the size as it reads."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request("PUT", f"{parts.path}?{parts.query}", body=pieces, encode_chunked=True)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def upload(job: Mapping[str, Any], text: str) -> None:
    status, headers, body = put(job["PreSignedUrl"], text.encode())
    assert status == 200, body
    assert re.fullmatch(r'"[0-9a-f]{32}"', headers["ETag"])


def wait_done(idp: Any, pool_id: str, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = dict(idp.describe_user_import_job(UserPoolId=pool_id, JobId=job_id)["UserImportJob"])
        if job["Status"] in TERMINAL:
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.1)


def run_import(idp: Any, pool_id: str, text: str) -> dict[str, Any]:
    job = create_job(idp, pool_id)
    upload(job, text)
    started = idp.start_user_import_job(UserPoolId=pool_id, JobId=job["JobId"])["UserImportJob"]
    assert started["Status"] in ("Pending", "InProgress")
    return wait_done(idp, pool_id, job["JobId"])


def attributes_of(user: Mapping[str, Any]) -> dict[str, str]:
    return {a["Name"]: a["Value"] for a in user["UserAttributes"]}


# --- GetCSVHeader and CreateUserImportJob ------------------------------------------------------------------------


def test_csv_header_is_the_pools_attributes_then_mfa_flag_and_username(idp: Any, pool_id: str) -> None:
    answer = idp.get_csv_header(UserPoolId=pool_id)
    assert answer["UserPoolId"] == pool_id
    # Cognito's sample response, with the pool's custom attribute after the standard ones.
    assert answer["CSVHeader"] == [*DEFAULT_HEADER, "custom:tier", "cognito:mfa_enabled", "cognito:username"]


def test_csv_header_of_a_default_pool_is_cognitos_sample(idp: Any) -> None:
    pool = idp.create_user_pool(PoolName="plain")["UserPool"]["Id"]
    assert idp.get_csv_header(UserPoolId=pool)["CSVHeader"] == [
        *DEFAULT_HEADER,
        "cognito:mfa_enabled",
        "cognito:username",
    ]


def test_create_job_is_created_with_an_upload_url_on_gatehouse(
    idp: Any, gatehouse: GatehouseServer, pool_id: str
) -> None:
    job = create_job(idp, pool_id, name="My Import.job-1")
    assert job["Status"] == "Created"
    assert job["JobName"] == "My Import.job-1"
    assert job["UserPoolId"] == pool_id
    assert job["CloudWatchLogsRoleArn"] == ROLE_ARN
    assert re.fullmatch(r"import-[0-9a-zA-Z]{10}", job["JobId"])
    assert (job["ImportedUsers"], job["SkippedUsers"], job["FailedUsers"]) == (0, 0, 0)
    assert "StartDate" not in job and "CompletionDate" not in job
    assert job["PreSignedUrl"].startswith(f"{gatehouse.url}/gatehouse/user-import/{pool_id}/{job['JobId']}?")
    described = idp.describe_user_import_job(UserPoolId=pool_id, JobId=job["JobId"])["UserImportJob"]
    assert described == job


def test_unknown_pool_or_job_is_resource_not_found(idp: Any, pool_id: str) -> None:
    with pytest.raises(ClientError) as exc:
        idp.describe_user_import_job(UserPoolId=pool_id, JobId="import-doesnotexist")
    assert error_of(exc)[0] == "ResourceNotFoundException"
    for call in (idp.start_user_import_job, idp.stop_user_import_job):
        with pytest.raises(ClientError) as exc:
            call(UserPoolId=pool_id, JobId="import-doesnotexist")
        assert error_of(exc)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        idp.get_csv_header(UserPoolId="us-east-1_doesnotexist")
    assert error_of(exc)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        create_job(idp, "us-east-1_doesnotexist")
    assert error_of(exc)[0] == "ResourceNotFoundException"
    # A job of another pool is not this pool's.
    other = idp.create_user_pool(PoolName="other-imports", AutoVerifiedAttributes=["email"])["UserPool"]["Id"]
    job = create_job(idp, other)
    with pytest.raises(ClientError) as exc:
        idp.describe_user_import_job(UserPoolId=pool_id, JobId=job["JobId"])
    assert error_of(exc)[0] == "ResourceNotFoundException"


def test_malformed_requests_are_invalid_parameter(raw_idp: Any, pool_id: str) -> None:
    bad_calls: list[tuple[str, dict[str, Any]]] = [
        ("create_user_import_job", {"UserPoolId": pool_id, "JobName": "j"}),
        ("create_user_import_job", {"UserPoolId": pool_id, "JobName": "j", "CloudWatchLogsRoleArn": "not-an-arn"}),
        ("create_user_import_job", {"UserPoolId": pool_id, "JobName": "j/k", "CloudWatchLogsRoleArn": ROLE_ARN}),
        (
            "create_user_import_job",
            {
                "UserPoolId": pool_id,
                "JobName": "j",
                "CloudWatchLogsRoleArn": ROLE_ARN,
                "PasswordHashingAlgorithm": "MD5",
            },
        ),
        # Password hashes are not imported: refused rather than silently dropped.
        (
            "create_user_import_job",
            {
                "UserPoolId": pool_id,
                "JobName": "j",
                "CloudWatchLogsRoleArn": ROLE_ARN,
                "PasswordHashingAlgorithm": "BCRYPT",
            },
        ),
        ("describe_user_import_job", {"UserPoolId": pool_id, "JobId": "job-1"}),
        ("start_user_import_job", {"UserPoolId": pool_id}),
        ("list_user_import_jobs", {"UserPoolId": pool_id}),
        ("list_user_import_jobs", {"UserPoolId": pool_id, "MaxResults": 61}),
        ("list_user_import_jobs", {"UserPoolId": pool_id, "MaxResults": 0}),
        ("list_user_import_jobs", {"UserPoolId": pool_id, "MaxResults": 5, "PaginationToken": "garbage"}),
    ]
    for operation, params in bad_calls:
        with pytest.raises(ClientError) as exc:
            getattr(raw_idp, operation)(**params)
        assert error_of(exc)[0] == "InvalidParameterException", (operation, params)


def test_list_jobs_pages_with_pagination_token(idp: Any, raw_idp: Any) -> None:
    pool = idp.create_user_pool(PoolName="listing-imports", AutoVerifiedAttributes=["email"])["UserPool"]["Id"]
    made = [create_job(idp, pool, name=f"job{i}")["JobId"] for i in range(3)]
    first = idp.list_user_import_jobs(UserPoolId=pool, MaxResults=2)
    assert [j["JobId"] for j in first["UserImportJobs"]] == made[:2]
    assert all(j["Status"] == "Created" and j["PreSignedUrl"] for j in first["UserImportJobs"])
    second = idp.list_user_import_jobs(UserPoolId=pool, MaxResults=2, PaginationToken=first["PaginationToken"])
    assert [j["JobId"] for j in second["UserImportJobs"]] == made[2:]
    assert "PaginationToken" not in second
    # A token is good only for the list that handed it out.
    other = idp.create_user_pool(PoolName="listing-imports-2")["UserPool"]["Id"]
    with pytest.raises(ClientError) as exc:
        idp.list_user_import_jobs(UserPoolId=other, MaxResults=2, PaginationToken=first["PaginationToken"])
    assert error_of(exc) == ("InvalidParameterException", "Invalid pagination token.")
    assert idp.list_user_import_jobs(UserPoolId=other, MaxResults=60)["UserImportJobs"] == []


# --- importing -------------------------------------------------------------------------------------------------


def test_import_creates_reset_required_users_and_counts_bad_rows(
    idp: Any, gatehouse: GatehouseServer, pool_id: str
) -> None:
    header = header_of(idp, pool_id)
    rows = [
        user_row("alice", given_name="Alice", **{"custom:tier": "gold"}),
        user_row("bob", phone_number="+15555550100", phone_number_verified="false"),
        user_row("carol", email="carol@example.com"),
        user_row("dave", email="not-an-email"),  # the schema's email format: line 5 fails
        user_row("", email="nobody@example.com"),  # no cognito:username: line 6 fails
        user_row("erin", email_verified="false"),  # no auto-verified attribute true: line 7 fails
        user_row("frank", **{"cognito:mfa_enabled": "maybe"}),  # line 8 fails
    ]
    job = run_import(idp, pool_id, csv_text(header, rows))
    assert job["Status"] == "Succeeded", job
    assert (job["ImportedUsers"], job["SkippedUsers"], job["FailedUsers"]) == (3, 0, 4)
    assert job["CompletionMessage"]
    assert job["StartDate"] <= job["CompletionDate"]

    alice = idp.admin_get_user(UserPoolId=pool_id, Username="alice")
    assert alice["UserStatus"] == "RESET_REQUIRED"
    assert alice["Enabled"] is True
    attributes = attributes_of(alice)
    assert attributes["email"] == "alice@example.com"
    assert attributes["email_verified"] == "true"
    assert attributes["given_name"] == "Alice"
    assert attributes["custom:tier"] == "gold"
    assert re.fullmatch(r"[0-9a-f-]{36}", attributes["sub"])
    assert attributes_of(idp.admin_get_user(UserPoolId=pool_id, Username="bob"))["phone_number"] == "+15555550100"
    for missing in ("dave", "erin", "frank"):
        with pytest.raises(ClientError) as exc:
            idp.admin_get_user(UserPoolId=pool_id, Username=missing)
        assert error_of(exc)[0] == "UserNotFoundException"

    # One log event per failed row, with its line and reason, and none of its values.
    log = gatehouse.log_text()
    events = [line for line in log.splitlines() if '"user_import.row"' in line and job["JobId"] in line]
    assert len(events) == 4
    assert {re.search(r'"line":(\d+)', e).group(1) for e in events} == {"5", "6", "7", "8"}  # type: ignore[union-attr]
    assert "not-an-email" not in log and "nobody@example.com" not in log
    assert "The User Record does not set any of the auto verified attributes to true" in log


def test_imported_user_signs_in_after_a_password_reset(
    idp: Any, public_idp: Any, mail: MailServer, pool_id: str, client_id: str
) -> None:
    address = "reset-me@example.com"
    job = run_import(idp, pool_id, csv_text(header_of(idp, pool_id), [user_row("resetme", email=address)]))
    assert job["ImportedUsers"] == 1
    # "The first time each imported user signs in and enters any password, they are required to enter a new one."
    with pytest.raises(ClientError) as exc:
        public_idp.initiate_auth(
            ClientId=client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": "resetme", "PASSWORD": "Any-password-at-all-1"},
        )
    assert error_of(exc) == ("PasswordResetRequiredException", "Password reset required for the user")
    delivery = public_idp.forgot_password(ClientId=client_id, Username="resetme")["CodeDeliveryDetails"]
    assert delivery["DeliveryMedium"] == "EMAIL"
    code = code_in(mail.wait_for(address))
    public_idp.confirm_forgot_password(
        ClientId=client_id, Username="resetme", ConfirmationCode=code, Password=NEW_PASSWORD
    )
    tokens = public_idp.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "resetme", "PASSWORD": NEW_PASSWORD},
    )["AuthenticationResult"]
    assert tokens["AccessToken"]
    assert idp.admin_get_user(UserPoolId=pool_id, Username="resetme")["UserStatus"] == "CONFIRMED"


def test_imported_user_srp_sign_in_asks_for_a_password_reset(
    idp: Any, public_idp: Any, pool_id: str, client_id: str
) -> None:
    """SRP (the Amplify and amazon-cognito-identity-js default) too: an imported user has no verifier, and is
    told to reset their password rather than that the password was wrong."""
    idp.update_user_pool_client(
        UserPoolId=pool_id,
        ClientId=client_id,
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        PreventUserExistenceErrors="LEGACY",
    )
    run_import(idp, pool_id, csv_text(header_of(idp, pool_id), [user_row("srpuser")]))
    srp = AWSSRP(username="srpuser", password="Any-password-1", pool_id=pool_id, client_id=client_id, client=public_idp)
    with pytest.raises(ClientError) as exc:
        public_idp.initiate_auth(ClientId=client_id, AuthFlow="USER_SRP_AUTH", AuthParameters=srp.get_auth_params())
    assert error_of(exc) == ("PasswordResetRequiredException", "Password reset required for the user")


def test_imported_user_under_prevent_user_existence_errors_is_not_authorized(
    idp: Any, public_idp: Any, pool_id: str
) -> None:
    client = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="quiet",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        PreventUserExistenceErrors="ENABLED",
    )["UserPoolClient"]["ClientId"]
    run_import(idp, pool_id, csv_text(header_of(idp, pool_id), [user_row("quietone")]))
    with pytest.raises(ClientError) as exc:
        public_idp.initiate_auth(
            ClientId=client,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": "quietone", "PASSWORD": "Any-password-at-all-1"},
        )
    assert error_of(exc) == ("NotAuthorizedException", "Incorrect username or password.")


def test_existing_users_are_skipped(idp: Any, pool_id: str) -> None:
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username="already",
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "given_name", "Value": "Original"}],
    )
    header = header_of(idp, pool_id)
    rows = [user_row("already", given_name="Replaced"), user_row("twice"), user_row("twice", given_name="Second")]
    job = run_import(idp, pool_id, csv_text(header, rows))
    assert (job["Status"], job["ImportedUsers"], job["SkippedUsers"], job["FailedUsers"]) == ("Succeeded", 1, 2, 0)
    existing = idp.admin_get_user(UserPoolId=pool_id, Username="already")
    assert existing["UserStatus"] == "FORCE_CHANGE_PASSWORD"
    assert attributes_of(existing)["given_name"] == "Original"
    assert "given_name" not in attributes_of(idp.admin_get_user(UserPoolId=pool_id, Username="twice"))


def test_usernames_the_api_would_refuse_fail_their_rows(idp: Any, gatehouse: GatehouseServer, pool_id: str) -> None:
    """A username is held to UsernameType as AdminCreateUser's is (1 to 128 letters, marks, symbols, digits or
    punctuation): a user named with a space, a NUL, a line break, a zero-width joiner or 129 characters could
    never be addressed by an API call again (AdminGetUser, AdminDeleteUser refuse the name)."""
    header = header_of(idp, pool_id)
    bad = ["two words", "nul\x00byte", "joiner\u200d", "y" * 129, "QUOTEDBREAK"]
    rows = [user_row(name, email=f"bad{index}@example.com") for index, name in enumerate(bad)]
    rows.append(user_row("z" * 128))
    text = csv_text(header, rows).replace("QUOTEDBREAK", '"line\nbreak"')
    job = run_import(idp, pool_id, text)
    assert (job["Status"], job["ImportedUsers"], job["SkippedUsers"], job["FailedUsers"]) == ("Succeeded", 1, 0, 5)
    names = {u["Username"] for u in idp.list_users(UserPoolId=pool_id, Limit=60)["Users"]}
    assert "z" * 128 in names
    assert not names & {*bad[:4], "line\nbreak"}
    events = [
        line for line in gatehouse.log_text().splitlines() if '"user_import.row"' in line and job["JobId"] in line
    ]
    assert len(events) == 5
    assert all("cognito:username is not a valid username" in e for e in events)
    assert not any("two words" in e or "line\\nbreak" in e for e in events)


def test_a_row_the_csv_reader_refuses_fails_alone(idp: Any, gatehouse: GatehouseServer, pool_id: str) -> None:
    """A value past the CSV reader's limit (128 KiB), or a carriage return inside an unquoted value, fails its
    own row; the rows around it are imported, and the log names the row's line."""
    header = header_of(idp, pool_id)
    rows = [
        user_row("before-huge", email="before-huge@example.com"),
        user_row("huge", email="huge@example.com", given_name="g" * (200 * 1024)),
        user_row("stray-cr", email="stray@example.com", given_name="CARRIAGE"),
        user_row("after-huge", email="after-huge@example.com"),
    ]
    text = csv_text(header, rows).replace("CARRIAGE", "a\rb")
    job = run_import(idp, pool_id, text)
    assert (job["Status"], job["ImportedUsers"], job["SkippedUsers"], job["FailedUsers"]) == ("Succeeded", 2, 0, 2)
    names = {u["Username"] for u in idp.list_users(UserPoolId=pool_id, Limit=60)["Users"]}
    assert {"before-huge", "after-huge"} <= names and not names & {"huge", "stray-cr"}
    events = [
        line for line in gatehouse.log_text().splitlines() if '"user_import.row"' in line and job["JobId"] in line
    ]
    assert len(events) == 2 and all("cannot be read as CSV" in event for event in events)
    assert '"line":3,' in events[0] and '"line":4,' in events[1], events


def test_mfa_enabled_turns_on_sms_mfa(idp: Any, pool_id: str) -> None:
    header = header_of(idp, pool_id)
    rows = [
        user_row(
            "texter", phone_number="+15555550111", phone_number_verified="true", **{"cognito:mfa_enabled": "TRUE"}
        ),
        user_row("nophone", **{"cognito:mfa_enabled": "true"}),  # SMS MFA without a number: fails
    ]
    job = run_import(idp, pool_id, csv_text(header, rows))
    assert (job["ImportedUsers"], job["FailedUsers"]) == (1, 1)
    texter = idp.admin_get_user(UserPoolId=pool_id, Username="texter")
    assert texter["UserMFASettingList"] == ["SMS_MFA"]
    assert texter["MFAOptions"] == [{"DeliveryMedium": "SMS", "AttributeName": "phone_number"}]


def test_columns_in_any_order_quoted_and_escaped_commas(idp: Any, pool_id: str) -> None:
    header = list(reversed(header_of(idp, pool_id)))
    text = csv_text(header, [user_row("orderly", name="PLACEHOLDER")])
    # A value with a comma: quoted, or the comma escaped with a backslash (the guide's way); CRLF line ends.
    text = text.replace("PLACEHOLDER", '"Smith, Jane"').replace("\n", "\r\n")
    text += csv_text(header, [user_row("escaped", name="Doe\\, John")]).split("\n", 1)[1]
    job = run_import(idp, pool_id, "\ufeff" + text)  # a byte order mark is no part of the first column's name
    assert (job["Status"], job["ImportedUsers"], job["FailedUsers"]) == ("Succeeded", 2, 0)
    assert attributes_of(idp.admin_get_user(UserPoolId=pool_id, Username="orderly"))["name"] == "Smith, Jane"
    assert attributes_of(idp.admin_get_user(UserPoolId=pool_id, Username="escaped"))["name"] == "Doe, John"


def test_row_with_wrong_number_of_values_fails_alone(idp: Any, pool_id: str) -> None:
    header = header_of(idp, pool_id)
    text = (
        csv_text(header, [user_row("widerow")]).rstrip("\n")
        + ",extra\n"
        + csv_text(header, [user_row("fine")]).split("\n", 1)[1]
    )
    job = run_import(idp, pool_id, text)
    assert (job["Status"], job["ImportedUsers"], job["FailedUsers"]) == ("Succeeded", 1, 1)


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda h: [*h, "favourite_colour"], "column 23 is not in the user pool's header"),
        (lambda h: [c for c in h if c != "cognito:username"], "no cognito:username column"),
        (lambda h: [*h, "email"], "a column appears more than once"),
    ],
)
def test_invalid_header_fails_the_job(idp: Any, pool_id: str, mangle: Any, reason: str) -> None:
    header = mangle(header_of(idp, pool_id))
    job = run_import(idp, pool_id, csv_text(header, [user_row("never")]))
    assert job["Status"] == "Failed"
    assert reason in job["CompletionMessage"]
    assert job["ImportedUsers"] == 0
    with pytest.raises(ClientError):
        idp.admin_get_user(UserPoolId=pool_id, Username="never")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "The CSV file is empty: it has no header row."),
        (b"\n\n", "The CSV file is empty: it has no header row."),
        (b"name,\xff\xfe\n", "The CSV file is not UTF-8 text."),
    ],
)
def test_unreadable_file_fails_the_job(idp: Any, pool_id: str, body: bytes, message: str) -> None:
    job = create_job(idp, pool_id)
    status, _, text = put(job["PreSignedUrl"], body)
    assert status == 200, text
    idp.start_user_import_job(UserPoolId=pool_id, JobId=job["JobId"])
    done = wait_done(idp, pool_id, job["JobId"])
    assert (done["Status"], done["CompletionMessage"]) == ("Failed", message)


def test_job_without_a_file_fails_with_a_message(idp: Any, pool_id: str) -> None:
    job = create_job(idp, pool_id)
    idp.start_user_import_job(UserPoolId=pool_id, JobId=job["JobId"])
    done = wait_done(idp, pool_id, job["JobId"])
    assert done["Status"] == "Failed"
    assert done["CompletionMessage"] == "No CSV file was uploaded to the job's PreSignedUrl before the job started."
    # A job that ran never runs again, and takes no file.
    with pytest.raises(ClientError) as exc:
        idp.start_user_import_job(UserPoolId=pool_id, JobId=job["JobId"])
    assert error_of(exc)[0] == "PreconditionNotMetException"
    status, _, body = put(job["PreSignedUrl"], b"late")
    assert status == 403 and "<Code>AccessDenied</Code>" in body


def test_second_upload_replaces_the_first(idp: Any, pool_id: str) -> None:
    header = header_of(idp, pool_id)
    job = create_job(idp, pool_id)
    upload(job, csv_text(header, [user_row("firstfile")]))
    upload(job, csv_text(header, [user_row("secondfile")]))
    idp.start_user_import_job(UserPoolId=pool_id, JobId=job["JobId"])
    done = wait_done(idp, pool_id, job["JobId"])
    assert done["ImportedUsers"] == 1
    idp.admin_get_user(UserPoolId=pool_id, Username="secondfile")
    with pytest.raises(ClientError):
        idp.admin_get_user(UserPoolId=pool_id, Username="firstfile")


def test_a_file_of_many_parts_imports_every_row(idp: Any, pool_id: str) -> None:
    """A file larger than one stored part (a megabyte) read back across part boundaries: rows cut in two by a
    boundary are read whole, a quoted value spanning lines included."""
    header = header_of(idp, pool_id)
    filler = "x" * 2000
    rows = [user_row(f"bulk{i:04d}", profile=filler) for i in range(450)]
    text = csv_text(header, rows)
    text += csv_text(header, [user_row("multiline", address="PLACEHOLDER")]).split("\n", 1)[1]
    text = text.replace("PLACEHOLDER", '"1 Main St\n Springfield"')
    assert MAX_BYTES // 2 < len(text.encode()) <= MAX_BYTES
    job = run_import(idp, pool_id, text)
    assert (job["Status"], job["ImportedUsers"], job["FailedUsers"]) == ("Succeeded", 451, 0)
    address = attributes_of(idp.admin_get_user(UserPoolId=pool_id, Username="multiline"))["address"]
    assert address == "1 Main St\n Springfield"


def test_a_quoted_value_across_a_part_boundary_after_an_escaped_backslash(tmp_path: Path) -> None:
    """The file is parsed a stored part (1 MiB) at a time, and a record is held back while it is open: in
    quotes, or after a backslash that escapes its line break. A quoted value that ends in an escaped backslash
    ("C:\\\\") closes its quotes and a quote inside an unquoted value (O"Brien) opens none, so a later quoted
    value with a line break, cut in two by a part boundary, is still read whole."""
    server = GatehouseServer(tmp_path / "data")
    server.start()
    try:
        idp = server.client()
        pool = idp.create_user_pool(PoolName="boundary", AutoVerifiedAttributes=["email"])["UserPool"]["Id"]
        header = header_of(idp, pool)
        filler = "p" * 2000

        def file_of(fillers: int, pad: str) -> str:
            rows = [user_row("backslash", name="BACKSLASH"), user_row("padded", nickname=pad, given_name='O"Brien')]
            rows.append(user_row("irish", family_name='O"Neil'))
            rows += [user_row(f"fill{i:03d}", profile=filler, website=filler) for i in range(fillers)]
            rows += [user_row("joined", name="Line\\\nbreak"), user_row("multiline", address="ADDRESS")]
            text = csv_text(header, rows)
            return text.replace("BACKSLASH", '"C:\\\\"').replace("ADDRESS", '"1 Main St\n Springfield"')

        # The first part ends inside " Springfield": the boundary falls in the quoted value's second line.
        short = file_of(250, "")
        gap = 1024 * 1024 - 5 - (short.index("1 Main St\n") + len("1 Main St\n"))
        row_bytes = len(file_of(251, "")) - len(short)
        fillers = 250 + gap // row_bytes
        text = file_of(fillers, "n" * (gap % row_bytes))
        assert text.encode()[: 1024 * 1024].endswith(b"\n Spri")
        job = create_job(idp, pool)
        upload(job, text)
        idp.start_user_import_job(UserPoolId=pool, JobId=job["JobId"])
        done = wait_done(idp, pool, job["JobId"])
        assert (done["Status"], done["ImportedUsers"], done["FailedUsers"]) == ("Succeeded", fillers + 5, 0), done
        assert attributes_of(idp.admin_get_user(UserPoolId=pool, Username="backslash"))["name"] == "C:\\"
        assert attributes_of(idp.admin_get_user(UserPoolId=pool, Username="joined"))["name"] == "Line\nbreak"
        assert attributes_of(idp.admin_get_user(UserPoolId=pool, Username="padded"))["given_name"] == 'O"Brien'
        address = attributes_of(idp.admin_get_user(UserPoolId=pool, Username="multiline"))["address"]
        assert address == "1 Main St\n Springfield"
    finally:
        server.stop()


# --- StartUserImportJob and StopUserImportJob ------------------------------------------------------------------


def big_import(idp: Any, pool: str, count: int, prefix: str) -> dict[str, Any]:
    header = header_of(idp, pool)
    job = create_job(idp, pool)
    upload(job, csv_text(header, [user_row(f"{prefix}{i:05d}") for i in range(count)]))
    return job


def test_stop_a_running_job(idp: Any) -> None:
    pool = idp.create_user_pool(PoolName="stopping", AutoVerifiedAttributes=["email"])["UserPool"]["Id"]
    job = big_import(idp, pool, 6000, "stop")
    created = create_job(idp, pool)
    with pytest.raises(ClientError) as exc:
        idp.stop_user_import_job(UserPoolId=pool, JobId=created["JobId"])  # never started: nothing to stop
    assert error_of(exc)[0] == "PreconditionNotMetException"
    idp.start_user_import_job(UserPoolId=pool, JobId=job["JobId"])
    # One job runs at a time in a pool.
    second = big_import(idp, pool, 1, "second")
    with pytest.raises(ClientError) as exc:
        idp.start_user_import_job(UserPoolId=pool, JobId=second["JobId"])
    assert error_of(exc) == ("PreconditionNotMetException", "Another import job of this user pool is running.")
    stopping = idp.stop_user_import_job(UserPoolId=pool, JobId=job["JobId"])["UserImportJob"]
    assert stopping["Status"] == "Stopping"
    done = wait_done(idp, pool, job["JobId"])
    assert done["Status"] == "Stopped"
    assert done["ImportedUsers"] < 6000
    assert "CompletionDate" in done
    imported = done["ImportedUsers"]
    assert len(idp.list_users(UserPoolId=pool, Limit=60)["Users"]) == min(imported, 60)
    with pytest.raises(ClientError) as exc:
        idp.stop_user_import_job(UserPoolId=pool, JobId=job["JobId"])
    assert error_of(exc)[0] == "PreconditionNotMetException"
    # The pool's next job may run now.
    idp.start_user_import_job(UserPoolId=pool, JobId=second["JobId"])
    assert wait_done(idp, pool, second["JobId"])["ImportedUsers"] == 1


def test_pool_without_auto_verified_attributes_cannot_start(idp: Any) -> None:
    pool = idp.create_user_pool(PoolName="unverified")["UserPool"]["Id"]
    job = create_job(idp, pool)
    with pytest.raises(ClientError) as exc:
        idp.start_user_import_job(UserPoolId=pool, JobId=job["JobId"])
    assert error_of(exc)[0] == "PreconditionNotMetException"
    assert idp.describe_user_import_job(UserPoolId=pool, JobId=job["JobId"])["UserImportJob"]["Status"] == "Created"


# --- the upload URL ------------------------------------------------------------------------------------------------


def test_tampered_upload_urls_are_refused(idp: Any, pool_id: str) -> None:
    job = create_job(idp, pool_id)
    other = create_job(idp, pool_id)
    url = job["PreSignedUrl"]
    signature = dict(parse_qsl(urlsplit(url).query))["X-Gatehouse-Signature"]
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    expires = dict(parse_qsl(urlsplit(url).query))["X-Gatehouse-Expires"]
    refused = [
        with_query(url, **{"X-Gatehouse-Signature": flipped}),
        with_query(url, **{"X-Gatehouse-Expires": str(int(expires) + 3600)}),
        url.replace(job["JobId"], other["JobId"]),  # another job's path, this job's signature
        url.split("?")[0],
        with_query(url, **{"X-Gatehouse-Expires": "soon"}),
        with_query(url, **{"X-Gatehouse-Signature": "ünicode"}),
    ]
    for bad in refused:
        status, headers, body = put(bad, b"cognito:username\n")
        assert status == 403, (bad, body)
        assert headers["Content-Type"].startswith("application/xml")
        assert re.search(r"<Code>(SignatureDoesNotMatch|AccessDenied)</Code>", body), body
    # Nothing was kept: the job has no file.
    idp.start_user_import_job(UserPoolId=pool_id, JobId=job["JobId"])
    assert wait_done(idp, pool_id, job["JobId"])["CompletionMessage"].startswith("No CSV file")


def test_expired_upload_url_is_refused(tmp_path: Path) -> None:
    server = GatehouseServer(tmp_path / "data", extra_env={"GATEHOUSE_USER_IMPORT_URL_SECONDS": "1"})
    server.start()
    try:
        idp = server.client()
        pool = idp.create_user_pool(PoolName="expiring", AutoVerifiedAttributes=["email"])["UserPool"]["Id"]
        job = create_job(idp, pool)
        time.sleep(2.1)
        status, _, body = put(job["PreSignedUrl"], b"cognito:username\n")
        assert status == 403
        assert "<Code>AccessDenied</Code><Message>Request has expired</Message>" in body
    finally:
        server.stop()


def test_oversized_uploads_are_refused_and_keep_the_earlier_file(idp: Any, pool_id: str) -> None:
    header = header_of(idp, pool_id)
    job = create_job(idp, pool_id)
    upload(job, csv_text(header, [user_row("keptfile")]))
    url = job["PreSignedUrl"]
    # Announced too large: refused before the body is read.
    status, _, body = put(url, b"x" * (MAX_BYTES + 1))
    assert (status, "<Code>EntityTooLarge</Code>" in body) == (400, True)
    # Streamed without a length: refused once past the limit.
    status, body = put_chunked(url, iter([b"y" * 65536] * (MAX_BYTES // 65536 + 2)))
    assert (status, "<Code>EntityTooLarge</Code>" in body) == (400, True)

    # A client that waits for 100 Continue is refused before it sends anything.
    async def expect_continue() -> tuple[int, str]:
        async with (
            aiohttp.ClientSession() as session,
            session.put(url, data=b"z" * (MAX_BYTES + 10), expect100=True) as response,
        ):
            return response.status, await response.text()

    status, body = asyncio.run(expect_continue())
    assert (status, "<Code>EntityTooLarge</Code>" in body) == (400, True)
    idp.start_user_import_job(UserPoolId=pool_id, JobId=job["JobId"])
    assert wait_done(idp, pool_id, job["JobId"])["ImportedUsers"] == 1
    idp.admin_get_user(UserPoolId=pool_id, Username="keptfile")


def test_upload_with_expect_continue_is_kept(idp: Any, pool_id: str) -> None:
    job = create_job(idp, pool_id)

    async def send() -> int:
        async with aiohttp.ClientSession() as session:
            text = csv_text(header_of(idp, pool_id), [user_row("patient")])
            async with session.put(job["PreSignedUrl"], data=text.encode(), expect100=True) as response:
                return response.status

    assert asyncio.run(send()) == 200
    idp.start_user_import_job(UserPoolId=pool_id, JobId=job["JobId"])
    assert wait_done(idp, pool_id, job["JobId"])["ImportedUsers"] == 1


def test_other_methods_on_the_upload_url_are_not_allowed(idp: Any, pool_id: str) -> None:
    job = create_job(idp, pool_id)
    request = urllib.request.Request(job["PreSignedUrl"], method="GET")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(request, timeout=10)
    assert exc.value.code == 405


def test_upload_cut_short_keeps_nothing(idp: Any, gatehouse: GatehouseServer, pool_id: str) -> None:
    import socket

    job = create_job(idp, pool_id)
    parts = urlsplit(job["PreSignedUrl"])
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        head = (
            f"PUT {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Content-Length: {MAX_BYTES - 1000}\r\n\r\n"
        )
        sock.sendall(head.encode() + b"cognito:username\n" + b"a" * (MAX_BYTES // 2))
    # The connection is gone before the body's end: the job has no file.
    time.sleep(0.5)
    idp.start_user_import_job(UserPoolId=pool_id, JobId=job["JobId"])
    assert wait_done(idp, pool_id, job["JobId"])["CompletionMessage"].startswith("No CSV file")
    # A client that went away is no server error.
    log = gatehouse.log_text()
    assert '"user_import.upload_incomplete"' in log
    assert '"http.unhandled"' not in log


def test_uploads_at_once_are_bounded(idp: Any, pool_id: str) -> None:
    """Each upload in progress keeps up to the size limit in the store: two at once per job and sixteen per
    process, and one more is S3's 503 SlowDown, so that a leaked URL cannot fill the disk. Once they end,
    uploads are taken again."""
    import socket

    def hold(job: Mapping[str, Any]) -> socket.socket:
        parts = urlsplit(job["PreSignedUrl"])
        sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
        head = f"PUT {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Length: 100000\r\n\r\n"
        sock.sendall(head.encode() + b"cognito:username\n")
        return sock

    header = header_of(idp, pool_id)
    text = csv_text(header, [user_row("throttled")]).encode()
    jobs = [create_job(idp, pool_id) for _ in range(8)]
    held = [hold(jobs[0]), hold(jobs[0])]
    try:
        time.sleep(0.3)
        status, _, body = put(jobs[0]["PreSignedUrl"], text)
        assert (status, re.search(r"<Code>(\w+)</Code>", body).group(1)) == (503, "SlowDown")  # type: ignore[union-attr]
        held += [hold(job) for job in jobs[1:] for _ in range(2)]
        time.sleep(0.3)
        extra = create_job(idp, pool_id)
        assert put(extra["PreSignedUrl"], text)[0] == 503
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.5)
    upload(jobs[0], text.decode())
    upload(extra, text.decode())


def test_a_stalled_upload_is_cut_off(tmp_path: Path) -> None:
    """An upload that sends nothing for GATEHOUSE_USER_IMPORT_IDLE_SECONDS is answered S3's 400 RequestTimeout
    and keeps nothing: a stalled client does not hold one of the uploads a process takes at once for ever."""
    import socket

    server = GatehouseServer(tmp_path / "data", extra_env={"GATEHOUSE_USER_IMPORT_IDLE_SECONDS": "1"})
    server.start()
    try:
        idp = server.client()
        pool = idp.create_user_pool(PoolName="stalled", AutoVerifiedAttributes=["email"])["UserPool"]["Id"]
        job = create_job(idp, pool)
        parts = urlsplit(job["PreSignedUrl"])
        with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
            head = f"PUT {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Length: 1000\r\n\r\n"
            sock.sendall(head.encode() + b"cognito:username\n")
            started = time.monotonic()
            answer = sock.recv(65536)
            assert time.monotonic() - started < 8
        assert answer.startswith(b"HTTP/1.1 400"), answer
        assert b"<Code>RequestTimeout</Code>" in answer
        idp.start_user_import_job(UserPoolId=pool, JobId=job["JobId"])
        assert wait_done(idp, pool, job["JobId"])["CompletionMessage"].startswith("No CSV file")
    finally:
        server.stop()


def test_an_upload_finishing_during_another_leaves_the_other_whole(tmp_path: Path) -> None:
    """Two uploads to one URL at once (a client retrying one it thinks lost): each answered 200 is a whole file,
    and the job reads the one that finished last, as S3 keeps the last PUT. The first to finish must not take
    away the parts the other has kept so far."""
    server = GatehouseServer(tmp_path / "data")
    server.start()
    try:
        import socket

        idp = server.client()
        pool = idp.create_user_pool(PoolName="racing", AutoVerifiedAttributes=["email"])["UserPool"]["Id"]
        header = header_of(idp, pool)
        filler = "f" * 2000
        late = csv_text(
            header,
            [user_row(f"late{i:03d}", profile=filler, website=filler, picture=filler) for i in range(200)],
        ).encode()
        assert len(late) > 1024 * 1024  # more than one stored part
        job = create_job(idp, pool)
        parts = urlsplit(job["PreSignedUrl"])
        with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
            head = (
                f"PUT {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                f"Content-Length: {len(late)}\r\nConnection: close\r\n\r\n"
            )
            split = 1024 * 1024 + 4096
            sock.sendall(head.encode() + late[:split])  # its first part is kept...
            time.sleep(0.5)
            upload(job, csv_text(header, [user_row("early")]))  # ...when another upload finishes
            sock.sendall(late[split:])
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200"), answer
        idp.start_user_import_job(UserPoolId=pool, JobId=job["JobId"])
        done = wait_done(idp, pool, job["JobId"])
        assert (done["Status"], done["ImportedUsers"], done["FailedUsers"]) == ("Succeeded", 200, 0), done
    finally:
        server.stop()


def test_deleting_the_pool_ends_its_running_job(idp: Any, gatehouse: GatehouseServer) -> None:
    pool = idp.create_user_pool(PoolName="doomed", AutoVerifiedAttributes=["email"])["UserPool"]["Id"]
    job = big_import(idp, pool, 4000, "doomed")
    idp.start_user_import_job(UserPoolId=pool, JobId=job["JobId"])
    idp.delete_user_pool(UserPoolId=pool)
    with pytest.raises(ClientError) as exc:
        idp.describe_user_import_job(UserPoolId=pool, JobId=job["JobId"])
    assert error_of(exc)[0] == "ResourceNotFoundException"
    time.sleep(0.5)
    log = gatehouse.log_text()
    assert "user_import.run_failed" not in log
    assert '"level":"error"' not in log


def test_jobs_run_across_worker_processes(tmp_path: Path) -> None:
    """Nothing a job needs lives in one process's memory: with two workers, the upload, the start, the stop and
    the reads of a job may each reach either."""
    server = GatehouseServer(tmp_path / "data", workers=2)
    server.start()
    try:
        idp = server.client()
        pool = idp.create_user_pool(PoolName="workers", AutoVerifiedAttributes=["email"])["UserPool"]["Id"]
        header = header_of(idp, pool)
        for attempt in range(4):
            job = create_job(idp, pool)
            upload(job, csv_text(header, [user_row(f"w{attempt}-{i}") for i in range(20)]))
            idp.start_user_import_job(UserPoolId=pool, JobId=job["JobId"])
            done = wait_done(idp, pool, job["JobId"])
            assert (done["Status"], done["ImportedUsers"]) == ("Succeeded", 20)
        job = big_import(idp, pool, 6000, "many")
        idp.start_user_import_job(UserPoolId=pool, JobId=job["JobId"])
        idp.stop_user_import_job(UserPoolId=pool, JobId=job["JobId"])
        assert wait_done(idp, pool, job["JobId"])["Status"] == "Stopped"
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GATEHOUSE_USER_IMPORT_URL_SECONDS", "soon"),
        ("GATEHOUSE_USER_IMPORT_URL_SECONDS", "0"),
        ("GATEHOUSE_USER_IMPORT_URL_SECONDS", "604801"),
        ("GATEHOUSE_USER_IMPORT_MAX_BYTES", "100MB"),
        ("GATEHOUSE_USER_IMPORT_MAX_BYTES", "0"),
        ("GATEHOUSE_USER_IMPORT_IDLE_SECONDS", "0"),
        ("GATEHOUSE_USER_IMPORT_IDLE_SECONDS", "slow"),
    ],
)
def test_bad_import_settings_in_the_environment_are_refused(tmp_path: Path, name: str, value: str) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve", "--data-dir", str(tmp_path), "--port", "0"],
        capture_output=True, text=True, timeout=20, check=False, env={**environ, name: value},
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert name in output and "Traceback" not in output, output


# --- metrics ---------------------------------------------------------------------------------------------------


def _scrape(gatehouse: GatehouseServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"{gatehouse.url}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_rows_and_jobs_are_counted_in_the_metrics(idp: Any, gatehouse: GatehouseServer, pool_id: str) -> None:
    """gatehouse_user_import_rows_total by result and gatehouse_user_import_jobs_total by final status."""

    def rows(result: str) -> float:
        return after.get(("gatehouse_user_import_rows_total", (("result", result),)), 0.0) - before.get(
            ("gatehouse_user_import_rows_total", (("result", result),)), 0.0
        )

    def jobs(status: str) -> float:
        return after.get(("gatehouse_user_import_jobs_total", (("status", status),)), 0.0) - before.get(
            ("gatehouse_user_import_jobs_total", (("status", status),)), 0.0
        )

    before = _scrape(gatehouse)
    idp.admin_create_user(UserPoolId=pool_id, Username="metered-old", MessageAction="SUPPRESS")
    header = header_of(idp, pool_id)
    text = csv_text(
        header,
        [user_row("metered-1"), user_row("metered-2"), user_row("metered-old"), user_row("metered-3", email="x")],
    )
    job = run_import(idp, pool_id, text)
    assert (job["ImportedUsers"], job["SkippedUsers"], job["FailedUsers"]) == (2, 1, 1)
    no_file = create_job(idp, pool_id, "metered-no-file")
    idp.start_user_import_job(UserPoolId=pool_id, JobId=no_file["JobId"])
    assert wait_done(idp, pool_id, no_file["JobId"])["Status"] == "Failed"
    after = _scrape(gatehouse)
    assert (rows("imported"), rows("skipped"), rows("failed")) == (2, 1, 1)
    assert (jobs("Succeeded"), jobs("Failed")) == (1, 1)
    # The metrics say how many, never who: no user name or job id is a label.
    assert not [k for k in after if "metered" in repr(k) or job["JobId"] in repr(k)]
