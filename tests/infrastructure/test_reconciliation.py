"""The Reconciliation construct in a small stack: schedule, function, least-privilege roles, cdk-nag clean."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from cdk_nag import AwsSolutionsChecks

from infra.app import build_app
from infra.constructs.functions import HandlerCode
from infra.constructs.reconciliation import Reconciliation
from infra.naming import reconcile_role_name
from infra.settings import REPOSITORY_ROOT, SettingsError, settings_from_context
from tests.infrastructure.conftest import resources
from workflow.models.config import load_config

pytestmark = pytest.mark.infrastructure

CONFIG_PATH = REPOSITORY_ROOT / "examples" / "replication.yaml"
MACHINE_ARN = "arn:aws:states:us-east-1:111111111111:stateMachine:replication"


def synth(outdir: Path, **options: Any) -> dict[str, Any]:
    """Synthesize a stack holding only the construct, a stand-in state machine and an encrypted topic."""
    app = cdk.App(outdir=str(outdir))
    stack = cdk.Stack(app, "ReconcileTest", env=cdk.Environment(account="111111111111", region="us-east-1"))
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    topic = sns.Topic(stack, "Topic", master_key=key, enforce_ssl=True)
    machine = sfn.StateMachine.from_state_machine_arn(stack, "Machine", MACHINE_ARN)
    Reconciliation(
        stack,
        "Reconciliation",
        config=load_config(CONFIG_PATH),
        state_machine=machine,
        topic=topic,
        code=HandlerCode(stack, "Code", config_path=CONFIG_PATH),
        **options,
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()
    return dict(json.loads((outdir / "ReconcileTest.template.json").read_text()))


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The default construct (daily, enabled), cdk-nag enforcing at synth."""
    return synth(tmp_path_factory.mktemp("reconcile"))


def statements(template: dict[str, Any], role_name: str) -> list[dict[str, Any]]:
    """Every policy statement attached to the role named `role_name`."""
    role_id = next(
        k
        for k, v in resources(template, "AWS::IAM::Role").items()
        if v["Properties"].get("RoleName") == role_name
    )
    found = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return found


def actions_of(statement: dict[str, Any]) -> list[str]:
    """A statement's actions as a list."""
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


def test_daily_schedule_invokes_the_function_through_its_own_role(template: dict[str, Any]) -> None:
    # Given the synthesized construct When reading the schedule
    (schedule,) = resources(template, "AWS::Scheduler::Schedule").values()
    properties = schedule["Properties"]
    (function_id,) = [
        k
        for k, v in resources(template, "AWS::Lambda::Function").items()
        if v["Properties"]["Handler"] == "lambdas.reconcile.handler"
    ]

    # Then it runs daily, enabled, invoking the reconcile function with retries and a dead-letter queue
    assert properties["ScheduleExpression"] == "rate(1 day)"
    assert properties["State"] == "ENABLED"
    target = properties["Target"]
    assert target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 2
    assert "DeadLetterConfig" in target
    # and the schedule's role may only invoke that function and dead-letter to its queue
    role_id = target["RoleArn"]["Fn::GetAtt"][0]
    policies = [
        p
        for p in resources(template, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
    ]
    invoked = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
    assert {a for s in invoked for a in actions_of(s)} == {"lambda:InvokeFunction", "sqs:SendMessage"}
    (send,) = [s for s in invoked if "sqs:SendMessage" in actions_of(s)]
    assert send["Resource"] == target["DeadLetterConfig"]["Arn"]


def test_failed_runs_are_not_retried_by_lambda_and_alarm_to_the_topic(template: dict[str, Any]) -> None:
    # Given the synthesized construct
    (function_id,) = [
        k
        for k, v in resources(template, "AWS::Lambda::Function").items()
        if v["Properties"]["Handler"] == "lambdas.reconcile.handler"
    ]
    (topic_id,) = resources(template, "AWS::SNS::Topic")

    # When reading the function's async invoke config and the alarms
    (invoke_config,) = resources(template, "AWS::Lambda::EventInvokeConfig").values()
    errors = [
        v["Properties"]
        for v in resources(template, "AWS::CloudWatch::Alarm").values()
        if v["Properties"]["MetricName"] == "Errors"
    ]

    # Then Lambda does not retry the asynchronous invocation (the next schedule does)
    assert invoke_config["Properties"]["FunctionName"] == {"Ref": function_id}
    assert invoke_config["Properties"]["MaximumRetryAttempts"] == 0
    # and one error in a period notifies the topic
    (alarm,) = errors
    assert alarm["Namespace"] == "AWS/Lambda"
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function_id}}]
    assert (alarm["Statistic"], alarm["Threshold"], alarm["EvaluationPeriods"]) == ("Sum", 1, 1)
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["AlarmActions"] == [{"Ref": topic_id}]


def test_function_role_is_least_privilege(template: dict[str, Any]) -> None:
    # Given the reconcile role's statements
    config = load_config(CONFIG_PATH)
    found = statements(template, reconcile_role_name(config))
    by_action = {a: s for s in found for a in actions_of(s)}

    # Then it reads source images only in the configured repositories, assumes only destination roles,
    # lists and starts only this state machine's executions and publishes only to the topic
    assert by_action["ecr:DescribeImages"]["Resource"] == [
        "arn:aws:ecr:us-east-1:111111111111:repository/app",
        "arn:aws:ecr:us-east-1:111111111111:repository/services/*",
    ]
    assert (
        by_action["ecr:DescribeRepositories"]["Resource"] == "arn:aws:ecr:us-east-1:111111111111:repository/*"
    )
    assert sorted(by_action["sts:AssumeRole"]["Resource"]) == [
        "arn:aws:iam::222222222222:role/ecr-replication-target",
        "arn:aws:iam::333333333333:role/ecr-replication-target",
    ]
    assert by_action["states:StartExecution"]["Resource"] == MACHINE_ARN
    assert by_action["states:ListExecutions"]["Resource"] == MACHINE_ARN
    assert "sns:Publish" in by_action
    assert {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(by_action)
    # and pulls (for `sync --local`) exactly those repositories, with a registry token, and writes no image
    pulls = ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:ListImages")
    assert all(by_action[a]["Resource"] == by_action["ecr:DescribeImages"]["Resource"] for a in pulls)
    reads = ("ecr:Describe", "ecr:List", *pulls, "ecr:GetAuthorizationToken")
    write_actions = {a for a in by_action if a.startswith("ecr:") and not a.startswith(reads)}
    assert write_actions == set()
    # and only the actions AWS authorizes on Resource '*' alone are granted on it
    wildcard_only = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "ecr:GetAuthorizationToken"}
    assert all(s["Resource"] != "*" for s in found if not set(actions_of(s)) <= wildcard_only)


def test_function_environment_names_the_state_machine_and_topic(template: dict[str, Any]) -> None:
    # Given the reconcile function When reading its environment Then both ARNs are there
    (function,) = [
        v
        for v in resources(template, "AWS::Lambda::Function").values()
        if v["Properties"]["Handler"] == "lambdas.reconcile.handler"
    ]
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["STATE_MACHINE_ARN"] == MACHINE_ARN
    assert "Ref" in variables["TOPIC_ARN"]
    assert function["Properties"]["Timeout"] == 900


def test_schedule_can_be_configured_and_disabled(tmp_path: Path) -> None:
    # Given a custom expression and enabled=False When synthesizing
    template = synth(tmp_path, schedule_expression="cron(0 3 * * ? *)", enabled=False)
    (schedule,) = resources(template, "AWS::Scheduler::Schedule").values()
    # Then the schedule exists, disabled, with that expression
    assert schedule["Properties"]["ScheduleExpression"] == "cron(0 3 * * ? *)"
    assert schedule["Properties"]["State"] == "DISABLED"


@pytest.mark.parametrize(
    ("context", "enabled", "expression"),
    [
        ({}, True, "rate(1 day)"),
        ({"reconcile": "false"}, False, "rate(1 day)"),
        ({"reconcile": "off", "reconcile_schedule": "rate(6 hours)"}, False, "rate(6 hours)"),
        ({"reconcile": True, "reconcile_schedule": "cron(0 3 * * ? *)"}, True, "cron(0 3 * * ? *)"),
    ],
)
def test_reconcile_context_values(context: dict[str, Any], enabled: bool, expression: str) -> None:
    # Given context values When parsing the settings Then the flag and the schedule are as documented
    settings = settings_from_context(context.get)
    assert (settings.reconcile, settings.reconcile_schedule) == (enabled, expression)


@pytest.mark.parametrize(
    ("context", "key"),
    [({"reconcile": "sometimes"}, "reconcile"), ({"reconcile_schedule": "daily"}, "reconcile_schedule")],
)
def test_reconcile_context_rejects_nonsense(context: dict[str, Any], key: str) -> None:
    # Given a value that is not valid When parsing Then the error names the context key
    with pytest.raises(SettingsError, match=f"context '{key}'"):
        settings_from_context(context.get)


def test_fits_the_source_stack_cdk_nag_and_cfn_lint_clean(tmp_path: Path) -> None:
    # Given the real source stack, which wires the construct in
    app = cdk.App(outdir=str(tmp_path), context={"config": "examples/replication.yaml"})
    settings = settings_from_context(app.node.try_get_context)
    source, _ = build_app(app, settings)
    assert isinstance(source.reconciliation, Reconciliation)

    # When synthesizing (cdk-nag enforcing) and linting the template
    app.synth()
    template = tmp_path / "EcrReplicationSource.template.json"
    completed = subprocess.run(
        [sys.executable, "-m", "cfnlint", "--format", "json", str(template)],
        capture_output=True,
        text=True,
        check=False,
    )

    # Then nag passed (synth did not raise), cfn-lint finds no error, and the schedule is there
    errors = [f for f in json.loads(completed.stdout or "[]") if f["Level"] == "Error"]
    assert errors == []
    assert len(resources(json.loads(template.read_text()), "AWS::Scheduler::Schedule")) == 1
    assert AwsSolutionsChecks().validate_scope(app).success


def test_max_in_flight_reaches_the_function(tmp_path: Path) -> None:
    # Given the construct asked to keep up to 25 executions running
    template = synth(tmp_path, max_in_flight=25)
    # Then the function gets it in its environment
    (function,) = [
        v["Properties"]
        for v in resources(template, "AWS::Lambda::Function").values()
        if v["Properties"]["Handler"] == "lambdas.reconcile.handler"
    ]
    assert function["Environment"]["Variables"]["MAX_IN_FLIGHT"] == "25"
