"""Deletions that follow: a delete target removes the destination tag only where that is safe.

The registries are stand-ins at `workflow.pipeline.deletes.make_client` (HEADs and the distribution DELETE by tag);
an ECR destination is read (DescribeImages) and untagged (BatchDeleteImage) in moto, through the assumed
destination role.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from workflow.core.exceptions import TagDeleteRefused
from workflow.models.payloads import Target
from workflow.pipeline import deletes
from workflow.pipeline.precheck import check_target

DIGEST = "sha256:" + "1" * 64
OTHER_DIGEST = "sha256:" + "2" * 64
ECR_DESTINATION = "222222222222.dkr.ecr.eu-west-1.amazonaws.com"
SOURCE_REGISTRY = "111111111111.dkr.ecr.us-east-1.amazonaws.com"
MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": DIGEST, "size": 2},
        "layers": [],
    }
)


def delete_target(**fields: Any) -> Target:
    base: dict[str, Any] = {
        "account": "222222222222",
        "region": "eu-west-1",
        "repository": "mirror/app",
        "tag": "release-2.4.1",
        "rule": "releases",
        "source_registry": SOURCE_REGISTRY,
        "source_repository": "app",
        "source_reference": DIGEST,
        "registry": ECR_DESTINATION,
        "role_arn": "arn:aws:iam::222222222222:role/ecr-replication-target",
        "action": "delete",
    }
    return Target.model_validate({**base, **fields})


class Registry:
    """HEAD answers from a dict of (repository, reference) -> digest; DELETE by tag removes the entry."""

    def __init__(self, manifests: dict[tuple[str, str], str], refuses: bool = False) -> None:
        self.manifests = manifests
        self.refuses = refuses
        self.deleted: list[tuple[str, str]] = []

    def head_manifest(self, repository: str, reference: str) -> str | None:
        return self.manifests.get((repository, reference))

    def delete_tag(self, repository: str, tag: str) -> bool:
        if self.refuses:
            raise TagDeleteRefused(f"{repository}:{tag}: the registry does not delete tags (HTTP 400)")
        self.deleted.append((repository, tag))
        return self.manifests.pop((repository, tag), None) is not None


@pytest.fixture
def registries(monkeypatch: pytest.MonkeyPatch) -> dict[str, Registry]:
    """The source (without the deleted tag) and the destination (with it, at DIGEST) by registry host."""
    known = {
        SOURCE_REGISTRY: Registry({}),
        "127.0.0.1:5001": Registry({("mirror/app", "release-2.4.1"): DIGEST}),
    }
    monkeypatch.setattr(deletes, "make_client", lambda registry, **_: known[registry])
    return known


def destination_ecr(mutability: str = "MUTABLE", exclusions: tuple[str, ...] = ()) -> Any:
    """ECR in the destination account (as the assumed role), with mirror/app holding one image under two tags."""
    credentials = boto3.client("sts").assume_role(
        RoleArn="arn:aws:iam::222222222222:role/setup", RoleSessionName="setup"
    )["Credentials"]
    ecr = boto3.client(
        "ecr",
        region_name="eu-west-1",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    filters = [{"filterType": "WILDCARD", "filter": f} for f in exclusions]
    extra = {"imageTagMutabilityExclusionFilters": filters} if filters else {}
    ecr.create_repository(repositoryName="mirror/app", imageTagMutability=mutability, **extra)
    for tag in ("release-2.4.1", "pinned"):
        ecr.put_image(repositoryName="mirror/app", imageManifest=MANIFEST, imageTag=tag)
    return ecr


def digest_of(ecr: Any) -> str:
    """The digest ECR (moto) gave the image put with MANIFEST."""
    return str(ecr.describe_images(repositoryName="mirror/app")["imageDetails"][0]["imageDigest"])


def tags_at(ecr: Any) -> list[str]:
    images = ecr.describe_images(repositoryName="mirror/app")["imageDetails"]
    return sorted(tag for image in images for tag in image.get("imageTags", []))


def test_ecr_removes_only_the_tag_when_it_still_points_at_the_digest(
    aws: None, registries: dict[str, Registry]
) -> None:
    # Given an ECR destination whose tag still points at the digest the source tag had, and another tag
    ecr = destination_ecr()
    # When the delete target is prechecked
    outcome = check_target(delete_target(source_reference=digest_of(ecr)))
    # Then the tag is gone and the image stays under its other tag: BatchDeleteImage by tag, never digest
    assert (outcome.action, outcome.copy_needed, outcome.record.status) == ("deleted", False, "deleted")
    assert tags_at(ecr) == ["pinned"]
    assert outcome.record.digest == digest_of(ecr)
    assert outcome.record.finished_at is not None


@pytest.mark.parametrize("mutability", ["IMMUTABLE", "MUTABLE_WITH_EXCLUSION"])
def test_ecr_removes_an_immutable_tag_as_batch_delete_image_does(
    aws: None, registries: dict[str, Registry], mutability: str
) -> None:
    # Given a destination repository whose tags are immutable (IMMUTABLE, or release-* made immutable by an
    # exclusion filter): immutability refuses a push that would overwrite a tag, not a BatchDeleteImage
    # (API reference, BatchDeleteImage and ImageFailure codes; "Preventing image tags from being overwritten")
    ecr = destination_ecr(mutability, ("release-*",) if mutability.endswith("EXCLUSION") else ())
    # When the delete target is prechecked
    outcome = check_target(delete_target(source_reference=digest_of(ecr)))
    # Then ECR is asked and the tag goes, only the tag: the image stays under its other one
    assert (outcome.action, outcome.record.status) == ("deleted", "deleted")
    assert tags_at(ecr) == ["pinned"]


def test_the_ecr_stand_in_refuses_to_overwrite_an_immutable_tag(
    aws: None, ecr_tag_immutability: None
) -> None:
    # Given an IMMUTABLE repository holding release-2.4.1
    ecr = destination_ecr("IMMUTABLE")
    other = MANIFEST.replace(DIGEST, OTHER_DIGEST)
    # When another image is put under the same tag / Then ECR (moto) refuses it, as ECR does
    with pytest.raises(ecr.exceptions.ImageTagAlreadyExistsException):
        ecr.put_image(repositoryName="mirror/app", imageManifest=other, imageTag="release-2.4.1")
    assert tags_at(ecr) == ["pinned", "release-2.4.1"]


def test_a_tag_the_exclusions_leave_mutable_is_deleted(aws: None, registries: dict[str, Registry]) -> None:
    # Given IMMUTABLE_WITH_EXCLUSION whose filter makes release-* mutable / When the delete is prechecked
    ecr = destination_ecr("IMMUTABLE_WITH_EXCLUSION", ("release-*",))
    outcome = check_target(delete_target(source_reference=digest_of(ecr)))
    # Then the tag is removed like a mutable one
    assert outcome.action == "deleted"
    assert tags_at(ecr) == ["pinned"]


def test_an_ecr_tag_moved_since_is_kept(aws: None, registries: dict[str, Registry]) -> None:
    # Given the ECR destination tag at another digest than the deleted source tag's / When prechecked
    ecr = destination_ecr()
    outcome = check_target(delete_target(source_reference=DIGEST))
    # Then it is kept, with the reason, and both tags stay
    assert (outcome.record.status, outcome.record.kept_reason) == ("kept", "moved since")
    assert tags_at(ecr) == ["pinned", "release-2.4.1"]


def test_a_failure_batch_delete_image_reports_is_a_named_error() -> None:
    # Given ECR answering the BatchDeleteImage with a failure for the tag
    class Ecr:
        def describe_repositories(self, **_: Any) -> dict[str, Any]:
            return {"repositories": [{"repositoryName": "mirror/app", "imageTagMutability": "MUTABLE"}]}

        def batch_delete_image(self, **kwargs: Any) -> dict[str, Any]:
            assert kwargs["imageIds"] == [{"imageTag": "release-2.4.1"}]  # never a digest
            failure = {"failureCode": "ImageReferencedByManifestList", "failureReason": "used by an index"}
            return {"imageIds": [], "failures": [{"imageId": kwargs["imageIds"][0], **failure}]}

    class Session:
        def client(self, *_: Any, **__: Any) -> Ecr:
            return Ecr()

    from workflow.engine.ecr import delete_tag

    # When asked to delete it / Then TagDeleteRefused names ECR's failure code
    with pytest.raises(TagDeleteRefused, match="ImageReferencedByManifestList: used by an index"):
        delete_tag(Session(), "eu-west-1", "mirror/app", "release-2.4.1", registry_id="222222222222")


@pytest.mark.parametrize(
    ("destination", "source", "expected"),
    [
        ({("mirror/app", "release-2.4.1"): OTHER_DIGEST}, {}, ("kept", "moved since")),
        ({}, {}, ("absent", None)),
        (
            {("mirror/app", "release-2.4.1"): DIGEST},
            {("app", "release-2.4.1"): OTHER_DIGEST},
            ("kept", "in the source"),
        ),
    ],
    ids=["moved-since", "absent", "re-pushed-at-the-source"],
)
def test_a_tag_moved_since_absent_or_back_in_the_source_is_left_alone(
    registries: dict[str, Registry],
    destination: dict[tuple[str, str], str],
    source: dict[tuple[str, str], str],
    expected: tuple[str, str | None],
) -> None:
    # Given a destination tag elsewhere (or none), or the source tag pushed again
    registries["127.0.0.1:5001"].manifests = dict(destination)
    registries[SOURCE_REGISTRY].manifests = dict(source)
    # When the delete is checked / Then nothing is deleted, and the result says why
    result = deletes.delete_tag(delete_target(registry="127.0.0.1:5001"), None)
    assert (result.action, result.reason) == expected
    assert registries["127.0.0.1:5001"].deleted == []


def test_another_registry_deletes_by_tag_and_a_dry_run_only_says_so(registries: dict[str, Registry]) -> None:
    target = delete_target(registry="127.0.0.1:5001", insecure=True)
    # Given a registry endpoint holding the tag at the digest / When dry-run, then run for real
    planned = deletes.delete_tag(target, None, dry_run=True)
    assert (planned.action, registries["127.0.0.1:5001"].deleted) == ("deleted", [])
    done = deletes.delete_tag(target, None)
    # Then the real run deletes the tag (the spec's DELETE by tag), once
    assert done.action == "deleted"
    assert registries["127.0.0.1:5001"].deleted == [("mirror/app", "release-2.4.1")]


def test_a_registry_that_refuses_tag_deletes_fails_by_name(registries: dict[str, Registry]) -> None:
    registries["127.0.0.1:5001"].refuses = True
    with pytest.raises(TagDeleteRefused, match="does not delete tags"):
        deletes.delete_tag(delete_target(registry="127.0.0.1:5001"), None)
