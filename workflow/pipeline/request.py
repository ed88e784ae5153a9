"""ECR push events and manual inputs -> ReplicationRequest."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from workflow.core.exceptions import InvalidRequest
from workflow.core.grammar import (
    DIGEST_RE,
    account_problem,
    region_problem,
    repository_problem,
    shown,
    tag_problem,
)
from workflow.models.payloads import DestinationRef, Override, ReplicationRequest

ECR_DETAIL_TYPE = "ECR Image Action"
MANUAL_FIELDS = {"repository", "tag", "digest", "destinations", "dryRun", "action", "override", "source"}
MANUAL_ACTIONS = ("replicate", "delete")
# The ECR actions the workflow acts on: a completed push, and an image (tag) deletion ("Amazon ECR events
# and EventBridge", https://docs.aws.amazon.com/AmazonECR/latest/userguide/ecr-eventbridge.html: both are
# "ECR Image Action" events with action-type PUSH or DELETE, result, repository-name, image-digest, image-tag).
EVENT_ACTIONS = {"PUSH": "replicate", "DELETE": "delete"}
OVERRIDE_FIELDS = {"reason", "requestedBy"}
OVERRIDE_REASON_MAX = 1024


def is_ecr_event(payload: Mapping[str, Any]) -> bool:
    """True when the payload looks like an EventBridge event rather than a manual input."""
    return "detail-type" in payload and "detail" in payload


def parse_request(payload: Any) -> ReplicationRequest:
    """Parse an ECR event or a manual input; raises InvalidRequest saying what is wrong."""
    if not isinstance(payload, Mapping):
        raise InvalidRequest(f"input must be a JSON object, got {type(payload).__name__}")
    if is_ecr_event(payload):
        return parse_ecr_event(payload)
    return parse_manual_input(payload)


def parse_ecr_event(event: Mapping[str, Any]) -> ReplicationRequest:
    """Parse an "ECR Image Action" event; other actions, failures and untagged images are skipped.

    A DELETE asks to remove the tag at the destinations of rules with `propagate_deletes`; it must carry
    the digest the tag had (a destination tag pointing elsewhere is kept), or it is skipped.
    """
    detail = event.get("detail")
    if event.get("source") != "aws.ecr" or event.get("detail-type") != ECR_DETAIL_TYPE:
        raise InvalidRequest(
            f"unsupported event: source {shown(event.get('source'))}, detail-type {shown(event.get('detail-type'))} "
            f"(expected aws.ecr / {ECR_DETAIL_TYPE!r})"
        )
    if not isinstance(detail, Mapping):
        raise InvalidRequest("event.detail must be an object")
    repository = detail.get("repository-name")
    common: dict[str, Any] = {
        "origin": "event",
        "repository": repository if isinstance(repository, str) else None,
        "source_account": event.get("account"),
        "source_region": event.get("region"),
    }
    action = EVENT_ACTIONS.get(detail.get("action-type"))  # type: ignore[arg-type]
    if action is None:
        return ReplicationRequest(
            **common, skipped_reason=f"action {shown(detail.get('action-type'))} is not a PUSH or DELETE"
        )
    what = "push" if action == "replicate" else "delete"
    if detail.get("result") != "SUCCESS":
        return ReplicationRequest(
            **common,
            action=action,
            skipped_reason=f"{what} result is {shown(detail.get('result'))}, not SUCCESS",
        )
    tag = detail.get("image-tag")
    if not tag:
        return ReplicationRequest(
            **common, action=action, skipped_reason=f"{what} has no tag (untagged images are not replicated)"
        )
    problem = repository_problem(repository) or tag_problem(tag)
    if problem:
        raise InvalidRequest(f"event.detail: {problem}")
    digest = detail.get("image-digest")
    if digest is not None and not (isinstance(digest, str) and DIGEST_RE.fullmatch(digest)):
        raise InvalidRequest(f"event.detail.image-digest: {shown(digest)} is not a sha256 digest")
    if action == "delete" and digest is None:
        return ReplicationRequest(
            **common,
            action=action,
            tag=tag,
            skipped_reason="delete has no image-digest to check destinations against",
        )
    return ReplicationRequest(
        **common, action=action, tag=tag, digest=digest, pushed_at=parse_time(event.get("time"))
    )


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time (an event's `time`, an execution's start time), or None when absent or invalid.

    It only measures the replication lag, so an odd value never stops a replication.
    """
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_manual_input(payload: Mapping[str, Any]) -> ReplicationRequest:
    """Parse the console/CLI input `{"repository", "tag", "digest"?, "destinations"?, "dryRun"?, "action"?,
    "override"?, "source"?}`.

    `source` (`{"account", "region"}`) names where the image is, when the config has several sources whose
    rules select the repository (the Plan asks for it then).

    `"action": "delete"` removes the tag at the destinations under the checks a DELETE event gets, so it
    needs the `digest` the tag pointed at. `override` is a break-glass override of promotion gates.
    """
    problems = []
    unknown = sorted(set(payload) - MANUAL_FIELDS)
    if unknown:
        problems.append(f"unknown field(s) {shown(unknown)} (allowed: {', '.join(sorted(MANUAL_FIELDS))})")
    repository, tag, digest = payload.get("repository"), payload.get("tag"), payload.get("digest")
    if repository is None:
        problems.append("repository: required field is missing")
    elif problem := repository_problem(repository):
        problems.append(f"repository: {problem}")
    if tag is None:
        problems.append("tag: required field is missing")
    elif problem := tag_problem(tag):
        problems.append(f"tag: {problem}")
    if digest is not None and not (isinstance(digest, str) and DIGEST_RE.fullmatch(digest)):
        problems.append(f"digest: {shown(digest)} is not a sha256 digest")
    action = payload.get("action", "replicate")
    if action not in MANUAL_ACTIONS:
        problems.append(f"action: {shown(action)} is not one of {', '.join(MANUAL_ACTIONS)}")
    elif action == "delete" and digest is None:
        problems.append("digest: required with action delete (the digest the tag pointed at)")
    dry_run = payload.get("dryRun", False)
    if not isinstance(dry_run, bool):
        problems.append(f"dryRun: {shown(dry_run)} is not true or false")
    destinations = _parse_destinations(payload.get("destinations"), problems)
    override = _parse_override(payload.get("override"), problems)
    source = _parse_source(payload.get("source"), problems)
    if problems:
        raise InvalidRequest("invalid input: " + "; ".join(problems))
    return ReplicationRequest(
        origin="manual",
        source_account=source.account if source else None,
        source_region=source.region if source else None,
        repository=repository,
        tag=tag,
        digest=digest,
        destinations=destinations,
        dry_run=dry_run,
        action=action,
        override=override,
    )


def _parse_override(raw: Any, problems: list[str]) -> Override | None:
    """`{"reason": "...", "requestedBy"?: "..."}`: a break-glass override of the rules' promotion gates."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or not set(raw) <= OVERRIDE_FIELDS:
        problems.append('override: must be an object {"reason": TEXT, "requestedBy"?: TEXT}')
        return None
    reason, requested_by = raw.get("reason"), raw.get("requestedBy")
    if not isinstance(reason, str) or not reason.strip():
        problems.append("override.reason: required: say why the gates are overridden")
        return None
    if len(reason) > OVERRIDE_REASON_MAX:
        problems.append(f"override.reason: at most {OVERRIDE_REASON_MAX} characters, got {len(reason)}")
        return None
    if requested_by is not None and (not isinstance(requested_by, str) or not requested_by.strip()):
        problems.append(f"override.requestedBy: {shown(requested_by)} is not a non-empty text")
        return None
    return Override(reason=reason.strip(), requested_by=requested_by)


def _parse_source(raw: Any, problems: list[str]) -> DestinationRef | None:
    """`{"account", "region"}`: the source the image is in."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or set(raw) != {"account", "region"}:
        problems.append("source: must be an object with exactly account and region")
        return None
    problem = account_problem(raw["account"]) or region_problem(raw["region"])
    if problem:
        problems.append(f"source: {problem}")
        return None
    return DestinationRef(account=raw["account"], region=raw["region"])


def _parse_destinations(raw: Any, problems: list[str]) -> list[DestinationRef] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not raw:
        problems.append("destinations: must be a non-empty list of {account, region}")
        return None
    destinations = []
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping) or set(item) != {"account", "region"}:
            problems.append(f"destinations[{index}]: must be an object with exactly account and region")
            continue
        problem = account_problem(item["account"]) or region_problem(item["region"])
        if problem:
            problems.append(f"destinations[{index}]: {problem}")
            continue
        destinations.append(DestinationRef(account=item["account"], region=item["region"]))
    return destinations
