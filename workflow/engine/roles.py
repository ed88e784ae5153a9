"""STS AssumeRole into a boto3 Session that renews its own credentials: the one place the copy CLI, the
precheck and the sync assume roles.

The product assumes destination roles with role credentials (a Lambda's, a CodeBuild build's), which is
role chaining: the session lasts one hour at most (AWS STS API reference, AssumeRole `DurationSeconds`:
"Role chaining limits your ... API role session to a maximum of one hour"). An EC2 copy may run for
hours, a sync too. So the session holds botocore's `RefreshableCredentials`, whose refresh assumes the
role again: every client made from the session signs each request with current credentials, renewed
15 minutes before they expire (from 10 minutes before, every caller waits for the renewal).

A destination in another partition cannot be reached by role chaining: no role can be assumed across
partitions. `assume_role_in_partition` reads an access key pair of an IAM user in that partition from a
Secrets Manager secret (with the caller's own credentials: the precheck Lambda's, the copy build's, the
sync's) and assumes the destination role with STS in the destination's Region, at every renewal, so a
rotated key is used from the next renewal on. The key pair lives only in memory, in the STS client that
signs AssumeRole; it is never logged, returned or put in an error message. Its shape is checked when it is
read (a key id with a line break makes botocore quote the whole signed `Authorization` header in its
error), and every error text from STS passes through `workflow.core.redaction.redact`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
import botocore.session
from botocore.credentials import CredentialProvider, CredentialResolver, RefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError

from workflow.core.documents import load_json
from workflow.core.exceptions import DestinationRoleMissing, RegistryAuthError
from workflow.core.redaction import described, redact

SessionFactory = Callable[..., Any]
Clock = Callable[[], datetime]
METHOD = "ecr-replicate-assume-role"
SECRET_FIELDS = ("AccessKeyId", "SecretAccessKey")
# The largest SecretString Secrets Manager stores ("AWS Secrets Manager quotas": 65,536 bytes).
SECRET_STRING_LIMIT = 65_536
# IAM API reference, data type AccessKey: AccessKeyId "Length Constraints: Minimum length of 16. Maximum length
# of 128. Pattern: [\w]+"; SecretAccessKey has no documented pattern: printable, without white space.
KEY_SHAPES = {
    "AccessKeyId": (re.compile(r"[A-Za-z0-9_]{16,128}"), "16 to 128 letters, digits or _"),
    "SecretAccessKey": (
        re.compile(r"[\x21-\x7e]{1,128}"),
        "1 to 128 printable characters without white space",
    ),
}
# STS answers AssumeRole of a role that does not exist with the AccessDenied it gives a role whose trust policy
# (or the caller's own policy) refuses: 403 AccessDenied "... is not authorized to perform: sts:AssumeRole on
# resource ..." either way, never NoSuchEntity (AWS re:Post knowledge center, "Troubleshoot AccessDenied errors
# when I assume a cross-account IAM role", https://repost.aws/knowledge-center/iam-assume-role-error; moto
# mints credentials for any ARN, so tests/unit/strict_sts.py refuses a missing role as STS does).
ACCESS_DENIED = "AccessDenied"
ROLE_MISSING = (
    "the role does not exist in that account yet (the fleet StackSet or destination stack has not reached it) "
    "or does not trust this caller: STS answers both alike"
)


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
            code, message = details.get("Code", "ClientError"), redact(str(details.get("Message", "")))
            if code == ACCESS_DENIED:
                raise DestinationRoleMissing(
                    f"cannot assume {where}: {code}: {message}; {ROLE_MISSING}"
                ) from None
            raise RegistryAuthError(f"cannot assume {where}: {code}: {message}") from None
        except BotoCoreError as error:
            raise RegistryAuthError(f"cannot assume {where}: {described(error)}") from None

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


class _PartitionSts:
    """Stands in for an STS client: each AssumeRole reads the secret's key pair afresh and signs with it,
    through STS in the destination's Region (so in its partition)."""

    def __init__(
        self, secret_id: str, region: str, *, secrets_client: Any, session_factory: SessionFactory
    ) -> None:
        self.secret_id = secret_id
        self.region = region
        self.secrets = secrets_client
        self.session_factory = session_factory

    def _key_pair(self) -> tuple[str, str]:
        try:
            text = self.secrets.get_secret_value(SecretId=self.secret_id).get("SecretString")
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "ClientError")
            raise RegistryAuthError(f"cannot read the credentials secret {self.secret_id}: {code}") from None
        except BotoCoreError as error:
            raise RegistryAuthError(
                f"cannot read the credentials secret {self.secret_id}: {type(error).__name__}"
            ) from None
        try:
            value = load_json(text or "", max_bytes=SECRET_STRING_LIMIT)
        except ValueError:
            value = None
        if not isinstance(value, dict) or not all(
            isinstance(value.get(f), str) and value[f] for f in SECRET_FIELDS
        ):
            # Never echo the value: it is (or was meant to be) a secret.
            raise RegistryAuthError(
                f"the credentials secret {self.secret_id} does not hold a JSON object with string "
                f"{' and '.join(SECRET_FIELDS)} (see docs/deploy.md)"
            )
        for field, (shape, described_shape) in KEY_SHAPES.items():
            if not shape.fullmatch(value[field]):
                # Named, never echoed: a stray line break or space is the usual cause (a pasted value).
                raise RegistryAuthError(
                    f"the credentials secret {self.secret_id}: {field} is not {described_shape} "
                    "(a line break or space pasted with it?); see docs/deploy.md"
                )
        return value["AccessKeyId"], value["SecretAccessKey"]

    def assume_role(self, **request: Any) -> dict[str, Any]:
        access_key, secret_key = self._key_pair()
        session = self.session_factory(
            aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name=self.region
        )
        return dict(session.client("sts", region_name=self.region).assume_role(**request))


def assume_role_in_partition(
    role_arn: str,
    session_name: str,
    *,
    secret_id: str,
    secret_region: str,
    region: str,
    external_id: str | None = None,
    secrets_client: Any = None,
    session_factory: SessionFactory = boto3.Session,
    purpose: str = "",
    clock: Clock = lambda: datetime.now(UTC),
) -> Any:
    """As `assume_role`, for a role in another partition: the key pair in `secret_id` (read in
    `secret_region` with the caller's credentials) assumes `role_arn` with STS in `region`.

    A secret that cannot be read, or holds no key pair, raises RegistryAuthError naming the secret, never
    its value.
    """
    sts = _PartitionSts(
        secret_id,
        region,
        secrets_client=secrets_client or boto3.client("secretsmanager", region_name=secret_region),
        session_factory=session_factory,
    )
    return assume_role(
        role_arn,
        session_name,
        external_id=external_id,
        region=region,
        sts_client=sts,
        session_factory=session_factory,
        purpose=purpose,
        clock=clock,
    )


def destination_session(
    role_arn: str,
    session_name: str,
    *,
    external_id: str | None = None,
    region: str | None = None,
    secret_id: str | None = None,
    secret_region: str | None = None,
    sts_client: Any = None,
    secrets_client: Any = None,
    session_factory: SessionFactory = boto3.Session,
    purpose: str = "",
) -> Any:
    """A destination role's session: the one place the choice of how to assume it is made (the copy job, the
    precheck, the sync and status). Without `secret_id`, `assume_role` with the caller's own credentials (role
    chaining), the session in `region` if given; with it, a destination in another partition:
    `assume_role_in_partition` with the key pair that secret holds (read in `secret_region`), in `region`."""
    if secret_id is None:
        return assume_role(
            role_arn,
            session_name,
            external_id=external_id,
            region=region,
            sts_client=sts_client,
            session_factory=session_factory,
            purpose=purpose,
        )
    return assume_role_in_partition(
        role_arn,
        session_name,
        secret_id=secret_id,
        secret_region=secret_region or "",
        region=region or "",
        external_id=external_id,
        secrets_client=secrets_client,
        session_factory=session_factory,
        purpose=purpose,
    )
