"""ecr-filtered-replication: replicate only the ECR images you choose, digest-preserving.

Packages by who runs the code, each importing only those before it (tests/unit/test_layering.py):
core -> registry -> engine (the copy job) -> models -> gates -> pipeline (the state machine's steps) -> ops
(what operators run) -> cli.py, commands/ and local/.
"""

from __future__ import annotations

__version__ = "0.1.0"
