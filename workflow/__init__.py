"""ecr-filtered-replication: replicate only the ECR images you choose, digest-preserving."""

from __future__ import annotations

__version__ = "0.1.0"
