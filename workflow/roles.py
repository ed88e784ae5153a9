"""STS AssumeRole into a boto3 Session: the one place the copy CLI, the precheck and the sync assume roles."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from workflow.exceptions import RegistryAuthError

SessionFactory = Callable[..., Any]


class AssumedRole(NamedTuple):
    """A session holding a role's temporary credentials, and when they expire."""

    session: Any
    expiration: datetime | None


def assume_role(
    role_arn: str,
    session_name: str,
    *,
    external_id: str | None = None,
    region: str | None = None,
    sts_client: Any = None,
    session_factory: SessionFactory = boto3.Session,
    purpose: str = "",
) -> AssumedRole:
    """Assume `role_arn` (with `external_id` if set); a refusal raises RegistryAuthError naming the role."""
    sts: Any = sts_client or boto3.client("sts")
    extra = {"ExternalId": external_id} if external_id else {}
    try:
        credentials = sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name, **extra)["Credentials"]
    except ClientError as error:
        details = error.response.get("Error", {})
        raise RegistryAuthError(
            f"cannot assume {role_arn}{f' for {purpose}' if purpose else ''}: "
            f"{details.get('Code', 'ClientError')}: {details.get('Message', '')}"
        ) from error
    except BotoCoreError as error:
        raise RegistryAuthError(f"cannot assume {role_arn}: {type(error).__name__}: {error}") from error
    session = session_factory(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region,
    )
    expiration = credentials.get("Expiration")
    return AssumedRole(session, expiration if isinstance(expiration, datetime) else None)
