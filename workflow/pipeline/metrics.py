"""The product's CloudWatch metrics: the ONE list the handlers emit and the dashboard draws.

Dimensions stay low-cardinality: an outcome, a status, a precheck action, a destination Region, an
error name (bounded: anything that does not look like one is "Other"); never a tag, digest or repository.
`summary_metrics()` turns one execution's records into the Summarize function's data points.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal

from workflow.models.payloads import TargetResult
from workflow.pipeline.summary import Summary

NAMESPACE = "EcrFilteredReplication"
SERVICE = "ecr-filtered-replication"
# Every data point carries it (Powertools' default dimension), so the dashboard names it too.
SERVICE_DIMENSION = "service"
OUTCOME, STATUS, ACTION, REGION, ERROR = "outcome", "status", "action", "region", "error"
OTHER_ERROR = "Other"
ERROR_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)?")
ERROR_NAME_MAX = 64
Unit = Literal["Count", "Seconds", "Bytes"]


class Metric(StrEnum):
    """Every metric name, with who emits it and its dimensions (beyond `service`)."""

    TARGETS_PLANNED = "TargetsPlanned"  # Plan: targets of one execution
    PRECHECKS = "Prechecks"  # Precheck: one per target, by action
    EXECUTIONS = "Executions"  # Summarize: one per execution, by outcome
    TARGETS = "Targets"  # Summarize: targets by status
    IMAGES_REPLICATED = "ImagesReplicated"  # Summarize: targets copied or tagged
    TARGETS_FAILED = "TargetsFailed"  # Summarize: failed targets
    TARGETS_BLOCKED = "TargetsBlocked"  # Summarize: targets a promotion gate refused
    FAILURES_BY_ERROR = "FailuresByError"  # Summarize: failed targets by error name
    REPLICATION_LAG = "ReplicationLag"  # Summarize: push -> destination tag put, seconds, by Region
    COPY_SECONDS = "CopySeconds"  # Summarize: one per copied target
    BYTES_COPIED = "BytesCopied"  # Summarize: bytes of one execution
    RECONCILE_REPAIRS = "ReconcileRepairs"  # Reconcile: targets tagged + executions started
    RECONCILE_FAILURES = "ReconcileFailures"  # Reconcile
    RECONCILE_DEFERRED = "ReconcileDeferred"  # Reconcile: executions left for the next run


# The dimensions (beyond `service`) each metric is emitted with: what the dashboard must name to find it.
DIMENSIONS: dict[Metric, tuple[str, ...]] = {
    Metric.PRECHECKS: (ACTION,),
    Metric.EXECUTIONS: (OUTCOME,),
    Metric.TARGETS: (STATUS,),
    Metric.FAILURES_BY_ERROR: (ERROR,),
    Metric.REPLICATION_LAG: (REGION,),
}


def dimensions_of(metric: Metric) -> tuple[str, ...]:
    """The dimension names of `metric`, `service` first, as every data point carries them."""
    return (SERVICE_DIMENSION, *DIMENSIONS.get(metric, ()))


@dataclass(frozen=True)
class DataPoint:
    """One value of one metric, with its dimensions."""

    metric: Metric
    value: float
    unit: Unit = "Count"
    dimensions: dict[str, str] = field(default_factory=dict)


def error_dimension(error: str | None) -> str:
    """An error name as a dimension value: itself when it looks like one (bounded), else "Other"."""
    if error and len(error) <= ERROR_NAME_MAX and ERROR_NAME.fullmatch(error):
        return error
    return OTHER_ERROR


def lag_seconds(result: TargetResult, pushed_at: datetime | None) -> float | None:
    """Seconds from the push to the destination tag being put; None when not measured (or not put)."""
    if pushed_at is None or result.finished_at is None or result.status not in ("copied", "tagged"):
        return None
    return max(0.0, (result.finished_at - pushed_at).total_seconds())


def summary_metrics(
    summary: Summary, results: Sequence[TargetResult], pushed_at: datetime | None
) -> list[DataPoint]:
    """The Summarize function's data points for one execution (none for a dry run)."""
    if summary.dry_run:
        return []
    totals = summary.totals
    points = [
        DataPoint(Metric.EXECUTIONS, 1, dimensions={OUTCOME: summary.outcome}),
        DataPoint(Metric.IMAGES_REPLICATED, totals.copied + totals.tagged),
        DataPoint(Metric.TARGETS_FAILED, totals.failed),
        DataPoint(Metric.TARGETS_BLOCKED, totals.blocked),
        DataPoint(Metric.BYTES_COPIED, totals.bytes_copied, "Bytes"),
    ]
    for status, count in sorted(Counter(r.status for r in results).items()):
        points.append(DataPoint(Metric.TARGETS, count, dimensions={STATUS: status}))
    errors = Counter(error_dimension(r.error) for r in results if r.status == "failed")
    for error, count in sorted(errors.items()):
        points.append(DataPoint(Metric.FAILURES_BY_ERROR, count, dimensions={ERROR: error}))
    for result in results:
        lag = lag_seconds(result, pushed_at)
        if lag is not None:
            points.append(DataPoint(Metric.REPLICATION_LAG, lag, "Seconds", {REGION: result.region}))
        if result.status == "copied":
            points.append(DataPoint(Metric.COPY_SECONDS, result.seconds, "Seconds"))
    return points
