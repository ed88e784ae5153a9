"""Promotion gates: an image replicates under a rule only when it passes that rule's scan and signature policy.

- `scan`: ECR `DescribeImageScanFindings` -> a Decision (pass, wait, block).
- `cosign`, `notation`: cryptographic verification of one signature over an exact manifest digest.
- `discovery`: finds signatures through the OCI referrers API and cosign's `sha256-<hex>.sig` tag.
- `signature`: every signature found -> a Decision.

The `gates:` config of a rule is workflow.models.policy; the Gate state, workflow.pipeline.gate.
May import: core/, registry/, engine/, models/.
"""
