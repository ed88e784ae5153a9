"""Find an image's signatures: cosign's `.sig` tag and OCI referrers (API, else the `sha256-<hex>` referrers tag).

Both are how cosign and notation push them: notation and `cosign --registry-referrers-mode=oci-1-1` push
referrers; cosign by default pushes a manifest under the tag `sha256-<hex>.sig`.

Anyone who can push to the repository can push referrers, so what they hold is hostile:
- a referrer listing, index, manifest or signature blob that cannot be read (not JSON, nested too deep, a
  digest that does not match) is one `unreadable` entry naming why; the others are still read, and a valid
  signature still counts. A registry that cannot be reached at all (RegistryUnavailable, RegistryTimeout,
  RegistryAuthError) still fails the look: nothing could be checked.
- the work of one look is bounded: at most MAX_SIGNATURE_MANIFESTS referrer manifests (plus the `.sig` tag)
  are fetched, and at most MAX_SIGNATURES_PER_LOOK signature layers are read and verified. The `.sig` tag
  comes first, then the referrers, one layer of each manifest in turn (a manifest of 250 layers cannot crowd
  out the others). At the bound the look stops reading and decides with what it found; an `unread` entry
  says how many layers were left, and a block names the bound.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from itertools import chain, zip_longest
from typing import Literal, TypeVar

from workflow.core.exceptions import DigestMismatch, RegistryProtocolError
from workflow.core.redaction import described
from workflow.gates import cosign, notation
from workflow.registry.client import RegistryClient
from workflow.registry.media import Descriptor, Manifest, compute_digest

MAX_SIGNATURE_MANIFESTS = 20  # referrers inspected per image; more is a sign of abuse, not of signing
MAX_SIGNATURES_PER_LOOK = 32  # signature layers read and verified per look, over all manifests
MAX_SIGNATURE_BYTES = 64 << 10  # a payload or an envelope; a certificate chain is a few KiB
SIGNATURE_ARTIFACTS = frozenset({cosign.ARTIFACT_TYPE, notation.ARTIFACT_TYPE})
# What a hostile referrer can make a read raise: the content is refused, the registry itself is fine.
UNREADABLE = (RegistryProtocolError, DigestMismatch)
Kind = Literal["cosign", "notation", "unreadable", "unread"]
T = TypeVar("T")


@dataclass(frozen=True)
class FoundSignature:
    """One signature: a cosign payload and its base64 signature, or a Notation envelope; or what could not
    be read (`unreadable`: a referrer, `problem` says why) or was left at the bound (`unread`)."""

    kind: Kind
    where: str
    media_type: str = ""
    payload: bytes = b""
    signature: str = ""
    problem: str = ""  # why it cannot be verified at all (too large to be a signature, unreadable)


@dataclass(frozen=True)
class _Layer:
    kind: Literal["cosign", "notation"]
    where: str
    descriptor: Descriptor
    signature: str = ""


def tag_for(digest: str) -> str:
    """`sha256:<hex>` -> `sha256-<hex>`, the tag schema's name for things about that manifest."""
    return digest.replace(":", "-", 1)


def _signature_layers(manifest: Manifest, where: str) -> list[_Layer]:
    layers: list[_Layer] = []
    for layer in manifest.blobs[1:]:
        signature = layer.annotations.get(cosign.SIGNATURE_ANNOTATION, "")
        if layer.media_type == cosign.SIMPLE_SIGNING and signature:
            layers.append(_Layer("cosign", where, layer, signature))
        elif layer.media_type in (notation.JWS, notation.COSE):
            layers.append(_Layer("notation", where, layer))
    return layers


class _Look:
    """One look's reads: what was found, and what could not be read."""

    def __init__(self, client: RegistryClient, repository: str) -> None:
        self.client, self.repository = client, repository
        self.unreadable: list[FoundSignature] = []

    def attempt(self, read: Callable[[], T], where: str) -> T | None:
        """`read()`, or None with an `unreadable` entry when the content it read is refused."""
        try:
            return read()
        except UNREADABLE as error:
            self.unreadable.append(FoundSignature("unreadable", where, problem=described(error)))
            return None

    def referrers(self, digest: str) -> list[Descriptor]:
        """The signature referrers of `digest`: the API's listing, else the `sha256-<hex>` tag's index."""
        listed = self.attempt(
            lambda: self.client.referrers(self.repository, digest), f"referrers of {digest}"
        )
        if listed is None:
            tag = tag_for(digest)
            index = self.attempt(lambda: self.client.get_manifest(self.repository, tag), f"tag {tag}")
            listed = list(index.children) if index is not None and index.is_index else []
        return [d for d in listed if d.artifact_type in SIGNATURE_ARTIFACTS]

    def manifest(self, reference: str, where: str) -> Manifest | None:
        return self.attempt(lambda: self.client.get_manifest(self.repository, reference), where)

    def read(self, layer: _Layer) -> FoundSignature | None:
        """The signature of one layer (an oversized one is refused unread); None when unreadable."""
        descriptor = layer.descriptor
        found = FoundSignature(layer.kind, layer.where, descriptor.media_type, signature=layer.signature)
        if descriptor.size > MAX_SIGNATURE_BYTES:
            return replace(found, problem="too large to be a signature document")
        data = self.attempt(lambda: self._blob(descriptor), layer.where)
        return None if data is None else replace(found, payload=data)

    def _blob(self, descriptor: Descriptor) -> bytes:
        data = self.client.read_blob(self.repository, descriptor.digest, MAX_SIGNATURE_BYTES)
        if compute_digest(data, descriptor.digest) != descriptor.digest:
            raise DigestMismatch(
                f"{self.client.registry}/{self.repository}: signature blob {descriptor.digest} hashes otherwise"
            )
        return data


def find_signatures(client: RegistryClient, repository: str, digest: str) -> list[FoundSignature]:
    """Every cosign and Notation signature stored for the manifest `digest` in `repository`, within the
    look's bounds (see the module docstring), then what could not be read."""
    look = _Look(client, repository)
    per_manifest: list[list[_Layer]] = []
    tag = f"{tag_for(digest)}.sig"
    signatures = look.manifest(tag, f"tag {tag}")
    if signatures is not None and not signatures.is_index:
        per_manifest.append(_signature_layers(signatures, f"tag {tag}"))
    for descriptor in look.referrers(digest)[:MAX_SIGNATURE_MANIFESTS]:
        where = f"referrer {descriptor.digest}"
        referrer = look.manifest(descriptor.digest, where)
        if referrer is not None:
            per_manifest.append(_signature_layers(referrer, where))
    layers = [layer for layer in chain.from_iterable(zip_longest(*per_manifest)) if layer is not None]
    found = [item for item in map(look.read, layers[:MAX_SIGNATURES_PER_LOOK]) if item is not None]
    if len(layers) > MAX_SIGNATURES_PER_LOOK:
        left = len(layers) - MAX_SIGNATURES_PER_LOOK
        found.append(
            FoundSignature(
                "unread",
                f"{left} more signature layer{'s' if left != 1 else ''}",
                problem=f"stopped after {MAX_SIGNATURES_PER_LOOK} signatures, the bound of one look",
            )
        )
    return found + look.unreadable
