"""ECR control plane: the destination repository, created with the rule's settings (moto)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from workflow.core.exceptions import (
    DestinationTagImmutable,
    InvalidReference,
    RegistryAuthError,
    RegistryUnavailable,
)
from workflow.engine.copier import _check_mutable, parse_destination
from workflow.engine.ecr import TagMutability, ensure_repository, tag_mutability
from workflow.models.payloads import RepositorySettings

REGION = "eu-west-1"


@mock_aws
def test_missing_repository_is_created_with_the_settings() -> None:
    # Given no repository, When ensured with immutable tags, scan on push and KMS
    session = boto3.Session(region_name=REGION)
    key = session.client("kms").create_key()["KeyMetadata"]["Arn"]
    settings = RepositorySettings(
        tag_mutability="IMMUTABLE", scan_on_push=True, encryption="KMS", kms_key=key
    )
    created = ensure_repository(session, REGION, "mirror/app", settings)
    # Then it exists with exactly those settings
    repository = session.client("ecr").describe_repositories(repositoryNames=["mirror/app"])["repositories"][
        0
    ]
    assert created is True
    assert repository["imageTagMutability"] == "IMMUTABLE"
    assert repository["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repository["encryptionConfiguration"] == {"encryptionType": "KMS", "kmsKey": key}
    assert tag_mutability(session, REGION, "mirror/app") == TagMutability("IMMUTABLE")


@mock_aws
def test_existing_repository_is_left_alone() -> None:
    # Given a mutable repository, When ensured with other settings, Then nothing changes
    session = boto3.Session(region_name=REGION)
    session.client("ecr").create_repository(repositoryName="app")
    created = ensure_repository(session, REGION, "app", RepositorySettings(tag_mutability="IMMUTABLE"))
    assert created is False
    assert tag_mutability(session, REGION, "app") == TagMutability("MUTABLE")


@mock_aws
@pytest.mark.parametrize(
    ("mode", "mutable", "immutable"),
    [
        ("IMMUTABLE_WITH_EXCLUSION", ["dev-1", "test-a.b", "dev-"], ["release-1", "xdev-1", "DEV-1"]),
        ("MUTABLE_WITH_EXCLUSION", ["release-1", "xdev-1", "DEV-1"], ["dev-1", "test-a.b", "dev-"]),
    ],
)
def test_a_repository_created_with_exclusions_gets_them_and_each_tag_its_mutability(
    mode: str, mutable: list[str], immutable: list[str]
) -> None:
    # Given a missing repository, When ensured with a mode with exclusions dev-* and test-*
    session = boto3.Session(region_name=REGION)
    filters = [{"filter": "dev-*"}, {"filter": "test-*"}]
    settings = RepositorySettings.model_validate(
        {"tag_mutability": mode, "tag_mutability_exclusion_filters": filters}
    )
    assert ensure_repository(session, REGION, "app", settings) is True
    # Then CreateRepository got the mode and the filters (moto keeps them as ECR does)
    [repository] = session.client("ecr").describe_repositories(repositoryNames=["app"])["repositories"]
    assert repository["imageTagMutability"] == mode
    assert repository["imageTagMutabilityExclusionFilters"] == [
        {"filter": "dev-*", "filterType": "WILDCARD"},
        {"filter": "test-*", "filterType": "WILDCARD"},
    ]
    # And each tag is mutable or immutable as the filters say
    mutability = tag_mutability(session, REGION, "app")
    assert mutability is not None
    assert mutability == TagMutability(mode, ("dev-*", "test-*"))
    assert [tag for tag in mutable + immutable if mutability.immutable(tag)] == immutable
    # And the copy's early check refuses to move exactly the immutable tags (precheck and copy share it)
    host = f"123456789012.dkr.ecr.{REGION}.amazonaws.com"
    old, new = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    refused = []
    for tag in mutable + immutable:
        try:
            _check_mutable(parse_destination(f"{host}/app:{tag}"), session, old, new)
        except DestinationTagImmutable:
            refused.append(tag)
    assert refused == immutable


@mock_aws
def test_absent_repository_has_no_mutability() -> None:
    # Given no repository, Then its mutability is unknown (None)
    assert tag_mutability(boto3.Session(region_name=REGION), REGION, "nope") is None


def test_an_invalid_name_raises_before_calling_ecr() -> None:
    # Given a bad name, When ensured, Then InvalidReference (no AWS call needed)
    with pytest.raises(InvalidReference):
        ensure_repository(None, REGION, "Bad/Name", RepositorySettings())


def test_kms_without_a_key_asks_ecr_for_its_aws_managed_key() -> None:
    # Given KMS encryption with no key named
    client, stubber = _stubbed_ecr()
    stubber.add_client_error("describe_repositories", "RepositoryNotFoundException", "no such repository")
    stubber.add_response(
        "create_repository",
        {"repository": {"repositoryName": "app"}},
        {
            "repositoryName": "app",
            "imageTagMutability": "MUTABLE",
            "imageScanningConfiguration": {"scanOnPush": False},
            "encryptionConfiguration": {"encryptionType": "KMS"},
        },
    )
    # When ensured, Then CreateRepository asks for KMS without a key (ECR then uses aws/ecr)
    with stubber:
        assert ensure_repository(_Session(client), REGION, "app", RepositorySettings(encryption="KMS"))
    stubber.assert_no_pending_responses()


class _Session:
    """A session handing out one (stubbed) client."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def client(self, service: str, region_name: str) -> Any:
        return self._client


def _stubbed_ecr() -> tuple[Any, Stubber]:
    client = boto3.client("ecr", region_name=REGION, aws_access_key_id="a", aws_secret_access_key="b")
    return client, Stubber(client)


def test_access_denied_on_the_destination_is_a_named_auth_error() -> None:
    # Given a destination role that may not describe repositories
    client, stubber = _stubbed_ecr()
    stubber.add_client_error("describe_repositories", "AccessDeniedException", "not authorized to describe")
    # When the repository is ensured, Then RegistryAuthError names the repository, Region and ECR's reason
    with (
        stubber,
        pytest.raises(
            RegistryAuthError, match="mirror/app in eu-west-1: AccessDeniedException: not authorized"
        ),
    ):
        ensure_repository(_Session(client), REGION, "mirror/app", RepositorySettings())


def test_throttling_while_creating_is_a_named_retryable_error() -> None:
    # Given a missing repository and a throttled CreateRepository
    client, stubber = _stubbed_ecr()
    stubber.add_client_error("describe_repositories", "RepositoryNotFoundException", "no such repository")
    stubber.add_client_error("create_repository", "ThrottlingException", "rate exceeded")
    # When the repository is ensured, Then it is RegistryUnavailable, which the state machine retries
    with stubber, pytest.raises(RegistryUnavailable, match="creating ECR repository app"):
        ensure_repository(_Session(client), REGION, "app", RepositorySettings())
