"""Alarms on failed and timed-out executions and on the dead-letter queue, notifying the topic."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

PERIOD = cdk.Duration.minutes(5)


class Alarms(Construct):
    """One alarm per failure signal; each notifies the topic when it fires."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        state_machine: sfn.StateMachine,
        dead_letter_queue: sqs.IQueue,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = topic
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        self._add(
            "ExecutionsFailed",
            state_machine.metric_failed(period=PERIOD, statistic="Sum"),
            "A replication execution failed (a target failed or the workflow errored)",
        )
        self._add(
            "ExecutionsTimedOut",
            state_machine.metric_timed_out(period=PERIOD, statistic="Sum"),
            "A replication execution timed out",
        )
        self.watch_dead_letter_queue(
            "DeadLetterQueue",
            dead_letter_queue,
            "ECR push events could not start the workflow and are in the dead-letter queue",
        )

    def watch_dead_letter_queue(self, name: str, queue: sqs.IQueue, description: str) -> None:
        """Alarm, to the topic, as soon as a message sits in `queue`."""
        self._add(
            name,
            queue.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
            description,
        )

    def _add(self, name: str, metric: cloudwatch.Metric, description: str) -> None:
        self.alarms[name] = notifying_alarm(self, name, metric, description, self.topic)


def notifying_alarm(
    scope: Construct, name: str, metric: cloudwatch.Metric, description: str, topic: sns.ITopic
) -> cloudwatch.Alarm:
    """An alarm that fires, to `topic`, as soon as `metric` reaches 1 in a period."""
    alarm = metric.create_alarm(
        scope,
        name,
        alarm_description=description,
        threshold=1,
        evaluation_periods=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    alarm.add_alarm_action(actions.SnsAction(topic))
    return alarm
