"""The source stack's CloudWatch dashboard: its widgets draw exactly the metrics the code emits."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.infrastructure.conftest import Synthesized, resources
from workflow.pipeline.metrics import NAMESPACE, SERVICE, Metric, dimensions_of

pytestmark = pytest.mark.infrastructure


def body(template: dict[str, Any]) -> dict[str, Any]:
    """The dashboard body, its CloudFormation tokens (queue names, alarm ARNs) shown as TOKEN(<id>)."""
    (dashboard,) = resources(template, "AWS::CloudWatch::Dashboard").values()
    parts = dashboard["Properties"]["DashboardBody"]["Fn::Join"][1]
    text = "".join(
        part if isinstance(part, str) else f"TOKEN({json.dumps(part, sort_keys=True)})".replace('"', "'")
        for part in parts
    )
    return dict(json.loads(text))


def widget(document: dict[str, Any], title: str) -> dict[str, Any]:
    (found,) = [w for w in document["widgets"] if w["properties"].get("title") == title]
    return dict(found["properties"])


def product_lines(document: dict[str, Any]) -> list[tuple[str, dict[str, str], dict[str, Any]]]:
    """(metric name, dimensions, options) of every line in the product's namespace."""
    lines = []
    for item in document["widgets"]:
        for line in item["properties"].get("metrics", []):
            if isinstance(line[0], str) and line[0] == NAMESPACE:
                name, rest = line[1], line[2:]
                options = rest.pop() if rest and isinstance(rest[-1], dict) else {}
                lines.append((name, dict(zip(rest[::2], rest[1::2], strict=True)), options))
    return lines


def searched(document: dict[str, Any]) -> set[str]:
    """Metric names drawn through SEARCH expressions."""
    expressions = [
        line[0]["expression"]
        for item in document["widgets"]
        for line in item["properties"].get("metrics", [])
        if isinstance(line[0], dict) and "expression" in line[0]
    ]
    return {name for e in expressions for name in re.findall(r'MetricName="(\w+)"', e)}


def test_the_widgets_draw_every_metric_of_the_one_list_with_its_dimensions(synthesized: Synthesized) -> None:
    # Given the dashboard of the source stack
    document = body(synthesized.source_template)
    lines = product_lines(document)
    # Then it draws exactly the metrics workflow.pipeline.metrics lists (the names the handlers emit)
    assert {name for name, _, _ in lines} | searched(document) == {m.value for m in Metric}
    # and each with the dimensions the code emits it with, under this service
    for name, dimensions, _ in lines:
        assert tuple(sorted(dimensions)) == tuple(sorted(dimensions_of(Metric(name)))), name
        assert dimensions["service"] == SERVICE


def test_lag_percentiles_per_destination_region_and_failures_by_error(synthesized: Synthesized) -> None:
    # Given the dashboard and the example config's destination Regions
    document = body(synthesized.source_template)
    regions = {r for rule in synthesized.settings.config.rules for d in rule.destinations for r in d.regions}
    # Then the lag widget has p50/p90/p99 for each Region
    lag = {
        (dimensions["region"], options["stat"])
        for name, dimensions, options in product_lines(document)
        if name == Metric.REPLICATION_LAG.value
    }
    assert lag == {(region, p) for region in regions for p in ("p50", "p90", "p99")}
    # and failures are broken down by error name with a SEARCH on the error dimension
    (line,) = widget(document, "Targets failed by error")["metrics"]
    assert line[0]["expression"].startswith(
        f'SEARCH(\'{{{NAMESPACE},service,error}} MetricName="FailuresByError"'
    )


def test_dead_letter_queues_executions_and_alarm_states_are_on_it(synthesized: Synthesized) -> None:
    # Given the template / Then both dead-letter queues are drawn
    template = synthesized.source_template
    document = body(template)
    queues = widget(document, "Dead-letter queues (messages)")["metrics"]
    drawn = {
        queue_id
        for line in queues
        for queue_id in set(resources(template, "AWS::SQS::Queue"))
        if queue_id in json.dumps(line)
    }
    assert drawn == set(resources(template, "AWS::SQS::Queue"))
    # and executions timed out / aborted come from Step Functions beside the outcomes the code counts
    outcomes = widget(document, "Executions by outcome")["metrics"]
    assert {line[1] for line in outcomes if line[0] == "AWS/States"} == {
        "ExecutionsTimedOut",
        "ExecutionsAborted",
    }
    # and the alarm widget shows every alarm of the stack
    alarms = widget(document, "Alarms")["alarms"]
    assert len(alarms) == len(resources(template, "AWS::CloudWatch::Alarm"))
    for alarm_id in resources(template, "AWS::CloudWatch::Alarm"):
        assert any(alarm_id in arn for arn in alarms), alarm_id


def test_the_dashboard_url_is_a_stack_output(synthesized: Synthesized) -> None:
    # Given the outputs / Then DashboardUrl points at the dashboard, on the partition's console host
    template = synthesized.source_template
    (dashboard_id,) = resources(template, "AWS::CloudWatch::Dashboard")
    value = template["Outputs"]["DashboardUrl"]["Value"]["Fn::Sub"]
    assert value[0].startswith(
        "https://${AWS::Region}.${Domain}/cloudwatch/home?region=${AWS::Region}#dashboards"
    )
    assert value[1]["Name"] == {"Ref": dashboard_id}
    assert template["Mappings"]["ConsoleDomain"]["aws-cn"]["Domain"] == "console.amazonaws.cn"
