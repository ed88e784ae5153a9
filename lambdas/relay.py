"""Relay function (deployed in each seeded destination Region, `regional_seeds`): copy a seed's image to another
destination of the same Region, inside that Region (workflow/engine/seeds.py).

Event: `{"source": "<seed registry>/<repository>@<digest>", "destination": "<registry>/<repository>@<digest>",
"source_role_arn", "source_external_id", "destination_role_arn", "destination_external_id",
"insecure_registries": [...], "deadline": <seconds>}`. Returns the CopyOutcome as JSON, or `{"error", "message"}`.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.observability import logger
from workflow.engine.seeds import relay_copy


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Copy one digest from a seed inside this Region."""
    result = relay_copy(event if isinstance(event, dict) else {})
    logger.info(
        "relayed",
        extra={
            "source": event.get("source") if isinstance(event, dict) else None,
            "destination": event.get("destination") if isinstance(event, dict) else None,
            "error": result.get("error"),
            "bytes_copied": result.get("bytes_copied"),
        },
    )
    return result
