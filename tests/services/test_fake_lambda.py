"""The Lambda fake (tests/fakes/lambda_service.py) against the client Gatehouse uses, boto3's ``lambda``: results,
function errors, modelled errors, signature checks and the FunctionName forms come back as they do from AWS."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.fakes.lambda_service import ACCOUNT_ID, FakeLambda, RawResponse

REGION = "us-east-1"
KEY_ID = "AKIDLAMBDATEST"
SECRET = "lambda-test-secret"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLambda]:
    with FakeLambda(access_key_id=KEY_ID, secret_access_key=SECRET, region=REGION) as server:
        yield server


@pytest.fixture(scope="module")
def client(fake: FakeLambda) -> Any:
    return make_client(fake, SECRET)


def make_client(fake: FakeLambda, secret: str) -> Any:
    # One attempt: a test of an error answer must see the first answer, not botocore's retries of it.
    return boto3.client(
        "lambda",
        endpoint_url=fake.url,
        region_name=REGION,
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def invoke(client: Any, function: str, event: Any) -> dict[str, Any]:
    response: dict[str, Any] = client.invoke(
        FunctionName=function, InvocationType="RequestResponse", Payload=json.dumps(event).encode()
    )
    return response


def test_a_handlers_result_comes_back_as_the_payload(fake: FakeLambda, client: Any) -> None:
    arn = fake.add("echo", lambda event, context: {"got": event, "name": context["function_name"]})
    assert arn == f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:echo"

    response = invoke(client, arn, {"triggerSource": "PreSignUp_SignUp"})

    assert response["StatusCode"] == 200
    assert response["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in response
    assert json.loads(response["Payload"].read()) == {"got": {"triggerSource": "PreSignUp_SignUp"}, "name": "echo"}
    assert fake.events("echo")[-1] == {"triggerSource": "PreSignUp_SignUp"}
    last = fake.invocations[-1]
    assert (last.invocation_type, last.signature_valid, last.delivered) == ("RequestResponse", True, True)


def test_none_is_null(fake: FakeLambda, client: Any) -> None:
    fake.add("nothing", lambda event, context: None)
    assert invoke(client, "nothing", {})["Payload"].read() == b"null"


def test_an_exception_is_an_unhandled_function_error(fake: FakeLambda, client: Any) -> None:
    def fails(event: Any, context: Any) -> None:
        raise ValueError("no sign-ups today")

    fake.add("fails", fails)

    response = invoke(client, "fails", {})

    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    assert json.loads(response["Payload"].read()) == {
        "errorMessage": "no sign-ups today",
        "errorType": "ValueError",
        "stackTrace": [],
    }


def test_an_unknown_function_is_resource_not_found(fake: FakeLambda, client: Any) -> None:
    with pytest.raises(client.exceptions.ResourceNotFoundException) as caught:
        invoke(client, "no-such-function", {})

    error = caught.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert (
        error["Error"]["Message"]
        == f"Function not found: arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:no-such-function"
    )


def test_a_wrong_secret_is_an_invalid_signature_and_nothing_runs(fake: FakeLambda) -> None:
    ran: list[Any] = []
    fake.add("guarded", lambda event, context: ran.append(event))
    fake.clear()

    with pytest.raises(ClientError) as caught:
        invoke(make_client(fake, "not-the-secret"), "guarded", {"x": 1})

    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert ran == []
    assert fake.events("guarded") == []
    [rejected] = fake.invocations
    assert (rejected.function_name, rejected.signature_valid, rejected.status) == ("guarded", False, 403)


def test_an_unknown_key_id_is_an_unrecognized_client(fake: FakeLambda) -> None:
    stranger = boto3.client(
        "lambda",
        endpoint_url=fake.url,
        region_name=REGION,
        aws_access_key_id="AKIDSOMEONEELSE",
        aws_secret_access_key=SECRET,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )
    with pytest.raises(ClientError) as caught:
        invoke(stranger, "echo", {})
    assert caught.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_name_full_arn_and_partial_arn_reach_the_same_handler(fake: FakeLambda, client: Any) -> None:
    arn = fake.add("named", lambda event, context: context["invoked_function_arn"])
    fake.clear()

    forms = ["named", arn, f"{ACCOUNT_ID}:function:named", "named:$LATEST", f"{arn}:live"]
    answers = [json.loads(invoke(client, form, {"form": form})["Payload"].read()) for form in forms]

    assert answers == [arn, arn, arn, f"{arn}:$LATEST", f"{arn}:live"]
    assert fake.events("named") == [{"form": form} for form in forms]
    assert [i.qualifier for i in fake.invocations] == [None, None, None, "$LATEST", "live"]


def test_an_arn_of_another_account_is_not_found(fake: FakeLambda, client: Any) -> None:
    fake.add("mine", lambda event, context: 1)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        invoke(client, "arn:aws:lambda:us-east-1:999999999999:function:mine", {})


def test_a_raw_response_comes_back_byte_for_byte(fake: FakeLambda, client: Any) -> None:
    raw = b'{"response": {"autoConfirmUser": tr\xff'
    fake.add("garbled", lambda event, context: RawResponse(raw))
    response = invoke(client, "garbled", {})
    assert "FunctionError" not in response
    assert response["Payload"].read() == raw


def test_a_payload_that_is_not_json_is_invalid_request_content(fake: FakeLambda, client: Any) -> None:
    fake.add("strict", lambda event, context: event)
    with pytest.raises(client.exceptions.InvalidRequestContentException):
        client.invoke(FunctionName="strict", Payload=b"{not json")


def test_a_handler_may_be_replaced(fake: FakeLambda, client: Any) -> None:
    fake.add("swap", lambda event, context: "first")
    fake.add("swap", lambda event, context: "second")
    assert json.loads(invoke(client, "swap", {})["Payload"].read()) == "second"


def test_a_slow_handler_does_not_hold_up_another(fake: FakeLambda) -> None:
    started = threading.Event()

    def slow(event: Any, context: Any) -> str:
        started.set()
        time.sleep(1.0)
        return "slow"

    fake.add("slow", slow)
    fake.add("fast", lambda event, context: "fast")
    # Each thread its own client: a boto3 client may be shared across threads, but separate ones make it plain
    # that nothing client-side serialises the two calls.
    slow_client, fast_client = make_client(fake, SECRET), make_client(fake, SECRET)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(invoke, slow_client, "slow", {})
        assert started.wait(5)
        began = time.monotonic()
        assert json.loads(invoke(fast_client, "fast", {})["Payload"].read()) == "fast"
        assert time.monotonic() - began < 0.5
        assert json.loads(pending.result()["Payload"].read()) == "slow"
