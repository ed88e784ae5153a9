"""One image through every gated rule: its scan findings and signatures are read once, then decided per rule."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from workflow.gates.decision import Decision, combine
from workflow.gates.discovery import find_signatures
from workflow.gates.scan import evaluate_scan, read_scan_findings
from workflow.gates.signature import evaluate_signatures
from workflow.models.policy import Gates
from workflow.registry.client import RegistryClient


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
    scan = (
        read_scan_findings(ecr, repository, digest, registry_id)
        if any(g.scan for g in gates.values())
        else None
    )
    signatures = (
        find_signatures(registry, repository, digest) if any(g.signature for g in gates.values()) else None
    )
    decisions = {}
    for name, rule_gates in gates.items():
        parts = []
        if rule_gates.scan is not None and scan is not None:
            parts.append(evaluate_scan(scan, rule_gates.scan, waited_seconds))
        if rule_gates.signature is not None and signatures is not None:
            parts.append(evaluate_signatures(signatures, rule_gates.signature, digest, now))
        decisions[name] = combine(parts)
    return decisions
