"""Every AWS call a component made while the suites ran is allowed to the role that makes it on AWS.

A call through a source-access role (another account's source) is checked against that role, which a forwarding
stack deploys, and its AssumeRole against that role's trust policy, as for destination roles.

The recorder (tests/conftest.py, tests/iam/recorder.py) writes each botocore call with its component;
this test runs last, synthesizes the app from a config covering what the calls touched, and checks
each call against the synthesized role that makes it (the component's own role, or the destination
role whose credentials signed it), an AssumeRole also against the assumed role's trust policy, and the
state machine's own service integrations (from the ASL's `Resource` fields) against its role.
Run alone, nothing is recorded and it fails, naming the suites to run with it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from infra.app import build_app, forwarding_stacks
from infra.settings import settings_from_context
from tests.iam import recorder
from tests.iam.calls import EXPECTED_COMPONENTS, SOURCE, Call, attributed, coverage_config
from tests.iam.evaluate import is_allowed, trusts
from tests.iam.templates import Stack
from workflow.pipeline.announce import BUS as EVENT_BUS

LAMBDA_HANDLERS = {
    "Plan": "lambdas.plan.handler",
    "Gate": "lambdas.gate.handler",
    "Precheck": "lambdas.precheck.handler",
    "Record": "lambdas.record.handler",
    "Summarize": "lambdas.summarize.handler",
    "Reconcile": "lambdas.reconcile.handler",
}
# `sync` runs the reconcile function's logic, and `status` reads what it reads; by hand they need credentials
# the destination roles trust (README, "Backfill and reconciliation"): the reconcile role grants them.
RUNS_AS = {"Sync": "Reconcile", "Status": "Reconcile"}
SYNC_RULE = "StepFunctionsGetEventForCodeBuildStartBuildRule"


def _calls() -> list[Call]:
    records = recorder.read(os.environ.get(recorder.RECORD_ENV, ""))
    calls = attributed(records)
    missing = [c for c in EXPECTED_COMPONENTS if not any(call.component == c for call in calls)]
    assert not missing, (
        f"no AWS calls recorded for {', '.join(missing)}: run this test in one session with the suites "
        "that exercise them (pytest tests, or tests/unit tests/integration tests/e2e tests/iam)"
    )
    return calls


@dataclass
class Synthesized:
    """The coverage app's templates, with the account and Region of each stack, and its cloud assembly."""

    stacks: list[tuple[str, dict[str, Any], str, str]]
    outdir: Path

    def resolved(self, *, placeholder: bool) -> list[Stack]:
        """The stacks (source first), resolving names CloudFormation chooses as `*` or `<LogicalId>`."""
        return [
            Stack(name, template, account, region, placeholder)
            for name, template, account, region in self.stacks
        ]

    def asset_text(self, stack_name: str, object_key: str) -> str:
        """The staged file behind an S3 asset key of a stack."""
        manifest = json.loads((self.outdir / f"{stack_name}.assets.json").read_text())
        for entry in manifest["files"].values():
            if any(d["objectKey"] == object_key for d in entry["destinations"].values()):
                return (self.outdir / entry["source"]["path"]).read_text(encoding="utf-8")
        raise KeyError(f"no asset {object_key} in {stack_name}")


def _synthesize(config: dict[str, Any], workdir: Path) -> Synthesized:
    """Synthesize the app from `config` (asset bundling skipped: this test reads policies only)."""
    config_file = workdir / "coverage.json"
    config_file.write_text(json.dumps(config))
    context = {"config": str(config_file), "copy_compute": "lambda", "aws:cdk:bundling-stacks": []}
    app = cdk.App(outdir=str(workdir / "cdk.out"), context=context)
    source, destinations = build_app(app, settings_from_context(app.node.try_get_context), nag=False)
    assembly = app.synth()
    stacks = [
        (s.stack_name, assembly.get_stack_by_name(s.stack_name).template, s.account, s.region)
        for s in [source, *destinations, *forwarding_stacks(app)]
    ]
    return Synthesized(stacks, Path(assembly.directory))


class Roles:
    """The synthesized roles, found by what runs as them."""

    def __init__(self, stacks: list[Stack]) -> None:
        self.stacks = stacks
        self.source = stacks[0]

    def of_component(self, component: str) -> tuple[Stack, str]:
        """The source stack and the logical id of the role `component` runs as."""
        component = RUNS_AS.get(component, component)
        if component == "Copy":
            return self.source, self.source.role_of("AWS::CodeBuild::Project", "ServiceRole")
        handler = LAMBDA_HANDLERS[component]
        return self.source, self.source.role_of("AWS::Lambda::Function", "Role", {"Handler": handler})

    def of_arn(self, arn: str) -> tuple[Stack, str]:
        """The stack and logical id of the role named by `arn`."""
        account, name = arn.split(":")[4], arn.rsplit("/", 1)[1]
        for stack in self.stacks:
            role = stack.role_named(name) if stack.account == account else None
            if role:
                return stack, role
        raise LookupError(f"no synthesized role {arn}")

    def principal_arn(self, stack: Stack, role_id: str) -> str:
        """The ARN of a synthesized role (a pattern when CloudFormation names it)."""
        return stack.arn(role_id)


@pytest.fixture(scope="module")
def recorded() -> list[Call]:
    """The calls the suites before this one recorded."""
    return _calls()


@pytest.fixture(scope="module")
def synthesized(recorded: list[Call], tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The app synthesized from a config covering what the recorded calls touched."""
    return _synthesize(coverage_config(recorded), tmp_path_factory.mktemp("iam"))


@pytest.fixture(scope="module")
def roles(synthesized: Synthesized) -> Roles:
    """The synthesized roles, names CloudFormation chooses resolved as `*` (recorded names are moto's)."""
    return Roles(synthesized.resolved(placeholder=False))


def _key_pair_denials(call: Call, roles: Roles) -> Iterator[str]:
    """A call signed with a credentials secret's key pair: only AssumeRole of the destination role, which
    must trust the principal the config names (that principal's own policy is its account's, documented)."""
    who = f"{call.component} with the key pair of {call.via_secret}"
    if call.action != "sts:AssumeRole":
        yield f"{who}: {call.action} is not the AssumeRole a key pair is stored for"
        return
    context = {"aws:PrincipalArn": str(call.principal), "aws:RequestedRegion": call.region}
    if call.params.get("ExternalId"):
        context["sts:ExternalId"] = str(call.params["ExternalId"])
    target_stack, target_id = roles.of_arn(call.resources[0])
    if target_stack.partition.name != call.resources[0].split(":")[1]:
        yield f"{who}: {call.resources[0]} is deployed in {target_stack.partition.name}"
    if not trusts(target_stack.trust(target_id), call.caller_account, context):
        yield f"{who}: {call.resources[0]} does not trust {call.principal} (sts:AssumeRole)"


def _denials(calls: list[Call], roles: Roles) -> Iterator[str]:
    seen: set[tuple[str, ...]] = set()
    for call in calls:
        if call.via_secret:
            yield from _key_pair_denials(call, roles)
            continue
        stack, role_id = (
            roles.of_arn(call.assumed_role) if call.assumed_role else roles.of_component(call.component)
        )
        principal = roles.principal_arn(stack, role_id)
        context = {"aws:PrincipalArn": principal, "aws:RequestedRegion": call.region}
        if call.params.get("ExternalId"):
            context["sts:ExternalId"] = str(call.params["ExternalId"])
        statements = stack.statements(role_id)
        for resource in call.resources:
            key = (principal, call.action, resource, json.dumps(context, sort_keys=True))
            if key in seen:
                continue
            seen.add(key)
            who = f"{call.component}" + (f" through {call.assumed_role}" if call.assumed_role else "")
            if not is_allowed(statements, call.action, resource, context):
                yield f"{who}: role {stack.name}/{role_id} is not allowed {call.action} on {resource}"
            if call.action == "sts:AssumeRole":
                target_stack, target_id = roles.of_arn(resource)
                if not trusts(target_stack.trust(target_id), stack.account, context):
                    yield f"{who}: {resource} does not trust {principal} (sts:AssumeRole)"


def test_every_recorded_call_is_allowed_to_the_role_that_makes_it(recorded: list[Call], roles: Roles) -> None:
    """Given the calls recorded while the unit, integration and e2e suites ran
    When each is evaluated against the synthesized policies of the role that makes it
    Then every one is allowed (and every AssumeRole trusted by the assumed role)."""
    denials = sorted(set(_denials(recorded, roles)))
    assert not denials, "AWS would refuse calls the tests made:\n" + "\n".join(denials)


def _tasks(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in states.items():
        if state.get("Type") == "Task":
            yield name, state
        for nested in [state.get("ItemProcessor"), state.get("Iterator"), *state.get("Branches", [])]:
            if nested:
                yield from _tasks(nested["States"])


def _integration_calls(stack: Stack, definition: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(state, action, resource) for every call the state machine's service integrations make.

    Step Functions developer guide, "IAM policies for ... Lambda / CodeBuild / Amazon SNS":
    https://docs.aws.amazon.com/step-functions/latest/dg/codebuild-iam.html (and lambda-iam, sns-iam).
    """
    where = f"{stack.region}:{stack.account}"
    for name, state in _tasks(definition["States"]):
        resource, parameters = state["Resource"], state.get("Parameters", {})
        if resource == "arn:aws:states:::lambda:invoke":
            yield name, "lambda:InvokeFunction", parameters["FunctionName"]
        elif resource == "arn:aws:states:::codebuild:startBuild.sync":
            project = f"arn:aws:codebuild:{where}:project/{parameters['ProjectName']}"
            for action in ("StartBuild", "StopBuild", "BatchGetBuilds"):
                yield name, f"codebuild:{action}", project
            for action in ("PutTargets", "PutRule", "DescribeRule"):
                yield name, f"events:{action}", f"arn:aws:events:{where}:rule/{SYNC_RULE}"
        elif resource == "arn:aws:states:::sns:publish":
            topic = parameters["TopicArn"]
            yield name, "sns:Publish", topic
            (topic_id,) = [i for i in stack.of_type("AWS::SNS::Topic") if stack.arn(i) == topic]
            key = stack.resolve(stack.resources[topic_id]["Properties"].get("KmsMasterKeyId"))
            # Publishing to an encrypted topic: the publisher needs its key (SNS developer guide, SSE).
            if key:
                yield name, "kms:GenerateDataKey", key
                yield name, "kms:Decrypt", key
        elif resource == "arn:aws:states:::events:putEvents":
            # Its entries are Summarize's (workflow.pipeline.announce), all for the default bus
            # (Step Functions developer guide, "IAM policies for Amazon EventBridge").
            yield name, "events:PutEvents", f"arn:aws:events:{where}:event-bus/{EVENT_BUS}"
        else:
            raise AssertionError(f"state {name}: no IAM mapping for the integration {resource}")


def test_state_machine_integrations_are_allowed_to_its_role(synthesized: Synthesized) -> None:
    """Given the synthesized state machine (names kept as <LogicalId>, so each reference is exact)
    When each Task's integration is turned into the IAM actions it needs
    Then the state machine's role allows each, on exactly the function, project, rule, topic and key."""
    stack = synthesized.resolved(placeholder=True)[0]
    (machine,) = stack.of_type("AWS::StepFunctions::StateMachine").values()
    properties = machine["Properties"]
    text = synthesized.asset_text(stack.name, str(stack.resolve(properties["DefinitionS3Location"]["Key"])))
    for name, value in (properties.get("DefinitionSubstitutions") or {}).items():
        text = text.replace("${" + name + "}", str(stack.resolve(value)))
    role_id = stack.role_of("AWS::StepFunctions::StateMachine", "RoleArn")
    statements = stack.statements(role_id)
    needed = list(_integration_calls(stack, json.loads(text)))
    assert {action.split(":")[0] for _, action, _ in needed} >= {"lambda", "codebuild", "events", "sns"}
    denied = [
        f"state {state}: {action} on {resource}"
        for state, action, resource in needed
        if not is_allowed(statements, action, resource, {"aws:RequestedRegion": SOURCE["region"]})
    ]
    assert not denied, f"the state machine role {role_id} lacks:\n" + "\n".join(denied)
