"""The signature gate: pass with one signature that verifies, over this digest, by a trusted identity.

Trusted identities are cosign keys, Notation trust anchors and ECR managed signing with a named signing profile.
CI signs after it pushes (and ECR managed signing signs moments after the push), so what may still come is
waited for, up to the gate's `wait_minutes`: no signature yet, a managed signing IN_PROGRESS or not started.
A signature that is there and fails verification, or managed signing that FAILED, blocks at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from workflow.gates.cosign import verify_cosign
from workflow.gates.decision import Decision, SignatureRefused
from workflow.gates.discovery import FoundSignature
from workflow.gates.managed import NOT_FOUND, SigningStatus, managed_signature
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


@dataclass
class _Reading:
    """What one look found: a pass, refusals (final), and what may still come (pending)."""

    passed: str = ""
    refusals: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)


def _read_managed(reading: _Reading, status: SigningStatus, found: list[FoundSignature], digest: str) -> None:
    who = f"ECR managed signing with {status.profile_arn}"
    if status.status == "FAILED":
        reading.refusals.append(f"{who} FAILED ({status.failure})")
    elif status.status == "IN_PROGRESS":
        reading.pending.append(f"{who} is IN_PROGRESS")
    elif status.status == NOT_FOUND:
        reading.pending.append(f"no {who} status (no signing rule with that profile matched the image)")
    else:
        try:
            reading.passed = f"signed by {who} ({managed_signature(found, status.profile_arn, digest)})"
        except SignatureRefused as refusal:
            reading.pending.append(f"{who} is COMPLETE, but {refusal}")


def _blocked(found: list[FoundSignature], reading: _Reading) -> Decision:
    if found and reading.refusals and not reading.pending:
        named = "; ".join(reading.refusals[:LISTED]) + (
            f"; and {len(reading.refusals) - LISTED} more" if len(reading.refusals) > LISTED else ""
        )
        return Decision.blocked(
            f"no signature by a trusted identity; found {len(found)} signature{'s' if len(found) != 1 else ''}: "
            f"{named}"
        )
    return Decision.blocked("; ".join([*reading.refusals, *reading.pending]))


def evaluate_signatures(
    found: list[FoundSignature],
    gate: SignatureGate,
    digest: str,
    now: datetime | None = None,
    *,
    waited_seconds: float = 0,
    managed: SigningStatus | None = None,
) -> Decision:
    """Pass on the first trusted signature; wait while one may still come; else block, saying what was found."""
    reading = _Reading()
    if gate.verifies_signatures:
        for item in found:
            try:
                return Decision.passed(f"{_verify(item, gate, digest, now)}, {item.where}")
            except SignatureRefused as refusal:
                reading.refusals.append(f"{item.kind} signature ({item.where}): {refusal}")
        if not found:
            reading.pending.append(f"no signature found for {digest} (OCI referrers and the cosign .sig tag)")
    if managed is not None:
        _read_managed(reading, managed, found, digest)
        if reading.passed:
            return Decision.passed(reading.passed)
    if reading.pending and waited_seconds < gate.wait_minutes * 60:
        return Decision.waiting(
            f"{'; '.join(reading.pending)}; waited {int(waited_seconds // 60)} of {gate.wait_minutes} min"
        )
    reading.pending = [f"{text}, after waiting {gate.wait_minutes} min" for text in reading.pending]
    return _blocked(found, reading)
