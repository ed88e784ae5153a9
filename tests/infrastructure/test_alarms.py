"""Alarms: one email per failed run (the failed-run alarm leaves out the runs whose summary went out), an OK
notification for every alarm, and a runbook section for each, linked from its description."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from infra.constructs.alarms import SUMMARIZED_FAILURE
from tests.infrastructure.conftest import Synthesized, resources
from workflow.pipeline.runbook import RUNBOOK_URL, anchor

pytestmark = pytest.mark.infrastructure

ROOT = Path(__file__).parents[2]


def alarms(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    return {
        k: v["Properties"]
        for k, v in resources(synthesized.source_template, "AWS::CloudWatch::Alarm").items()
    }


def test_a_failed_run_that_emailed_its_summary_raises_no_second_email(synthesized: Synthesized) -> None:
    template = synthesized.source_template
    # Given the alarms that notify the topic
    found = alarms(synthesized)
    # Then none counts every failed execution (the summary email already told on-call of a run that sent one)
    assert [a for a in found.values() if a.get("MetricName") == "ExecutionsFailed"] == []
    # and the failed-run alarm counts the state machine log's ExecutionFailed events but the summarized one
    (metric_filter,) = resources(template, "AWS::Logs::MetricFilter").values()
    pattern = metric_filter["Properties"]["FilterPattern"]
    assert re.fullmatch(
        r'\{ \(\$\.type = "ExecutionFailed"\) && \(\$\.details\.error != "ReplicationFailed"\) \}', pattern
    ), pattern
    assert SUMMARIZED_FAILURE == "ReplicationFailed"
    (machine,) = resources(template, "AWS::StepFunctions::StateMachine").values()
    logging = machine["Properties"]["LoggingConfiguration"]
    assert logging["Level"] == "ALL"  # ExecutionFailed is logged (ALL and ERROR)
    assert (
        logging["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
        == (metric_filter["Properties"]["LogGroupName"]["Ref"])
    )
    transformation = metric_filter["Properties"]["MetricTransformations"][0]
    (alarm,) = [a for a in found.values() if a.get("MetricName") == transformation["MetricName"]]
    assert alarm["Namespace"] == transformation["MetricNamespace"]


def test_every_alarm_notifies_when_it_fires_and_when_it_is_ok(synthesized: Synthesized) -> None:
    (topic,) = resources(synthesized.source_template, "AWS::SNS::Topic")
    found = alarms(synthesized)
    assert len(found) == 5
    for name, alarm in found.items():
        assert alarm["AlarmActions"] == [{"Ref": topic}], name
        assert alarm["OKActions"] == [{"Ref": topic}], name


def test_every_alarm_links_its_runbook_section(synthesized: Synthesized) -> None:
    runbook = (ROOT / "docs" / "runbook.md").read_text()
    headings = {
        anchor(h.strip()): body
        for h, body in zip(*[iter(re.split(r"^## (.+)$", runbook, flags=re.M)[1:])] * 2, strict=True)
    }
    for name, alarm in alarms(synthesized).items():
        description = alarm["AlarmDescription"]
        link = re.search(r"Runbook: (\S+)$", description)
        assert link, (name, description)
        base, _, section = link.group(1).partition("#")
        # absolute, at this version, and a section that exists and says how to fix it
        assert base == RUNBOOK_URL
        assert section.startswith("alarm-"), section
        assert "**Fix" in headings[section], section
    assert json.dumps(alarms(synthesized)).count("Runbook: https://") == 5
