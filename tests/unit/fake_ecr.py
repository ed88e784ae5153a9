"""moto helpers shared by the inventory, sync and reconcile tests: a clean environment, tiny images."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from moto.core.exceptions import ServiceException
from moto.ecr.exceptions import ImageAlreadyExistsException
from moto.ecr.models import ECRBackend

from workflow.registry.media import Manifest, parse_manifest

# Variables a developer shell may set that would point boto3 or moto elsewhere.
LEAKY_ENVIRONMENT = ("MOTO_ACCOUNT_ID", "AWS_ENDPOINT_URL", "AWS_PROFILE")


def use_moto_environment(monkeypatch: pytest.MonkeyPatch, **extra: str) -> None:
    """Test credentials and Region for moto, nothing inherited that could redirect the calls."""
    for name in LEAKY_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    environment = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        **extra,
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)


def digest(n: int) -> str:
    """A fake sha256 digest derived from n."""
    return "sha256:" + f"{n:064x}"


def push(client: Any, repository: str, tag: str, n: int) -> str:
    """Put a tiny manifest under `tag` with the digest `digest(n)`."""
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": digest(n),
                "size": 2,
            },
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(n + 1), "size": 3}
            ],
        }
    )
    client.put_image(repositoryName=repository, imageManifest=manifest, imageTag=tag, imageDigest=digest(n))
    return digest(n)


class EcrManifests:
    """A source registry's manifest reads served from moto's ECR (BatchGetImage): the gates read an image's
    manifest to find the platform images ECR scans."""

    registry = "moto-ecr"

    def __init__(self, client: Any) -> None:
        self.client = client

    def get_manifest(self, repository: str, reference: str) -> Manifest | None:
        key = "imageDigest" if reference.startswith("sha256:") else "imageTag"
        images = self.client.batch_get_image(repositoryName=repository, imageIds=[{key: reference}])["images"]
        if not images:
            return None
        image = images[0]
        raw = image["imageManifest"].encode()
        return parse_manifest(
            raw, image.get("imageManifestMediaType"), image["imageId"]["imageDigest"], repository
        )


class ImageTagAlreadyExistsException(ServiceException):
    """What ECR answers PutImage with when an immutable tag would move to another image."""

    code = "ImageTagAlreadyExistsException"


def _put_image_as_ecr(original: Callable[..., Any]) -> Callable[..., Any]:
    def put_image(backend: ECRBackend, repository_name: str, image_manifest: str, image_tag: str, *args: Any, **kwargs: Any) -> Any:  # fmt: skip
        try:
            return original(backend, repository_name, image_manifest, image_tag, *args, **kwargs)
        except ImageAlreadyExistsException:
            tagged = next(
                i for i in backend.repositories[repository_name].images if image_tag in i.image_tags
            )
            if tagged.image_manifest == image_manifest:
                raise  # the same image under the same tag: ECR's ImageAlreadyExistsException
            raise ImageTagAlreadyExistsException(
                f"The image tag '{image_tag}' already exists in the '{repository_name}' repository and cannot be "
                "overwritten because the tag is immutable."
            ) from None

    return put_image


@pytest.fixture
def ecr_tag_immutability(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's PutImage refusing an immutable tag's move as ECR does: ImageTagAlreadyExistsException ("Preventing
    image tags from being overwritten"); moto 5 answers ImageAlreadyExistsException, ECR's error for putting the
    same image again. BatchDeleteImage removes an immutable tag in both (API reference, BatchDeleteImage)."""
    monkeypatch.setattr(ECRBackend, "put_image", _put_image_as_ecr(ECRBackend.put_image))
