"""Precheck state (one Map iteration): is the image at the destination already, does it need a copy?

Event: `{"execution": <execution name>, "dry_run": bool, "target": <Target>}`.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.observability import CORRELATION_ID_PATH, emit_metric, logger, redacted_errors, tracer
from workflow.models.payloads import Target
from workflow.pipeline.metrics import Metric
from workflow.pipeline.precheck import check_target
from workflow.registry.deadline import invocation_bounds


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH)
@tracer.capture_lambda_handler
@redacted_errors
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Precheck one target; registry and role errors propagate under their class names (a registry that
    stalls past the invocation's time, less a reserve, as RegistryTimeout)."""
    target = Target.model_validate(event["target"])
    bounds = invocation_bounds(context.get_remaining_time_in_millis())
    outcome = check_target(target, dry_run=bool(event.get("dry_run", False)), bounds=bounds)
    logger.info(
        "prechecked",
        extra={
            "destination": target.destination_reference,
            "action": outcome.action,
            "copy_needed": outcome.copy_needed,
            "digest": outcome.record.digest,
            "dry_run": outcome.dry_run,
        },
    )
    emit_metric(Metric.PRECHECKS, 1, action=outcome.action)
    return outcome.model_dump(mode="json")
