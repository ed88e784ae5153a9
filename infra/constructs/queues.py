"""The dead-letter queues of the push trigger and of the reconciliation schedule."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.constructs.functions import acknowledge


def dead_letter_queue(scope: Construct, *, of: str) -> sqs.Queue:
    """An encrypted, TLS-only queue keeping messages 14 days, as the dead-letter queue `of` a target."""
    queue = sqs.Queue(
        scope,
        "DeadLetterQueue",
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=cdk.Duration.days(14),
    )
    acknowledge(
        queue,
        {
            "AwsSolutions-SQS3": (
                f"This queue is itself the dead-letter queue of {of}; a DLQ of a DLQ adds nothing, "
                "and an alarm watches its depth."
            )
        },
    )
    return queue
