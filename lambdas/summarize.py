"""Summarize state: the Map's per-target records -> outcome, lines, totals and the email text.

Event: `{"execution": <name>, "execution_id": <execution ARN>, "plan": {"repository", "tag", "dry_run",
"action", "pushed_at", "override", "source"}, "results": [<TargetResult>, ...], "blocked": [<TargetResult>, ...]}`. Returns the Summary and `events`: the replication events'
PutEvents batches (workflow.pipeline.announce), which the state machine puts on the default bus.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.observability import CORRELATION_ID_PATH, emit, load_handler_config, logger, tracer
from workflow.models.payloads import Override, TargetResult
from workflow.pipeline.announce import batches
from workflow.pipeline.metrics import summary_metrics
from workflow.pipeline.request import parse_time
from workflow.pipeline.summary import summarize


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH, clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Summarize one execution."""
    plan = event["plan"]
    # The Map's records, then the Gate step's (blocked, or failed before any destination was touched).
    records = [*event["results"], *(event.get("blocked") or [])]
    results = [TargetResult.model_validate(item) for item in records]
    override = plan.get("override")
    notifications = load_handler_config().notifications
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
        source=plan.get("source"),
    )
    logger.info("summarized", extra={"outcome": summary.outcome, "totals": summary.totals.model_dump()})
    emit(summary_metrics(summary, results, parse_time(plan.get("pushed_at"))))
    return {**summary.model_dump(mode="json"), "events": batches(summary)}
