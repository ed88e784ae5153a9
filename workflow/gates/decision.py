"""The result of one gate: pass, wait (ask again later) or block, with a reason a person can act on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Verdict = Literal["pass", "wait", "block"]


@dataclass(frozen=True)
class Decision:
    """One gate's verdict and why."""

    verdict: Verdict
    reason: str

    @classmethod
    def passed(cls, reason: str) -> Decision:
        """The image may replicate."""
        return cls("pass", reason)

    @classmethod
    def waiting(cls, reason: str) -> Decision:
        """No answer yet (a scan still running); ask again later."""
        return cls("wait", reason)

    @classmethod
    def blocked(cls, reason: str) -> Decision:
        """The image must not replicate under this rule."""
        return cls("block", reason)


def combine(decisions: list[Decision]) -> Decision:
    """All of a rule's gates at once: any block blocks (no point waiting), else any wait waits, else pass."""
    for verdict in ("block", "wait"):
        reasons = [d.reason for d in decisions if d.verdict == verdict]
        if reasons:
            return Decision(verdict, "; ".join(reasons))
    return Decision.passed("; ".join(d.reason for d in decisions))


class SignatureRefused(Exception):
    """One signature does not count, and why. Caught within the signature gate: never a Step Functions error."""
