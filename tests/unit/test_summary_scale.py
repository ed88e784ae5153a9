"""The summary email stays one page at any scale: counts, the first failures, where the rest are, the retry."""

from __future__ import annotations

import json

from workflow.models.payloads import TargetResult
from workflow.pipeline.summary import FAILURES_SHOWN, PAGE_LINES, RunDetails, summarize

EXECUTION = "arn:aws:states:us-east-1:111111111111:execution:ecr-replication:push-abc123"
DIGEST = "sha256:" + "ab" * 32
RESULTS = "s3://fanout-bucket/runs/push-abc123/results/0f1e/manifest.json"
RETRY = "s3://fanout-bucket/runs/push-abc123/retry.json"


def fleet(count: int, failed_every: int) -> list[TargetResult]:
    """`count` destinations in 250 accounts x 4 Regions; every `failed_every`-th failed with a long cause."""
    regions = ("eu-west-1", "us-west-2", "ap-southeast-2", "eu-central-1")
    results = []
    for index in range(count):
        account = f"{200000000000 + index // 4:012d}"
        region = regions[index % 4]
        if index % failed_every == 0:
            results.append(
                TargetResult(
                    account=account,
                    region=region,
                    repository="app",
                    tag="release-1.2.0",
                    status="failed",
                    error="RegistryUnavailable" if index % 3 else "RegistryAuthError",
                    cause="503 Service Unavailable from the registry after 5 attempts " + "z" * 400,
                )
            )
        else:
            results.append(
                TargetResult(
                    account=account,
                    region=region,
                    repository="app",
                    tag="release-1.2.0",
                    status="copied",
                    digest=DIGEST,
                    bytes_copied=10_000_000,
                    seconds=12.5,
                )
            )
    return results


def test_a_thousand_failed_destinations_fit_one_page_with_counts_first_failures_location_and_retry() -> None:
    # Given 2,000 destinations of which 1,000 failed with long causes
    results = fleet(2000, failed_every=2)
    # When summarized at scale (results and the retry input in the fan-out bucket)
    summary = summarize(
        results,
        repository="app",
        tag="release-1.2.0",
        execution_arn=EXECUTION,
        details=RunDetails(results_uri=RESULTS, retry_uri=RETRY),
    )
    lines = summary.message.splitlines()
    # Then the email is one page: a bounded number of lines, none of them a wall of text
    assert len(lines) <= PAGE_LINES, len(lines)
    assert max(len(line) for line in lines) <= 400
    # And it gives the counts per outcome, the first failures by name, and where the rest are
    assert lines[0].startswith(
        "ECR replication of app:release-1.2.0: PARTIAL (2000 destinations: 1000 copied"
    )
    assert "FAILED (1000):" in summary.message
    listed = [line for line in lines if line.startswith("- 2")]
    assert len(listed) == FAILURES_SHOWN
    assert f"and {1000 - FAILURES_SHOWN} more" in summary.message
    assert RESULTS in summary.message
    # And the retry command re-runs exactly the failed destinations, from the input stored for it
    assert RETRY in summary.message
    assert "aws stepfunctions start-execution" in summary.message
    # And the summary's own lines stay bounded too (the state machine's output)
    assert len(summary.lines) <= FAILURES_SHOWN
    assert len(json.dumps(summary.model_dump(mode="json"))) < 64 * 1024


def test_a_small_run_keeps_every_destination_in_its_table() -> None:
    # Given 12 destinations, 2 failed
    results = fleet(12, failed_every=6)
    # When summarized without run details (an inline run)
    summary = summarize(results, repository="app", tag="release-1.2.0", execution_arn=EXECUTION)
    # Then the table lists all 12 and the retry names both failed destinations
    table = summary.message.split("Destinations:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert len(table) == 1 + 12
    assert sum(1 for row in table if " copied " in row) == 10
    assert summary.message.count("--destination ") == 2
    assert len(summary.lines) == 12


def test_a_delete_with_many_failures_is_never_retried_by_start_which_would_replicate() -> None:
    # Given 20 destinations where a delete failed, in an inline run (no stored retry input)
    results = [
        TargetResult(
            account=f"{200000000000 + i:012d}",
            region="eu-west-1",
            repository="web",
            tag="release-1",
            status="failed",
            digest=DIGEST,
            error="TagDeleteRefused",
            cause="refused",
        )
        for i in range(20)
    ]
    summary = summarize(results, repository="web", tag="release-1", execution_arn=EXECUTION, action="delete")
    # Then the retry is the delete's input, naming each destination and the digest, and no start command
    assert '"action": "delete"' in summary.message
    assert "ecr-replicate start" not in summary.message
    assert summary.message.count('"account"') == 20
