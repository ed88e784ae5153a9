"""The signature gate: pass with one signature that verifies, over this digest, by a trusted identity."""

from __future__ import annotations

from datetime import datetime

from workflow.gates.cosign import verify_cosign
from workflow.gates.decision import Decision, SignatureRefused
from workflow.gates.discovery import FoundSignature
from workflow.gates.notation import verify_notation
from workflow.gates.policy import SignatureGate

LISTED = 3  # refusals named in a reason


def _verify(found: FoundSignature, gate: SignatureGate, digest: str, now: datetime | None) -> str:
    if found.problem:
        raise SignatureRefused(found.problem)
    if found.kind == "cosign":
        if not gate.public_keys:
            raise SignatureRefused("no cosign key is trusted by this rule")
        index = verify_cosign(found.payload, found.signature, gate.public_keys, digest)
        return f"signed with trusted cosign key {index}"
    if not gate.anchors and not gate.signing_authorities:
        raise SignatureRefused("no Notation trust anchor or signing authority is trusted by this rule")
    subject = verify_notation(
        found.payload,
        found.media_type,
        gate.anchors,
        digest,
        now,
        signing_authorities=gate.signing_authorities,
    )
    return f"signed by {subject} (Notation)"


def _listed(items: list[str]) -> str:
    return "; ".join(items[:LISTED]) + (f"; and {len(items) - LISTED} more" if len(items) > LISTED else "")


def _unreadable(found: list[FoundSignature]) -> str:
    """`N unreadable: where: why; ...`, or "" when everything could be read."""
    items = [f"{item.where}: {item.problem}" for item in found if item.kind == "unreadable"]
    return f"{len(items)} unreadable: {_listed(items)}" if items else ""


def evaluate_signatures(
    found: list[FoundSignature], gate: SignatureGate, digest: str, now: datetime | None = None
) -> Decision:
    """Pass on the first signature that verifies (naming anything unreadable beside it); otherwise block,
    saying what was found and why it failed, what could not be read, and where the look stopped."""
    signatures = [item for item in found if item.kind in ("cosign", "notation")]
    unreadable = _unreadable(found)
    refusals = []
    for item in signatures:
        try:
            verified = f"{_verify(item, gate, digest, now)}, {item.where}"
        except SignatureRefused as refusal:
            refusals.append(f"{item.kind} signature ({item.where}): {refusal}")
            continue
        return Decision.passed(verified + (f" (skipped {unreadable})" if unreadable else ""))
    if not found:
        return Decision.blocked(f"no signature found for {digest} (OCI referrers and the cosign .sig tag)")
    parts = ["no signature by a trusted identity"]
    if signatures:
        plural = "s" if len(signatures) != 1 else ""
        parts.append(f"found {len(signatures)} signature{plural}: {_listed(refusals)}")
    if unreadable:
        parts.append(unreadable)
    parts += [f"{item.problem} ({item.where} not read)" for item in found if item.kind == "unread"]
    return Decision.blocked("; ".join(parts))
