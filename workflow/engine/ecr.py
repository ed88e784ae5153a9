"""ECR control plane: make sure a destination repository exists, created with the rule's settings.

The copy job imports this module (a moved tag asks for the repository's tag mutability), and its asset
carries no pydantic: nothing here imports `workflow.models`; the settings a repository is created with are
read through the `RepositorySettings` protocol, which the config's model satisfies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from workflow.core.exceptions import (
    RegistryAuthError,
    RegistryProtocolError,
    RegistryUnavailable,
    ReplicationError,
    TagDeleteRefused,
)
from workflow.registry.reference import validate_repository

RETRYABLE_CODES = frozenset(
    {"ThrottlingException", "LimitExceededException", "ServiceUnavailableException", "ServerException"}
)


class ExclusionFilter(Protocol):
    """One tag mutability exclusion filter, as `ensure_repository` reads it."""

    @property
    def filter(self) -> str: ...
    @property
    def filter_type(self) -> str: ...


class RepositorySettings(Protocol):
    """How a repository is created (`workflow.models.payloads.RepositorySettings`), as `ensure_repository`
    reads it."""

    @property
    def tag_mutability(self) -> str: ...
    @property
    def tag_mutability_exclusion_filters(self) -> Sequence[ExclusionFilter] | None: ...
    @property
    def scan_on_push(self) -> bool: ...
    @property
    def encryption(self) -> str: ...
    @property
    def kms_key(self) -> str | None: ...


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _named(exc: ClientError | BotoCoreError, what: str) -> ReplicationError:
    """An ECR API failure as one of the workflow's named errors (so the state machine can retry or report it)."""
    if isinstance(exc, BotoCoreError):
        return RegistryUnavailable(f"{what}: {exc}")
    code = _error_code(exc)
    message = f"{what}: {code}: {exc.response.get('Error', {}).get('Message', '')}".rstrip(": ")
    if code.startswith("AccessDenied") or code in ("UnrecognizedClientException", "ExpiredTokenException"):
        return RegistryAuthError(message)
    if code in RETRYABLE_CODES:
        return RegistryUnavailable(message)
    return RegistryProtocolError(message)


def _describe(client: Any, repository: str, registry_id: str | None) -> dict[str, Any] | None:
    kwargs: dict[str, Any] = {"repositoryNames": [repository]}
    if registry_id:
        kwargs["registryId"] = registry_id
    try:
        repositories = client.describe_repositories(**kwargs)["repositories"]
    except ClientError as exc:
        if _error_code(exc) == "RepositoryNotFoundException":
            return None
        raise
    return repositories[0] if repositories else None


def ensure_repository(
    session: Any,
    region: str,
    repository: str,
    settings: RepositorySettings,
    *,
    registry_id: str | None = None,
) -> bool:
    """Create `repository` with `settings` unless it exists (existing ones are left as they are); True if created."""
    validate_repository(repository)
    client = session.client("ecr", region_name=region)
    try:
        if _describe(client, repository, registry_id) is not None:
            return False
    except (ClientError, BotoCoreError) as exc:
        raise _named(exc, f"describing ECR repository {repository} in {region}") from exc
    encryption: dict[str, str] = {"encryptionType": settings.encryption}
    if settings.encryption == "KMS" and settings.kms_key:  # without one, ECR uses its AWS-managed key
        encryption["kmsKey"] = settings.kms_key
    kwargs: dict[str, Any] = {
        "repositoryName": repository,
        "imageTagMutability": settings.tag_mutability,
        "imageScanningConfiguration": {"scanOnPush": settings.scan_on_push},
        "encryptionConfiguration": encryption,
    }
    if settings.tag_mutability_exclusion_filters:
        kwargs["imageTagMutabilityExclusionFilters"] = [
            {"filter": item.filter, "filterType": item.filter_type}
            for item in settings.tag_mutability_exclusion_filters
        ]
    if registry_id:
        kwargs["registryId"] = registry_id
    try:
        client.create_repository(**kwargs)
    except ClientError as exc:
        if _error_code(exc) == "RepositoryAlreadyExistsException":
            return False
        raise _named(exc, f"creating ECR repository {repository} in {region}") from exc
    except BotoCoreError as exc:
        raise _named(exc, f"creating ECR repository {repository} in {region}") from exc
    return True


@dataclass(frozen=True)
class TagMutability:
    """A repository's imageTagMutability and its WILDCARD exclusion filters (ECR user guide, "Image tag
    mutability"): IMMUTABLE_WITH_EXCLUSION leaves the tags a filter matches mutable, MUTABLE_WITH_EXCLUSION
    makes them immutable."""

    mode: str
    exclusions: tuple[str, ...] = ()

    def immutable(self, tag: str) -> bool:
        """Whether ECR refuses to move `tag` in this repository."""
        # ECR's filter values are [0-9a-zA-Z._*-] only, so fnmatch's `*` is the one wildcard in play.
        excluded = any(fnmatchcase(tag, pattern) for pattern in self.exclusions)
        if self.mode == "IMMUTABLE_WITH_EXCLUSION":
            return not excluded
        if self.mode == "MUTABLE_WITH_EXCLUSION":
            return excluded
        return self.mode == "IMMUTABLE"


def tag_mutability(
    session: Any, region: str, repository: str, *, registry_id: str | None = None
) -> TagMutability | None:
    """The repository's tag mutability with its exclusions; None when unknown or absent."""
    if session is None:
        import boto3

        session = boto3.Session()
    try:
        described = _describe(session.client("ecr", region_name=region), repository, registry_id)
    except (ClientError, BotoCoreError):
        return None
    if described is None:
        return None
    return _mutability(described)


def _mutability(described: dict[str, Any]) -> TagMutability:
    filters = described.get("imageTagMutabilityExclusionFilters") or []
    return TagMutability(
        str(described.get("imageTagMutability", "MUTABLE")),
        tuple(str(f.get("filter", "")) for f in filters if f.get("filterType", "WILDCARD") == "WILDCARD"),
    )


def tag_digest(
    session: Any, region: str, repository: str, tag: str, *, registry_id: str | None = None
) -> str | None:
    """The digest `tag` points at in `repository` (DescribeImages by tag); None when the tag or repository is absent."""
    kwargs: dict[str, Any] = {"repositoryName": repository, "imageIds": [{"imageTag": tag}]}
    if registry_id:
        kwargs["registryId"] = registry_id
    try:
        details = session.client("ecr", region_name=region).describe_images(**kwargs)["imageDetails"]
    except ClientError as exc:
        if _error_code(exc) in ("ImageNotFoundException", "RepositoryNotFoundException"):
            return None
        raise _named(exc, f"describing {repository}:{tag} in {region}") from exc
    except BotoCoreError as exc:
        raise _named(exc, f"describing {repository}:{tag} in {region}") from exc
    return str(details[0]["imageDigest"]) if details else None


def delete_tag(
    session: Any, region: str, repository: str, tag: str, *, registry_id: str | None = None
) -> bool:
    """Remove `tag` from `repository` (BatchDeleteImage by imageTag only); True if removed, False if absent.

    By tag, ECR only untags an image that other tags still name, and deletes it with its last tag
    (API reference, BatchDeleteImage); a digest is never sent, which would delete the image with every
    tag. Tag immutability does not stand in the way: it refuses a push that would overwrite a tag
    ("Preventing image tags from being overwritten"), and BatchDeleteImage has no immutability failure (its
    ImageFailure codes). Any failure ECR reports other than ImageNotFound raises TagDeleteRefused: never retried.
    """
    validate_repository(repository)
    client = session.client("ecr", region_name=region)
    where = f"{registry_id + '/' if registry_id else ''}{region} {repository}:{tag}"
    kwargs: dict[str, Any] = {"repositoryName": repository, "imageIds": [{"imageTag": tag}]}
    if registry_id:
        kwargs["registryId"] = registry_id
    try:
        answer = client.batch_delete_image(**kwargs)
    except ClientError as exc:
        if _error_code(exc) == "RepositoryNotFoundException":
            return False
        raise _named(exc, f"deleting {where}") from exc
    except BotoCoreError as exc:
        raise _named(exc, f"deleting {where}") from exc
    failures = answer.get("failures") or []
    if any(f.get("failureCode") == "ImageNotFound" for f in failures):
        return False
    if failures:
        reasons = "; ".join(f"{f.get('failureCode')}: {f.get('failureReason')}" for f in failures)
        raise TagDeleteRefused(f"{where}: BatchDeleteImage refused it ({reasons})")
    return True
