"""Test-only: start the IAM call recorder in subprocesses (the local runtime's copy job) when asked.

The top-level tests/conftest.py puts this directory on PYTHONPATH and sets ECR_REPLICATE_IAM_RECORD.
"""

from __future__ import annotations

import os
import sys

if os.environ.get("ECR_REPLICATE_IAM_RECORD"):
    sys.path.append(
        os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    )
    from tests.iam.recorder import RECORD_ENV, install

    install(os.environ[RECORD_ENV])
