"""CopyOutcome (the engine's plain result) stays the same record as CopyResult, and keeps pydantic out."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

from workflow.engine.copier import CopyOutcome
from workflow.models.payloads import CopyResult


def _outcome() -> CopyOutcome:
    return CopyOutcome(
        action="copied",
        source="src.example.com/app:v1",
        destination="dst.example.com/app:v1",
        source_digest="sha256:" + "a" * 64,
        destination_digest="sha256:" + "a" * 64,
        media_type="application/vnd.oci.image.index.v1+json",
        platforms=["linux/amd64", "linux/arm64"],
        blobs_copied=3,
        blobs_skipped=1,
        bytes_copied=1234,
        seconds=1.0,
        referrers_copied=0,
        finished_at="2026-12-01T03:12:09.000123+00:00",
    )


def test_outcome_has_exactly_the_fields_of_copy_result() -> None:
    # Given both records, Then they name the same fields in the same order
    assert [f.name for f in dataclasses.fields(CopyOutcome)] == list(CopyResult.model_fields)


def test_outcome_json_is_the_copy_result_json() -> None:
    # Given an outcome, When written as JSON, Then it is what CopyResult writes for the same values
    outcome = _outcome()
    result = CopyResult(**dataclasses.asdict(outcome))
    assert outcome.to_json() == result.model_dump_json()
    assert CopyResult.model_validate_json(outcome.to_json()) == result
    assert json.loads(outcome.to_json())["platforms"] == ["linux/amd64", "linux/arm64"]


def test_copy_command_does_not_import_pydantic() -> None:
    # Given a fresh interpreter, When the copy command module is loaded, Then pydantic is not
    code = "import sys, workflow.engine.copy; print('pydantic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
