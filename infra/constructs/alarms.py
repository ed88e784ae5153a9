"""Alarms, each notifying the topic when it fires and again when it is OK, each description linking its
runbook section (docs/runbook.md, "Alarm: <name>").

One email per failed run. A run whose destinations failed publishes its summary (the Notify state) and then
fails with `ReplicationFailed` (statemachine.asl.json, Outcome?, which looks at a failed publish first). An
alarm on the state machine's `ExecutionsFailed` metric therefore emailed every failed run a second time,
without its context. The failed-run alarm counts instead the `ExecutionFailed` events of the state machine's
log (logged at level ALL, and at ERROR; Step Functions developer guide, "Log levels") whose error is not
`ReplicationFailed`: the runs that failed before or without their summary (a Plan or Summarize failure, an
uncatchable States.Runtime, a summary that could not be published, replication events that could not be
put). The filter is CloudWatch Logs' JSON filter pattern syntax (CloudWatch Logs user guide, "Using filter
patterns to match terms in JSON log events").
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from workflow.core.exceptions import ReplicationFailed
from workflow.pipeline.metrics import LOG_NAMESPACE, RUNS_FAILED_WITHOUT_SUMMARY
from workflow.pipeline.runbook import section_url

PERIOD = cdk.Duration.minutes(5)
# The error of a run that failed after its summary was published (the summary email told on-call).
SUMMARIZED_FAILURE = ReplicationFailed.__name__


def alarm_section(name: str) -> str:
    """The runbook section of an alarm."""
    return f"Alarm: {name}"


def failed_without_summary() -> logs.IFilterPattern:
    """The state machine log events of a run that failed without (or before) publishing its summary."""
    return logs.FilterPattern.all(
        logs.FilterPattern.string_value("$.type", "=", "ExecutionFailed"),
        logs.FilterPattern.string_value("$.details.error", "!=", SUMMARIZED_FAILURE),
    )


class Alarms(Construct):
    """One alarm per failure signal; each notifies the topic when it fires and when it clears."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        state_machine: sfn.StateMachine,
        log_group: logs.ILogGroup,
        dead_letter_queue: sqs.IQueue,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = topic
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        self.failed_runs = logs.MetricFilter(
            self,
            "FailedWithoutSummary",
            log_group=log_group,
            filter_pattern=failed_without_summary(),
            metric_namespace=LOG_NAMESPACE,
            metric_name=RUNS_FAILED_WITHOUT_SUMMARY,
            metric_value="1",
        )
        self._add(
            RUNS_FAILED_WITHOUT_SUMMARY,
            self.failed_runs.metric(period=PERIOD, statistic="Sum"),
            "A replication run failed without sending its summary email (runs that send one are not counted: "
            "their email says what failed)",
        )
        self._add(
            "ExecutionsTimedOut",
            state_machine.metric_timed_out(period=PERIOD, statistic="Sum"),
            "A replication execution timed out (12 hours) and sent no summary",
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

    def _add(self, name: str, metric: cloudwatch.IMetric, description: str) -> None:
        self.alarms[name] = notifying_alarm(self, name, metric, description, self.topic)


def notifying_alarm(
    scope: Construct,
    name: str,
    metric: cloudwatch.IMetric,
    description: str,
    topic: sns.ITopic,
    *,
    section: str | None = None,
) -> cloudwatch.Alarm:
    """An alarm that fires, to `topic`, as soon as `metric` reaches 1 in a period, and says so again when it is
    OK; its description links the runbook section `section` (default "Alarm: <name>")."""
    alarm = cloudwatch.Alarm(
        scope,
        name,
        metric=metric,
        alarm_description=f"{description}. Runbook: {section_url(section or alarm_section(name))}",
        threshold=1,
        evaluation_periods=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    alarm.add_alarm_action(actions.SnsAction(topic))
    alarm.add_ok_action(actions.SnsAction(topic))
    return alarm
