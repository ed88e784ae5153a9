"""Context parsing, IAM resource patterns, and the variants of the stacks (ec2 compute, organization)."""

from __future__ import annotations

import re
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Template

from infra import naming
from infra.constructs.copy_project import CopyProject
from infra.settings import REPOSITORY_ROOT, DeploySettings, SettingsError, settings_from_context
from infra.stacks.destination_stack import DestinationStack
from workflow.config import load_config, parse_config

pytestmark = pytest.mark.infrastructure

EXAMPLE = REPOSITORY_ROOT / "examples" / "replication.yaml"


def _context(**values: str) -> Any:
    return values.get


def _settings(**overrides: Any) -> DeploySettings:
    config = load_config(EXAMPLE)
    base: dict[str, Any] = {"config_path": EXAMPLE, "config": config, "emails": ("a@example.com",)}
    return DeploySettings(**{**base, **overrides})


def test_context_defaults_to_the_example_config_lambda_compute_and_config_emails() -> None:
    settings = settings_from_context(_context())
    assert settings.config_path.name == "replication.yaml"
    assert settings.copy_compute == "lambda"
    assert settings.emails == ("platform-team@example.com",)
    assert settings.organization_id is None


def test_context_emails_override_the_config() -> None:
    settings = settings_from_context(_context(emails="ops@example.com, sre@example.com"))
    assert settings.emails == ("ops@example.com", "sre@example.com")


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"copy_compute": "fargate"}, "context 'copy_compute': 'fargate' is not one of lambda, ec2"),
        (
            {"emails": "ops@example.com,not-an-email"},
            "context 'emails': not an email address: 'not-an-email'",
        ),
        ({"organization_id": "org-1"}, "context 'organization_id': 'org-1' is not an organization id"),
        ({"external_id": "x"}, "context 'external_id' is not supported"),
        (
            {"reconcile_max_in_flight": "0"},
            "context 'reconcile_max_in_flight': '0' is not a whole number from 1",
        ),
        (
            {"reconcile_max_in_flight": "ten"},
            "context 'reconcile_max_in_flight': 'ten' is not a whole number",
        ),
    ],
)
def test_bad_context_is_rejected_with_the_key_named(context: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        settings_from_context(_context(**context))


def test_regex_and_prefix_rules_map_to_iam_patterns() -> None:
    # Given a regex repository rule and a glob rule written to a mirror prefix
    config = parse_config(
        {
            "source": {"account": "111111111111", "region": "us-east-1"},
            "rules": [
                {
                    "name": "by-regex",
                    "repositories": ["re:^team-[a-z]+$"],
                    "tags": {"include": ["v*"]},
                    "destinations": [{"account": "222222222222", "regions": ["eu-west-1"]}],
                },
                {
                    "name": "by-prefix",
                    "repositories": ["services/*"],
                    "tags": {"include": ["v*"]},
                    "destinations": [
                        {
                            "account": "222222222222",
                            "regions": ["eu-west-1"],
                            "repository": "mirror/{repository}",
                        }
                    ],
                },
            ],
        }
    )
    # Then the regex widens to every repository, and the glob keeps its prefix under the template
    assert naming.source_repository_arns(config) == [
        "arn:aws:ecr:us-east-1:111111111111:repository/*",
        "arn:aws:ecr:us-east-1:111111111111:repository/services/*",
    ]
    assert naming.widened_rules(config) == ["by-regex"]
    assert naming.destination_repository_arns(config, "222222222222", "ecr-replication-target") == [
        "arn:aws:ecr:eu-west-1:222222222222:repository/*",
        "arn:aws:ecr:eu-west-1:222222222222:repository/mirror/services/*",
    ]


def test_organization_id_adds_a_principal_org_condition() -> None:
    app = cdk.App()
    stack = DestinationStack(
        app,
        "Destination",
        settings=_settings(organization_id="o-abcdefghij"),
        account="222222222222",
        env=cdk.Environment(account="222222222222", region="eu-west-1"),
    )
    roles = Template.from_stack(stack).find_resources("AWS::IAM::Role")
    (role,) = roles.values()
    condition = role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Condition"]
    assert condition["StringEquals"] == {"aws:PrincipalOrgID": "o-abcdefghij"}


def test_ec2_compute_is_a_small_unprivileged_build_with_a_timeout() -> None:
    app = cdk.App()
    stack = cdk.Stack(app, "Probe", env=cdk.Environment(account="111111111111", region="us-east-1"))
    CopyProject(
        stack,
        "Copy",
        compute="ec2",
        role_name="probe",
        key=kms.Key(stack, "Key"),
        source_read=[],
        assume_destination=iam.PolicyStatement(
            actions=["sts:AssumeRole"], resources=["arn:aws:iam::1:role/x"]
        ),
    )
    (project,) = Template.from_stack(stack).find_resources("AWS::CodeBuild::Project").values()
    environment = project["Properties"]["Environment"]
    assert environment["PrivilegedMode"] is False
    assert environment["ComputeType"] == "BUILD_GENERAL1_SMALL"
    assert environment["Type"] == "LINUX_CONTAINER"
    assert project["Properties"]["TimeoutInMinutes"] > 15


def test_mixed_external_ids_in_one_account_are_refused() -> None:
    config = parse_config(
        {
            "source": {"account": "111111111111", "region": "us-east-1"},
            "rules": [
                {
                    "name": name,
                    "repositories": [repository],
                    "tags": {"include": ["v*"]},
                    "destinations": [{"account": "222222222222", "regions": ["eu-west-1"], **extra}],
                }
                for name, repository, extra in [("a", "app", {"external_id": "team-a"}), ("b", "web", {})]
            ],
        }
    )
    with pytest.raises(SettingsError, match="some set external_id and some do not"):
        DestinationStack(cdk.App(), "D", settings=_settings(config=config), account="222222222222")


@pytest.mark.parametrize(
    ("schedule", "problem"),
    [
        ("rate(1 minutes)", "write 1 minute"),
        ("rate(2 hour)", "write 2 hours"),
        ("rate(0 days)", "the rate must be at least 1"),
        ("rate(1 week)", "expected rate(N minute|minutes|hour|hours|day|days) or cron(<6 fields>)"),
        ("cron(0 3 * * *)", "a cron expression has 6 fields, not 5"),
        ("cron(0 3 * * ? * 2030)", "a cron expression has 6 fields, not 7"),
    ],
)
def test_reconcile_schedule_that_scheduler_would_refuse_is_rejected(schedule: str, problem: str) -> None:
    # Given a schedule EventBridge Scheduler refuses only at deploy
    # When parsing the context Then the error names the key, the value and what is wrong
    message = f"context 'reconcile_schedule': '{schedule}' is not a schedule expression: {problem}"
    with pytest.raises(SettingsError, match=re.escape(message)):
        settings_from_context(_context(reconcile_schedule=schedule))


@pytest.mark.parametrize(
    "schedule", ["rate(1 minute)", "rate(15 minutes)", "rate(1 hour)", "rate(2 days)", "cron(0 3 * * ? *)"]
)
def test_valid_reconcile_schedules_are_kept(schedule: str) -> None:
    # Given a valid rate or 6-field cron When parsing Then it is kept as written
    assert settings_from_context(_context(reconcile_schedule=schedule)).reconcile_schedule == schedule


def test_reconcile_max_in_flight_defaults_to_10_and_can_be_widened() -> None:
    # Given the default context and one asking for 25, Then the settings carry them
    assert settings_from_context(_context()).reconcile_max_in_flight == 10
    assert settings_from_context(_context(reconcile_max_in_flight="25")).reconcile_max_in_flight == 25
