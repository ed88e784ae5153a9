"""The source stack's template: trigger, state machine, functions, copy project, topic, alarms."""

from __future__ import annotations

import importlib.metadata
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.bundling import CONFIG_FILE_NAME
from infra.constructs.copy_project import load_buildspec
from infra.constructs.state_machine import SUBSTITUTIONS
from tests.infrastructure.conftest import Synthesized, resources
from workflow.pipeline.plan import event_pattern
from workflow.pipeline.timeouts import FUNCTION_TIMEOUTS, REGISTRY_EXCHANGE, registry_budget
from workflow.registry.deadline import RESERVE
from workflow.registry.retry import RetryPolicy

pytestmark = pytest.mark.infrastructure

PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def _one(template: dict[str, Any], resource_type: str) -> tuple[str, dict[str, Any]]:
    found = resources(template, resource_type)
    assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
    return next(iter(found.items()))


def _functions_by_handler(template: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    return {
        v["Properties"]["Handler"]: (k, v["Properties"])
        for k, v in resources(template, "AWS::Lambda::Function").items()
    }


def test_rule_pattern_is_the_compiled_pattern(synthesized: Synthesized) -> None:
    # Given the config; When the rule is synthesized
    _, rule = _one(synthesized.source_template, "AWS::Events::Rule")
    # Then its pattern is exactly workflow.pipeline.plan.event_pattern(config)
    assert rule["Properties"]["EventPattern"] == event_pattern(synthesized.settings.config)


def test_rule_targets_the_state_machine_with_retries_and_an_encrypted_dead_letter_queue(
    synthesized: Synthesized,
) -> None:
    template = synthesized.source_template
    _, rule = _one(template, "AWS::Events::Rule")
    state_machine_id, _ = _one(template, "AWS::StepFunctions::StateMachine")
    queue_id, queue = next(
        (k, v) for k, v in resources(template, "AWS::SQS::Queue").items() if k.startswith("Trigger")
    )
    # When the target is read
    (target,) = rule["Properties"]["Targets"]
    # Then it starts the state machine, retries, and dead-letters to the queue
    assert target["Arn"] == {"Ref": state_machine_id}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    # And the queue is encrypted and refuses plain-HTTP requests
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    policies = [
        p["Properties"]["PolicyDocument"] for p in resources(template, "AWS::SQS::QueuePolicy").values()
    ]
    denies = [s for p in policies for s in p["Statement"] if s["Effect"] == "Deny"]
    assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)


def test_every_asl_substitution_is_filled_with_the_right_resource(synthesized: Synthesized) -> None:
    template = synthesized.source_template
    _, machine = _one(template, "AWS::StepFunctions::StateMachine")
    properties = machine["Properties"]
    definition = synthesized.asset_path("EcrReplicationSource", properties["DefinitionS3Location"]["Key"])
    text = definition.read_text()
    substitutions = properties["DefinitionSubstitutions"]
    # Then every ${...} of the ASL has a substitution, and there is none for anything else
    assert set(PLACEHOLDER.findall(text)) == set(substitutions) == set(SUBSTITUTIONS)
    # And each one names the intended resource
    functions = _functions_by_handler(template)
    for name, handler in [
        ("PlanFunctionArn", "lambdas.plan.handler"),
        ("PrecheckFunctionArn", "lambdas.precheck.handler"),
        ("SummarizeFunctionArn", "lambdas.summarize.handler"),
        ("RecordFunctionArn", "lambdas.record.handler"),
    ]:
        assert substitutions[name] == {"Fn::GetAtt": [functions[handler][0], "Arn"]}
    assert substitutions["CopyProjectName"] == {"Ref": _one(template, "AWS::CodeBuild::Project")[0]}
    assert substitutions["NotificationTopicArn"] == {"Ref": _one(template, "AWS::SNS::Topic")[0]}
    # And the document is JSON before and after substitution (CloudFormation's Fn::Sub-style replacement)
    assert json.loads(text)["States"]["Replicate"]["MaxConcurrencyPath"] == "$.plan.max_concurrency"
    filled = PLACEHOLDER.sub(lambda m: f"value-of-{m[1]}", text)
    assert json.loads(filled)["States"]


def test_state_machine_logs_everything_to_a_vended_log_group_with_retention_and_traces(
    synthesized: Synthesized,
) -> None:
    template = synthesized.source_template
    _, machine = _one(template, "AWS::StepFunctions::StateMachine")
    logging = machine["Properties"]["LoggingConfiguration"]
    (destination,) = logging["Destinations"]
    log_group_id = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    log_group = template["Resources"][log_group_id]["Properties"]
    assert logging["Level"] == "ALL"
    assert log_group["LogGroupName"].startswith("/aws/vendedlogs/states/")
    assert log_group["RetentionInDays"] > 0
    assert machine["Properties"]["TracingConfiguration"] == {"Enabled": True}


def test_functions_are_arm64_python_with_their_own_roles_and_log_retention(synthesized: Synthesized) -> None:
    template = synthesized.source_template
    functions = _functions_by_handler(template)
    assert set(functions) == {
        "lambdas.plan.handler",
        "lambdas.gate.handler",
        "lambdas.precheck.handler",
        "lambdas.summarize.handler",
        "lambdas.record.handler",
        "lambdas.reconcile.handler",
    }
    roles = set()
    for _, properties in functions.values():
        assert properties["Architectures"] == ["arm64"]
        major, minor = map(int, properties["Runtime"].removeprefix("python").split("."))
        assert (major, minor) >= (3, 12)
        assert properties["TracingConfig"] == {"Mode": "Active"}
        assert properties["Environment"]["Variables"]["REPLICATION_CONFIG_FILE"].endswith(CONFIG_FILE_NAME)
        log_group = template["Resources"][properties["LoggingConfig"]["LogGroup"]["Ref"]]["Properties"]
        assert log_group["RetentionInDays"] > 0
        roles.add(properties["Role"]["Fn::GetAtt"][0])
    assert len(roles) == 6


def test_each_function_that_reads_registries_outlasts_its_registry_budget(synthesized: Synthesized) -> None:
    """Given the Precheck, Gate and reconcile functions, which read registries
    When their deployed timeouts are set against what one registry operation may take with its retries
    (exchange bound x attempts + backoff), with the reserve each invocation keeps for the error
    Then each timeout holds it: a stall ends as the handler's RegistryTimeout, not Lambda's Sandbox.Timedout."""
    functions = _functions_by_handler(synthesized.source_template)
    for name, exchange in REGISTRY_EXCHANGE.items():
        timeout = functions[f"lambdas.{name}.handler"][1]["Timeout"]
        assert timeout == FUNCTION_TIMEOUTS[name]
        budget = registry_budget(exchange)
        assert timeout * (1 - RESERVE) >= budget, (
            f"{name}: a {timeout} s timeout leaves {timeout * (1 - RESERVE):.1f} s for registry work, less than "
            f"one operation's budget of {budget:.1f} s ({exchange:.0f} s exchanges, {RetryPolicy().attempts} attempts)"
        )


def test_lambda_asset_holds_packages_dependencies_for_arm64_and_the_config(synthesized: Synthesized) -> None:
    template = synthesized.source_template
    _, properties = _functions_by_handler(template)["lambdas.plan.handler"]
    asset = synthesized.asset_path("EcrReplicationSource", properties["Code"]["S3Key"])
    assert (asset / "lambdas" / "plan.py").is_file()
    assert (asset / "workflow" / "pipeline" / "plan.py").is_file()
    assert (asset / "workflow" / "pipeline" / "organizations.py").is_file()
    assert (asset / "cachetools").is_dir()  # the Organizations directory's bounded cache
    assert (asset / CONFIG_FILE_NAME).read_bytes() == synthesized.settings.config_path.read_bytes()
    native = list((asset / "pydantic_core").glob("*.so"))
    assert native
    assert all("aarch64" in p.name for p in native)
    assert (asset / "aws_lambda_powertools").is_dir()
    # boto3 and botocore are bundled, pinned: the runtime's may predate the 2025 ECR fields the code uses
    for name in ("boto3", "botocore"):
        (found,) = asset.glob(f"{name}-*.dist-info")
        assert found.name == f"{name}-{importlib.metadata.version(name)}.dist-info"


def test_copy_project_is_lambda_compute_never_privileged_and_runs_the_package_from_s3(
    synthesized: Synthesized,
) -> None:
    template = synthesized.source_template
    _, project = _one(template, "AWS::CodeBuild::Project")
    properties = project["Properties"]
    assert properties["Environment"]["PrivilegedMode"] is False
    assert properties["Environment"]["Type"] == "LINUX_LAMBDA_CONTAINER"
    assert properties["Environment"]["ComputeType"] == "BUILD_LAMBDA_2GB"
    assert properties["Source"]["Type"] == "S3"
    assert "EncryptionKey" in properties
    log_group_ref = properties["LogsConfig"]["CloudWatchLogs"]["GroupName"]["Ref"]
    assert template["Resources"][log_group_ref]["Properties"]["RetentionInDays"] > 0
    bucket_and_key = properties["Source"]["Location"]
    package = synthesized.asset_path("EcrReplicationSource", bucket_and_key.split("/", 1)[1])
    assert (package / "workflow" / "engine" / "copy.py").is_file()
    assert not (package / "workflow" / "cli.py").exists()  # the copy job ships core/, registry/, engine/ only
    assert "ecr-replicate copy" in properties["Source"]["BuildSpec"]
    assert "pip install" not in properties["Source"]["BuildSpec"]


def test_copy_job_asset_runs_the_copy_command_with_nothing_installed(
    synthesized: Synthesized, tmp_path: Path
) -> None:
    # Given the copy job's asset, and the buildspec's install phase run with bash as CodeBuild would
    template = synthesized.source_template
    _, project = _one(template, "AWS::CodeBuild::Project")
    package = synthesized.asset_path(
        "EcrReplicationSource", project["Properties"]["Source"]["Location"].split("/", 1)[1]
    )
    # (all but its first command, the Python 3.12 pin, which this machine's 3.11 fails: tests/infrastructure/
    # test_runtimes.py shows that check)
    commands = load_buildspec()["phases"]["install"]["commands"]
    assert "pinned to Python 3.12" in commands[0]
    install = "\n".join(commands[1:])
    script = f"set -eo pipefail\n{install}\necr-replicate copy --help"
    # When `ecr-replicate copy` runs from it with no site-packages at all (python3 -S)
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "python3").write_text(f'#!/bin/sh\nexec {sys.executable} -S "$@"\n')
    (shim / "python3").chmod(0o755)
    env = {"PATH": f"{shim}:/usr/bin:/bin", "CODEBUILD_SRC_DIR": str(package), "HOME": str(tmp_path)}
    completed = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, check=False)
    # Then it starts, and its pinned dependencies come from the asset, all pure Python
    assert completed.returncode == 0, completed.stderr
    assert "--insecure-registry" in completed.stdout
    probe = "import boto3, urllib3, workflow.engine.copy, workflow.engine.roles; print(urllib3.__file__, boto3.__version__)"
    found = subprocess.run(
        [sys.executable, "-S", "-c", probe],
        env={"PYTHONPATH": str(package)},
        capture_output=True,
        text=True,
        check=True,
    )
    urllib3_file, boto3_version = found.stdout.split()
    assert Path(urllib3_file).is_relative_to(package)
    assert boto3_version == importlib.metadata.version("boto3")
    assert not [p for p in package.rglob("*") if p.suffix in (".so", ".pyd")]


def test_topic_is_kms_encrypted_with_the_configured_email_subscriptions(synthesized: Synthesized) -> None:
    template = synthesized.source_template
    topic_id, topic = _one(template, "AWS::SNS::Topic")
    key_id, key = _one(template, "AWS::KMS::Key")
    assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert key["Properties"]["EnableKeyRotation"] is True
    subscriptions = resources(template, "AWS::SNS::Subscription").values()
    assert sorted(s["Properties"]["Endpoint"] for s in subscriptions) == sorted(synthesized.settings.emails)
    assert all(s["Properties"]["TopicArn"] == {"Ref": topic_id} for s in subscriptions)


def test_topic_policy_lets_only_this_accounts_alarms_publish_and_refuses_plain_http(
    synthesized: Synthesized,
) -> None:
    # Given the topic's resource policy (which replaces SNS's default policy)
    template = synthesized.source_template
    topic_id, _ = _one(template, "AWS::SNS::Topic")
    _, policy = _one(template, "AWS::SNS::TopicPolicy")
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    # When its statements are read
    allows = [s for s in statements if s["Effect"] == "Allow"]
    denies = [s for s in statements if s["Effect"] == "Deny"]
    # Then CloudWatch may publish, only for alarms of this account, and plain HTTP is denied
    (allow,) = allows
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Action"] == "sns:Publish"
    assert allow["Resource"] == {"Ref": topic_id}
    assert allow["Condition"]["StringEquals"] == {
        "aws:SourceAccount": synthesized.settings.config.source.account
    }
    assert ":alarm:*" in json.dumps(allow["Condition"]["ArnLike"])
    assert any(d["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for d in denies)


def test_alarms_on_failed_and_timed_out_executions_and_the_dead_letter_queue_notify_the_topic(
    synthesized: Synthesized,
) -> None:
    template = synthesized.source_template
    topic_id, _ = _one(template, "AWS::SNS::Topic")
    alarms = {
        a["Properties"]["MetricName"]: a["Properties"]
        for a in resources(template, "AWS::CloudWatch::Alarm").values()
    }
    assert set(alarms) == {
        "RunsFailedWithoutSummary",  # runs that sent no summary email (tests/infrastructure/test_alarms.py)
        "ExecutionsTimedOut",
        "ApproximateNumberOfMessagesVisible",
        "Errors",  # the reconcile function's
    }
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]
        assert alarm["Threshold"] == 1
    assert alarms["ExecutionsTimedOut"]["Namespace"] == "AWS/States"
    assert alarms["ApproximateNumberOfMessagesVisible"]["Namespace"] == "AWS/SQS"
    # And every dead-letter queue (push events, reconciliation schedule) has its own alarm
    watched = {
        dimension["Value"]["Fn::GetAtt"][0]
        for alarm in resources(template, "AWS::CloudWatch::Alarm").values()
        for dimension in alarm["Properties"].get("Dimensions", [])
        if dimension["Name"] == "QueueName"
    }
    assert watched == set(resources(template, "AWS::SQS::Queue"))


def test_outputs_name_what_an_operator_starts_or_watches(synthesized: Synthesized) -> None:
    # Given the source template / Then its outputs point at the state machine, topic, copy project, DLQ and
    # the reconcile function (invoked on demand for a large backlog)
    template = synthesized.source_template
    outputs = template["Outputs"]
    assert {
        "StateMachineArn",
        "TopicArn",
        "CopyProjectName",
        "DeadLetterQueueUrl",
        "ReconcileFunctionName",
    } <= set(outputs)
    (reconcile_id,) = [
        k
        for k, v in resources(template, "AWS::Lambda::Function").items()
        if v["Properties"]["Handler"] == "lambdas.reconcile.handler"
    ]
    assert outputs["ReconcileFunctionName"]["Value"] == {"Ref": reconcile_id}


def test_the_record_function_may_only_write_its_logs_and_traces(synthesized: Synthesized) -> None:
    # Given the Record function (it reads what the states hand it and calls no AWS API)
    template = synthesized.source_template
    _, record = _functions_by_handler(template)["lambdas.record.handler"]
    role = record["Role"]["Fn::GetAtt"][0]
    # When its role's policies are read
    statements = [
        statement
        for policy in resources(template, "AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    actions = {
        action
        for statement in statements
        for action in (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
    }
    # Then it may write its own log group and X-Ray traces, nothing else
    assert actions == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }
    assert "ManagedPolicyArns" not in template["Resources"][role]["Properties"]
