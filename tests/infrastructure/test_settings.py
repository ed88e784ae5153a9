"""Context parsing, IAM resource patterns, and the variants of the stacks (ec2 compute, organization)."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
import yaml
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Template

from infra import naming
from infra.constructs.copy_project import CopyProject
from infra.settings import (
    LAMBDA_COMPUTE_REGIONS,
    REPOSITORY_ROOT,
    DeploySettings,
    SettingsError,
    settings_from_context,
)
from infra.stacks.destination_stack import DestinationStack
from tests.unit.test_config import MIXED_EXTERNAL_IDS
from workflow.core.exceptions import InvalidConfig
from workflow.core.grammar import region_problem
from workflow.models.config import SourceConfig, load_config, parse_config

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
        destination_access=[
            iam.PolicyStatement(actions=["sts:AssumeRole"], resources=["arn:aws:iam::1:role/x"])
        ],
    )
    (project,) = Template.from_stack(stack).find_resources("AWS::CodeBuild::Project").values()
    environment = project["Properties"]["Environment"]
    assert environment["PrivilegedMode"] is False
    assert environment["ComputeType"] == "BUILD_GENERAL1_SMALL"
    assert environment["Type"] == "LINUX_CONTAINER"
    assert project["Properties"]["TimeoutInMinutes"] > 15


def test_synth_prints_a_config_error_on_one_line(tmp_path: Path) -> None:
    # Given a config `validate` refuses (one role, with and without external_id)
    config = tmp_path / "mixed.yaml"
    config.write_text(yaml.safe_dump(MIXED_EXTERNAL_IDS))
    # When the CDK app is run on it
    completed = _synth({"config": str(config)}, tmp_path)
    # Then it exits 2 with the same message and path as `validate`, on one line, no traceback
    assert completed.returncode == 2
    assert completed.stderr.splitlines() == [
        "error: invalid replication config: " + "; ".join(_problems(MIXED_EXTERNAL_IDS))
    ]
    assert "rules[1].destinations[0].external_id: missing here" in completed.stderr


def test_synth_prints_a_settings_error_on_one_line(tmp_path: Path) -> None:
    completed = _synth({"copy_compute": "gpu"}, tmp_path)
    assert completed.returncode == 2
    assert completed.stderr == "error: context 'copy_compute': 'gpu' is not one of lambda, ec2\n"


def _synth(context: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": str(tmp_path / "out")}
    return subprocess.run(
        [sys.executable, "-m", "infra.app"],
        cwd=REPOSITORY_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(InvalidConfig) as caught:
        parse_config(data)
    return caught.value.problems


@pytest.mark.parametrize("region", ["eu-west-3", "ap-east-1", "ca-central-1"])
def test_lambda_compute_is_refused_where_codebuild_does_not_offer_it(region: str) -> None:
    # Given a source Region without CodeBuild Lambda compute
    config = load_config(EXAMPLE).model_copy(
        update={"source": SourceConfig(account="111111111111", region=region)}
    )
    # When deploying with the default compute / Then the Regions with it and the alternative are named
    with pytest.raises(SettingsError) as caught:
        _settings(config=config)
    message = str(caught.value)
    assert f"CodeBuild Lambda compute is not offered in the source Region {region}" in message
    assert "us-east-1" in message
    assert "eu-central-1" in message
    assert "-c copy_compute=ec2" in message
    # And EC2 compute is accepted there
    assert _settings(config=config, copy_compute="ec2").copy_compute == "ec2"


@pytest.mark.parametrize(("region", "partition"), [("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov")])
@pytest.mark.parametrize("compute", ["lambda", "ec2"])
def test_a_source_outside_the_aws_partition_is_refused_at_deploy(
    region: str, partition: str, compute: str
) -> None:
    # Given a config whose source is in aws-cn or aws-us-gov (valid for the CLI's copy and sync)
    config = load_config(EXAMPLE).model_copy(
        update={"source": SourceConfig(account="111111111111", region=region)}
    )
    # When the source stack's settings are made / Then it is refused, naming the Region, its partition
    # and what to do instead (the ASL's integrations are aws-partition ARNs)
    with pytest.raises(SettingsError) as caught:
        _settings(config=config, copy_compute=compute)
    assert str(caught.value).startswith(
        f"config source.region: {region} is in partition {partition}; the source stack deploys only in the "
        "aws partition"
    )


def test_lambda_compute_regions_are_the_documented_ten() -> None:
    assert len(LAMBDA_COMPUTE_REGIONS) == 10
    assert all(region_problem(region) is None for region in LAMBDA_COMPUTE_REGIONS)


@pytest.mark.parametrize("value", ["\u00b2", "\u0661\u0660", "True"])
def test_reconcile_max_in_flight_is_ascii_digits(value: str) -> None:
    with pytest.raises(SettingsError, match="is not a whole number from 1 to 100"):
        settings_from_context(_context(reconcile_max_in_flight=value))


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


def test_many_repositories_fit_one_iam_statement() -> None:
    # Given 10 rules of 5 repository globs, sent to 3 Regions of one account: 150 ARNs, 10,500 characters
    rules = [
        {
            "name": f"team-{i}",
            "repositories": [f"team-{i}/service-{j}-*" for j in range(5)],
            "tags": {"include": ["release-*"]},
            "destinations": [
                {"account": "222222222222", "regions": ["eu-west-1", "us-west-2", "eu-central-1"]}
            ],
        }
        for i in range(10)
    ]
    config = parse_config({"source": {"account": "111111111111", "region": "us-east-1"}, "rules": rules})
    # When the destination role's resources are derived
    arns = naming.destination_repository_arns(config, "222222222222", "ecr-replication-target")
    # Then they fit one managed policy's statement (IAM: 6,144 characters), as shorter prefixes
    assert sum(len(arn) + 3 for arn in arns) <= naming.STATEMENT_RESOURCES_MAX_CHARACTERS
    assert "arn:aws:ecr:us-west-2:222222222222:repository/team-3/service-*" in arns
    # And every repository a rule writes is still covered, in its Region only
    for region in ("eu-west-1", "us-west-2", "eu-central-1"):
        for i in range(10):
            name = f"arn:aws:ecr:{region}:222222222222:repository/team-{i}/service-4-api"
            assert any(fnmatch.fnmatchcase(name, arn) for arn in arns), name
    assert not any(
        fnmatch.fnmatchcase("arn:aws:ecr:us-east-2:222222222222:repository/team-0/service-1", a) for a in arns
    )


def test_few_repositories_keep_their_exact_arns() -> None:
    config = load_config(EXAMPLE)
    assert naming.destination_repository_arns(config, "222222222222", "ecr-replication-target") == sorted(
        f"arn:aws:ecr:{region}:222222222222:repository/{name}"
        for region in ("eu-west-1", "us-west-2")
        for name in ("app", "services/*")
    )
