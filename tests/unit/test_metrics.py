"""workflow.pipeline.metrics: the Summarize function's data points, their units and low-cardinality dimensions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from workflow.models.payloads import TargetResult
from workflow.pipeline.metrics import (
    ACTION,
    ERROR,
    OUTCOME,
    REGION,
    STATUS,
    Metric,
    error_dimension,
    summary_metrics,
)
from workflow.pipeline.summary import summarize

PUSHED = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
DIGEST = "sha256:" + "d" * 64


def record(region: str, status: str, seconds_after: float | None = None, **fields: object) -> TargetResult:
    finished = PUSHED + timedelta(seconds=seconds_after) if seconds_after is not None else None
    return TargetResult.model_validate(
        {
            "account": "222222222222",
            "region": region,
            "repository": "app",
            "tag": "release-1.2.0",
            "status": status,
            "digest": DIGEST,
            "finished_at": finished,
            **fields,
        }
    )


def test_a_partial_run_gives_counts_lag_and_copy_time_without_tags_or_digests() -> None:
    # Given a copy 30 s, a tag 5 s after the push, one target already present and two failures
    results = [
        record("eu-west-1", "copied", 30, seconds=12.5, bytes_copied=100),
        record("us-west-2", "tagged", 5),
        record("ap-south-1", "present"),
        record("eu-central-1", "failed", error="RegistryAuthError"),
        record("eu-north-1", "failed", error="DestinationTagImmutable"),
    ]
    summary = summarize(results, repository="app", tag="release-1.2.0")
    # When turned into data points
    points = summary_metrics(summary, results, PUSHED)
    by_key = {(p.metric, tuple(sorted(p.dimensions.items()))): (p.value, p.unit) for p in points}
    # Then the execution counts once by outcome, targets by status, failures by error name
    assert by_key[(Metric.EXECUTIONS, ((OUTCOME, "PARTIAL"),))] == (1, "Count")
    assert by_key[(Metric.TARGETS, ((STATUS, "failed"),))] == (2, "Count")
    assert by_key[(Metric.TARGETS, ((STATUS, "present"),))] == (1, "Count")
    assert by_key[(Metric.FAILURES_BY_ERROR, ((ERROR, "RegistryAuthError"),))] == (1, "Count")
    assert by_key[(Metric.BYTES_COPIED, ())] == (100, "Bytes")
    # and the lag of the copied and tagged destinations (not the present one) per Region, in seconds
    assert by_key[(Metric.REPLICATION_LAG, ((REGION, "eu-west-1"),))] == (30, "Seconds")
    assert by_key[(Metric.REPLICATION_LAG, ((REGION, "us-west-2"),))] == (5, "Seconds")
    assert sum(p.metric == Metric.REPLICATION_LAG for p in points) == 2
    assert by_key[(Metric.COPY_SECONDS, ())] == (12.5, "Seconds")
    # and no dimension is a tag, a digest or a repository
    for point in points:
        assert set(point.dimensions) <= {OUTCOME, STATUS, ACTION, REGION, ERROR}
        assert not {"release-1.2.0", DIGEST, "app"} & set(point.dimensions.values())


def test_no_lag_without_a_push_time_and_nothing_for_a_dry_run() -> None:
    # Given a copied record
    results = [record("eu-west-1", "copied", 30)]
    summary = summarize(results, repository="app", tag="t")
    # Then no push time means no lag, and a dry run emits nothing at all
    assert Metric.REPLICATION_LAG not in {p.metric for p in summary_metrics(summary, results, None)}
    dry = summarize(results, repository="app", tag="t", dry_run=True)
    assert summary_metrics(dry, results, PUSHED) == []


@pytest.mark.parametrize(
    ("error", "dimension"),
    [
        ("RegistryAuthError", "RegistryAuthError"),
        ("CodeBuild.AccountLimitExceededException", "CodeBuild.AccountLimitExceededException"),
        ("States.Timeout", "States.Timeout"),
        (None, "Other"),
        ("cannot assume arn:aws:iam::1:role/x", "Other"),
        ("A" * 65, "Other"),
    ],
)
def test_error_dimensions_are_error_names_or_other(error: str | None, dimension: str) -> None:
    # Given any recorded error / Then the dimension is a bounded error name
    assert error_dimension(error) == dimension
