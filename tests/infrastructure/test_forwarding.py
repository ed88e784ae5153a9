"""Several sources: a forwarding stack per source other than the home one (rule, role, dead-letter queue, alarm and,
once per other account, the source-access role), the home bus policy and the home roles' reach; cfn-lint and cdk-nag
clean."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
import yaml
from cdk_nag import AwsSolutionsChecks

from infra import naming
from infra.app import build_app, forwarding_stacks
from infra.settings import SettingsError, settings_from_context
from tests.infrastructure.conftest import resources
from tests.infrastructure.test_compliance import ACCEPTED_WARNINGS
from tests.infrastructure.test_partitions import actions, listed, statements_by_role
from tests.unit.eventbridge_matcher import matches
from workflow.models.config import parse_config
from workflow.pipeline.plan import event_pattern

pytestmark = pytest.mark.infrastructure

HOME_BUS = "arn:aws:events:us-east-1:111111111111:event-bus/default"
ACCESS_ROLE = "arn:aws:iam::333333333333:role/ecr-replication-source-access"
CONFIG: dict[str, Any] = {
    "sources": [
        {"account": "111111111111", "region": "us-east-1"},
        {"account": "111111111111", "region": "eu-west-1"},
        {"account": "333333333333", "region": "us-west-2"},
        {"account": "333333333333", "region": "eu-central-1"},
    ],
    "rules": [
        {
            "name": "builds",
            "sources": ["111111111111/us-east-1", "111111111111/eu-west-1"],
            "repositories": ["app", "web"],
            "tags": {"include": ["release-*"]},
            "destinations": [{"account": "222222222222", "regions": ["eu-west-1"]}],
        },
        {
            "name": "partner",
            "sources": ["333333333333/us-west-2", "333333333333/eu-central-1"],
            "repositories": ["app"],
            "tags": {"include": ["release-*"]},
            "destinations": [
                {"account": "222222222222", "regions": ["eu-west-1"], "repository": "partner/{repository}"}
            ],
            "gates": {"scan": {"block_at": "CRITICAL"}},
        },
    ],
    "notifications": {"emails": ["platform@example.com"]},
}
STACKS = (
    "EcrReplicationForward-111111111111-eu-west-1",
    "EcrReplicationForward-333333333333-us-west-2",
    "EcrReplicationForward-333333333333-eu-central-1",
)


def synthesize(workdir: Path, **context: str) -> tuple[cdk.App, dict[str, dict[str, Any]], Path]:
    """The app from CONFIG, cdk-nag enforcing at synth: the app, each template by stack name, the cloud assembly."""
    config = workdir / "replication.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    app = cdk.App(
        outdir=str(workdir / "cdk.out"),
        context={"config": str(config), "copy_compute": "lambda", "aws:cdk:bundling-stacks": [], **context},
    )
    build_app(app, settings_from_context(app.node.try_get_context))
    assembly = app.synth()
    templates = {stack.stack_name: stack.template for stack in assembly.stacks}
    return app, templates, Path(assembly.directory)


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> tuple[cdk.App, dict[str, dict[str, Any]], Path]:
    return synthesize(tmp_path_factory.mktemp("forwarding"))


@pytest.fixture(scope="module")
def templates(synthesized: tuple[cdk.App, dict[str, dict[str, Any]], Path]) -> dict[str, dict[str, Any]]:
    return synthesized[1]


def one(template: dict[str, Any], resource_type: str) -> dict[str, Any]:
    (resource,) = resources(template, resource_type).values()
    return resource["Properties"]


def test_each_other_source_gets_a_forwarding_stack_in_its_account_and_region(
    synthesized: tuple[cdk.App, dict[str, dict[str, Any]], Path],
) -> None:
    app, templates, _ = synthesized
    assert [(s.stack_name, s.account, s.region) for s in forwarding_stacks(app)] == [
        (STACKS[0], "111111111111", "eu-west-1"),
        (STACKS[1], "333333333333", "us-west-2"),
        (STACKS[2], "333333333333", "eu-central-1"),
    ]
    assert set(templates) == {naming.SOURCE_STACK_NAME, "EcrReplicationDestination-222222222222", *STACKS}


@pytest.mark.parametrize("index", [0, 1, 2])
def test_a_forwarding_rule_sends_its_sources_matching_events_to_the_home_bus(
    index: int, templates: dict[str, dict[str, Any]]
) -> None:
    config = parse_config(CONFIG)
    source = config.sources[index + 1]
    template = templates[STACKS[index]]
    rule = one(template, "AWS::Events::Rule")
    # Then its pattern is the compiled pattern of the rules naming this source, for its account and Region
    assert rule["Name"] == "ecr-replication-forward"
    assert rule["EventPattern"] == event_pattern(config, source)
    assert (rule["EventPattern"]["account"], rule["EventPattern"]["region"]) == (
        [source.account],
        [source.region],
    )
    # And its one target is the home account's default bus in the home Region, through its role, with a DLQ
    (target,) = rule["Targets"]
    assert target["Arn"] == HOME_BUS
    role_id, queue_id = target["RoleArn"]["Fn::GetAtt"][0], target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
    assert resources(template, "AWS::SQS::Queue")[queue_id]["Properties"]["SqsManagedSseEnabled"] is True
    # And the role may put events on the home bus and do nothing else
    statements = statements_by_role(template)[role_id]
    assert [(actions(s), s["Resource"]) for s in statements] == [(["events:PutEvents"], HOME_BUS)]
    trust = resources(template, "AWS::IAM::Role")[role_id]["Properties"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"] == {"Service": "events.amazonaws.com"}
    # And an alarm notifies its topic as soon as an event sits in the dead-letter queue
    alarm = one(template, "AWS::CloudWatch::Alarm")
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"][0]["Value"]["Fn::GetAtt"] == [queue_id, "QueueName"]
    assert (alarm["Threshold"], alarm["AlarmActions"]) == (
        1,
        [{"Ref": next(iter(resources(template, "AWS::SNS::Topic")))}],
    )


def test_the_home_bus_lets_exactly_the_other_accounts_forwarding_rules_put_events(
    templates: dict[str, dict[str, Any]],
) -> None:
    home = templates[naming.SOURCE_STACK_NAME]
    # Then one statement, for the one other account, naming its two forwarding rules (the home account's
    # eu-west-1 needs none: its role's own policy is enough within one account)
    (policy,) = resources(home, "AWS::Events::EventBusPolicy").values()
    assert policy["Properties"]["EventBusName"] == "default"
    assert policy["Properties"]["StatementId"] == "ecr-replication-forward-333333333333"
    assert policy["Properties"]["Statement"] == {
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::333333333333:root"},
        "Action": "events:PutEvents",
        "Resource": HOME_BUS,
        "Condition": {
            "ArnEquals": {
                "aws:SourceArn": [
                    "arn:aws:events:eu-central-1:333333333333:rule/ecr-replication-forward",
                    "arn:aws:events:us-west-2:333333333333:rule/ecr-replication-forward",
                ]
            }
        },
    }
    # And the home rule matches each source's events by account and Region
    (trigger,) = [
        r["Properties"]
        for r in resources(home, "AWS::Events::Rule").values()
        if "EventPattern" in r["Properties"]
    ]
    pattern = trigger["EventPattern"]
    assert (pattern["account"], pattern["region"]) == (
        ["111111111111", "333333333333"],
        ["eu-central-1", "eu-west-1", "us-east-1", "us-west-2"],
    )
    forwarded = {
        "source": "aws.ecr",
        "detail-type": "ECR Image Action",
        "account": "333333333333",
        "region": "eu-central-1",
        "detail": {
            "result": "SUCCESS",
            "action-type": "PUSH",
            "repository-name": "app",
            "image-tag": "release-1",
        },
    }
    assert matches(pattern, forwarded)


def test_the_other_accounts_source_access_role_is_read_only_and_trusts_the_home_readers(
    templates: dict[str, dict[str, Any]],
) -> None:
    # Given the partner account's two forwarding stacks / Then only the first deploys its role
    first, second = templates[STACKS[1]], templates[STACKS[2]]
    named = {
        p["Properties"].get("RoleName"): (role_id, p["Properties"])
        for role_id, p in resources(first, "AWS::IAM::Role").items()
    }
    assert "ecr-replication-source-access" not in {
        p["Properties"].get("RoleName") for p in resources(second, "AWS::IAM::Role").values()
    }
    assert "ecr-replication-source-access" not in json.dumps(templates[STACKS[0]])
    role_id, role = named["ecr-replication-source-access"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {
        "AWS": {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::111111111111:root"]]}
    }
    assert trust["Condition"] == {
        "ArnEquals": {
            "aws:PrincipalArn": [
                "arn:aws:iam::111111111111:role/ecr-replication-copy-us-east-1",
                "arn:aws:iam::111111111111:role/ecr-replication-precheck-us-east-1",
                "arn:aws:iam::111111111111:role/ecr-replication-gate-us-east-1",
                "arn:aws:iam::111111111111:role/ecr-replication-reconcile-us-east-1",
            ]
        }
    }
    statements = statements_by_role(first)[role_id]
    granted = {a for s in statements for a in actions(s)}
    assert granted == {
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
        "ecr:BatchCheckLayerAvailability",
        "ecr:DescribeImages",
        "ecr:ListImages",
        "ecr:DescribeRepositories",
        "ecr:GetAuthorizationToken",
        "ecr:DescribeImageScanFindings",
        "inspector2:ListFindings",
    }
    read = next(s for s in statements if s["Sid"] == "ReadSourceImages")
    assert listed(read["Resource"]) == [
        "arn:aws:ecr:eu-central-1:333333333333:repository/app",
        "arn:aws:ecr:us-west-2:333333333333:repository/app",
    ]


def test_the_home_readers_reach_every_source(templates: dict[str, dict[str, Any]]) -> None:
    home = templates[naming.SOURCE_STACK_NAME]
    by_role = statements_by_role(home)
    for role_id in ("FunctionsPrecheckRole", "CopyRole", "ReconciliationFunctionRole", "GatesGateRole"):
        statements = by_role[next(r for r in by_role if r.startswith(role_id))]
        assumed = {r for s in statements if "sts:AssumeRole" in actions(s) for r in listed(s["Resource"])}
        assert ACCESS_ROLE in assumed, role_id
    # And the home account's own other Region is read directly
    copy = by_role[next(r for r in by_role if r.startswith("CopyRole"))]
    read = next(s for s in copy if s.get("Sid") == "ReadSourceImages")
    assert "arn:aws:ecr:eu-west-1:111111111111:repository/web" in listed(read["Resource"])
    assert not [r for r in listed(read["Resource"]) if ":333333333333:" in r]


def test_cfn_lint_and_cdk_nag_are_clean(synthesized: tuple[cdk.App, dict[str, dict[str, Any]], Path]) -> None:
    app, templates, outdir = synthesized
    # (the fleet role's plain template beside them is linted with the fleet's tests)
    files = sorted(str(p) for p in outdir.glob("*.template.json") if p.name != naming.FLEET_TEMPLATE_FILE)
    assert len(files) == len(templates) == 5
    completed = subprocess.run(
        [sys.executable, "-m", "cfnlint", "--format", "json", *files],
        capture_output=True,
        text=True,
        check=False,
    )
    findings = json.loads(completed.stdout or "[]")
    assert [f for f in findings if f["Level"] == "Error"] == []
    assert {f["Rule"]["Id"] for f in findings if f["Level"] == "Warning"} <= ACCEPTED_WARNINGS
    report = AwsSolutionsChecks().validate_scope(app)
    assert [v.rule_name for v in report.violations] == []


def test_an_organization_is_required_of_forwarders_and_readers_too(tmp_path: Path) -> None:
    # Given -c organization_id / Then the home bus policy and the source-access trust require it
    _, templates, _ = synthesize(tmp_path, organization_id="o-abcdefghij")
    (policy,) = resources(templates[naming.SOURCE_STACK_NAME], "AWS::Events::EventBusPolicy").values()
    assert policy["Properties"]["Statement"]["Condition"]["StringEquals"] == {
        "aws:PrincipalOrgID": "o-abcdefghij"
    }
    role = next(
        r["Properties"]
        for r in resources(templates[STACKS[1]], "AWS::IAM::Role").values()
        if r["Properties"].get("RoleName") == "ecr-replication-source-access"
    )
    condition = role["AssumeRolePolicyDocument"]["Statement"][0]["Condition"]
    assert condition["StringEquals"] == {"aws:PrincipalOrgID": "o-abcdefghij"}


def test_a_home_bus_policy_over_eventbridges_10_kb_is_refused_at_deploy(tmp_path: Path) -> None:
    """Given 40 other source accounts (one statement each in the home bus policy, 10 KB at most)
    When the app is built Then a SettingsError says how large the policy would be, and why it cannot be."""
    many = {
        **CONFIG,
        "sources": [
            CONFIG["sources"][0],
            *({"account": f"{n:012d}", "region": "us-west-2"} for n in range(40)),
        ],
        "rules": [{k: v for k, v in CONFIG["rules"][0].items() if k != "sources"}],
    }
    config = tmp_path / "many.yaml"
    config.write_text(yaml.safe_dump(many))
    app = cdk.App(outdir=str(tmp_path / "cdk.out"), context={"config": str(config), "copy_compute": "lambda"})
    with pytest.raises(
        SettingsError, match=r"the home bus policy would be [0-9,]+ bytes for 40 other source accounts"
    ):
        settings_from_context(app.node.try_get_context)
