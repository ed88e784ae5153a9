"""STS AssumeRole into a boto3 Session that renews its own credentials: the one place the copy CLI, the
precheck and the sync assume roles.

The product assumes destination roles with role credentials (a Lambda's, a CodeBuild build's), which is
role chaining: the session lasts one hour at most (AWS STS API reference, AssumeRole `DurationSeconds`:
"Role chaining limits your ... API role session to a maximum of one hour"). An EC2 copy may run for
hours, a sync too. So the session holds botocore's `RefreshableCredentials`, whose refresh assumes the
role again: every client made from the session signs each request with current credentials, renewed
15 minutes before they expire (from 10 minutes before, every caller waits for the renewal).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
import botocore.session
from botocore.credentials import CredentialProvider, CredentialResolver, RefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError

from workflow.exceptions import RegistryAuthError

SessionFactory = Callable[..., Any]
Clock = Callable[[], datetime]
METHOD = "ecr-replicate-assume-role"


class _Provider(CredentialProvider):
    """Hands botocore the one set of refreshable credentials (botocore's own AssumeRole provider reads
    profiles, not an ARN given at run time)."""

    METHOD = METHOD

    def __init__(self, credentials: RefreshableCredentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> RefreshableCredentials:
        return self._credentials


def _expiry(value: datetime | str) -> datetime:
    """STS's Expiration as an aware datetime (botocore parses it; a stubbed response may hold ISO text)."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def assume_role(
    role_arn: str,
    session_name: str,
    *,
    external_id: str | None = None,
    region: str | None = None,
    sts_client: Any = None,
    session_factory: SessionFactory = boto3.Session,
    purpose: str = "",
    clock: Clock = lambda: datetime.now(UTC),
) -> Any:
    """A boto3 Session holding `role_arn`'s credentials (with `external_id` if set), renewed before expiry.

    The role is assumed here once, so a refusal raises RegistryAuthError naming the role (and `purpose`)
    at once; a refusal at a renewal raises the same error from the call that needed the credentials.
    `clock` tells botocore the time (an aware datetime), so tests can move it.
    """
    sts: Any = sts_client or boto3.client("sts")
    request = {"RoleArn": role_arn, "RoleSessionName": session_name}
    if external_id:
        request["ExternalId"] = external_id
    where = f"{role_arn}{f' for {purpose}' if purpose else ''}"

    def assume() -> dict[str, Any]:
        try:
            return dict(sts.assume_role(**request)["Credentials"])
        except ClientError as error:
            details = error.response.get("Error", {})
            raise RegistryAuthError(
                f"cannot assume {where}: {details.get('Code', 'ClientError')}: {details.get('Message', '')}"
            ) from error
        except BotoCoreError as error:
            raise RegistryAuthError(f"cannot assume {where}: {type(error).__name__}: {error}") from error

    def refresh() -> dict[str, str]:
        renewed = assume()
        return {
            "access_key": renewed["AccessKeyId"],
            "secret_key": renewed["SecretAccessKey"],
            "token": renewed["SessionToken"],
            "expiry_time": _expiry(renewed["Expiration"]).isoformat(),
        }

    first = assume()
    credentials = RefreshableCredentials(
        first["AccessKeyId"],
        first["SecretAccessKey"],
        first["SessionToken"],
        _expiry(first["Expiration"]),
        refresh_using=refresh,
        method=METHOD,
        time_fetcher=clock,
    )
    core = botocore.session.Session()
    core.register_component("credential_provider", CredentialResolver([_Provider(credentials)]))
    return session_factory(botocore_session=core, region_name=region)
