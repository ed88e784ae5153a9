"""Session-wide: record every AWS call the components make, for the IAM coverage test (tests/iam).

The recorder is installed before any test runs, in this process and (through PYTHONPATH and
`tests/iam/site/sitecustomize.py`) in every Python subprocess the tests start; the coverage test is
moved to the end of the session, after the suites whose calls it checks.

With ECR_REPLICATE_IAM_RECORD already set, the calls are appended to that file instead of a fresh one: record
once (`ECR_REPLICATE_IAM_RECORD=/tmp/calls.jsonl pytest tests`), then check the coverage test alone against a
change in infra/ (`ECR_REPLICATE_IAM_RECORD=/tmp/calls.jsonl pytest tests/iam/test_iam_coverage.py`).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from tests.iam.recorder import RECORD_ENV, install

SITE = Path(__file__).resolve().parent / "iam" / "site"
COVERAGE_TEST = "tests/iam/test_iam_coverage.py"


def pytest_configure(config: pytest.Config) -> None:
    """Start recording to a fresh file (or the one ECR_REPLICATE_IAM_RECORD names), here and in subprocesses."""
    path = os.environ.get(RECORD_ENV) or os.path.join(tempfile.mkdtemp(prefix="iam-calls-"), "calls.jsonl")
    os.environ[RECORD_ENV] = path
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SITE), os.environ.get("PYTHONPATH")]))
    install(path)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the IAM coverage test last, after every suite that records calls; before it, the tests that start a
    local runtime of their own (starting one resets moto, and with it the e2e suite's shared runtime)."""
    items.sort(
        key=lambda item: (
            item.nodeid.startswith(COVERAGE_TEST),
            item.get_closest_marker("own_runtime") is not None,
        )
    )
