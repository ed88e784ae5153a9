"""The CloudWatch dashboard of the source stack, drawn from workflow.pipeline.metrics (the list the code emits)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import get_args

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from workflow.core.partitions import SUPPORTED, partition_named
from workflow.models.payloads import PrecheckAction, TargetStatus
from workflow.pipeline.metrics import (
    ACTION,
    NAMESPACE,
    OUTCOME,
    REGION,
    SERVICE,
    SERVICE_DIMENSION,
    STATUS,
    Metric,
    dimensions_of,
)
from workflow.pipeline.summary import Outcome

PERIOD = cdk.Duration.minutes(5)
LAG_PERCENTILES = ("p50", "p90", "p99")
WIDTH = 12
HEIGHT = 6


def product_metric(
    metric: Metric, statistic: str = "Sum", label: str | None = None, **dimensions: str
) -> cloudwatch.Metric:
    """A metric of workflow.pipeline.metrics, with exactly the dimensions it is emitted with."""
    values = {SERVICE_DIMENSION: SERVICE, **dimensions}
    if set(values) != set(dimensions_of(metric)):
        raise ValueError(f"{metric.value} is emitted with {dimensions_of(metric)}, not {tuple(values)}")
    return cloudwatch.Metric(
        namespace=NAMESPACE,
        metric_name=metric.value,
        dimensions_map=values,
        statistic=statistic,
        period=PERIOD,
        label=label,
    )


def by_error(metric: Metric) -> cloudwatch.MathExpression:
    """One line per error name: a SEARCH, since the names are only known when they happen."""
    keys = ",".join([NAMESPACE, *dimensions_of(metric)])
    return cloudwatch.MathExpression(
        expression=f"SEARCH('{{{keys}}} MetricName=\"{metric.value}\"', 'Sum', {PERIOD.to_seconds()})",
        label="",
        period=PERIOD,
    )


class Dashboard(Construct):
    """Executions by outcome, lag percentiles, failures by error, copy time and bytes, DLQs, reconciliation, alarms."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        state_machine: sfn.StateMachine,
        regions: Sequence[str],
        dead_letter_queues: dict[str, sqs.IQueue],
        alarms: Iterable[cloudwatch.IAlarm],
    ) -> None:
        super().__init__(scope, construct_id)
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            default_interval=cdk.Duration.days(1),
            period_override=cloudwatch.PeriodOverride.AUTO,
        )
        self.dashboard.add_widgets(
            self._graph(
                "Executions by outcome",
                [product_metric(Metric.EXECUTIONS, label=o, **{OUTCOME: o}) for o in get_args(Outcome)]
                + [
                    state_machine.metric_timed_out(period=PERIOD, statistic="Sum", label="TIMED_OUT"),
                    state_machine.metric_aborted(period=PERIOD, statistic="Sum", label="ABORTED"),
                ],
            ),
            self._graph(
                "Replication lag (s): push to destination tag",
                [
                    product_metric(Metric.REPLICATION_LAG, p, f"{region} {p}", **{REGION: region})
                    for region in regions
                    for p in LAG_PERCENTILES
                ],
            ),
        )
        self.dashboard.add_widgets(
            self._graph(
                "Targets by status",
                [product_metric(Metric.TARGETS, label=s, **{STATUS: s}) for s in get_args(TargetStatus)]
                + [
                    product_metric(Metric.TARGETS_PLANNED, label="planned by Plan"),
                    product_metric(Metric.IMAGES_REPLICATED, label="copied or tagged"),
                    product_metric(Metric.TARGETS_FAILED, label="failed"),
                    product_metric(Metric.TARGETS_BLOCKED, label="blocked by a promotion gate"),
                ],
            ),
            self._graph("Targets failed by error", [by_error(Metric.FAILURES_BY_ERROR)]),
        )
        self.dashboard.add_widgets(
            self._graph(
                "Copy duration (s)",
                [product_metric(Metric.COPY_SECONDS, s, f"copy {s}") for s in ("Average", "p90", "Maximum")],
            ),
            self._graph("Bytes copied", [product_metric(Metric.BYTES_COPIED, label="bytes")]),
        )
        self.dashboard.add_widgets(
            self._graph(
                "Dead-letter queues (messages)",
                [
                    queue.metric_approximate_number_of_messages_visible(
                        period=PERIOD, statistic="Maximum", label=label
                    )
                    for label, queue in dead_letter_queues.items()
                ],
            ),
            self._graph(
                "Reconciliation and prechecks",
                [
                    product_metric(Metric.RECONCILE_REPAIRS, label="repairs"),
                    product_metric(Metric.RECONCILE_DEFERRED, label="deferred"),
                    product_metric(Metric.RECONCILE_FAILURES, label="failures"),
                ]
                + [
                    product_metric(Metric.PRECHECKS, label=f"precheck {a}", **{ACTION: a})
                    for a in get_args(PrecheckAction)
                ],
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(alarms), width=2 * WIDTH, height=HEIGHT)
        )

    @staticmethod
    def _graph(title: str, metrics: Sequence[cloudwatch.IMetric]) -> cloudwatch.GraphWidget:
        return cloudwatch.GraphWidget(title=title, left=list(metrics), width=WIDTH, height=HEIGHT)

    def url(self, scope: Construct) -> str:
        """The dashboard's console URL (its console host depends on the partition)."""
        mapping = cdk.CfnMapping(
            scope,
            "ConsoleDomain",
            mapping={p: {"Domain": partition_named(p).console_domain} for p in SUPPORTED},
        )
        return cdk.Fn.sub(
            "https://${AWS::Region}.${Domain}/cloudwatch/home?region=${AWS::Region}#dashboards/dashboard/${Name}",
            {
                "Domain": mapping.find_in_map(cdk.Aws.PARTITION, "Domain"),
                "Name": self.dashboard.dashboard_name,
            },
        )
