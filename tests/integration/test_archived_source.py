"""An archived source image (ECR's archive storage class): the copy and the Precheck say ImageArchived.

The source is a real registry standing for ECR 123456789012/us-east-1 (moto's account); the stand-in
(workflow/local/archive.py) makes ECR's two sides behave as ECR does: DescribeImages describes the image as
ARCHIVED, and the registry answers its pull with 404.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from moto import mock_aws
from moto.ecr.models import ecr_backends

from tests.integration.images import ImageBuilder, Pushed
from tests.integration.registries import RegistryServer, skopeo_digest
from tests.unit.fake_ecr import use_moto_environment
from workflow.cli import main
from workflow.core.exceptions import ImageArchived
from workflow.local.archive import activate, applied, archive_in_registry, restore_in_registry
from workflow.models.payloads import Target
from workflow.pipeline.precheck import check_target

pytestmark = pytest.mark.integration
ACCOUNT, REGION = "123456789012", "us-east-1"  # moto's account: the source's ECR


@pytest.fixture
def ecr(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The source's ECR control plane: moto, with ECR's archive storage class."""
    use_moto_environment(monkeypatch)
    with mock_aws(), applied():
        yield boto3.client("ecr", region_name=REGION)


def _archive(ecr: Any, registry: RegistryServer, repo: str, tag: str, pushed: Pushed) -> None:
    """Archive `repo:tag` in the source, as `update-image-storage-class --target-storage-class ARCHIVE` does."""
    ecr.create_repository(repositoryName=repo)
    ecr.put_image(
        repositoryName=repo,
        imageTag=tag,
        imageManifest=pushed.raw.decode(),
        imageManifestMediaType=pushed.media_type,
        imageDigest=pushed.digest,
    )
    ecr.update_image_storage_class(
        repositoryName=repo, imageId={"imageTag": tag}, targetStorageClass="ARCHIVE"
    )
    archive_in_registry(registry.storage, repo, pushed.digest, [tag])


def _copy(source: RegistryServer, destination: RegistryServer, repo: str, result: Path) -> int:
    return main(
        [
            "copy", f"{source.host}/{repo}:v1", f"{destination.host}/{repo}:v1",
            "--insecure-registry", source.host, "--insecure-registry", destination.host,
            "--src-ecr", f"{ACCOUNT}:{REGION}", "--result-file", str(result),
        ]
    )  # fmt: skip


def test_the_stand_in_registry_answers_404_for_an_archived_image_by_tag_and_digest(
    ecr: Any, builder: ImageBuilder, source_registry: RegistryServer, repo: str
) -> None:
    # Given an archived image, When its manifest is asked for by tag and by digest, Then 404, as ECR answers
    pushed = builder.image(repo, "v1", layer_sizes=(256,))
    _archive(ecr, source_registry, repo, "v1", pushed)
    for reference in ("v1", pushed.digest):
        assert httpx.get(f"{source_registry.url}/v2/{repo}/manifests/{reference}").status_code == 404
    described = ecr.describe_images(repositoryName=repo, imageIds=[{"imageTag": "v1"}])["imageDetails"]
    assert described[0]["imageStatus"] == "ARCHIVED"


def test_copying_an_archived_source_image_fails_as_image_archived_and_works_once_restored(
    ecr: Any,
    builder: ImageBuilder,
    source_registry: RegistryServer,
    dest_registry: RegistryServer,
    repo: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given repo:v1 archived in the source
    pushed = builder.index(repo, "v1", layer_sizes=(256,))
    _archive(ecr, source_registry, repo, "v1", pushed)
    result = tmp_path / "result.json"
    # When the copy job copies it
    code = _copy(source_registry, dest_registry, repo, result)
    # Then it exits 1 with one line naming ImageArchived and how to restore it, as its result says too
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1
    assert err.startswith(
        f"failed: ImageArchived: {source_registry.host}/{repo}:v1 ({pushed.digest}) is ARCHIVED"
    )
    assert "restored (UpdateImageStorageClass to STANDARD, or Restore in the console)" in err
    assert json.loads(result.read_text())["error"] == "ImageArchived"
    # And once restored (STANDARD, ACTIVATING, then ACTIVE), the same copy succeeds
    ecr.update_image_storage_class(
        repositoryName=repo, imageId={"imageTag": "v1"}, targetStorageClass="STANDARD"
    )
    activate(ecr_backends[ACCOUNT][REGION], repo, pushed.digest)
    restore_in_registry(source_registry.storage, repo, pushed.digest, ["v1"])
    assert _copy(source_registry, dest_registry, repo, result) == 0
    assert skopeo_digest(f"{dest_registry.host}/{repo}:v1") == pushed.digest


def test_a_copy_of_a_missing_image_that_is_not_archived_is_still_image_not_found(
    ecr: Any, source_registry: RegistryServer, dest_registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    # Given a tag the source does not have at all (its repository in ECR, with nothing archived)
    ecr.create_repository(repositoryName=repo)
    # When copied / Then ImageNotFound, as before
    assert _copy(source_registry, dest_registry, repo, tmp_path / "r.json") == 1
    assert json.loads((tmp_path / "r.json").read_text())["error"] == "ImageNotFound"


def test_the_precheck_of_an_archived_source_image_fails_as_image_archived(
    ecr: Any, builder: ImageBuilder, source_registry: RegistryServer, dest_registry: RegistryServer, repo: str
) -> None:
    # Given repo:v1 archived in the source, and a target for it (as the plan makes it)
    pushed = builder.image(repo, "v1", layer_sizes=(256,))
    _archive(ecr, source_registry, repo, "v1", pushed)
    target = Target(
        account="222222222222",
        region="eu-west-1",
        repository=repo,
        tag="v1",
        rule="r",
        source_registry=source_registry.host,
        source_repository=repo,
        source_reference="v1",
        registry=dest_registry.host,
        role_arn="arn:aws:iam::222222222222:role/ecr-replication-target",
        insecure=True,
        source_insecure=True,
        source_account=ACCOUNT,
        source_region=REGION,
    )
    # When prechecked / Then ImageArchived (the state machine records it under that name), not ImageNotFound
    with pytest.raises(ImageArchived, match="is ARCHIVED"):
        check_target(target)
