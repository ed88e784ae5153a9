"""Plan state: the execution input (ECR event or manual input) -> the targets, or why nothing replicates.

Event: `{"execution": <execution name>, "started_at": <the execution's start time>, "input": <raw input>}`.
The plan's `pushed_at` (where the replication lag starts) is the ECR event's time, else `started_at`.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.observability import (
    CORRELATION_ID_PATH,
    emit_metric,
    fanout_store,
    load_handler_config,
    logger,
    organization_directory,
    redacted_errors,
    tracer,
)
from workflow.core.exceptions import InvalidRequest
from workflow.pipeline.fanout import spread
from workflow.pipeline.metrics import Metric
from workflow.pipeline.organizations import resolve
from workflow.pipeline.plan import plan
from workflow.pipeline.request import parse_request, parse_time


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH, clear_state=True)
@tracer.capture_lambda_handler
@redacted_errors
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Plan one execution, with the config's max_concurrency for the Map; organization destinations are resolved
    first (through the container's cached directory).

    Bad input raises InvalidRequest / DestinationNotAllowed with what is wrong; OrganizationLookupFailed and
    TooManyDestinations when organization destinations cannot be resolved into one execution.
    """
    if not isinstance(event, dict) or "input" not in event:
        raise InvalidRequest('the Plan function expects {"execution": NAME, "input": EXECUTION_INPUT}')
    request = parse_request(event["input"])
    if request.pushed_at is None:
        request = request.model_copy(update={"pushed_at": parse_time(event.get("started_at"))})
    config = load_handler_config()
    resolution = resolve(config, organization_directory(config))
    planned = resolution.noted(plan(request, resolution.config))
    # Past the inline Map's limit, the targets go to the fan-out bucket (the Distributed Map reads them there).
    result = spread(planned, str(event.get("execution") or "run"), fanout_store())
    logger.info(
        "planned",
        extra={
            "repository": result.repository,
            "tag": result.tag,
            "targets": len(planned.targets),
            "fan_out": result.fan_out,
            "skipped_reason": result.skipped_reason,
            "skipped_accounts": result.skipped_accounts,
            "dry_run": result.dry_run,
        },
    )
    emit_metric(Metric.TARGETS_PLANNED, len(planned.targets))
    # The Replicate Map reads its MaxConcurrencyPath here: the config's limit, from the same packaged file.
    return {
        **result.model_dump(mode="json"),
        "target_count": len(planned.targets),
        "max_concurrency": config.max_concurrency,
    }
