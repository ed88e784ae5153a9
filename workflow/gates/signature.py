"""The signature gate: pass with one signature that verifies, over this digest, by a trusted identity."""

from __future__ import annotations

from datetime import datetime

from workflow.gates.cosign import verify_cosign
from workflow.gates.decision import Decision, SignatureRefused
from workflow.gates.discovery import FoundSignature
from workflow.gates.notation import verify_notation
from workflow.models.policy import SignatureGate

LISTED = 3  # refusals named in a reason


def _verify(found: FoundSignature, gate: SignatureGate, digest: str, now: datetime | None) -> str:
    if found.problem:
        raise SignatureRefused(found.problem)
    if found.kind == "cosign":
        if not gate.public_keys:
            raise SignatureRefused("no cosign key is trusted by this rule")
        index = verify_cosign(found.payload, found.signature, gate.public_keys, digest)
        return f"signed with trusted cosign key {index}"
    if not gate.anchors:
        raise SignatureRefused("no Notation trust anchor is trusted by this rule")
    return (
        f"signed by {verify_notation(found.payload, found.media_type, gate.anchors, digest, now)} (Notation)"
    )


def evaluate_signatures(
    found: list[FoundSignature], gate: SignatureGate, digest: str, now: datetime | None = None
) -> Decision:
    """Pass on the first signature that verifies; otherwise block, saying what was found and why it failed."""
    if not found:
        return Decision.blocked(f"no signature found for {digest} (OCI referrers and the cosign .sig tag)")
    refusals = []
    for item in found:
        try:
            return Decision.passed(f"{_verify(item, gate, digest, now)}, {item.where}")
        except SignatureRefused as refusal:
            refusals.append(f"{item.kind} signature ({item.where}): {refusal}")
    named = "; ".join(refusals[:LISTED]) + (
        f"; and {len(refusals) - LISTED} more" if len(refusals) > LISTED else ""
    )
    return Decision.blocked(
        f"no signature by a trusted identity; found {len(found)} signature{'s' if len(found) != 1 else ''}: {named}"
    )
