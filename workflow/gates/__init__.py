"""Promotion gates: an image replicates under a rule only when it passes that rule's scan and signature policy.

- `policy`: the `gates:` config of a rule (scan thresholds, trusted cosign keys and Notation anchors).
- `scan`: ECR `DescribeImageScanFindings` -> a Decision (pass, wait, block).
- `cosign`, `notation`: cryptographic verification of one signature over an exact manifest digest.
- `discovery`: finds signatures through the OCI referrers API and cosign's `sha256-<hex>.sig` tag.
- `signature`: every signature found -> a Decision.
"""

from __future__ import annotations

from workflow.gates.decision import Decision, Verdict
from workflow.gates.policy import Gates, IgnoredFinding, ScanGate, Severity, SignatureGate

__all__ = ["Decision", "Gates", "IgnoredFinding", "ScanGate", "Severity", "SignatureGate", "Verdict"]
