"""Start state machine executions by hand and wait for them: the domain side of `ecr-replicate start`."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from workflow.core.exceptions import InvalidRequest
from workflow.core.links import console_url
from workflow.pipeline.request import parse_manual_input

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})
DEFAULT_POLL_SECONDS = 5.0


@dataclass(frozen=True)
class ExecutionReport:
    """How an execution ended, and the text that tells a person about it."""

    arn: str
    status: str
    output: Any = None
    error: str | None = None
    cause: str | None = None

    @property
    def succeeded(self) -> bool:
        """True only for SUCCEEDED."""
        return self.status == "SUCCEEDED"

    def text(self) -> str:
        """The summary: subject and body from the output, or the error and cause of a failure."""
        lines = [f"execution {self.arn}: {self.status}"]
        output = self.output if isinstance(self.output, dict) else {}
        if self.status == "SUCCEEDED" and output.get("subject"):
            lines += ["", str(output["subject"]), "", str(output.get("message", "")).rstrip()]
        elif self.status == "SUCCEEDED" and output.get("outcome") == "SKIPPED":
            lines += ["", f"nothing replicated: {output.get('skipped_reason')}"]
        elif self.status == "SUCCEEDED" and self.output is not None:
            lines += ["", json.dumps(self.output, indent=2)]
        elif self.status != "SUCCEEDED":
            lines += ["", f"error: {self.error or 'unknown'}"]
            if self.cause:
                lines += [f"cause: {self.cause.rstrip()}"]
        return "\n".join(lines) + "\n"


def manual_input(
    repository: str,
    tag: str,
    *,
    destinations: list[dict[str, str]] | None = None,
    dry_run: bool = False,
    override_reason: str | None = None,
    requested_by: str | None = None,
    source: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The console input for a manual run, validated as the Plan state will validate it (`source`: where the
    image is, `{"account", "region"}`, for a config with several sources).

    `override_reason` asks for a break-glass override of the promotion gates (rules with
    `allow_override: true` only), with `requested_by` (the caller) recorded beside it.
    """
    payload: dict[str, Any] = {"repository": repository, "tag": tag}
    if destinations:
        payload["destinations"] = destinations
    if dry_run:
        payload["dryRun"] = True
    if source:
        payload["source"] = source
    if override_reason is not None:
        payload["override"] = {"reason": override_reason}
        if requested_by:
            payload["override"]["requestedBy"] = requested_by
    parse_manual_input(payload)
    return payload


def region_of(state_machine_arn: str) -> str:
    """The Region of a state machine ARN; raises InvalidRequest for anything else."""
    parts = state_machine_arn.split(":")
    if len(parts) != 7 or parts[0] != "arn" or parts[2] != "states" or parts[5] != "stateMachine":
        raise InvalidRequest(
            f"{state_machine_arn!r} is not a state machine ARN (arn:PARTITION:states:REGION:ACCOUNT:stateMachine:NAME)"
        )
    return parts[3]


def start(client: Any, state_machine_arn: str, payload: dict[str, Any], *, name: str | None = None) -> str:
    """Start an execution; returns its ARN."""
    kwargs: dict[str, Any] = {"stateMachineArn": state_machine_arn, "input": json.dumps(payload)}
    if name:
        kwargs["name"] = name
    return str(client.start_execution(**kwargs)["executionArn"])


def wait(
    client: Any,
    execution_arn: str,
    *,
    poll_seconds: float = DEFAULT_POLL_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> ExecutionReport:
    """Poll DescribeExecution until the execution ends."""
    while True:
        description = client.describe_execution(executionArn=execution_arn)
        if description["status"] in TERMINAL:
            output = description.get("output")
            return ExecutionReport(
                arn=execution_arn,
                status=description["status"],
                output=json.loads(output) if output else None,
                error=description.get("error"),
                cause=description.get("cause"),
            )
        sleep(poll_seconds)


def link(execution_arn: str) -> str:
    """The console link of an execution."""
    return console_url(execution_arn)
