"""Replication events: one EventBridge event per finished target, in PutEvents-sized batches.

The state machine puts them on the source account's default bus (`events:putEvents`), so a deploy
pipeline can start on "replicated to 222222222222/eu-west-1". Detail (schema in the README):
`{"repository", "tag", "digest", "destination": {"account", "region", "repository"}, "action", "error",
"source"}` (`source`: the `account/region` the image came from);
Step Functions adds the state machine's and the execution's ARNs as the event's `resources`. A dry run
puts none.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from workflow.core.grammar import fit
from workflow.pipeline.summary import Summary, SummaryLine

SOURCE = "ecr-filtered-replication"
BUS = "default"
REPLICATED = "ECR Image Replicated"
FAILED = "ECR Image Replication Failed"
BLOCKED = "ECR Image Replication Blocked"  # a promotion gate refused the image for that destination
# A deletion that follows (propagate_deletes): deleted, kept or absent at that destination, never
# "replicated", so a pipeline that deploys on ECR Image Replicated does not start on a withdrawn tag.
DELETION = "ECR Image Deletion Replicated"
# PutEvents takes at most 10 entries per request, whose total size must stay under 256 KB (EventBridge
# user guide, "Amazon EventBridge quotas" and "Calculating PutEvents event entry size").
MAX_ENTRIES = 10
MAX_REQUEST_BYTES = 256 * 1024
# Step Functions' optimized integration appends the state machine and execution ARNs to each entry's
# Resources (both count in the entry size; an execution ARN is at most ~2 KB).
RESOURCES_ALLOWANCE = 2 * 2048
# A gate's reason in a blocked event: its start (the email and the execution's output have it whole). Every
# other field is an identity bounded by its grammar, so each event's size is bounded (workflow.pipeline.summary).
EVENT_REASON_BUDGET = 96


def detail_type(summary: Summary, line: SummaryLine) -> str:
    """The detail-type of one target's event."""
    finished = DELETION if summary.action == "delete" else REPLICATED
    return {"failed": FAILED, "blocked": BLOCKED}.get(line.action, finished)


def entry(summary: Summary, line: SummaryLine) -> dict[str, Any]:
    """The PutEvents entry of one finished target."""
    detail = {
        "repository": summary.repository,
        "tag": summary.tag,
        "digest": line.digest,
        "destination": {"account": line.account, "region": line.region, "repository": line.repository},
        "action": line.action,
        "error": line.error,
    }
    if summary.source or line.source:
        detail["source"] = summary.source or line.source  # `account/region` the image came from
    if line.action == "blocked":
        detail["reason"] = line.cause and fit(
            line.cause, EVENT_REASON_BUDGET
        )  # which gate refused it, and why
    return {
        "Source": SOURCE,
        "DetailType": detail_type(summary, line),
        "Detail": json.dumps(detail, separators=(",", ":"), ensure_ascii=False),
        "EventBusName": BUS,
    }


def entry_size(item: dict[str, Any]) -> int:
    """EventBridge's size of an entry: Source, DetailType and Detail in UTF-8, plus the appended Resources."""
    return (
        sum(len(str(item[key]).encode()) for key in ("Source", "DetailType", "Detail")) + RESOURCES_ALLOWANCE
    )


def batches(summary: Summary, lines: Sequence[SummaryLine] | None = None) -> list[list[dict[str, Any]]]:
    """The entries of every target of one execution (`lines`: all of them, when the summary keeps only some),
    in batches PutEvents accepts; none for a dry run."""
    if summary.dry_run:
        return []
    result: list[list[dict[str, Any]]] = []
    size = 0
    for line in summary.lines if lines is None else lines:
        item = entry(summary, line)
        if not result or len(result[-1]) == MAX_ENTRIES or size + entry_size(item) > MAX_REQUEST_BYTES:
            result.append([])
            size = 0
        result[-1].append(item)
        size += entry_size(item)
    return result
