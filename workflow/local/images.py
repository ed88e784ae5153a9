"""Small, real OCI images built in memory and pushed to a registry with plain distribution-API calls.

The pusher is deliberately independent of the copy engine, so the demo and the e2e tests do not use
the code under test to set up their inputs.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass, field

import httpx

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def sha256(data: bytes) -> str:
    """The `sha256:<hex>` digest of some bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Blob:
    """Bytes with their media type and digest."""

    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        """The blob's digest."""
        return sha256(self.data)

    def descriptor(self, **extra: object) -> dict[str, object]:
        """The OCI descriptor pointing at this blob."""
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data), **extra}


@dataclass(frozen=True)
class Image:
    """An image: the top manifest (an index or a single manifest), its children and all blobs."""

    top: Blob
    manifests: list[Blob] = field(default_factory=list)
    blobs: list[Blob] = field(default_factory=list)
    platforms: list[str] = field(default_factory=list)

    @property
    def digest(self) -> str:
        """The digest a registry reports for the tag (the index digest for a multi-platform image)."""
        return self.top.digest

    @property
    def size(self) -> int:
        """Total bytes of blobs and manifests."""
        return sum(len(b.data) for b in (*self.blobs, *self.manifests, self.top))


def _layer(label: str, size: int) -> Blob:
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w") as archive:
        content = os.urandom(size)
        info = tarfile.TarInfo(f"data/{label}.bin")
        info.size = len(content)
        info.mtime = 0
        archive.addfile(info, io.BytesIO(content))
    return Blob(OCI_LAYER, gzip.compress(payload.getvalue(), mtime=0))


def _platform_image(os_name: str, architecture: str, label: str, layer_sizes: tuple[int, ...]) -> list[Blob]:
    layers = [_layer(f"{label}-{architecture}-{index}", size) for index, size in enumerate(layer_sizes)]
    config = {
        "architecture": architecture,
        "os": os_name,
        "config": {"Labels": {"org.opencontainers.image.title": label}},
        "rootfs": {"type": "layers", "diff_ids": [sha256(gzip.decompress(layer.data)) for layer in layers]},
    }
    config_blob = Blob(OCI_CONFIG, json.dumps(config, sort_keys=True).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config_blob.descriptor(),
        "layers": [layer.descriptor() for layer in layers],
    }
    return [Blob(OCI_MANIFEST, json.dumps(manifest, sort_keys=True).encode()), config_blob, *layers]


def build_image(
    label: str,
    platforms: tuple[str, ...] = ("linux/amd64",),
    layer_sizes: tuple[int, ...] = (64 * 1024, 16 * 1024),
) -> Image:
    """Build an image with random layers; two or more platforms give an OCI index."""
    manifests: list[Blob] = []
    blobs: list[Blob] = []
    descriptors = []
    for platform in platforms:
        os_name, _, architecture = platform.partition("/")
        manifest, *platform_blobs = _platform_image(os_name, architecture, label, layer_sizes)
        manifests.append(manifest)
        blobs.extend(platform_blobs)
        descriptors.append(manifest.descriptor(platform={"os": os_name, "architecture": architecture}))
    if len(platforms) == 1:
        return Image(top=manifests[0], blobs=blobs, platforms=list(platforms))
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}
    top = Blob(OCI_INDEX, json.dumps(index, sort_keys=True).encode())
    return Image(top=top, manifests=manifests, blobs=blobs, platforms=list(platforms))


def _check(response: httpx.Response, what: str) -> None:
    if response.status_code >= 300:
        raise RuntimeError(f"{what}: HTTP {response.status_code} {response.text.strip()[:200]}")


def _push_blob(client: httpx.Client, repository: str, blob: Blob) -> None:
    if client.head(f"/v2/{repository}/blobs/{blob.digest}").status_code == 200:
        return
    started = client.post(f"/v2/{repository}/blobs/uploads/")
    _check(started, f"start upload of {blob.digest}")
    location = started.headers["Location"]
    separator = "&" if "?" in location else "?"
    finished = client.put(f"{location}{separator}digest={blob.digest}", content=blob.data)
    _check(finished, f"upload of {blob.digest}")


def _put_manifest(client: httpx.Client, repository: str, reference: str, manifest: Blob) -> None:
    response = client.put(
        f"/v2/{repository}/manifests/{reference}",
        content=manifest.data,
        headers={"Content-Type": manifest.media_type},
    )
    _check(response, f"put manifest {repository}:{reference}")


def push_image(registry_url: str, repository: str, tag: str, image: Image) -> str:
    """Push every blob, then the platform manifests, then the tag; returns the tag's digest."""
    # A plain-HTTP registry needs no TLS context (httpx would load its CA bundle for each push, 30 ms).
    verify = registry_url.startswith("https://")
    with httpx.Client(base_url=registry_url, timeout=30.0, verify=verify) as client:
        for blob in image.blobs:
            _push_blob(client, repository, blob)
        for manifest in image.manifests:
            _put_manifest(client, repository, manifest.digest, manifest)
        _put_manifest(client, repository, tag, image.top)
    return image.digest
