"""Summarize state: the Map's per-target records -> outcome, lines, totals and the email text.

Event: `{"execution": <name>, "execution_id": <execution ARN>, "started_at": <$$.Execution.StartTime>,
"plan": {"repository", "tag", "dry_run", "action", "pushed_at", "override", "source"}, "results":
[<TargetResult>, ...], "blocked": [<TargetResult>, ...], "fan_out": {"mode", "targets", "blocked", "map_run",
"error"}, "gate_error"}` (workflow.pipeline.fanout.collect). Returns the Summary and `events`: the replication
events' PutEvents batches (workflow.pipeline.announce), which the state machine puts on the default bus; for a
distributed run they are in the fan-out bucket (`events_object`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.observability import (
    CORRELATION_ID_PATH,
    emit,
    fanout_store,
    load_handler_config,
    logger,
    redacted_errors,
    tracer,
)
from workflow.models.payloads import Override
from workflow.pipeline import fanout
from workflow.pipeline.announce import batches
from workflow.pipeline.metrics import summary_metrics
from workflow.pipeline.request import parse_time
from workflow.pipeline.summary import lines_of, summarize


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH, clear_state=True)
@tracer.capture_lambda_handler
@redacted_errors
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Summarize one execution."""
    plan = event["plan"]
    store = fanout_store()
    # The Map's records (or, for a distributed run, its results in the bucket), then the Gate step's.
    results = fanout.collect(event, store)
    override = plan.get("override")
    config = load_handler_config()
    notifications = config.notifications
    summary = summarize(
        results,
        repository=plan.get("repository"),
        tag=plan.get("tag"),
        dry_run=bool(plan.get("dry_run", False)),
        execution_arn=event.get("execution_id"),
        notify_on=notifications.on,
        runbook_url=notifications.runbook_url,
        action=plan.get("action", "replicate"),
        override=Override.model_validate(override) if override else None,
        pushed_at=parse_time(plan.get("pushed_at")),
        started_at=parse_time(event.get("started_at")),
        finished_at=datetime.now(UTC),
        details=fanout.details(event, store, results, config.source.region),
        source=plan.get("source"),
    )
    logger.info("summarized", extra={"outcome": summary.outcome, "totals": summary.totals.model_dump()})
    emit(summary_metrics(summary, results, parse_time(plan.get("pushed_at"))))
    events = batches(summary, lines_of(results, notifications.runbook_url))
    return fanout.publish(summary, events, event, results, store)
