"""Gate state: the plan -> the plan with only the targets the rules' promotion gates let through.

Event: `{"execution": <execution name>, "plan": <the plan, with `gate` from the previous look if any>}`.
Returns the plan (workflow.pipeline.gate): `gate.verdict` "wait" sends the state machine to its Wait state
for `gate.wait_seconds`, then here again. GATE_POLL_SECONDS sets that interval (default 30 s).
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.observability import (
    CORRELATION_ID_PATH,
    fanout_store,
    load_handler_config,
    logger,
    redacted_errors,
    tracer,
)
from workflow.models.payloads import Target
from workflow.pipeline.fanout import after_gate, with_targets
from workflow.pipeline.gate import DEFAULT_POLL_SECONDS, GateStep
from workflow.pipeline.precheck import assume_source_role
from workflow.registry.deadline import invocation_bounds
from workflow.registry.factory import make_client

POLL_ENV = "GATE_POLL_SECONDS"


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH, clear_state=True)
@tracer.capture_lambda_handler
@redacted_errors
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Gate one image; an error reading its scan or signatures fails the gated targets, by name (a registry
    that stalls past the invocation's time, less a reserve, as RegistryTimeout)."""
    bounds = invocation_bounds(context.get_remaining_time_in_millis())
    store = fanout_store()
    plan = with_targets(event["plan"], store)
    config = load_handler_config()
    first = Target.model_validate(plan["targets"][0])
    # The image's source: in another account, read through its read-only role (workflow.pipeline.precheck).
    session = assume_source_role(first) or boto3.Session()
    registry = make_client(
        first.source_registry,
        session=session,
        insecure_registries=[first.source_registry] if first.source_insecure else [],
        bounds=bounds,
    )
    region = first.source.split("/", 1)[1] if first.source else config.source.region
    ecr = session.client("ecr", region_name=region)
    poll_seconds = int(os.environ.get(POLL_ENV, DEFAULT_POLL_SECONDS))
    result = GateStep(config, ecr=ecr, registry=registry, poll_seconds=poll_seconds).run(plan)
    gate = result["gate"]
    logger.info(
        "gated",
        extra={
            "verdict": gate["verdict"],
            "looks": gate["looks"],
            "digest": gate.get("digest"),
            "waiting_for": gate.get("waiting_for") or None,
            "passed": len(result["targets"]) if gate["verdict"] == "done" else None,
            "blocked": [(b["account"], b["region"], b["status"]) for b in result.get("blocked") or []],
        },
    )
    return after_gate(result, str(event.get("execution") or "run"), store)
