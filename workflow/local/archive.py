"""Archived images in the local world: ECR's archive storage class (November 2025), as ECR behaves.

What ECR does (ECR user guide, "Archiving an image": https://docs.aws.amazon.com/AmazonECR/latest/userguide/
archive-image.html): "Archived images cannot be pulled. Requests to pull the archived image will fail with a
404 error. While the image cannot be pulled, it can still be described using the describe-images command,
or listed using the list-images command. The image status will be shown as ARCHIVED." A listing returns
only ACTIVE images unless its filter's `imageStatus` asks for ARCHIVED, ACTIVATING or ANY (API reference,
DescribeImagesFilter); UpdateImageStorageClass moves an image to the ARCHIVE storage class or back to
STANDARD, the image ACTIVATING until it is restored (API reference, UpdateImageStorageClass).

moto 5.2.5 has none of it, found by trying: DescribeImages ignores its filter (`tagStatus` too) and
UpdateImageStorageClass is not implemented. `applied()` makes moto's ECR do both while the context lasts:
a listing keeps the images its filter's `imageStatus` and `tagStatus` select (ACTIVE by default) and every
image detail says its `imageStatus`; UpdateImageStorageClass archives an image (ARCHIVED, `lastArchivedAt`)
or restores it (ACTIVATING; `activate()` ends the restore). `archive_in_registry` / `restore_in_registry`
make a local registry (distribution's filesystem storage) answer 404 for the archived manifest, by tag and
by digest, and serve it again once restored; the tag leaves the tag list meanwhile, as ListImages leaves it
out.
"""

from __future__ import annotations

import contextlib
import copy
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from unittest import mock

from moto.core.responses import ActionResult
from moto.ecr.models import ECRBackend, Image
from moto.ecr.responses import ECRResponse

ARCHIVE_DIRECTORY = "archived"  # beside the registry's storage root, out of the registry's sight


def status_of(image: Image) -> str:
    """An image's status in the stand-in (moto's images are ACTIVE until archived)."""
    return str(getattr(image, "image_status", "ACTIVE"))


def _selected(image: Image, image_status: str, tag_status: str) -> bool:
    if image_status != "ANY" and status_of(image) != image_status:
        return False
    if tag_status == "TAGGED":
        return bool(image.image_tags)
    return not image.image_tags if tag_status == "UNTAGGED" else True


def _describe_images(self: ECRResponse) -> ActionResult:
    """DescribeImages with its filter applied to a listing (an image named by `imageIds` is described
    whatever its status, as ECR's user guide says archived images can be), each detail with its status."""
    image_ids = self._get_param("imageIds")
    wanted = self._get_param("filter") or {}
    images = self.ecr_backend.describe_images(
        self._get_param("repositoryName"), self._get_param("registryId"), image_ids
    )
    details = []
    for image in images:
        if not image_ids and not _selected(
            image, wanted.get("imageStatus") or "ACTIVE", wanted.get("tagStatus") or "ANY"
        ):
            continue
        detail = copy.copy(image)
        detail.image_status = status_of(image)  # type: ignore[attr-defined]
        if not detail.image_tags:
            del detail.image_tags  # as moto's own handler: ECR leaves out an empty imageTags
        details.append(detail)
    return ActionResult({"imageDetails": details})


def _update_image_storage_class(self: ECRResponse) -> ActionResult:
    """UpdateImageStorageClass: ARCHIVE archives the image, STANDARD starts its restore (ACTIVATING)."""
    backend: ECRBackend = self.ecr_backend
    repository = self._get_param("repositoryName")
    image_id = self._get_param("imageId") or {}
    (image,) = backend.describe_images(repository, self._get_param("registryId"), [image_id])
    target = self._get_param("targetStorageClass")
    if target == "ARCHIVE":
        image.image_status = "ARCHIVED"  # type: ignore[attr-defined]
        image.last_archived_at = datetime.now(UTC)  # type: ignore[attr-defined]
    elif status_of(image) != "ACTIVE":
        image.image_status = "ACTIVATING"  # type: ignore[attr-defined]
    return ActionResult(
        {
            "registryId": image.registry_id,
            "repositoryName": repository,
            "imageId": {"imageDigest": image.get_image_digest()},
            "imageStatus": status_of(image),
        }
    )


def activate(backend: ECRBackend, repository: str, digest: str) -> None:
    """End the restore of an ACTIVATING image: it is ACTIVE again (ECR takes a while; the stand-in, a call)."""
    (image,) = backend.describe_images(repository, None, [{"imageDigest": digest}])
    image.image_status = "ACTIVE"  # type: ignore[attr-defined]


@contextlib.contextmanager
def applied() -> Iterator[None]:
    """Make moto's DescribeImages honour its filter and its UpdateImageStorageClass work, in this context."""
    with (
        mock.patch.object(ECRResponse, "describe_images", _describe_images),
        mock.patch.object(
            ECRResponse, "update_image_storage_class", _update_image_storage_class, create=True
        ),
    ):
        yield


def _links(storage: Path, repository: str, digest: str, tags: list[str]) -> list[Path]:
    """The filesystem entries that let a distribution registry serve `digest` and its `tags`."""
    manifests = storage / "docker/registry/v2/repositories" / repository / "_manifests"
    algorithm, hexdigest = digest.split(":", 1)
    return [manifests / "revisions" / algorithm / hexdigest, *(manifests / "tags" / tag for tag in tags)]


def _aside(storage: Path, path: Path) -> Path:
    return storage.parent / ARCHIVE_DIRECTORY / storage.name / path.relative_to(storage)


def archive_in_registry(storage: Path, repository: str, digest: str, tags: list[str]) -> None:
    """Make the registry whose storage root is `storage` answer 404 for `digest` and `tags` in `repository`."""
    for path in _links(storage, repository, digest, tags):
        aside = _aside(storage, path)
        aside.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(path, aside)


def restore_in_registry(storage: Path, repository: str, digest: str, tags: list[str]) -> None:
    """Serve what `archive_in_registry` took away again."""
    for path in _links(storage, repository, digest, tags):
        shutil.move(_aside(storage, path), path)
