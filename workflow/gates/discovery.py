"""Find an image's signatures: OCI referrers (API, else the `sha256-<hex>` referrers tag) and cosign's `.sig` tag.

Both are how cosign and notation push them: notation and `cosign --registry-referrers-mode=oci-1-1` push
referrers; cosign by default pushes a manifest under the tag `sha256-<hex>.sig`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from workflow.core.exceptions import DigestMismatch
from workflow.gates import cosign, notation
from workflow.registry.client import RegistryClient
from workflow.registry.media import Descriptor, Manifest, compute_digest

MAX_SIGNATURE_MANIFESTS = 20  # referrers inspected per image; more is a sign of abuse, not of signing
MAX_SIGNATURE_BYTES = 64 << 10  # a payload or an envelope; a certificate chain is a few KiB
SIGNATURE_ARTIFACTS = frozenset({cosign.ARTIFACT_TYPE, notation.ARTIFACT_TYPE})


@dataclass(frozen=True)
class FoundSignature:
    """One signature: a cosign payload and its base64 signature, or a Notation envelope."""

    kind: Literal["cosign", "notation"]
    where: str
    media_type: str
    payload: bytes
    signature: str = ""
    problem: str = ""  # why it cannot be verified at all (too large to be a signature)


def tag_for(digest: str) -> str:
    """`sha256:<hex>` -> `sha256-<hex>`, the tag schema's name for things about that manifest."""
    return digest.replace(":", "-", 1)


def _layers(client: RegistryClient, repository: str, manifest: Manifest, where: str) -> list[FoundSignature]:
    found: list[FoundSignature] = []
    for layer in manifest.blobs[1:]:
        signature = layer.annotations.get(cosign.SIGNATURE_ANNOTATION, "")
        if layer.media_type == cosign.SIMPLE_SIGNING and signature:
            found.append(
                FoundSignature("cosign", where, layer.media_type, _read(client, repository, layer), signature)
            )
        elif layer.media_type in (notation.JWS, notation.COSE):
            found.append(
                FoundSignature("notation", where, layer.media_type, _read(client, repository, layer))
            )
    return found


def _read(client: RegistryClient, repository: str, layer: Descriptor) -> bytes:
    if layer.size > MAX_SIGNATURE_BYTES:
        return b""  # refused by the verifier as not a signature document
    data = client.read_blob(repository, layer.digest)
    if compute_digest(data, layer.digest) != layer.digest:
        raise DigestMismatch(
            f"{client.registry}/{repository}: signature blob {layer.digest} hashes otherwise"
        )
    return data


def find_signatures(client: RegistryClient, repository: str, digest: str) -> list[FoundSignature]:
    """Every cosign and Notation signature stored for the manifest `digest` in `repository`."""
    referrers = client.referrers(repository, digest)
    if referrers is None:
        index = client.get_manifest(repository, tag_for(digest))
        referrers = list(index.children) if index is not None and index.is_index else []
    found: list[FoundSignature] = []
    signing = [d for d in referrers if d.artifact_type in SIGNATURE_ARTIFACTS]
    for descriptor in signing[:MAX_SIGNATURE_MANIFESTS]:
        manifest = client.get_manifest(repository, descriptor.digest)
        if manifest is not None:
            found.extend(_layers(client, repository, manifest, f"referrer {descriptor.digest}"))
    tag = f"{tag_for(digest)}.sig"
    manifest = client.get_manifest(repository, tag)
    if manifest is not None and not manifest.is_index:
        found.extend(_layers(client, repository, manifest, f"tag {tag}"))
    return found
