"""The signature gate: pass with one signature that verifies, over this digest, by a trusted identity.

Trusted identities are cosign keys, Notation trust stores (CA anchors and signing authorities) and ECR managed
signing with a named signing profile. CI signs after it pushes (and ECR managed signing signs moments after the
push), so what may still come is waited for, up to the gate's `wait_minutes`: no signature yet, a managed
signing IN_PROGRESS or not started. A signature that is there and fails verification, or managed signing that
FAILED, blocks at once. Referrers that cannot be read are named beside the decision, never counted.
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


def _blocked(found: list[FoundSignature], signatures: list[FoundSignature], reading: _Reading) -> Decision:
    if signatures and reading.refusals and not reading.pending:
        plural = "s" if len(signatures) != 1 else ""
        parts = ["no signature by a trusted identity", f"found {len(signatures)} signature{plural}: "
                 f"{_listed(reading.refusals)}"]  # fmt: skip
    else:
        parts = [*reading.refusals, *reading.pending]
    if unreadable := _unreadable(found):
        parts.append(unreadable)
    parts += [f"{item.problem} ({item.where} not read)" for item in found if item.kind == "unread"]
    return Decision.blocked("; ".join(parts))


def evaluate_signatures(
    found: list[FoundSignature],
    gate: SignatureGate,
    digest: str,
    now: datetime | None = None,
    *,
    waited_seconds: float = 0,
    managed: SigningStatus | None = None,
) -> Decision:
    """Pass on the first trusted signature (naming anything unreadable beside it); wait while one may still
    come; else block, saying what was found and why it failed, what could not be read, and where the look
    stopped."""
    reading = _Reading()
    signatures = [item for item in found if item.kind in ("cosign", "notation")]
    unreadable = _unreadable(found)
    if gate.verifies_signatures:
        for item in signatures:
            try:
                verified = f"{_verify(item, gate, digest, now)}, {item.where}"
            except SignatureRefused as refusal:
                reading.refusals.append(f"{item.kind} signature ({item.where}): {refusal}")
                continue
            return Decision.passed(verified + (f" (skipped {unreadable})" if unreadable else ""))
        if not signatures:
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
    return _blocked(found, signatures, reading)
