"""Every AWS call and registry request a component made while the suites ran is allowed on AWS.

The recorder (tests/conftest.py, tests/iam/recorder.py) writes each botocore call and each registry-protocol
request with its component and its world (the test directory that made it); this test runs last, synthesizes
the app for each world from a config covering what that world touched, and asks an IAM evaluator independent of moto (`@cloud-copilot/iam-simulate`, tests/iam/simulate.py)
whether the synthesized policies allow each one, as the principal that made it (the component's own role, the
destination role whose credentials signed it or got its registry token, or the user of a key pair):
- the call or request itself (a registry request as the ECR actions of tests/iam/registry_actions.py), with
  the role's trust policy for an AssumeRole;
- the actions it depends on (tests/iam/dependent.py), with the condition keys the service sets
  (`kms:ViaService`) and the key's policy;
- the state machine's own service integrations (from the ASL's `Resource` fields);
- every service trust and what services do for the deployment as a role or under a resource policy
  (tests/iam/principals.py), with `aws:SourceAccount` and `aws:SourceArn`.
Each pytest process records into its own file of one folder (ECR_REPLICATE_IAM_RECORDS); this test reads them
all, so under xdist it runs after the parallel run, in a run of its own (`make test`). Run alone, nothing is
recorded and it fails, naming the suites to run with it.
A call through a source-access role (another account's source) is checked against that role, which a forwarding
stack deploys, and its AssumeRole against that role's trust policy, as for destination roles.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import aws_cdk as cdk
import pytest

from infra.app import build_app, forwarding_stacks
from infra.settings import settings_from_context
from tests.iam import recorder
from tests.iam.calls import (
    EXPECTED_COMPONENTS,
    SOURCE,
    Call,
    attributed,
    coverage_config,
    organization_actions,
    without_gates,
)
from tests.iam.dependent import Keys, needed
from tests.iam.principals import PRINCIPALS, SERVICE_ACTIONS, SERVICE_TRUSTS, NamedRole
from tests.iam.simulate import Decision, Request, evaluate
from tests.iam.templates import Stack
from workflow.models import config_checks
from workflow.pipeline.announce import BUS as EVENT_BUS

SYNC_RULE = "StepFunctionsGetEventForCodeBuildStartBuildRule"
# Components whose registry requests the suites must have recorded (the copy, the Lambdas that read registries,
# and `sync --local`): a hook that stopped seeing them would otherwise pass silently.
REGISTRY_COMPONENTS = ("Copy", "Precheck", "Gate", "Sync")
# A customer-managed key named in the config (a credentials secret's, a repository's) has the default key policy,
# which lets the account's IAM policies decide (KMS developer guide, "Default key policy":
# https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html).
DEFAULT_KEY_POLICY = "arn:{partition}:iam::{account}:root"
STATE_MACHINE = next(t.runs for t in SERVICE_TRUSTS if t.service == "states.amazonaws.com")


def _calls() -> list[Call]:
    if os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.fail(
            "the IAM coverage test checks the calls of every other suite, so it runs after them: with "
            f"pytest-xdist, in a pytest run of its own given the parallel run's {recorder.RECORDS_ENV} (as `make "
            "test` does)"
        )
    records = recorder.read_all(os.environ.get(recorder.RECORDS_ENV, ""))
    calls = attributed(records)
    missing = [c for c in EXPECTED_COMPONENTS if not any(call.component == c for call in calls)]
    assert not missing, (
        f"no AWS calls recorded for {', '.join(missing)}: run this test in one session with the suites "
        "that exercise them (pytest tests, or tests/unit tests/integration tests/e2e tests/iam)"
    )
    silent = [
        c for c in REGISTRY_COMPONENTS if not any(call.registry and call.component == c for call in calls)
    ]
    assert not silent, f"no registry requests recorded for {', '.join(silent)} (tests/iam/recorder.py)"
    return calls


@dataclass
class Synthesized:
    """The coverage app's templates, with the account and Region of each stack, its cloud assembly, and the fleet
    role's template with the parameters its StackSet passes (None without organization destinations)."""

    stacks: list[tuple[str, dict[str, Any], str, str]]
    outdir: Path
    fleet: tuple[dict[str, Any], dict[str, str]] | None = None

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


def _in_the_source_place(config: dict[str, Any]) -> bool:
    """Whether a destination is in a source's account and Region (a loop: the config check refuses it)."""
    places = {(s["account"], s["region"]) for s in config.get("sources") or [config["source"]]}
    return any(
        (d.get("account"), region) in places
        for rule in config["rules"]
        for d in rule["destinations"]
        for region in d["regions"]
    )


def _synthesize(config: dict[str, Any], workdir: Path) -> Synthesized:
    """Synthesize the app from `config` (asset bundling skipped: this test reads policies only).

    A world that wrote to a destination in the source's own account and Region ran a looping config on purpose
    (tests/e2e/test_local_ecr.py, deployed there without the loop check): it is synthesized the same way, so
    the IAM of what it did is checked too."""
    config_file = workdir / "coverage.json"
    config_file.write_text(json.dumps(config))
    context = {
        "config": str(config_file),
        "copy_compute": "lambda",
        "aws:cdk:bundling-stacks": [],
        "organization_root_id": "r-cove",
    }
    app = cdk.App(outdir=str(workdir / "cdk.out"), context=context)
    loops = mock.patch.object(config_checks, "_loops", return_value=[])
    with loops if _in_the_source_place(config) else contextlib.nullcontext():
        settings = settings_from_context(app.node.try_get_context)
    source, destinations = build_app(app, settings, nag=False)
    assembly = app.synth()
    stacks = [
        (s.stack_name, assembly.get_stack_by_name(s.stack_name).template, s.account, s.region)
        for s in [source, *destinations, *forwarding_stacks(app)]
    ]
    fleet = None
    stack_sets = Stack("source", stacks[0][1], SOURCE["account"], SOURCE["region"]).of_type(
        "AWS::CloudFormation::StackSet"
    )
    for stack_set in stack_sets.values():
        properties = stack_set["Properties"]
        parameters = {p["ParameterKey"]: p["ParameterValue"] for p in properties["Parameters"]}
        fleet = (json.loads(properties["TemplateBody"]), parameters)
    return Synthesized(stacks, Path(assembly.directory), fleet)


def role_arn(stack: Stack, role_id: str) -> str:
    """A role's ARN: its RoleName, or its logical id standing for the name CloudFormation chooses."""
    name = stack.resolve(stack.resources[role_id].get("Properties", {}).get("RoleName")) or role_id
    return f"arn:{stack.partition.name}:iam::{stack.account}:role/{name}"


class Roles:
    """The synthesized roles, found by what runs as them (tests/iam/principals.py)."""

    def __init__(
        self, stacks: list[Stack], fleet: tuple[dict[str, Any], dict[str, str]] | None = None
    ) -> None:
        self.stacks = stacks
        self.source = stacks[0]
        self.fleet = fleet

    def of_component(self, component: str) -> tuple[Stack, str]:
        """The source stack and the logical id of the role `component` runs as."""
        if component not in PRINCIPALS:
            raise LookupError(f"component {component} is not in tests/iam/principals.py PRINCIPALS")
        return self.source, PRINCIPALS[component].role_id(self.source)

    def of_arn(self, arn: str) -> tuple[Stack, str]:
        """The stack and logical id of the role named by `arn`."""
        account, name = arn.split(":")[4], arn.rsplit("/", 1)[1]
        for stack in self.stacks:
            role = stack.role_named(name) if stack.account == account else None
            if role:
                return stack, role
        if self.fleet is not None:  # the fleet StackSet's role, deployed in any account of the OUs
            template, parameters = self.fleet
            stack = Stack("fleet", template, account, self.source.region, parameters=parameters)
            if stack.role_named(name):
                return stack, "Role"
        raise LookupError(f"no synthesized role {arn}")


def _context(principal: str, account: str, region: str, params: dict[str, Any]) -> dict[str, str]:
    """The global condition keys of a request signed by `principal` (every call is over TLS)."""
    context = {
        "aws:PrincipalArn": principal,
        "aws:PrincipalAccount": account,
        "aws:RequestedRegion": region,
        "aws:SecureTransport": "true",
    }
    if params.get("ExternalId"):
        context["sts:ExternalId"] = str(params["ExternalId"])
    return context


@dataclass
class Checks:
    """Requests to evaluate, each with the line that names it when refused (duplicates are dropped), and
    findings refused without evaluation."""

    lines: list[str]
    requests: list[Request]
    failures: list[str]

    def add(self, line: str, request: Request) -> None:
        """Queue `request` unless the same one (by principal, action, resource, context, policies) is queued."""
        key = json.dumps(request.simulation(), sort_keys=True)
        if key not in self._seen:
            self._seen.add(key)
            self.lines.append(line)
            self.requests.append(request)

    def __post_init__(self) -> None:
        self._seen: set[str] = set()

    def refused(self) -> list[str]:
        """The line of every request the evaluator did not allow, with its decision."""
        decisions: list[Decision] = evaluate(self.requests)
        refused = {
            f"{line} -> {d.describe()}"
            for line, d in zip(self.lines, decisions, strict=True)
            if not d.allowed
        }
        return sorted(refused | set(self.failures))


def _resource_account(resource: str, caller: str) -> str:
    parts = resource.split(":")
    return parts[4] if len(parts) > 4 and parts[4] else caller


def _key_policy(roles: Roles, key: str) -> tuple[dict[str, Any], ...]:
    """The policy of the key `key`: the synthesized one for a stack's key, else the default key policy."""
    for stack in roles.stacks:
        for key_id in stack.of_type("AWS::KMS::Key"):
            if stack.arn(key_id) == key or key.endswith(f"key/<{key_id}>"):
                return tuple(stack.key_policy(key_id))
    partition, account = key.split(":")[1], key.split(":")[4]
    root = DEFAULT_KEY_POLICY.format(partition=partition, account=account)
    return ({"Effect": "Allow", "Principal": {"AWS": root}, "Action": "kms:*", "Resource": "*"},)


def _key_pair_checks(call: Call, roles: Roles, checks: Checks) -> None:
    """A call signed with a credentials secret's key pair: only AssumeRole of the destination role, which must
    trust the principal the config names (that principal's own policy is its account's, documented)."""
    who = f"{call.component} with the key pair of {call.via_secret}"
    if call.action != "sts:AssumeRole":
        checks.failures.append(f"{who}: {call.action} is not the AssumeRole a key pair is stored for")
        return
    target_stack, target_id = roles.of_arn(call.resources[0])
    partition = call.resources[0].split(":")[1]
    if target_stack.partition.name != partition:
        raise AssertionError(f"{who}: {call.resources[0]} is deployed in {target_stack.partition.name}")
    principal = str(call.principal)
    checks.add(
        f"{who}: {call.resources[0]} does not let {principal} sts:AssumeRole",
        Request(
            principal,
            "sts:AssumeRole",
            role_arn(target_stack, target_id),
            target_stack.account,
            resource_policy=tuple(target_stack.trust(target_id)),
            context=tuple(_context(principal, call.caller_account, call.region, call.params).items()),
        ),
    )


def _call_checks(calls: list[Call], roles: Roles, keys: Keys) -> Checks:
    checks = Checks([], [], [])
    for call in calls:
        if call.via_secret:
            _key_pair_checks(call, roles, checks)
            continue
        stack, role_id = (
            roles.of_arn(call.assumed_role) if call.assumed_role else roles.of_component(call.component)
        )
        principal = role_arn(stack, role_id)
        statements = tuple(stack.statements(role_id))
        context = _context(principal, stack.account, call.region, call.params)
        who = call.component + (f" through {call.assumed_role}" if call.assumed_role else "")
        how = f" ({call.params['method']} {call.params['path']})" if call.registry else ""
        for resource in call.resources:
            trust = None
            if call.action == "sts:AssumeRole":
                target_stack, target_id = roles.of_arn(resource)
                trust = tuple(target_stack.trust(target_id))
            checks.add(
                f"{who}: role {stack.name}/{role_id} is not allowed {call.action} on {resource}{how}",
                Request(
                    principal,
                    call.action,
                    resource,
                    _resource_account(resource, stack.account),
                    statements,
                    trust,
                    tuple(context.items()),
                ),
            )
        for need in needed(call, keys):
            key_policy = _key_policy(roles, need.resource) if need.action.startswith("kms:") else None
            checks.add(
                f"{who}: role {stack.name}/{role_id} is not allowed {need.action} on {need.resource}, which "
                f"{call.action} needs ({need.page})",
                Request(
                    principal,
                    need.action,
                    need.resource,
                    _resource_account(need.resource, stack.account),
                    statements,
                    key_policy,
                    tuple({**context, **dict(need.context)}.items()),
                ),
            )
    return checks


@dataclass
class World:
    """The calls one test directory recorded and the app synthesized for them; and the calls on repositories no
    gate reads, with the app of the same config without gates (a gated rule's grants must not hide theirs)."""

    name: str
    calls: list[Call]
    synthesized: Synthesized
    ungated_calls: list[Call]
    ungated: Synthesized


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> list[World]:
    """Per world, the calls and registry requests recorded, and the apps synthesized from configs covering them."""
    calls = _calls()
    found = []
    for name in sorted({c.world for c in calls}):
        chosen = [c for c in calls if c.world == name]
        ungated = without_gates(chosen)
        found.append(
            World(
                name,
                chosen,
                _synthesize(coverage_config(chosen), tmp_path_factory.mktemp("iam")),
                ungated,
                _synthesize(coverage_config(chosen, gates=False), tmp_path_factory.mktemp("iam")),
            )
        )
    return found


def _fanout_key(stack: Stack) -> str:
    """The key the fan-out bucket (the one bucket with access logging the components use) encrypts with."""
    (bucket,) = [
        b for b in stack.of_type("AWS::S3::Bucket").values() if "LoggingConfiguration" in b["Properties"]
    ]
    rule = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    return str(stack.resolve(rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]))


def _topic_key(stack: Stack) -> str:
    (topic,) = stack.of_type("AWS::SNS::Topic").values()
    return str(stack.resolve(topic["Properties"]["KmsMasterKeyId"]))


def test_every_recorded_call_and_registry_request_is_allowed_to_the_principal_that_makes_it(
    worlds: list[World],
) -> None:
    """Given the calls and registry requests recorded while the unit, integration and e2e suites ran
    When each (and each action it depends on) is evaluated against the synthesized policies of its principal,
    in the app of its world's config and, for those on ungated repositories, of that config without gates
    Then every one is allowed (and every AssumeRole trusted by the assumed role)."""
    refused = []
    for world in worlds:
        for label, calls, app in (
            (world.name, world.calls, world.synthesized),
            (f"{world.name}, without gates", world.ungated_calls, world.ungated),
        ):
            stack = app.resolved(placeholder=True)[0]
            keys = Keys(topic=_topic_key(stack), fanout=_fanout_key(app.resolved(placeholder=False)[0]))
            checks = _call_checks(calls, Roles(app.resolved(placeholder=False), app.fleet), keys)
            refused += [f"[{label}] {line}" for line in checks.refused()]
    assert not refused, "AWS would refuse calls the tests made:\n" + "\n".join(refused)


def _tasks(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in states.items():
        if state.get("Type") == "Task":
            yield name, state
        for nested in [state.get("ItemProcessor"), state.get("Iterator"), *state.get("Branches", [])]:
            if nested:
                yield from _tasks(nested["States"])


def _integration_calls(
    stack: Stack, definition: dict[str, Any]
) -> Iterator[tuple[str, str, str, dict[str, str]]]:
    """(state, action, resource, extra context) for every call the state machine's service integrations make.

    Step Functions developer guide, "IAM policies for ... Lambda / CodeBuild / Amazon SNS":
    https://docs.aws.amazon.com/step-functions/latest/dg/codebuild-iam.html (and lambda-iam, sns-iam).
    """
    where = f"{stack.region}:{stack.account}"
    for name, state in _tasks(definition["States"]):
        resource, parameters = state["Resource"], state.get("Parameters", {})
        if resource == "arn:aws:states:::lambda:invoke":
            yield name, "lambda:InvokeFunction", parameters["FunctionName"], {}
        elif resource == "arn:aws:states:::codebuild:startBuild.sync":
            project = f"arn:aws:codebuild:{where}:project/{parameters['ProjectName']}"
            for action in ("StartBuild", "StopBuild", "BatchGetBuilds"):
                yield name, f"codebuild:{action}", project, {}
            for action in ("PutTargets", "PutRule", "DescribeRule"):
                yield name, f"events:{action}", f"arn:aws:events:{where}:rule/{SYNC_RULE}", {}
        elif resource == "arn:aws:states:::sns:publish":
            topic = parameters["TopicArn"]
            yield name, "sns:Publish", topic, {}
            (topic_id,) = [i for i in stack.of_type("AWS::SNS::Topic") if stack.arn(i) == topic]
            key = stack.resolve(stack.resources[topic_id]["Properties"].get("KmsMasterKeyId"))
            # Publishing to an encrypted topic: the publisher needs its key (tests/iam/dependent.py, TOPIC_KEY).
            via = {"kms:ViaService": stack.partition.host("sns", stack.region)}
            if key:
                yield name, "kms:GenerateDataKey", key, via
                yield name, "kms:Decrypt", key, via
        elif resource == "arn:aws:states:::events:putEvents":
            # Its entries are Summarize's (workflow.pipeline.announce), all for the default bus
            # (Step Functions developer guide, "IAM policies for Amazon EventBridge").
            yield name, "events:PutEvents", f"arn:aws:events:{where}:event-bus/{EVENT_BUS}", {}
        else:
            raise AssertionError(f"state {name}: no IAM mapping for the integration {resource}")


def _distributed_calls(
    stack: Stack, definition: dict[str, Any], machine: str
) -> Iterator[tuple[str, str, str, dict[str, str]]]:
    """(state, action, resource, extra context) for what each Distributed Map does: read its items and write its
    results in the fan-out bucket (a run's objects are under runs/<execution>/), start its children as executions
    of this state machine and describe and stop them (developer guide, "IAM policies for using Distributed Map
    states": https://docs.aws.amazon.com/step-functions/latest/dg/iam-policies-eg-dist-map.html)."""
    (bucket_id,) = [
        k for k, b in stack.of_type("AWS::S3::Bucket").items() if "LoggingConfiguration" in b["Properties"]
    ]
    objects = f"{stack.arn(bucket_id)}/runs/push-1"
    via_s3 = {"kms:ViaService": stack.partition.host("s3", stack.region)}
    key = _fanout_key(stack)
    for state_name, state in definition["States"].items():
        if state.get("ItemProcessor", {}).get("ProcessorConfig", {}).get("Mode") != "DISTRIBUTED":
            continue
        child = machine.replace(":stateMachine:", ":execution:") + f"/{state['Label']}:0f1e2d3c"
        yield state_name, "states:StartExecution", machine, {}
        for action in ("states:DescribeExecution", "states:StopExecution"):
            yield state_name, action, child, {}
        if "ItemReader" in state:
            assert state["ItemReader"]["Resource"] == "arn:aws:states:::s3:getObject"
            yield state_name, "s3:GetObject", f"{objects}/items.json", {}
            yield state_name, "kms:Decrypt", key, via_s3
        if "ResultWriter" in state:
            assert state["ResultWriter"]["Resource"] == "arn:aws:states:::s3:putObject"
            for action in (
                "s3:PutObject",
                "s3:GetObject",
                "s3:ListMultipartUploadParts",
                "s3:AbortMultipartUpload",
            ):
                yield state_name, action, f"{objects}/results/run/SUCCEEDED_0.json", {}
            yield state_name, "kms:GenerateDataKey", key, via_s3


def _resource_policy(stack: Stack, resource: str) -> tuple[dict[str, Any], ...] | None:
    """The resource policy AWS also evaluates for `resource` (a key's, a topic's, a queue's), if any."""
    try:
        logical_id = stack.logical_id_of(resource)
    except LookupError:
        return None
    kind = stack.resources[logical_id]["Type"]
    if kind == "AWS::KMS::Key":
        return tuple(stack.key_policy(logical_id))
    if kind == "AWS::SNS::Topic":
        return tuple(stack.attached_policy("AWS::SNS::TopicPolicy", "Topics", logical_id)) or None
    if kind == "AWS::SQS::Queue":
        return tuple(stack.attached_policy("AWS::SQS::QueuePolicy", "Queues", logical_id)) or None
    return None


def test_state_machine_integrations_are_allowed_to_its_role(worlds: list[World]) -> None:
    """Given the synthesized state machine of each world's app (names kept as <LogicalId>, so each reference
    is exact)
    When each Task's integration is turned into the IAM actions it needs
    Then the state machine's role allows each, on exactly the function, project, rule, topic and key."""
    checks = Checks([], [], [])
    for world in worlds:
        stack = world.synthesized.resolved(placeholder=True)[0]
        ((machine_id, machine),) = stack.of_type("AWS::StepFunctions::StateMachine").items()
        properties = machine["Properties"]
        key = str(stack.resolve(properties["DefinitionS3Location"]["Key"]))
        text = world.synthesized.asset_text(stack.name, key)
        for name, value in (properties.get("DefinitionSubstitutions") or {}).items():
            text = text.replace("${" + name + "}", str(stack.resolve(value)))
        role_id = STATE_MACHINE.role_id(stack)
        principal = role_arn(stack, role_id)
        statements = tuple(stack.statements(role_id))
        definition = json.loads(text)
        needed_calls = list(_integration_calls(stack, definition))
        needed_calls += list(_distributed_calls(stack, definition, stack.arn(machine_id)))
        assert {a.split(":")[0] for _, a, _, _ in needed_calls} >= {
            "lambda",
            "codebuild",
            "events",
            "sns",
            "s3",
            "states",
        }
        for state, action, resource, extra in needed_calls:
            context = {**_context(principal, stack.account, stack.region, {}), **extra}
            checks.add(
                f"[{world.name}] state {state}: {action} on {resource}",
                Request(
                    principal,
                    action,
                    resource,
                    stack.account,
                    statements,
                    _resource_policy(stack, resource),
                    tuple(context.items()),
                ),
            )
    refused = checks.refused()
    assert not refused, "the state machine role lacks:\n" + "\n".join(refused)


def test_each_role_trusts_the_service_that_assumes_it(worlds: list[World]) -> None:
    """Given every role a service runs as in each world's app (functions, the copy project, the state machine,
    rule targets, the schedule)
    When the service assumes it for that resource (aws:SourceAccount, aws:SourceArn as the service sends them)
    Then the role's trust policy allows it, and no role a component runs as is left unchecked."""
    checks = Checks([], [], [])
    for world in worlds:
        stack = world.synthesized.resolved(placeholder=True)[0]
        checked: set[str] = set()
        for trust in SERVICE_TRUSTS:
            for source_id, resource in trust.runs.resources(stack).items():
                role_id = trust.runs.role_of(resource)
                if role_id is None:
                    continue
                checked.add(role_id)
                context = {"aws:SourceAccount": stack.account, "aws:SourceArn": stack.arn(source_id)}
                checks.add(
                    f"[{world.name}] {role_id} does not trust {trust.service} for {source_id}",
                    Request(
                        trust.service,
                        "sts:AssumeRole",
                        role_arn(stack, role_id),
                        stack.account,
                        resource_policy=tuple(stack.trust(role_id)),
                        context=tuple(context.items()),
                    ),
                )
        for runs in PRINCIPALS.values():  # roles of functions in other stacks (the relays'), by name
            if isinstance(runs, NamedRole) and stack.role_named(runs.name):
                role_id = runs.role_id(stack)
                checked.add(role_id)
                context = {"aws:SourceAccount": stack.account, "aws:SourceArn": runs.source_arn(stack)}
                checks.add(
                    f"[{world.name}] {role_id} does not trust {runs.service} for {runs.function}",
                    Request(
                        runs.service,
                        "sts:AssumeRole",
                        role_arn(stack, role_id),
                        stack.account,
                        resource_policy=tuple(stack.trust(role_id)),
                        context=tuple(context.items()),
                    ),
                )
        assert checked >= {
            runs.role_id(stack)
            for runs in PRINCIPALS.values()
            if not isinstance(runs, NamedRole) or stack.role_named(runs.name)
        }
    refused = checks.refused()
    assert not refused, "services could not assume their roles:\n" + "\n".join(refused)


def test_what_services_do_for_the_deployment_is_allowed(worlds: list[World]) -> None:
    """Given what services do for each world's deployment: a rule starting the state machine and sending
    undeliverable events to its queue, the schedule invoking the reconcile function and using its queue, alarms
    publishing to the encrypted topic
    When each is evaluated as the role the service uses, or as the service under the target's resource policy,
    with aws:SourceAccount and aws:SourceArn of the resource it acts for
    Then every one is allowed."""
    checks = Checks([], [], [])
    for world in worlds:
        stack = world.synthesized.resolved(placeholder=True)[0]
        kinds: set[str] = set()
        for scenario in SERVICE_ACTIONS:
            for request in scenario(stack):
                kinds.add(request.what)
                target = stack.arn(request.target)
                context = {"aws:SourceAccount": stack.account, "aws:SourceArn": stack.arn(request.source)}
                if request.role is None:
                    principal, statements, policy = request.service, (), _resource_policy(stack, target)
                else:
                    principal = role_arn(stack, request.role)
                    statements, policy = tuple(stack.statements(request.role)), None
                    context.update(_context(principal, stack.account, stack.region, {}))
                checks.add(
                    f"[{world.name}] {request.what}: {principal} may not {request.action} on {target} for "
                    f"{request.source} ({request.page})",
                    Request(
                        principal,
                        request.action,
                        target,
                        stack.account,
                        statements,
                        policy,
                        tuple(context.items()),
                    ),
                )
        assert kinds >= {"rule target", "rule dead-letter queue", "schedule target", "alarm action"}
    refused = checks.refused()
    assert not refused, "AWS would refuse what services do for the deployment:\n" + "\n".join(refused)


def test_the_organizations_reads_granted_are_exactly_the_calls_made(worlds: list[World]) -> None:
    """Given the Organizations calls the components made while resolving organization destinations
    When the roles that resolve them (Plan, reconcile) are synthesized from a config naming the same kinds
    Then each grants exactly those actions, and the delegation policy the management account applies allows them
    to the source account: moto enforces neither."""
    (world,) = [w for w in worlds if organization_actions(w.calls)] or [None]
    assert world is not None, "no Organizations call recorded: run with tests/unit/test_organizations.py"
    made = organization_actions(world.calls)
    assert made >= {"organizations:DescribeOrganization", "organizations:ListAccountsForParent"}, made
    stack = world.synthesized.resolved(placeholder=False)[0]
    roles = Roles([stack])
    requests = []
    for component in ("Plan", "Reconcile"):
        _, role_id = roles.of_component(component)
        granted = {
            action
            for statement in stack.statements(role_id)
            for action in (
                [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
            )
            if action.startswith("organizations:")
        }
        assert granted == made, component
    output = json.loads(stack.template["Outputs"]["OrganizationsDelegationPolicy"]["Value"])
    (delegation,) = output["Statement"]
    source_root = f"arn:aws:iam::{SOURCE['account']}:root"
    assert delegation["Principal"] == {"AWS": source_root}
    management = "999999999999"
    for action in sorted(made):
        requests.append(
            Request(
                principal=f"arn:aws:iam::{SOURCE['account']}:role/plan",
                action=action,
                resource="*",
                resource_account=management,
                statements=({"Effect": "Allow", "Action": action, "Resource": "*"},),
                resource_policy=tuple(output["Statement"]),
            )
        )
    refused = [
        f"{r.action}: {d.describe()}"
        for r, d in zip(requests, evaluate(requests), strict=True)
        if not d.allowed
    ]
    assert not refused, "the delegation policy refuses:\n" + "\n".join(refused)
