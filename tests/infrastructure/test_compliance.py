"""cfn-lint and cdk-nag (AwsSolutions) on the synthesized app."""

from __future__ import annotations

import json
import subprocess
import sys

import aws_cdk as cdk
import pytest
from aws_cdk import aws_sqs as sqs
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

from tests.infrastructure.conftest import Synthesized

pytestmark = pytest.mark.infrastructure

# CDK adds DependsOn on a function's role policy although a GetAtt already orders them.
ACCEPTED_WARNINGS = {"W3005"}
MIN_REASON = 60


def _walk(node: IConstruct) -> list[IConstruct]:
    return [node, *(c for child in node.node.children for c in _walk(child))]


def test_cfn_lint_reports_no_errors(synthesized: Synthesized) -> None:
    # When cfn-lint checks every template
    completed = subprocess.run(
        [sys.executable, "-m", "cfnlint", "--format", "json", *map(str, synthesized.template_files)],
        capture_output=True,
        text=True,
        check=False,
    )
    findings = json.loads(completed.stdout or "[]")
    # Then there is no error, and no warning beyond the accepted CDK artefact
    errors = [f for f in findings if f["Level"] == "Error"]
    assert errors == [], json.dumps(errors, indent=1)
    warnings = {f["Rule"]["Id"] for f in findings if f["Level"] == "Warning"}
    assert warnings <= ACCEPTED_WARNINGS, json.dumps(findings, indent=1)
    assert len(synthesized.template_files) == 3


def test_cdk_nag_has_no_unacknowledged_finding(synthesized: Synthesized) -> None:
    # When the AwsSolutions pack validates the whole tree
    report = AwsSolutionsChecks().validate_scope(synthesized.app)
    # Then it reports nothing (the synth, which ran the same pack as a plugin, also passed)
    findings = [
        f"{v.rule_name} at {', '.join(str(r.construct_path) for r in v.violating_resources)}"
        for v in report.violations
    ]
    assert findings == []
    assert report.success


def test_the_nag_pack_catches_a_finding_it_was_not_told_about() -> None:
    # Given a queue without SSL enforcement or DLQ, and nothing acknowledged
    app = cdk.App()
    sqs.Queue(cdk.Stack(app, "Probe"), "Queue")
    # When the same pack validates it; Then the findings are reported
    rules = {v.rule_name for v in AwsSolutionsChecks().validate_scope(app).violations}
    assert {"AwsSolutions-SQS3", "AwsSolutions-SQS4"} <= rules


def test_every_acknowledgment_carries_a_substantive_reason(synthesized: Synthesized) -> None:
    key = cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY
    acknowledgments = {
        (node.node.path, rule): reason
        for node in _walk(synthesized.app)
        for entry in node.node.metadata
        if entry.type == key
        for rule, reason in entry.data.items()
    }
    assert acknowledgments
    short = {k: v for k, v in acknowledgments.items() if len(v.strip()) < MIN_REASON}
    assert short == {}
    assert all(rule.removeprefix("Annotation::").startswith("AwsSolutions-") for _, rule in acknowledgments)
