"""ECR/OCI grammars for repository names, tags, account ids and Regions."""

from __future__ import annotations

import re
from functools import cache

from workflow.core.partitions import UnsupportedPartition, partition_of

REPOSITORY_RE = re.compile(r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*")
TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
ACCOUNT_RE = re.compile(r"[0-9]{12}")
DIGEST_RE = re.compile(r"sha256:[a-f0-9]{64}")
# cosign's tag schema for what it stores about a manifest (`sha256-<hex>.sig`, `.att`, `.sbom`), and the OCI
# distribution spec's referrers tag schema (`sha256-<hex>`, an index of referrers for registries without the
# referrers API): tags that name another manifest's artifacts, not images. cosign SIGNATURE_SPEC.md; OCI
# distribution-spec 1.1, "Referrers Tag Schema".
ARTIFACT_TAG_RE = re.compile(r"sha256-([a-f0-9]{64})(?:\.[A-Za-z0-9_][A-Za-z0-9_.-]*)?")
REPOSITORY_MIN, REPOSITORY_MAX = 2, 256


ECHO_LIMIT = 140


def cut(text: str, limit: int = ECHO_LIMIT) -> str:
    """`text` cut to `limit` characters, ending in `...` when cut: a message echoes outside input, not all of it."""
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def shown(value: object, limit: int = ECHO_LIMIT) -> str:
    """`repr(value)`, cut to `limit` characters: an error message echoes what was wrong, not all of it."""
    return cut(repr(value), limit)


def repository_problem(name: object) -> str | None:
    """Why `name` is not a valid ECR repository name, or None if it is."""
    if not isinstance(name, str):
        return f"{shown(name)} is not a string"
    if not REPOSITORY_MIN <= len(name) <= REPOSITORY_MAX:
        return f"{shown(name)} is not a valid ECR repository name (length must be {REPOSITORY_MIN}-{REPOSITORY_MAX})"
    if not REPOSITORY_RE.fullmatch(name):
        return (
            f"{shown(name)} is not a valid ECR repository name "
            "(lowercase letters, digits and . _ - separators, path components joined by /)"
        )
    return None


def tag_problem(tag: object) -> str | None:
    """Why `tag` is not a valid image tag, or None if it is."""
    if not isinstance(tag, str):
        return f"{shown(tag)} is not a string"
    if not TAG_RE.fullmatch(tag):
        return f"{shown(tag)} is not a valid image tag (1-128 of letters, digits, _ . -, not starting with . or -)"
    return None


def artifact_tag_subject(tag: str) -> str | None:
    """The digest whose signature, attestation or SBOM `tag` holds (cosign's tag schema), or None for an image tag."""
    match = ARTIFACT_TAG_RE.fullmatch(tag)
    return f"sha256:{match.group(1)}" if match else None


def account_problem(account: object) -> str | None:
    """Why `account` is not a 12-digit AWS account id, or None if it is."""
    if not isinstance(account, str) or not ACCOUNT_RE.fullmatch(account):
        return f"{shown(account)} is not a 12-digit AWS account id"
    return None


@cache
def known_regions() -> frozenset[str]:
    """Every Region botocore's partition data lists for ECR, across all partitions."""
    import botocore.session  # deferred: most commands never validate a Region

    session = botocore.session.get_session()
    regions: set[str] = set()
    for partition in session.get_available_partitions():
        regions.update(session.get_available_regions("ecr", partition_name=partition))
    return frozenset(regions)


def region_problem(region: object) -> str | None:
    """Why `region` is not a known AWS Region for ECR in a supported partition, or None if it is."""
    if not isinstance(region, str) or region not in known_regions():
        return f"{shown(region)} is not an AWS Region where ECR is available"
    try:
        partition_of(region)
    except UnsupportedPartition as error:
        return str(error)
    return None
