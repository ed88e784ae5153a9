"""The executions of the local runtime's state machine: one started per event the rule delivered (`run_events`
keeps doing so, generation after generation, until no event is left) or by hand, waited for through their
history, and the notifications they published."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from workflow.local.deployment import Client, Deployment

TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
MAX_TAG_IN_NAME = 71  # execution names are at most 80 characters ("Step Functions service quotas")
T = TypeVar("T")


@dataclass
class Execution:
    """A finished (or timed-out) execution: status, parsed output, error/cause, history events."""

    arn: str
    status: str
    output: Any = None
    error: str | None = None
    cause: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)

    def states_entered(self) -> list[str]:
        """Names of the states entered, in order (Map iterations interleave)."""
        return [
            e["stateEnteredEventDetails"]["name"] for e in self.events if e["type"].endswith("StateEntered")
        ]

    def state_outputs(self, name: str) -> list[Any]:
        """The parsed output of every exit from the state `name`, in order."""
        return [
            json.loads(e["stateExitedEventDetails"]["output"])
            for e in self.events
            if e["type"].endswith("StateExited") and e["stateExitedEventDetails"]["name"] == name
        ]

    def errors(self) -> list[str]:
        """The error names of every failed task, in order (retried attempts included)."""
        return [
            details["error"]
            for e in self.events
            for key in ("taskFailedEventDetails", "lambdaFunctionFailedEventDetails")
            if (details := e.get(key))
        ]


class Executions:
    """Starts and waits for the deployment's executions, with `client(service)` (moto, the home account)."""

    def __init__(self, client: Client, deployment: Deployment) -> None:
        self._client = client
        self._deployment = deployment

    def deliver_events(self) -> list[tuple[dict[str, Any], str]]:
        """Start one execution per event the rule delivered; returns (event, execution ARN) pairs."""
        sfn = self._client("stepfunctions")

        def start(body: str) -> tuple[dict[str, Any], str]:
            event = json.loads(body)
            # At most 80 characters, as Step Functions allows (a cosign tag alone has 68).
            tag = str(event["detail"].get("image-tag", "push"))[:MAX_TAG_IN_NAME]
            name = re.sub(r"[^A-Za-z0-9_-]", "-", f"{tag}-{event['id'][:8]}")
            arn = sfn.start_execution(
                stateMachineArn=self._deployment.state_machine_arn, name=name, input=body
            )
            return event, arn["executionArn"]

        return self._drain(self._deployment.events_queue, start)

    def run_events(self, generations: int = 5) -> list[Execution]:
        """Start and wait for an execution per delivered event, then again for the events their own writes
        emitted, up to `generations` rounds; returns every execution, in order."""
        finished: list[Execution] = []
        for _ in range(generations):
            started = self.deliver_events()
            if not started:
                break
            finished.extend(self.wait(arn) for _, arn in started)
        return finished

    def drop_events(self) -> list[dict[str, Any]]:
        """Take every delivered event off the queue without starting anything; returns them."""
        return self._drain(self._deployment.events_queue, json.loads)

    def start_execution(self, payload: Any, name: str | None = None) -> str:
        """Start an execution by hand (the console's "Start execution"); returns its ARN."""
        return str(
            self._client("stepfunctions").start_execution(
                stateMachineArn=self._deployment.state_machine_arn,
                name=name or f"manual-{uuid.uuid4().hex[:12]}",
                input=json.dumps(payload),
            )["executionArn"]
        )

    def wait(
        self, arn: str, on_event: Callable[[dict[str, Any]], None] | None = None, timeout: float = 180.0
    ) -> Execution:
        """Poll the execution's history until it ends, passing each new event to `on_event`."""
        sfn = self._client("stepfunctions")
        seen = 0
        deadline = time.monotonic() + timeout
        events: list[dict[str, Any]] = []
        while True:
            description = sfn.describe_execution(executionArn=arn)
            events = self._history(arn)
            for event in events[seen:]:
                if on_event:
                    on_event(event)
            seen = len(events)
            if description["status"] in TERMINAL:
                break
            if time.monotonic() > deadline:
                return Execution(
                    arn, "TIMED_OUT_WAITING", events=events, error="the local runtime stopped waiting"
                )
            time.sleep(0.2)
        output = description.get("output")
        return Execution(
            arn=arn,
            status=description["status"],
            output=json.loads(output) if output else None,
            error=description.get("error"),
            cause=description.get("cause"),
            events=events,
        )

    def _history(self, arn: str) -> list[dict[str, Any]]:
        sfn = self._client("stepfunctions")
        events: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = sfn.get_execution_history(
                executionArn=arn, maxResults=1000, **({"nextToken": token} if token else {})
            )
            events.extend(page["events"])
            token = page.get("nextToken")
            if not token:
                return events

    def notifications(self) -> list[dict[str, str]]:
        """SNS messages published so far (subject and message), drained from the subscribed queue."""
        return self._drain(self._deployment.notifications_queue, _notification)

    def _drain(self, queue: str, take: Callable[[str], T]) -> list[T]:
        """`take` of every message's body on `queue`, each message deleted once taken."""
        sqs, taken = self._client("sqs"), []
        while messages := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages"):
            for message in messages:
                taken.append(take(message["Body"]))
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        return taken


def _notification(body: str) -> dict[str, str]:
    """The subject and message of an SNS envelope delivered to SQS."""
    envelope = json.loads(body)
    return {"subject": envelope.get("Subject") or "", "message": envelope["Message"]}
