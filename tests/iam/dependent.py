"""Actions a call needs besides its own (AWS calls them "dependent actions"): one table, with the pages.

Each is evaluated like a recorded call, as the same principal, with the condition keys the service sets when
it acts for the caller (`kms:ViaService`: the service's endpoint host in the call's Region), so a policy whose
condition names another service or Region refuses it as KMS would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tests.iam.calls import SECRET_KEY_ID, SOURCE, Call
from workflow.core.partitions import partition_of

ENHANCED_SCANNING = (
    'ECR user guide, "IAM permissions required for enhanced scanning in Amazon ECR" (inspector2:ListFindings, '
    'Resource "*", to retrieve the scan findings): '
    "https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-scanning-enhanced-iam.html"
)
SECRET_DECRYPT = (
    'Secrets Manager user guide, "Secret encryption and decryption in AWS Secrets Manager" (GetSecretValue '
    "of a secret under a customer managed key needs kms:Decrypt, through secretsmanager.<Region>): "
    "https://docs.aws.amazon.com/secretsmanager/latest/userguide/security-encryption.html"
)
REPOSITORY_KEY = (
    'ECR user guide, "Encryption at rest" (creating a repository with a KMS key: ECR calls DescribeKey and '
    "CreateGrant for the caller): https://docs.aws.amazon.com/AmazonECR/latest/userguide/encryption-at-rest.html"
)
TOPIC_KEY = (
    'SNS developer guide, "Managing Amazon SNS encryption keys and costs" (publishing to an encrypted topic '
    "needs kms:GenerateDataKey* and kms:Decrypt on its key): "
    "https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html"
)

FANOUT_OBJECT_KEY = (
    'S3 user guide, "Using server-side encryption with AWS KMS keys (SSE-KMS)" (an object under a KMS key needs '
    "kms:GenerateDataKey to write and kms:Decrypt to read, with the caller's permissions, through S3): "
    "https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html"
)


@dataclass(frozen=True)
class Keys:
    """The keys the dependent actions use that the synthesized stacks own."""

    topic: str  # the notifications topic's key ARN
    fanout: str  # the fan-out bucket's key ARN


@dataclass(frozen=True)
class Needed:
    """One dependent action of one call: its resource and the condition keys the service sets."""

    action: str
    resource: str
    context: tuple[tuple[str, str], ...]
    page: str


def _key_arn(key: str, region: str, account: str) -> str:
    return key if key.startswith("arn:") else partition_of(region).arn("kms", region, account, f"key/{key}")


def _secret_key(call: Call, keys: Keys) -> str | None:
    return _key_arn(SECRET_KEY_ID, call.region, SOURCE["account"])


def _repository_key(call: Call, keys: Keys) -> str | None:
    encryption = call.params.get("encryptionConfiguration") or {}
    key = encryption.get("kmsKey") if encryption.get("encryptionType") == "KMS" else None
    return _key_arn(str(key), call.region, call.caller_account) if key else None


@dataclass(frozen=True)
class Dependent:
    """`trigger` needs `actions` on the resource `resource(call, keys)` gives (None: not for this call),
    through the service `via` (its host becomes `kms:ViaService`), per `page`."""

    trigger: str
    actions: tuple[str, ...]
    resource: Callable[[Call, Keys], str | None]
    via: str | None
    page: str


TABLE = (
    # The registry's scan type is the account's choice: the Gate must read enhanced findings as well.
    Dependent(
        "ecr:DescribeImageScanFindings",
        ("inspector2:ListFindings",),
        lambda c, k: "*",
        None,
        ENHANCED_SCANNING,
    ),
    Dependent(
        "secretsmanager:GetSecretValue", ("kms:Decrypt",), _secret_key, "secretsmanager", SECRET_DECRYPT
    ),
    Dependent(
        "ecr:CreateRepository", ("kms:CreateGrant", "kms:DescribeKey"), _repository_key, "ecr", REPOSITORY_KEY
    ),
    Dependent("sns:Publish", ("kms:GenerateDataKey", "kms:Decrypt"), lambda c, k: k.topic, "sns", TOPIC_KEY),
    # The fan-out bucket (a run past the inline Map's limit) is the one bucket the components use.
    Dependent("s3:PutObject", ("kms:GenerateDataKey",), lambda c, k: k.fanout, "s3", FANOUT_OBJECT_KEY),
    Dependent("s3:GetObject", ("kms:Decrypt",), lambda c, k: k.fanout, "s3", FANOUT_OBJECT_KEY),
)


def needed(call: Call, keys: Keys) -> list[Needed]:
    """The dependent actions `call` needs, from TABLE."""
    found = []
    for entry in TABLE:
        if entry.trigger != call.action:
            continue
        resource = entry.resource(call, keys)
        if resource is None:
            continue
        context = (
            (("kms:ViaService", partition_of(call.region).host(entry.via, call.region)),) if entry.via else ()
        )
        found.extend(Needed(action, resource, context, entry.page) for action in entry.actions)
    return found
