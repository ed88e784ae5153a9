"""Scheduled reconciliation: repair what live replication missed (lost events, new rules or destinations).

Event: anything (EventBridge Scheduler sends `{}` or its configured input). Environment:
`STATE_MACHINE_ARN` (required), `TOPIC_ARN` (optional; notified only on a repair or a failure) and
`MAX_IN_FLIGHT` (optional, default `SyncOptions.max_in_flight`: a run tops the RUNNING executions up to this many).
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.observability import emit_metric, load_handler_config, logger, tracer
from workflow.core.exceptions import InvalidConfig
from workflow.ops.sync.options import SyncOptions
from workflow.ops.sync.syncer import reconcile
from workflow.pipeline.metrics import Metric

STATE_MACHINE_ENV = "STATE_MACHINE_ARN"
TOPIC_ENV = "TOPIC_ARN"
MAX_IN_FLIGHT_ENV = "MAX_IN_FLIGHT"


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Reconcile once; returns the counts, the actions and whether it notified."""
    state_machine_arn = os.environ.get(STATE_MACHINE_ENV)
    if not state_machine_arn:
        raise InvalidConfig([f"environment {STATE_MACHINE_ENV}: required (the state machine to start)"])
    max_in_flight = os.environ.get(MAX_IN_FLIGHT_ENV, str(SyncOptions.max_in_flight))
    if not max_in_flight.isdigit() or int(max_in_flight) < 1:
        raise InvalidConfig(
            [f"environment {MAX_IN_FLIGHT_ENV}: {max_in_flight!r} is not a whole number >= 1"]
        )
    result = reconcile(
        load_handler_config(),
        state_machine_arn=state_machine_arn,
        topic_arn=os.environ.get(TOPIC_ENV) or None,
        log=logger.info,
        max_in_flight=int(max_in_flight),
    )
    counts = result["counts"]
    logger.info("reconciled", extra={"counts": counts, "notified": result["notified"]})
    emit_metric(Metric.RECONCILE_REPAIRS, counts["tagged (targets)"] + counts["executions started"])
    emit_metric(Metric.RECONCILE_FAILURES, counts["failed"])
    emit_metric(Metric.RECONCILE_DEFERRED, counts["deferred to the next run"])
    return result
