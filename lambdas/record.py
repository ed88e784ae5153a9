"""Record state: what a state produced -> a small document the state machine uses as it is.

Event, either a Map iteration's whole state (`{"target", "precheck"?, "copy"?, "error"?}`) -> its
TargetResult, or a Plan error (`{"Error", "Cause"}`) -> `{"error", "cause"}` for the execution's Fail.
It never raises on what it reads: a malformed build result is that destination's failed record.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.observability import CORRELATION_ID_PATH, logger, tracer
from workflow.pipeline.record import execution_error, record


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH, clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Record one iteration's outcome, or read a Plan error."""
    if "target" not in event:
        error = execution_error(event)
        logger.info("execution error read", extra={"error": error["error"]})
        return error
    result = record(event)
    logger.info(
        "recorded",
        extra={
            "account": result.account,
            "region": result.region,
            "status": result.status,
            "error": result.error,
        },
    )
    return result.model_dump(mode="json")
