"""A copy build that ends with a bad RESULT fails its own destination, never the whole execution.

On AWS a failed JSONPath or intrinsic function raises States.Runtime and an oversized payload
States.DataLimitExceeded; no Catch catches either, and the execution would die with every other
destination's record and no summary. The local runtime makes both terminal as AWS does (bridges.py).
RESULTs that are JSON but not a copy result are covered, without a build, in tests/unit/test_records.py.
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import E2E, EU, US, statuses
from workflow.local.runtime import Execution

pytestmark = pytest.mark.e2e

HUGE_PLATFORMS = [f"linux/arch-{index:06d}" for index in range(20_000)]  # about 400 KB as JSON


def huge_result(destination: str) -> str:
    """A well-formed CopyResult far over the buildspec's 32 KiB and Step Functions' 256 KiB."""
    digest = "sha256:" + "a" * 64
    return json.dumps(
        {
            "action": "copied",
            "source": f"source/app@{digest}",
            "destination": destination,
            "source_digest": digest,
            "destination_digest": digest,
            "media_type": "application/vnd.oci.image.index.v1+json",
            "platforms": HUGE_PLATFORMS,
            "blobs_copied": 1,
            "blobs_skipped": 0,
            "bytes_copied": 1,
            "seconds": 0.1,
            "referrers_copied": 0,
        }
    )


def run_with_broken_eu(e2e: E2E, break_build: str, value: str | None) -> tuple[Execution, str, str]:
    """Push a release, break eu-west-1's build as asked, replicate it; returns (execution, tag, digest)."""
    tag = e2e.new_tag()
    image = e2e.push(tag)
    destination = f"{e2e.runtime.registry_of(EU['account'], EU['region']).host}/app:{tag}"
    if break_build == "export":
        e2e.runtime.codebuild.export_instead(destination, value)
    else:
        e2e.runtime.codebuild.copier_writes(
            destination, huge_result(destination) if value == "huge" else value
        )
    [execution] = e2e.run_event(tag, image)
    return execution, tag, image.digest


@pytest.mark.parametrize(
    ("break_build", "value", "error", "says"),
    [
        ("export", None, "CopyResultInvalid", "exported no RESULT"),
        ("export", "", "CopyResultInvalid", "exported an empty RESULT"),
        ("export", "copied, all fine", "CopyResultInvalid", "RESULT is not JSON"),
        ("export", "x" * 100_000, "CopyResultInvalid", "RESULT of 100,000 bytes"),
        ("copier", "huge", "CopyFailed", "ended FAILED in phase BUILD"),
        ("copier", None, "CopyFailed", "ended FAILED in phase BUILD"),
    ],
    ids=[
        "no-result",
        "empty",
        "not-json",
        "large-below-the-quota",
        "huge-result-file",
        "no-result-file",
    ],
)
def test_a_bad_build_result_fails_only_its_destination_and_the_summary_is_sent(
    e2e: E2E, break_build: str, value: str | None, error: str, says: str
) -> None:
    # Given two destinations, and eu-west-1's copy build ending with a bad RESULT
    # When the release is replicated
    execution, tag, digest = run_with_broken_eu(e2e, break_build, value)
    # Then the execution ends FAILED as PARTIAL (not States.Runtime or States.DataLimitExceeded)
    assert execution.status == "FAILED"
    assert execution.error == "ReplicationFailed", execution.cause
    # And us-west-2 is copied, eu-west-1 has nothing
    assert e2e.digest_at(US, tag) == digest
    assert e2e.digest_at(EU, tag) is None
    assert statuses(execution) == {"222222222222/eu-west-1": "failed", "333333333333/us-west-2": "copied"}
    # And eu-west-1's record is a failed one with a named error saying what was wrong
    summary = execution.state_outputs("Summarize")[-1]["summary"]
    [broken] = [line for line in summary["lines"] if line["account"] == EU["account"]]
    assert broken["error"] == error
    assert says in broken["cause"]
    assert len(broken["cause"]) <= 500
    # And the summary was emailed, naming the failed destination and its error
    [notification] = e2e.runtime.notifications()
    assert "PARTIAL" in notification["subject"]
    assert "222222222222/eu-west-1" in notification["message"]
    assert error in notification["message"]
