"""Inventory adapters against moto (ECR) and botocore's Stubber (pagination)."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

from tests.unit.fake_ecr import digest, push
from workflow.ops.inventory import AwsClients, EcrDestination, EcrSource

SOURCE_ACCOUNT = "123456789012"
DESTINATION_ROLE = "arn:aws:iam::222222222222:role/ecr-replication-target"


@pytest.fixture
def clients(aws: None) -> AwsClients:
    """Clients built on a plain session, over moto (`aws`)."""
    return AwsClients(boto3.Session())


def test_ecr_source_lists_repositories_and_keeps_accepted_tags(clients: AwsClients) -> None:
    # Given a source registry with two repositories and an image carrying two tags
    ecr = clients.client("ecr", "us-east-1")
    for name in ("app", "services/api"):
        ecr.create_repository(repositoryName=name)
    push(ecr, "app", "release-1", 10)
    ecr.put_image(
        repositoryName="app",
        imageTag="dev-1",
        imageDigest=digest(10),
        imageManifest=ecr.batch_get_image(repositoryName="app", imageIds=[{"imageDigest": digest(10)}])[
            "images"
        ][0]["imageManifest"],
    )
    push(ecr, "app", "release-2", 20)
    source = EcrSource(ecr, SOURCE_ACCOUNT)

    # When listing repositories and the release-* images of app
    repositories = sorted(source.repositories())
    images = sorted(source.images("app", lambda tag: tag.startswith("release-")), key=lambda i: i.tag)

    # Then every repository is listed, and each accepted tag comes with its digest and push time
    assert repositories == ["app", "services/api"]
    assert [(i.repository, i.tag, i.digest) for i in images] == [
        ("app", "release-1", digest(10)),
        ("app", "release-2", digest(20)),
    ]
    assert all(isinstance(i.pushed_at, datetime) for i in images)


def test_ecr_source_follows_every_page() -> None:
    # Given an ECR API answering DescribeImages in two pages
    client = boto3.client("ecr", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    stubber = Stubber(client)
    pushed = datetime(2024, 5, 1, tzinfo=UTC)
    base = {"registryId": SOURCE_ACCOUNT, "repositoryName": "app", "filter": {"tagStatus": "TAGGED"}}
    stubber.add_response(
        "describe_images",
        {
            "imageDetails": [{"imageDigest": digest(1), "imageTags": ["a"], "imagePushedAt": pushed}],
            "nextToken": "t",
        },
        {**base, "maxResults": 1000},
    )
    stubber.add_response(
        "describe_images",
        {"imageDetails": [{"imageDigest": digest(2), "imageTags": ["b", "c"], "imagePushedAt": pushed}]},
        {**base, "maxResults": 1000, "nextToken": "t"},
    )

    # When listing the images
    with stubber:
        images = list(EcrSource(client, SOURCE_ACCOUNT).images("app", lambda _tag: True))

    # Then both pages are read, one image per tag
    assert [(i.tag, i.digest) for i in images] == [("a", digest(1)), ("b", digest(2)), ("c", digest(2))]
    stubber.assert_no_pending_responses()


def test_ecr_destination_decides_from_one_listing_per_repository(clients: AwsClients) -> None:
    # Given a destination repository (in another account, through the role) holding one image under "old"
    ecr = clients.client("ecr", "eu-west-1", DESTINATION_ROLE)
    ecr.create_repository(repositoryName="app")
    push(ecr, "app", "release-1", 10)
    push(ecr, "app", "old", 20)
    calls: list[str] = []
    ecr.meta.events.register("before-call.ecr.*", lambda model, **_: calls.append(model.name))
    destination = EcrDestination(ecr, "222222222222")

    # When deciding three tags of app and one of a repository that does not exist
    decisions = [
        destination.decide("app", "release-1", digest(10)),
        destination.decide("app", "release-2", digest(20)),
        destination.decide("app", "release-3", digest(30)),
        destination.decide("missing/repo", "release-1", digest(10)),
    ]

    # Then present / tagged / missing, with exactly one DescribeImages per repository
    assert decisions == ["present", "tagged", "missing", "missing"]
    assert calls == ["DescribeImages", "DescribeImages"]


def test_ecr_destination_put_tag_reuses_the_manifest(clients: AwsClients) -> None:
    # Given a destination holding digest 20 under "old" only
    ecr = clients.client("ecr", "eu-west-1", DESTINATION_ROLE)
    ecr.create_repository(repositoryName="app")
    push(ecr, "app", "old", 20)
    destination = EcrDestination(ecr, "222222222222")
    assert destination.decide("app", "release-2", digest(20)) == "tagged"

    # When putting the tag release-2 on that digest
    destination.put_tag("app", "release-2", digest(20))

    # Then ECR shows both tags on the same digest, and a fresh listing says "present"
    details = ecr.describe_images(repositoryName="app")["imageDetails"]
    assert [(d["imageDigest"], sorted(d["imageTags"])) for d in details] == [
        (digest(20), ["old", "release-2"])
    ]
    assert EcrDestination(ecr, "222222222222").decide("app", "release-2", digest(20)) == "present"


def test_clients_assume_the_destination_role_once_per_role(clients: AwsClients) -> None:
    # Given clients for two Regions through the same destination role
    calls: list[str] = []
    clients.on_client = lambda client: client.meta.events.register(
        "before-call.sts.AssumeRole", lambda **_: calls.append("AssumeRole")
    )
    first = clients.client("ecr", "eu-west-1", DESTINATION_ROLE)
    second = clients.client("ecr", "us-west-2", DESTINATION_ROLE)

    # When each creates a repository
    first.create_repository(repositoryName="aa")
    second.create_repository(repositoryName="bb")

    # Then they act in the role's account, and the role was assumed once
    assert first.describe_repositories()["repositories"][0]["registryId"] == "222222222222"
    assert clients.client("ecr", "eu-west-1", DESTINATION_ROLE) is first
    assert calls == ["AssumeRole"]
