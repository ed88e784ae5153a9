"""cfn-lint and cdk-nag (AwsSolutions) on the synthesized app."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

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
CFN_LINT = "import sys; from cfnlint.runner import main; sys.exit(main())"


def _walk(node: IConstruct) -> list[IConstruct]:
    return [node, *(c for child in node.node.children for c in _walk(child))]


def cfn_lint(templates: list[Path]) -> list[dict[str, Any]]:
    """cfn-lint's findings on `templates` (its runner: cfnlint has no `python -m` entry point, and a command
    that did not run must not read as "no findings")."""
    completed = subprocess.run(
        [sys.executable, "-c", CFN_LINT, "--format", "json", *map(str, templates)],
        capture_output=True,
        text=True,
        check=False,
    )
    # cfn-lint's exit status is a bit mask of the levels found (2 errors, 4 warnings, 8 informational); 1 is its own failure.
    assert completed.returncode in (0, 2, 4, 6, 8, 10, 12, 14), completed.stderr
    return list(json.loads(completed.stdout))


def test_cfn_lint_reports_no_errors(synthesized: Synthesized) -> None:
    # When cfn-lint checks every template (the two stacks' and the fleet role's plain template)
    assert sorted(p.name for p in synthesized.template_files) == [
        "EcrReplicationDestination-222222222222.template.json",
        "EcrReplicationDestination-333333333333.template.json",
        "EcrReplicationSource.template.json",
        "destination-role.template.json",
    ]
    findings = cfn_lint(synthesized.template_files)
    # Then there is no error, and no warning beyond the accepted CDK artefact
    errors = [f for f in findings if f["Level"] == "Error"]
    assert errors == [], json.dumps(errors, indent=1)
    warnings = {f["Rule"]["Id"] for f in findings if f["Level"] == "Warning"}
    assert warnings <= ACCEPTED_WARNINGS, json.dumps(findings, indent=1)


def test_cfn_lint_finds_an_error_it_was_not_told_about(tmp_path: Path) -> None:
    # Given a template with a property its resource type does not have
    bad = tmp_path / "bad.template.json"
    bad.write_text(
        json.dumps({"Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"Nope": 1}}}})
    )
    # When linted / Then the error is reported (the check can fail)
    assert [f["Rule"]["Id"] for f in cfn_lint([bad])] == ["E3002"]


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
