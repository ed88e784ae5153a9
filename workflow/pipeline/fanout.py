"""Fan-out at scale: what one execution's state cannot carry lives in the fan-out bucket.

Up to INLINE_LIMIT targets the plan carries its targets and the inline Map fans out over them, as it always
has. Past it the Plan writes the targets to `runs/<execution>/targets.json`, the state machine's Distributed
Map reads them there (ItemReader, one STANDARD child execution per target running the same Precheck -> Copy ->
Record) and writes every child's result under `runs/<execution>/results/` (ResultWriter); the Gate step's
blocked records, the replication events and the retry input are written beside them. Only their locations
travel in the state, so its size stays bounded whatever the number of destinations (Step Functions' 256 KiB
per state, "Step Functions service quotas"), and the parent execution's history holds the Map Run's events,
not one per destination (each child execution has its own history).

The results are ResultWriter's files ("ResultWriter (Map)", Step Functions developer guide): a `manifest.json`
listing, per child status (SUCCEEDED, FAILED, PENDING), JSON files of child executions, each with `Input` and
`Output` (JSON text), `Status`, and for a failed child `Error` and `Cause`. They are read here within bounds,
and every target the plan listed gets exactly one record: its child's output, a failed record for a child
that failed or never ran, or for a target no file mentions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from workflow.core.exceptions import FanOutFailed
from workflow.models.payloads import Plan, S3Object, Target, TargetResult
from workflow.pipeline.cost import estimate
from workflow.pipeline.summary import RunDetails, Summary, short_cause

# The most targets the inline Map carries: within the inline Map's concurrency (40 at once) every destination
# starts at once, and the plan, the Map's records and the summary stay far inside 256 KiB (tests/unit/test_asl.py).
INLINE_LIMIT = 40
RUNS_PREFIX = "runs/"
# The largest fan-out object read (targets ~1 KiB each, a child's result ~2 KiB: 10,000 destinations are ~30 MiB).
MAX_OBJECT_BYTES = 128 * 1024 * 1024
MAX_RESULT_FILES = 1000
# The fixed causes of records made here (the error names are the failures' own, or FanOutFailed).
CHILD_NOT_RUN = (
    "this destination's child execution did not run to the end (the Map Run was stopped or failed)"
)
NO_RESULT = "no result was written for this destination (it is not in the Map Run's result files)"
GATE_FAILED = (
    "the promotion gates could not be checked (the Gate function failed): nothing was copied; the Gate task "
    "in this execution's history has its error"
)


def run_prefix(execution: str) -> str:
    """Where one execution's objects live: `runs/<execution name>/` (names are unique for 90 days)."""
    return f"{RUNS_PREFIX}{execution}/"


class FanOutStore:
    """JSON documents in the fan-out bucket, through an injected S3 client; errors raise FanOutFailed."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3 = s3
        self.bucket = bucket

    def put(self, key: str, document: Any) -> S3Object:
        """Write `document` as compact JSON under `key`; returns where."""
        body = json.dumps(document, separators=(",", ":")).encode()
        try:
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/json")
        except (ClientError, BotoCoreError) as error:
            raise FanOutFailed(f"could not write s3://{self.bucket}/{key}: {error}") from error
        return S3Object(bucket=self.bucket, key=key)

    def get(self, where: S3Object) -> Any:
        """The JSON document at `where`, at most MAX_OBJECT_BYTES."""
        uri = f"s3://{where.bucket}/{where.key}"
        try:
            response = self.s3.get_object(Bucket=where.bucket, Key=where.key)
            if int(response.get("ContentLength") or 0) > MAX_OBJECT_BYTES:
                raise FanOutFailed(f"{uri} is {response['ContentLength']} bytes, over {MAX_OBJECT_BYTES}")
            body = response["Body"].read(MAX_OBJECT_BYTES + 1)
        except (ClientError, BotoCoreError) as error:
            raise FanOutFailed(f"could not read {uri}: {error}") from error
        if len(body) > MAX_OBJECT_BYTES:
            raise FanOutFailed(f"{uri} is over {MAX_OBJECT_BYTES} bytes")
        try:
            return json.loads(body)
        except ValueError:
            raise FanOutFailed(f"{uri} is not JSON") from None

    def uri(self, where: S3Object) -> str:
        """`s3://bucket/key`."""
        return f"s3://{where.bucket}/{where.key}"


def spread(plan: Plan, execution: str, store: FanOutStore | None) -> Plan:
    """The plan as the state carries it: itself up to INLINE_LIMIT targets, else `distributed`, its targets
    in the bucket (FanOutFailed when no bucket is configured)."""
    if len(plan.targets) <= INLINE_LIMIT:
        return plan
    if store is None:
        raise FanOutFailed(
            f"{len(plan.targets)} targets are more than the {INLINE_LIMIT} one execution's state carries, and no "
            "fan-out bucket is configured (FANOUT_BUCKET)"
        )
    prefix = run_prefix(execution)
    where = store.put(f"{prefix}targets.json", [t.model_dump(mode="json") for t in plan.targets])
    return plan.model_copy(
        update={
            "targets": [],
            "fan_out": "distributed",
            "targets_object": where,
            "results_prefix": f"{prefix}results",
        }
    )


def targets_of(plan: Mapping[str, Any], store: FanOutStore | None) -> list[Target]:
    """The plan's targets: in the state, or in the bucket for a distributed plan."""
    where = plan.get("targets_object")
    if not where:
        return [Target.model_validate(t) for t in plan.get("targets") or []]
    if store is None:
        raise FanOutFailed(
            "the plan's targets are in the fan-out bucket, and none is configured (FANOUT_BUCKET)"
        )
    document = store.get(S3Object.model_validate(where))
    if not isinstance(document, list):
        raise FanOutFailed(f"{store.uri(S3Object.model_validate(where))} is not a list of targets")
    try:
        return [Target.model_validate(item) for item in document]
    except ValidationError as error:
        raise FanOutFailed(f"the plan's targets are not targets: {error.errors()[0]['msg']}") from None


def records_of(plan: Mapping[str, Any], store: FanOutStore | None) -> list[TargetResult]:
    """The Gate step's blocked records: in the state, or in the bucket for a distributed plan."""
    inline = [TargetResult.model_validate(item) for item in plan.get("blocked") or []]
    where = plan.get("blocked_object")
    if not where or store is None:
        return inline
    document = store.get(S3Object.model_validate(where))
    return inline + [TargetResult.model_validate(item) for item in document or []]


def failed_records(targets: Iterable[Target], error: str, cause: str) -> list[TargetResult]:
    """One failed record per target, with `error` and `cause` (a step before the copies failed)."""
    return [_failed(target, error, cause) for target in targets]


def _failed(target: Target, error: str, cause: str | None) -> TargetResult:
    return TargetResult(
        account=target.account,
        region=target.region,
        repository=target.repository,
        tag=target.tag,
        status="failed",
        error=error[:128] or FanOutFailed.__name__,
        cause=short_cause(cause) or error,
    )


def _key(item: Target | TargetResult) -> tuple[str, str, str]:
    return (item.account, item.region, item.repository)


def map_results(
    map_run: Mapping[str, Any], targets: Sequence[Target], store: FanOutStore
) -> list[TargetResult]:
    """Every target's record from a Distributed Map's ResultWriter output (`{"MapRunArn", "ResultWriterDetails":
    {"Bucket", "Key"}}`): a child's output, a failed record for a failed or pending child, and one for each target
    no result mentions; in the plan's order."""
    details = map_run.get("ResultWriterDetails") or {}
    manifest_at = S3Object(bucket=str(details.get("Bucket", "")), key=str(details.get("Key", "")))
    manifest = store.get(manifest_at)
    files = (manifest or {}).get("ResultFiles") if isinstance(manifest, dict) else None
    if not isinstance(files, dict):
        raise FanOutFailed(f"{store.uri(manifest_at)} is not a ResultWriter manifest")
    bucket = str(manifest.get("DestinationBucket") or manifest_at.bucket)
    by_target: dict[tuple[str, str, str], TargetResult] = {}
    listed = [
        (status, entry) for status in ("SUCCEEDED", "FAILED", "PENDING") for entry in files.get(status) or []
    ]
    if len(listed) > MAX_RESULT_FILES:
        raise FanOutFailed(
            f"{store.uri(manifest_at)} lists {len(listed)} result files, over {MAX_RESULT_FILES}"
        )
    for status, entry in listed:
        document = store.get(S3Object(bucket=bucket, key=str(entry.get("Key", ""))))
        for child in document if isinstance(document, list) else []:
            record = _child_record(status, child)
            if record is not None:
                by_target.setdefault(_key(record), record)
    return [
        by_target.get(_key(target)) or _failed(target, FanOutFailed.__name__, NO_RESULT) for target in targets
    ]


def _child_record(status: str, child: Any) -> TargetResult | None:
    """A child execution's record: its output when it succeeded, else a failed one from its input's target."""
    if not isinstance(child, dict):
        return None
    if status == "SUCCEEDED":
        try:
            return TargetResult.model_validate_json(str(child.get("Output", "")))
        except ValidationError:
            pass  # an output that is not a record: the target fails below, from the child's input
    try:
        target = Target.model_validate(json.loads(str(child.get("Input", "")))["target"])
    except (ValueError, KeyError, TypeError, ValidationError):
        return None
    if status == "SUCCEEDED":
        return _failed(
            target, FanOutFailed.__name__, "the child execution's output is not a destination record"
        )
    error = str(child.get("Error") or FanOutFailed.__name__)
    return _failed(target, error, str(child.get("Cause") or CHILD_NOT_RUN))


def with_targets(plan: Mapping[str, Any], store: FanOutStore | None) -> dict[str, Any]:
    """The plan with its targets in it (read from the bucket for a distributed plan), for the Gate step."""
    if not plan.get("targets_object"):
        return dict(plan)
    return {**plan, "targets": [t.model_dump(mode="json") for t in targets_of(plan, store)]}


def after_gate(plan: dict[str, Any], execution: str, store: FanOutStore | None) -> dict[str, Any]:
    """A distributed plan after a look of the Gate step, as the state carries it: while it waits, without its
    targets (still where they were); once done, its passing targets and blocked records back in the bucket."""
    if plan.get("fan_out") != "distributed" or store is None:
        return plan
    if (plan.get("gate") or {}).get("verdict") == "wait":
        return {**plan, "targets": []}
    prefix = run_prefix(execution)
    looks = (plan.get("gate") or {}).get("looks", 0)
    targets = store.put(f"{prefix}gated-{looks}/targets.json", plan.get("targets") or [])
    blocked = store.put(f"{prefix}gated-{looks}/blocked.json", plan.get("blocked") or [])
    return {
        **plan,
        "targets": [],
        "blocked": [],
        "targets_object": targets.model_dump(mode="json"),
        "blocked_object": blocked.model_dump(mode="json"),
    }


def collect(event: Mapping[str, Any], store: FanOutStore | None) -> list[TargetResult]:
    """Every record of one execution, from the Summarize step's input: the Map's records (inline) or its
    results in the bucket (distributed), the Gate step's blocked records; every target failed when the Gate
    function or the Distributed Map itself failed (`gate_error`, `fan_out.error`)."""
    fan_out = event.get("fan_out") or {}
    plan = {"targets": event.get("results") or [], "targets_object": fan_out.get("targets")}
    blocked = records_of({"blocked": event.get("blocked"), "blocked_object": fan_out.get("blocked")}, store)
    gate_error = event.get("gate_error")
    if gate_error:
        error = str(gate_error.get("Error") or "States.TaskFailed")
        return failed_records(targets_of(plan, store), error, GATE_FAILED) + blocked
    if fan_out.get("mode") != "distributed":
        return [TargetResult.model_validate(item) for item in event.get("results") or []] + blocked
    if store is None:
        raise FanOutFailed("a distributed run's results are in the fan-out bucket, and none is configured")
    targets = targets_of(plan, store)
    failure = fan_out.get("error")
    if failure:
        cause = f"the Distributed Map failed ({failure.get('Error')}): {short_cause(str(failure.get('Cause') or ''))}"
        return failed_records(targets, str(failure.get("Error") or FanOutFailed.__name__), cause) + blocked
    return map_results(fan_out.get("map_run") or {}, targets, store) + blocked


def retry_input(
    repository: str, tag: str, failed: Sequence[TargetResult], *, dry_run: bool, action: str = "replicate"
) -> dict[str, Any]:
    """The manual input that re-runs exactly the failed destinations (a dry run again if this was one; a delete
    again with the digest the tag had, as the summary's own retry hint does)."""
    destinations = [{"account": r.account, "region": r.region} for r in failed]
    request: dict[str, Any] = {
        "repository": repository,
        "tag": tag,
        "destinations": list({(d["account"], d["region"]): d for d in destinations}.values()),
    }
    if dry_run:
        request["dryRun"] = True
    if action == "delete":
        request.update({"action": "delete", "digest": failed[0].digest if failed else None})
    return request


def details(
    event: Mapping[str, Any], store: FanOutStore | None, records: Sequence[TargetResult], source_region: str
) -> RunDetails:
    """The run's estimated cost, and for a distributed run where it keeps what its summary cannot hold: its
    results' manifest and its retry input."""
    fan_out = event.get("fan_out") or {}
    distributed = fan_out.get("mode") == "distributed" and store is not None
    cost = estimate(records, source_region=source_region, distributed=distributed).line(len(records))
    if not distributed or store is None:
        return RunDetails(cost_line=cost if records else None)
    written = ((fan_out.get("map_run") or {}).get("ResultWriterDetails")) or {}
    results = f"s3://{written['Bucket']}/{written['Key']}" if written.get("Key") else None
    retry = f"s3://{store.bucket}/{run_prefix(str(event.get('execution')))}retry.json"
    return RunDetails(results_uri=results, retry_uri=retry, cost_line=cost)


def publish(
    summary: Summary,
    events: list[list[dict[str, Any]]],
    event: Mapping[str, Any],
    records: Sequence[TargetResult],
    store: FanOutStore | None,
) -> dict[str, Any]:
    """The Summarize step's output: the summary with its replication events inline (`events`), or for a
    distributed run in the bucket (`events_object`, the events' Distributed Map reads them), beside the retry
    input of the failed destinations."""
    output = {**summary.model_dump(mode="json"), "events": events, "events_object": None}
    if (event.get("fan_out") or {}).get("mode") != "distributed" or store is None:
        return output
    prefix = run_prefix(str(event.get("execution")))
    failed = [r for r in records if r.status == "failed"]
    if failed and summary.repository and summary.tag:
        store.put(
            f"{prefix}retry.json",
            retry_input(
                summary.repository, summary.tag, failed, dry_run=summary.dry_run, action=summary.action
            ),
        )
    if events:
        output["events"] = []
        output["events_object"] = store.put(f"{prefix}events.json", events).model_dump(mode="json")
    return output
