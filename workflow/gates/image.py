"""One image through every gated rule: its scans, signatures and signing status are read once, then decided per rule.

Scans are read per platform image (workflow/gates/platforms.py): ECR scans those, not an index.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from workflow.gates.decision import Decision, combine
from workflow.gates.discovery import FoundSignature, find_signatures
from workflow.gates.managed import SigningStatus, read_signing_status
from workflow.gates.platforms import evaluate_platform_scans, scanned_images
from workflow.gates.scan import read_scan_findings
from workflow.gates.signature import evaluate_signatures
from workflow.models.policy import Gates
from workflow.registry.client import RegistryClient


def _scans(
    ecr: Any, registry: RegistryClient, repository: str, digest: str, registry_id: str | None
) -> list[tuple[str, dict[str, Any]]]:
    return [
        (image.platform, read_scan_findings(ecr, repository, image.digest, registry_id))
        for image in scanned_images(registry, repository, digest)
    ]


def _signing_statuses(
    gates: Mapping[str, Gates], ecr: Any, repository: str, digest: str, registry_id: str | None
) -> dict[str, SigningStatus]:
    """Profile ARN -> the image's managed signing status, one DescribeImageSigningStatus call per profile."""
    profiles = {
        g.signature.ecr_managed_signing.signing_profile_arn
        for g in gates.values()
        if g.signature is not None and g.signature.ecr_managed_signing is not None
    }
    return {arn: read_signing_status(ecr, repository, digest, arn, registry_id) for arn in sorted(profiles)}


def gate_image(
    gates: Mapping[str, Gates],
    repository: str,
    digest: str,
    *,
    ecr: Any,
    registry: RegistryClient,
    registry_id: str | None = None,
    waited_seconds: float = 0,
    now: datetime | None = None,
) -> dict[str, Decision]:
    """Rule name -> its decision for the manifest `digest` (the index digest of a multi-arch image)."""
    scans = (
        _scans(ecr, registry, repository, digest, registry_id)
        if any(g.scan for g in gates.values())
        else None
    )
    signed = any(g.signature for g in gates.values())
    signatures: list[FoundSignature] = find_signatures(registry, repository, digest) if signed else []
    statuses = _signing_statuses(gates, ecr, repository, digest, registry_id)
    decisions = {}
    for name, rule_gates in gates.items():
        parts = []
        if rule_gates.scan is not None and scans is not None:
            parts.append(evaluate_platform_scans(scans, rule_gates.scan, waited_seconds))
        signature = rule_gates.signature
        if signature is not None:
            managed = signature.ecr_managed_signing
            parts.append(
                evaluate_signatures(
                    signatures,
                    signature,
                    digest,
                    now,
                    waited_seconds=waited_seconds,
                    managed=statuses[managed.signing_profile_arn] if managed else None,
                )
            )
        decisions[name] = combine(parts)
    return decisions
