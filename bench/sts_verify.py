"""Verification of requests signed with Gatehouse temporary credentials, with policy evaluation, per second.

What a service protected by Gatehouse credentials pays per request (``CredentialService.verify_signed`` then
``is_allowed``): open the sealed session token (AES-256-GCM), recompute the secret key (HMAC-SHA256),
verify the SigV4 signature (four HMACs for the signing key, SHA-256 of the canonical request, one HMAC),
read the role with its inline policies from the store (one SQLite read), and evaluate the role's policy,
intersected with a session policy, for one action on one resource (with a policy variable to substitute).

In-process, one thread, on a fresh SQLite database in a temp dir (WAL, as ``gatehouse serve`` uses it).
Requests are signed beforehand with botocore's ``S3SigV4Auth``, as the AWS SDKs sign S3 (a distinct request per
iteration, cycling through ``--distinct`` of them), so only verification is timed. The issue's target is >= 5,000
per second per core.

    python3 bench/sts_verify.py [--seconds 3] [--distinct 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import tempfile
import time
from pathlib import Path

import structlog
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from gateway.api.sigv4 import SignedRequest
from gateway.secretbox import SecretBox
from gateway.services.credentials import CredentialService
from gateway.services.iam import COGNITO_IDENTITY_PROVIDER, IamService, WebIdentity
from gateway.storage.sqlite import SqliteStore

TARGET_PER_SECOND = 5000
ACCOUNT = "000000000000"
TRUST = {
    "Version": "2012-10-17",
    "Statement": {
        "Effect": "Allow",
        "Principal": {"Federated": COGNITO_IDENTITY_PROVIDER},
        "Action": "sts:AssumeRoleWithWebIdentity",
    },
}
POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject"],
            "Resource": "arn:aws:s3:::photos/${cognito-identity.amazonaws.com:sub}/*",
        },
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::photos"},
        {"Effect": "Deny", "Action": "s3:*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    ],
}
SESSION_POLICY = {"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}}


async def run(seconds: float, distinct: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        store = await SqliteStore.open(Path(folder) / "bench.db")
        try:
            iam = IamService(store, account_id=ACCOUNT)
            credentials = CredentialService(iam, SecretBox.generate_key(), account_id=ACCOUNT)
            role = await iam.create_role("photos", json.dumps(TRUST))
            await iam.put_role_policy("photos", "home", json.dumps(POLICY))
            sub = "us-east-1:0f0f0f0f-1111-2222-3333-444444444444"
            identity = WebIdentity(COGNITO_IDENTITY_PROVIDER, sub, ("us-east-1:pool",), ("authenticated",))
            creds = await credentials.mint(
                role, session_name="bench", session_policy=json.dumps(SESSION_POLICY), web_identity=identity
            )
            signer = S3SigV4Auth(
                Credentials(creds.access_key_id, creds.secret_access_key, creds.session_token), "s3", "us-east-1"
            )
            requests = []
            for index in range(distinct):
                url = f"https://photos.example.com/{sub}/photo-{index}.jpg"
                request = AWSRequest(method="GET", url=url)
                signer.add_auth(request)
                headers = {"host": "photos.example.com", **dict(request.headers.items())}
                path = f"/{sub}/photo-{index}.jpg"
                resource = f"arn:aws:s3:::photos/{sub}/photo-{index}.jpg"
                requests.append((SignedRequest("GET", path, "", headers, b""), resource))
            context = {"aws:SecureTransport": "true", "aws:SourceIp": "192.0.2.1"}

            # Check once that the work is real: verified, and allowed.
            ctx = await credentials.verify_signed(requests[0][0], expected_service="s3")
            assert credentials.is_allowed(ctx, "s3:GetObject", requests[0][1], context)
            assert not credentials.is_allowed(ctx, "s3:PutObject", requests[0][1], context)

            done = 0
            started = time.perf_counter()
            deadline = started + seconds
            while True:
                for signed, resource in requests:
                    ctx = await credentials.verify_signed(signed, expected_service="s3")
                    if not credentials.is_allowed(ctx, "s3:GetObject", resource, context):
                        raise AssertionError("a request that should be allowed was refused")
                    done += 1
                if time.perf_counter() >= deadline:
                    break
            return done / (time.perf_counter() - started)
        finally:
            await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--distinct", type=int, default=1000, help="distinct signed requests to cycle through")
    args = parser.parse_args()
    # The audit events of seeding the role are not the benchmark's output.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    rate = asyncio.run(run(args.seconds, args.distinct))
    verdict = "meets" if rate >= TARGET_PER_SECOND else "below"
    print(
        f"temporary-credential SigV4 verification + policy evaluation: {rate:,.0f}/s on one core "
        f"({verdict} the target of {TARGET_PER_SECOND:,}/s)"
    )


if __name__ == "__main__":
    main()
