"""Blocked targets in the summary, the email, the metrics and the replication events."""

from __future__ import annotations

from typing import Any

from workflow.models.payloads import Override, TargetResult
from workflow.pipeline.announce import BLOCKED, batches
from workflow.pipeline.metrics import Metric, summary_metrics
from workflow.pipeline.summary import summarize

REASON = "rule 'prod': 2 CRITICAL findings: CVE-2026-1234 (openssl 3.0.2), CVE-2026-5678; scan completed 2026-12-01T10:02Z"


def result(region: str, status: str, **fields: Any) -> TargetResult:
    return TargetResult(
        account="222222222222", region=region, repository="app", tag="release-1", status=status, **fields
    )


def blocked(region: str) -> TargetResult:
    return result(region, "blocked", error="ImageBlocked", cause=REASON, digest="sha256:" + "ab" * 32)


def test_everything_blocked_is_blocked_and_always_emailed() -> None:
    # Given every destination blocked, and notifications only on failure
    summary = summarize([blocked("eu-west-1"), blocked("us-west-2")], repository="app", tag="release-1")
    # Then the outcome is BLOCKED, the email goes out anyway, and it says why, with the runbook link
    assert summary.outcome == "BLOCKED"
    assert summary.notify is True
    assert summary.failure_cause is None
    assert summary.subject == "ECR replication BLOCKED: app:release-1 (2 blocked)"
    assert "BLOCKED by promotion gates (2), not copied:" in summary.message
    assert f"    reason: {REASON}" in summary.message
    assert "    runbook: docs/runbook.md#imageblocked" in summary.message
    assert summary.totals.blocked == 2


def test_a_partly_blocked_run_says_so_in_its_subject() -> None:
    # Given one copied and one blocked destination / When summarized
    copied = result("eu-west-1", "copied", digest="sha256:" + "ab" * 32)
    summary = summarize([copied, blocked("us-west-2")], repository="app", tag="release-1")
    # Then it succeeded, partly blocked, and is emailed
    assert summary.outcome == "SUCCEEDED"
    assert summary.subject == "ECR replication SUCCEEDED, PARTLY BLOCKED: app:release-1 (1 copied, 1 blocked)"
    assert summary.notify is True
    # And with a failure too, the subject counts both
    failed = result("ap-southeast-2", "failed", error="ImageNotFound", cause="gone")
    partial = summarize([copied, blocked("us-west-2"), failed], repository="app", tag="release-1")
    assert partial.outcome == "PARTIAL"
    assert partial.subject.endswith("(1 of 3 destinations failed, 1 blocked)")


def test_an_override_is_named_with_who_asked() -> None:
    # Given a manual override / When summarized
    override = Override(
        reason="INC-42 hotfix", requested_by="arn:aws:sts::111111111111:assumed-role/rm/alice"
    )
    summary = summarize([result("eu-west-1", "copied")], repository="app", tag="release-1", override=override)
    # Then the summary carries it and the email names the reason and the requester
    assert summary.override == override
    assert "  reason: INC-42 hotfix" in summary.message
    assert "  requested by: arn:aws:sts::111111111111:assumed-role/rm/alice" in summary.message


def test_blocked_targets_are_counted_and_announced() -> None:
    # Given a run with one blocked destination
    results = [result("eu-west-1", "copied"), blocked("us-west-2")]
    summary = summarize(results, repository="app", tag="release-1")
    # Then the blocked metric counts it
    points = {p.metric: p.value for p in summary_metrics(summary, results, None) if not p.dimensions}
    assert points[Metric.TARGETS_BLOCKED] == 1
    # And its replication event has the blocked detail-type and the reason
    [batch] = batches(summary)
    assert [e["DetailType"] for e in batch] == ["ECR Image Replicated", BLOCKED]
    assert '"reason":"rule \'prod\': 2 CRITICAL findings' in batch[1]["Detail"]
