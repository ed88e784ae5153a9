"""ECR "ECR Image Action" events and manual inputs -> ReplicationRequest."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from workflow.core.exceptions import InvalidRequest
from workflow.pipeline.request import parse_request

DIGEST = "sha256:" + "a" * 64

# The shape AWS documents for an ECR image push event (EventBridge, "ECR Image Action").
PUSH_EVENT: dict[str, Any] = {
    "version": "0",
    "id": "13cde686-328b-6117-af20-0e5566167482",
    "detail-type": "ECR Image Action",
    "source": "aws.ecr",
    "account": "111111111111",
    "time": "2019-11-16T01:54:34Z",
    "region": "us-east-1",
    "resources": [],
    "detail": {
        "result": "SUCCESS",
        "repository-name": "app",
        "image-digest": DIGEST,
        "action-type": "PUSH",
        "image-tag": "release-1.2.0",
    },
}


def event_with(**detail: Any) -> dict[str, Any]:
    event = copy.deepcopy(PUSH_EVENT)
    for key, value in detail.items():
        name = key.replace("_", "-")
        if value is None:
            event["detail"].pop(name)
        else:
            event["detail"][name] = value
    return event


def test_push_event_becomes_a_request() -> None:
    # Given a successful tagged push / When parsed
    request = parse_request(PUSH_EVENT)
    # Then the repository, tag, digest and source are taken from it
    assert (request.repository, request.tag, request.digest) == ("app", "release-1.2.0", DIGEST)
    assert (request.source_account, request.source_region, request.origin) == (
        "111111111111",
        "us-east-1",
        "event",
    )
    assert request.skipped_reason is None


@pytest.mark.parametrize(
    ("detail", "reason"),
    [
        ({"image_tag": None}, "push has no tag"),
        ({"action_type": "SCAN"}, "action 'SCAN' is not a PUSH or DELETE"),
        ({"result": "FAILURE"}, "push result is 'FAILURE', not SUCCESS"),
        ({"action_type": "DELETE", "result": "FAILURE"}, "delete result is 'FAILURE', not SUCCESS"),
        ({"action_type": "DELETE", "image_digest": None}, "delete has no image-digest"),
    ],
)
def test_ignored_events_are_skipped_with_a_reason(detail: dict[str, Any], reason: str) -> None:
    request = parse_request(event_with(**detail))
    assert request.skipped_reason is not None
    assert reason in request.skipped_reason


def test_delete_event_becomes_a_delete_request_with_the_digest_the_tag_had() -> None:
    # Given ECR's event for a deleted tag / When parsed
    request = parse_request(event_with(action_type="DELETE"))
    # Then it asks to delete that tag where it still points at the event's digest
    assert (request.action, request.repository, request.tag, request.digest) == (
        "delete",
        "app",
        "release-1.2.0",
        DIGEST,
    )
    assert request.skipped_reason is None


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"action": "delete"}, "digest: required with action delete"),
        ({"action": "remove", "digest": DIGEST}, "action: 'remove' is not one of replicate, delete"),
    ],
)
def test_a_manual_delete_needs_the_digest_and_a_known_action(extra: dict[str, Any], problem: str) -> None:
    # Given a manual delete without the digest, or an unknown action / When parsed / Then refused, saying why
    with pytest.raises(InvalidRequest, match=problem):
        parse_request({"repository": "app", "tag": "release-1", **extra})


def test_a_manual_delete_with_the_digest_is_a_delete_request() -> None:
    request = parse_request({"repository": "app", "tag": "release-1", "action": "delete", "digest": DIGEST})
    assert (request.action, request.digest, request.origin) == ("delete", DIGEST, "manual")


def test_event_from_another_source_is_an_error() -> None:
    event = copy.deepcopy(PUSH_EVENT)
    event["source"] = "aws.s3"
    with pytest.raises(InvalidRequest, match="unsupported event"):
        parse_request(event)


def test_event_with_bad_digest_is_an_error() -> None:
    with pytest.raises(InvalidRequest, match="image-digest"):
        parse_request(event_with(image_digest="md5:abc"))


def test_manual_input_minimal_and_full() -> None:
    # Given the two console inputs from the design
    minimal = parse_request({"repository": "app", "tag": "release-1.2.0"})
    full = parse_request(
        {
            "repository": "app",
            "tag": "release-1.2.0",
            "destinations": [{"account": "222222222222", "region": "eu-west-1"}],
            "dryRun": True,
        }
    )
    # Then both parse, the second with one destination and dry run
    assert (minimal.origin, minimal.destinations, minimal.dry_run) == ("manual", None, False)
    assert full.dry_run
    assert full.destinations is not None
    assert [(d.account, d.region) for d in full.destinations] == [("222222222222", "eu-west-1")]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"tag": "v1"}, "repository: required field is missing"),
        ({"repository": "app"}, "tag: required field is missing"),
        ({"repository": "App", "tag": "v1"}, "repository: 'App' is not a valid ECR repository name"),
        ({"repository": "app", "tag": "v1;rm -rf /"}, "is not a valid image tag"),
        ({"repository": "app", "tag": "v1", "dryRun": "yes"}, "dryRun: 'yes' is not true or false"),
        ({"repository": "app", "tag": "v1", "destinations": []}, "destinations: must be a non-empty list"),
        (
            {"repository": "app", "tag": "v1", "destinations": [{"account": "1", "region": "eu-west-1"}]},
            "destinations[0]: '1' is not a 12-digit AWS account id",
        ),
        ({"repository": "app", "tag": "v1", "repo": "x"}, "unknown field(s) ['repo']"),
        ([1, 2], "input must be a JSON object"),
    ],
)
def test_bad_manual_input_names_what_is_wrong(payload: Any, message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_request(payload)
    assert message in str(caught.value)


def test_all_manual_input_problems_are_reported_together() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_request({"repository": "Bad Name", "tag": "-x", "dryRun": 1})
    message = str(caught.value)
    assert "repository:" in message
    assert "tag:" in message
    assert "dryRun:" in message


def test_a_huge_bad_tag_is_echoed_cut_short() -> None:
    # Given a manual input whose tag is 40,000 characters long
    tag = "x" * 40_000 + "!"
    # When parsed, Then the error names the problem and shows only the start of the value
    with pytest.raises(InvalidRequest, match="is not a valid image tag") as caught:
        parse_request({"repository": "app", "tag": tag})
    assert len(str(caught.value)) < 400


def test_a_push_carries_the_event_time_where_the_lag_starts() -> None:
    # Given the documented push event / Then its time is the request's push time; a bad one is none
    assert parse_request(PUSH_EVENT).pushed_at == datetime(2019, 11, 16, 1, 54, 34, tzinfo=UTC)
    assert parse_request({**PUSH_EVENT, "time": "yesterday"}).pushed_at is None
    assert parse_request({"repository": "app", "tag": "v1"}).pushed_at is None


@pytest.mark.parametrize(
    "payload",
    [
        {"repository": "app", "tag": "v1", "k" * 100_000: 1},
        {"repository": "app", "tag": "v1", **{f"extra-{i}": 1 for i in range(5_000)}},
        {"repository": "app", "tag": "v1", "digest": "sha256:" + "z" * 100_000},
        {"repository": "app", "tag": "v1", "dryRun": "y" * 100_000},
    ],
    ids=["100 KB key", "5000 keys", "100 KB digest", "100 KB dryRun"],
)
def test_huge_manual_input_is_echoed_cut_short(payload: dict[str, Any]) -> None:
    # Given a manual input with 100 KB of outside text in one field or key
    # When parsed, Then the error (the execution's Cause) shows only a cut start of it, with a marker
    with pytest.raises(InvalidRequest) as caught:
        parse_request(payload)
    assert len(str(caught.value)) < 400
    assert "..." in str(caught.value)


def test_an_event_from_elsewhere_is_echoed_cut_short() -> None:
    # Given an event-shaped input whose source is 100 KB
    event = {**copy.deepcopy(PUSH_EVENT), "source": "s" * 100_000}
    # When parsed, Then the error is short
    with pytest.raises(InvalidRequest, match="unsupported event") as caught:
        parse_request(event)
    assert len(str(caught.value)) < 400
