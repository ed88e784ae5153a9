"""What ECR scans of an image: each platform image of an index, never the index, nor attestation manifests.

ECR scans image manifests, not image indexes: StartImageScan refuses an index ("An artifact with media type
'application/vnd.oci.image.index.v1+json' cannot be scanned", aws/containers-roadmap#1683), and the findings
of a multi-architecture image are asked for by the digest of a platform image (ECR Public user guide,
"Review scan findings for your premium images"). So the scan gate of an index reads the findings of every
platform image it lists and decides on the worst, naming the platform that blocked.

Not platform images: BuildKit's attestation manifests (annotation `vnd.docker.reference.type:
attestation-manifest`, platform `unknown/unknown`; Docker docs, "Image attestation storage"), and artifacts
listed in an index (descriptors with an `artifactType`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workflow.core.exceptions import GateCheckFailed, ImageNotFound
from workflow.gates.decision import Decision
from workflow.gates.scan import evaluate_scan, missing_result
from workflow.models.policy import ScanGate
from workflow.registry.client import RegistryClient
from workflow.registry.media import IMAGE_TYPES, INDEX_TYPES, Descriptor

# Platform images read per look: a real multi-arch image lists a handful; an index listing more is refused
# (read from the registry, so hostile until bounded), as the look must stay a few seconds of API calls.
MAX_PLATFORMS = 32
ATTESTATION = ("vnd.docker.reference.type", "attestation-manifest")
UNKNOWN_PLATFORM = "unknown/unknown"


@dataclass(frozen=True)
class PlatformImage:
    """One image ECR scans: its platform (`linux/arm64`; empty for a single-platform image) and digest."""

    platform: str
    digest: str


def _is_platform_image(child: Descriptor) -> bool:
    if child.annotations.get(ATTESTATION[0]) == ATTESTATION[1] or child.platform == UNKNOWN_PLATFORM:
        return False
    return child.media_type in IMAGE_TYPES and child.artifact_type is None


def scanned_images(registry: RegistryClient, repository: str, digest: str) -> list[PlatformImage]:
    """The images ECR scans for the manifest `digest`: itself, or the platform images of an index."""
    manifest = registry.get_manifest(repository, digest)
    if manifest is None:
        raise ImageNotFound(f"{registry.registry}/{repository}@{digest} not found (Gate)")
    if not manifest.is_index:
        return [PlatformImage("", digest)]
    nested = [c.digest for c in manifest.children if c.media_type in INDEX_TYPES]
    if nested:
        raise GateCheckFailed(
            f"{repository}@{digest} is an index listing another index ({nested[0]}): ECR scans neither, "
            "and the scan gate reads platform images one level down only"
        )
    images = [
        PlatformImage(c.platform or "unknown platform", c.digest)
        for c in manifest.children
        if _is_platform_image(c)
    ]
    if len(images) > MAX_PLATFORMS:
        raise GateCheckFailed(
            f"{repository}@{digest} lists {len(images)} platform images; the scan gate reads at most {MAX_PLATFORMS}"
        )
    return images


def evaluate_platform_scans(
    scans: Sequence[tuple[str, Mapping[str, Any]]], gate: ScanGate, waited_seconds: float = 0
) -> Decision:
    """The worst platform's decision (block, else wait, else pass), each reason led by its platform."""
    if not scans:
        return missing_result(
            gate, "the index lists no platform image ECR scans (only attestations or artifacts)"
        )
    decisions = [(platform, evaluate_scan(response, gate, waited_seconds)) for platform, response in scans]
    if len(decisions) == 1 and not decisions[0][0]:
        return decisions[0][1]
    for verdict in ("block", "wait"):
        named = [f"{platform}: {d.reason}" for platform, d in decisions if d.verdict == verdict]
        if named:
            return Decision(verdict, "; ".join(named))
    return Decision.passed("; ".join(f"{platform}: {d.reason}" for platform, d in decisions))
