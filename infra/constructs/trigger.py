"""The EventBridge rule (pattern compiled from the rules) targeting the state machine, with a DLQ; with several
sources it matches each source's events by their account and Region (the others arrive forwarded)."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.constructs.queues import dead_letter_queue


class Trigger(Construct):
    """ECR push -> StartExecution, retried; events that cannot be delivered land in the DLQ."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pattern: dict[str, Any],
        state_machine: sfn.IStateMachine,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = dead_letter_queue(self, of="the EventBridge target")
        self.rule = events.Rule(
            self,
            "Rule",
            description="ECR pushes that the replication rules may accept",
            event_pattern=events.EventPattern(
                source=pattern["source"],
                detail_type=pattern["detail-type"],
                account=pattern.get("account"),
                region=pattern.get("region"),
                detail=pattern["detail"],
            ),
        )
        self.rule.add_target(
            targets.SfnStateMachine(
                state_machine,
                retry_attempts=8,
                max_event_age=cdk.Duration.hours(6),
                dead_letter_queue=self.dead_letter_queue,
            )
        )
