"""workflow.pipeline.announce: one event per finished target, batched within PutEvents' limits."""

from __future__ import annotations

import json

import pytest

from workflow.models.payloads import TargetResult
from workflow.pipeline import announce as replication_events
from workflow.pipeline.announce import DELETION, FAILED, REPLICATED, SOURCE, batches, entry_size
from workflow.pipeline.summary import summarize

EXECUTION = "arn:aws:states:us-east-1:111111111111:execution:ecr-replication:push-1"
DIGEST = "sha256:" + "b" * 64


def results(count: int, failed: frozenset[int] = frozenset()) -> list[TargetResult]:
    return [
        TargetResult(
            account=f"{200000000000 + n}",
            region="eu-west-1",
            repository="mirror/app",
            tag="release-1.2.0",
            status="failed" if n in failed else "copied",
            digest=None if n in failed else DIGEST,
            error="RegistryAuthError" if n in failed else None,
            cause="cannot assume role" if n in failed else None,
        )
        for n in range(count)
    ]


def test_every_target_has_one_event_with_the_documented_detail() -> None:
    # Given a run with one copied and one failed destination
    summary = summarize(
        results(2, failed=frozenset({1})), repository="app", tag="release-1.2.0", execution_arn=EXECUTION
    )
    # When turned into events
    (batch,) = batches(summary)
    # Then one entry per target on the default bus, with our source and a detail-type per result
    assert [(e["Source"], e["DetailType"], e["EventBusName"]) for e in batch] == [
        (SOURCE, REPLICATED, "default"),
        (SOURCE, FAILED, "default"),
    ]
    assert json.loads(batch[0]["Detail"]) == {
        "repository": "app",
        "tag": "release-1.2.0",
        "digest": DIGEST,
        "destination": {"account": "200000000000", "region": "eu-west-1", "repository": "mirror/app"},
        "action": "copied",
        "error": None,
    }
    failed = json.loads(batch[1]["Detail"])
    assert (failed["action"], failed["error"]) == ("failed", "RegistryAuthError")


def test_a_superseded_target_is_a_replicated_event_that_says_superseded() -> None:
    # Given a destination whose tag was left to a newer push (its digest copied, the tag not put)
    [result] = results(1)
    superseded = TargetResult.model_validate({**result.model_dump(), "status": "superseded"})
    summary = summarize([superseded], repository="app", tag="release-1.2.0", execution_arn=EXECUTION)
    # When turned into events / Then it is no failure, and its action tells a pipeline not to act on it
    [[event]] = batches(summary)
    assert event["DetailType"] == REPLICATED
    assert json.loads(event["Detail"])["action"] == "superseded"


def test_batches_hold_at_most_10_entries_and_a_dry_run_has_none() -> None:
    # Given 25 targets / Then 3 PutEvents calls of 10, 10 and 5 entries, in order
    summary = summarize(results(25), repository="app", tag="release-1.2.0")
    assert [len(b) for b in batches(summary)] == [10, 10, 5]
    # and a dry run announces nothing
    dry = summarize(results(3), repository="app", tag="release-1.2.0", dry_run=True)
    assert batches(dry) == []


def test_batches_stay_within_the_request_size(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a request size that holds only three entries
    summary = summarize(results(7), repository="app", tag="release-1.2.0")
    one = entry_size(batches(summary)[0][0])
    monkeypatch.setattr(replication_events, "MAX_REQUEST_BYTES", 3 * one + 1)
    # Then the batches split by size before the count limit
    split = batches(summary)
    assert [len(b) for b in split] == [3, 3, 1]
    assert all(sum(entry_size(e) for e in b) <= 3 * one + 1 for b in split)


def test_a_delete_puts_one_event_per_destination_saying_what_happened_there() -> None:
    # Given a delete: removed at one destination, kept at another (moved since), absent at a third
    outcomes = [("deleted", None), ("kept", "moved since"), ("absent", None)]
    records = [
        TargetResult(
            account=f"{200000000000 + n}",
            region="eu-west-1",
            repository="mirror/app",
            tag="release-2.4.1",
            status=status,
            digest=DIGEST,
            kept_reason=reason,
        )
        for n, (status, reason) in enumerate(outcomes)
    ]
    summary = summarize(
        records, repository="app", tag="release-2.4.1", action="delete", execution_arn=EXECUTION
    )
    # When turned into events / Then each says its outcome, as a deletion (never "replicated", which a
    # deploy pipeline may start on)
    (batch,) = batches(summary)
    details = [json.loads(item["Detail"]) for item in batch]
    assert [d["action"] for d in details] == ["deleted", "kept (moved since)", "absent"]
    assert {item["DetailType"] for item in batch} == {DELETION}
    assert all(d["digest"] == DIGEST for d in details)
