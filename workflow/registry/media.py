"""Manifest media types and the parts of a manifest the copy engine needs."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from workflow.core.exceptions import RegistryProtocolError
from workflow.registry import paths

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"

INDEX_TYPES = frozenset({DOCKER_MANIFEST_LIST, OCI_INDEX})
IMAGE_TYPES = frozenset({DOCKER_MANIFEST, OCI_MANIFEST})
MANIFEST_TYPES = INDEX_TYPES | IMAGE_TYPES
ACCEPT = ", ".join((OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST))
# Layers a registry does not hold (Windows base layers): a client fetches them from the descriptor's
# `urls`, and a registry accepts a manifest listing them without the blob. Docker's foreign layer and
# the OCI image-spec's non-distributable layers (layer.md, "Non-distributable layers").
FOREIGN_LAYER_TYPES = frozenset(
    {
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    }
)


def sha256_digest(data: bytes) -> str:
    """The `sha256:<hex>` digest of `data`."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def new_hasher(digest: str) -> Any:
    """A hashlib object for the algorithm named in `digest`."""
    algorithm = digest.split(":", 1)[0]
    if algorithm not in ("sha256", "sha512"):
        raise RegistryProtocolError(f"unsupported digest algorithm in {digest}")
    return hashlib.new(algorithm)


def compute_digest(data: bytes, like: str = "sha256:") -> str:
    """The digest of `data` with the algorithm of `like`."""
    hasher = new_hasher(like)
    hasher.update(data)
    return f"{hasher.name}:{hasher.hexdigest()}"


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor."""

    media_type: str
    digest: str
    size: int
    platform: str | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def foreign(self) -> bool:
        """True for a layer that registries do not hold (only its manifest is copied)."""
        return self.media_type in FOREIGN_LAYER_TYPES

    def to_json(self) -> dict[str, Any]:
        """The descriptor as it appears in an index."""
        data: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.artifact_type:
            data["artifactType"] = self.artifact_type
        if self.annotations:
            data["annotations"] = self.annotations
        return data


@dataclass(frozen=True)
class Manifest:
    """A manifest's exact bytes plus what was parsed from them."""

    raw: bytes
    media_type: str
    digest: str
    children: tuple[Descriptor, ...] = ()
    blobs: tuple[Descriptor, ...] = ()
    subject: Descriptor | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def is_index(self) -> bool:
        """True for a manifest list or an OCI index."""
        return self.media_type in INDEX_TYPES

    def descriptor(self) -> Descriptor:
        """A descriptor pointing at this manifest."""
        return Descriptor(
            self.media_type,
            self.digest,
            len(self.raw),
            artifact_type=self.artifact_type,
            annotations=self.annotations,
        )


def _descriptor(data: Any, where: str) -> Descriptor:
    if not isinstance(data, dict):
        raise RegistryProtocolError(f"{where}: descriptor is not an object")
    if "digest" not in data or "size" not in data:
        raise RegistryProtocolError(f"{where}: descriptor without a digest and a size")
    digest, size = paths.digest(data["digest"], where), paths.size(data["size"], where)
    artifact_type = data.get("artifactType")
    platform = None
    if isinstance(data.get("platform"), dict):
        p = data["platform"]
        platform = "/".join(str(x) for x in (p.get("os"), p.get("architecture"), p.get("variant")) if x)
    annotations: dict[str, str] = data["annotations"] if isinstance(data.get("annotations"), dict) else {}
    return Descriptor(
        media_type=paths.media_type(data.get("mediaType", ""), where),
        digest=digest,
        size=size,
        platform=platform,
        artifact_type=None if artifact_type is None else paths.media_type(artifact_type, where),
        annotations=annotations,
    )


def parse_manifest(raw: bytes, content_type: str | None, digest: str, where: str) -> Manifest:
    """Parse `raw` into a Manifest; `where` names the registry/repository in error messages."""
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise RegistryProtocolError(f"{where}: manifest {digest} is not JSON") from exc
    if not isinstance(data, dict):
        raise RegistryProtocolError(f"{where}: manifest {digest} is not a JSON object")
    media_type = data.get("mediaType") or (content_type or "").split(";")[0].strip()
    if media_type not in MANIFEST_TYPES:
        if "manifests" in data:
            media_type = OCI_INDEX
        elif "config" in data and "layers" in data:
            media_type = OCI_MANIFEST
        else:
            raise RegistryProtocolError(
                f"{where}: manifest {digest} has unsupported media type {media_type!r}"
            )
    subject = _descriptor(data["subject"], where) if "subject" in data else None
    annotations: dict[str, str] = data["annotations"] if isinstance(data.get("annotations"), dict) else {}
    artifact_type = data.get("artifactType")
    if artifact_type is not None:
        artifact_type = paths.media_type(artifact_type, where)
    if media_type in INDEX_TYPES:
        children = tuple(_descriptor(d, where) for d in data.get("manifests") or [])
        return Manifest(
            raw,
            media_type,
            digest,
            children=children,
            subject=subject,
            artifact_type=artifact_type,
            annotations=annotations,
        )
    config = _descriptor(data.get("config"), where)
    layers = tuple(_descriptor(d, where) for d in data.get("layers") or [])
    if artifact_type is None and config.media_type not in ("", "application/vnd.oci.image.config.v1+json"):
        artifact_type = config.media_type
    return Manifest(
        raw,
        media_type,
        digest,
        blobs=(config, *layers),
        subject=subject,
        artifact_type=artifact_type,
        annotations=annotations,
    )
