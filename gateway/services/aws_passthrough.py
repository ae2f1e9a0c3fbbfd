"""Passthrough roles: credentials from a real AWS STS instead of Gatehouse's own.

A Gatehouse role tagged ``gatehouse:aws-role-arn = arn:aws:iam::<aws account>:role/<name>`` stands for that AWS
role. Gatehouse still decides who may assume it (its own trust policy, against the caller's web identity or
principal, as for any role); once it has, it calls ``sts:AssumeRole`` on the configured AWS STS endpoint with
its own AWS credentials (config file ``iam.aws``) and hands the caller what AWS returned -- credentials AWS
itself accepts, scoped by the AWS role's policies, the session policy and the session tags passed along.

The AWS role's trust policy must trust the AWS principal whose credentials Gatehouse holds, and allow
``sts:TagSession`` when sessions carry tags. Tags marked transitive (AssumeRole's TransitiveTagKeys, a token's
``transitive_tag_keys``, a SAML TransitiveTagKeys attribute) are forwarded as AssumeRole's TransitiveTagKeys.
botocore does the call (SigV4 and the query protocol), in a worker thread since it blocks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import botocore.session
import structlog
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from gateway.errors import AccessDeniedException, ServiceUnavailableException
from gateway.settings import Secret

__all__ = ["AWS_ROLE_TAG", "AwsRoleCredentials", "AwsStsPassthrough"]

AWS_ROLE_TAG: Final = "gatehouse:aws-role-arn"

log = structlog.get_logger("gateway.aws")


@dataclass(frozen=True)
class AwsRoleCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: Any  # datetime, as botocore parsed it
    assumed_role_arn: str
    assumed_role_id: str
    packed_policy_size: int | None


class AwsStsPassthrough:
    """Calls AssumeRole on an AWS STS endpoint with the credentials it was configured with."""

    def __init__(self, endpoint_url: str, region: str, access_key_id: str, secret_access_key: Secret) -> None:
        self.endpoint_url = endpoint_url
        session = botocore.session.get_session()
        self._client = session.create_client(
            "sts",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key.reveal(),
            config=Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=10),
        )

    def __repr__(self) -> str:
        return f"AwsStsPassthrough({self.endpoint_url!r})"

    async def assume_role(
        self,
        aws_role_arn: str,
        *,
        session_name: str,
        duration_seconds: int,
        session_policy: str | None,
        tags: Mapping[str, str],
        source_identity: str | None,
        transitive_tag_keys: Sequence[str] = (),
    ) -> AwsRoleCredentials:
        """AWS STS AssumeRole; AccessDenied when AWS refuses, ServiceUnavailable when it cannot be reached."""
        request: dict[str, Any] = {
            "RoleArn": aws_role_arn,
            "RoleSessionName": session_name,
            "DurationSeconds": duration_seconds,
        }
        if session_policy is not None:
            request["Policy"] = session_policy
        if tags:
            request["Tags"] = [{"Key": key, "Value": value} for key, value in tags.items()]
            transitive = [key for key in transitive_tag_keys if key in tags]
            if transitive:
                request["TransitiveTagKeys"] = transitive
        if source_identity is not None:
            request["SourceIdentity"] = source_identity
        try:
            answer = await asyncio.to_thread(lambda: self._client.assume_role(**request))
        except ClientError as exc:
            error = exc.response.get("Error", {})
            log.info("aws.assume_role_refused", role=aws_role_arn, code=error.get("Code"))
            raise AccessDeniedException(
                f"AWS STS refused AssumeRole for {aws_role_arn}: {error.get('Code')}: {error.get('Message')}"
            ) from exc
        except BotoCoreError as exc:
            log.warning("aws.unreachable", endpoint=self.endpoint_url, error=type(exc).__name__)
            raise ServiceUnavailableException("AWS STS could not be reached; try again later.") from exc
        creds = answer["Credentials"]
        user = answer["AssumedRoleUser"]
        log.info("aws.assumed_role", role=aws_role_arn, session=session_name, access_key_id=creds["AccessKeyId"])
        return AwsRoleCredentials(
            access_key_id=creds["AccessKeyId"],
            secret_access_key=creds["SecretAccessKey"],
            session_token=creds["SessionToken"],
            expiration=creds["Expiration"],
            assumed_role_arn=user["Arn"],
            assumed_role_id=user["AssumedRoleId"],
            packed_policy_size=answer.get("PackedPolicySize"),
        )
