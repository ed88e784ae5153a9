"""The local runtime's Lambda bridge keeps Lambda's clock: real remaining time, and Sandbox.Timedout at the timeout.

Also the handlers' side of it: `invocation_bounds` turns the time left into the registry client's deadline.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from workflow.local.bridges import TIMED_OUT, HandlerOutput, _lambda_invoke
from workflow.registry.deadline import LAMBDA_EXCHANGE, RESERVE, invocation_bounds


@dataclass
class Function:
    """What the bridge reads of a moto function."""

    handler: str
    timeout: int
    function_name: str = "ecr-replication-test"
    function_arn: str = "arn:aws:lambda:us-east-1:111111111111:function:ecr-replication-test"


@dataclass
class Backend:
    function: Function

    def get_function(self, name: str, qualifier: str | None) -> Function:
        return self.function


def sleeps_then_answers(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A handler that sleeps `event["sleep"]` seconds, then says how much time it had left at the start."""
    left = context.get_remaining_time_in_millis()
    time.sleep(event["sleep"])
    return {"left_ms": left}


def invoke(timeout: int, sleep: float, tmp_path: Path) -> tuple[dict[str, Any], dict[str, str], float]:
    """Invoke `sleeps_then_answers` through the bridge; (payload, response headers, seconds taken)."""
    headers: dict[str, str] = {}
    with (tmp_path / "lambda.log").open("w") as log:
        bridge = _lambda_invoke(HandlerOutput(io.StringIO(), log))
        started = time.monotonic()
        function = Function(f"{__name__}.sleeps_then_answers", timeout)
        payload = bridge(
            Backend(function), function.function_name, None, json.dumps({"sleep": sleep}), {}, headers
        )
    return json.loads(payload), headers, time.monotonic() - started


def test_a_handler_sees_the_time_its_invocation_has_left(tmp_path: Path) -> None:
    # Given a function with a 2-second timeout / When it answers at once
    payload, headers, _ = invoke(2, 0.0, tmp_path)
    # Then it saw nearly its whole timeout left, and no error
    assert 1500 < payload["left_ms"] <= 2000
    assert headers == {}


def test_an_invocation_that_overruns_its_timeout_ends_in_sandbox_timedout(tmp_path: Path) -> None:
    # Given a function with a 1-second timeout whose handler takes 3 seconds
    payload, headers, seconds = invoke(1, 3.0, tmp_path)
    # Then the invocation ends at the timeout with Lambda's error, whatever the handler does after
    assert payload["errorType"] == TIMED_OUT
    assert payload["errorMessage"].endswith("Task timed out after 1.00 seconds")
    assert headers == {"x-amz-function-error": "Unhandled"}
    assert 1.0 <= seconds < 2.0


@pytest.mark.parametrize("remaining_ms", [180_000, 4_000, 0])
def test_invocation_bounds_end_registry_work_with_a_tenth_of_the_time_left(remaining_ms: int) -> None:
    # Given the time an invocation has left / When its registry bounds are made
    before = time.monotonic()
    bounds = invocation_bounds(remaining_ms)
    # Then the deadline keeps a tenth of it, and each exchange is LAMBDA_EXCHANGE seconds
    assert bounds.deadline is not None
    expected = before + remaining_ms / 1000 * (1 - RESERVE)
    assert expected <= bounds.deadline <= expected + 0.5
    assert (bounds.exchange, bounds.blob_grace) == (LAMBDA_EXCHANGE, LAMBDA_EXCHANGE)
