"""Who acts, as which synthesized role: the tables the IAM coverage test reads (extend them, not the test).

- PRINCIPALS: each component whose calls the suites record -> the resource that runs as its role.
- SERVICE_TRUSTS: each role a service assumes -> the service principal, checked against the role's trust
  policy with the `aws:SourceAccount` / `aws:SourceArn` the service sends.
- SERVICE_ACTIONS: what services do for the deployment, as a role or as themselves under a resource policy
  (a rule's target and dead-letter queue, a schedule's target and queue, an alarm's topic and its key).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from tests.iam.templates import Stack

SOURCE_REGION = "us-east-1"  # tests/iam/calls.py SOURCE


@dataclass(frozen=True)
class RunsAs:
    """The role of the one `resource_type` resource (matching `where`) whose `role` path names it."""

    resource_type: str
    role: tuple[str | int, ...]  # path under Properties to the role reference
    where: tuple[tuple[str, str], ...] = ()

    def resources(self, stack: Stack) -> dict[str, dict[str, Any]]:
        """The resources of this kind (matching `where`), by logical id."""
        return {
            logical_id: resource
            for logical_id, resource in stack.of_type(self.resource_type).items()
            if all(resource["Properties"].get(k) == v for k, v in self.where)
        }

    def role_of(self, resource: dict[str, Any]) -> str | None:
        """The logical id of the role `resource` runs as (None when it names none or another kind of value)."""
        value: Any = resource["Properties"]
        for step in self.role:
            found = (isinstance(value, dict) and step in value) or (
                isinstance(value, list) and isinstance(step, int) and step < len(value)
            )
            if not found:
                return None
            value = value[step]
        return str(value["Fn::GetAtt"][0]) if isinstance(value, dict) and "Fn::GetAtt" in value else None

    def role_id(self, stack: Stack) -> str:
        """The role of the one matching resource."""
        roles = [self.role_of(r) for r in self.resources(stack).values()]
        if len(roles) != 1 or roles[0] is None:
            raise LookupError(
                f"{stack.name}: {len(roles)} {self.resource_type} with a role match {self.where}"
            )
        return roles[0]


@dataclass(frozen=True)
class NamedRole:
    """A role of the stack found by its RoleName, that `service` assumes for `function` of another stack (the
    relays: a relay stack's function runs as the source stack's relay role)."""

    name: str
    service: str = "lambda.amazonaws.com"
    function: str = "ecr-replication-relay"

    def source_arn(self, stack: Stack) -> str:
        """The function's ARN in the stack's account (any Region: the trust names the account only)."""
        return f"arn:{stack.partition.name}:lambda:{stack.region}:{stack.account}:function:{self.function}"

    def role_id(self, stack: Stack) -> str:
        """The logical id of the role named `name`."""
        role = stack.role_named(self.name)
        if role is None:
            raise LookupError(f"{stack.name}: no role named {self.name}")
        return role


def _function(handler: str) -> RunsAs:
    return RunsAs("AWS::Lambda::Function", ("Role",), (("Handler", handler),))


# `sync` runs the reconcile function's logic and `status` reads what it reads; by hand they need credentials the
# destination roles trust (README, "Backfill and reconciliation"): the reconcile role grants them.
# The relay stacks' functions (regional_seeds) run as the source stack's relay role (infra/naming.py
# relay_role_name: ecr-replication-relay-<source Region>).
PRINCIPALS: dict[str, RunsAs | NamedRole] = {
    "Plan": _function("lambdas.plan.handler"),
    "Gate": _function("lambdas.gate.handler"),
    "Precheck": _function("lambdas.precheck.handler"),
    "Record": _function("lambdas.record.handler"),
    "Summarize": _function("lambdas.summarize.handler"),
    "Reconcile": _function("lambdas.reconcile.handler"),
    "Sync": _function("lambdas.reconcile.handler"),
    "Status": _function("lambdas.reconcile.handler"),
    "Copy": RunsAs("AWS::CodeBuild::Project", ("ServiceRole",)),
    "Relay": NamedRole(f"ecr-replication-relay-{SOURCE_REGION}"),
}


@dataclass(frozen=True)
class ServiceTrust:
    """Roles `service` assumes: those the resources of `runs` run as; the resource is the aws:SourceArn."""

    service: str
    runs: RunsAs


SERVICE_TRUSTS = (
    ServiceTrust("lambda.amazonaws.com", RunsAs("AWS::Lambda::Function", ("Role",))),
    ServiceTrust("codebuild.amazonaws.com", RunsAs("AWS::CodeBuild::Project", ("ServiceRole",))),
    ServiceTrust("states.amazonaws.com", RunsAs("AWS::StepFunctions::StateMachine", ("RoleArn",))),
    ServiceTrust("events.amazonaws.com", RunsAs("AWS::Events::Rule", ("Targets", 0, "RoleArn"))),
    ServiceTrust("scheduler.amazonaws.com", RunsAs("AWS::Scheduler::Schedule", ("Target", "RoleArn"))),
)


@dataclass(frozen=True)
class ServiceRequest:
    """One thing a service does for the deployment: `action` on `target` (a logical id), for `source` (the
    logical id of the resource it acts for: aws:SourceArn), as the role `role` (a logical id) or, when None,
    as the service principal itself under the target's resource policy."""

    what: str
    service: str
    source: str
    action: str
    target: str
    role: str | None
    page: str


EVENTBRIDGE_DLQ = (
    'EventBridge user guide, "Using dead-letter queues to process undelivered events" (the queue\'s policy '
    "allows events.amazonaws.com sqs:SendMessage for the rule's ARN): "
    "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html"
)
EVENTBRIDGE_TARGET = (
    'EventBridge user guide, "Using IAM roles ... for targets" (a Step Functions target is started with the '
    "rule's target role): https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-identity-based.html"
)
SCHEDULER = (
    'EventBridge Scheduler user guide, "Setting up the execution role" (the role invokes the target and sends '
    "to the dead-letter queue): https://docs.aws.amazon.com/scheduler/latest/UserGuide/setting-up.html"
)
ALARM_TOPIC = (
    'CloudWatch user guide, "Using Amazon SNS ... with encrypted topics" / SNS developer guide, "Enable '
    'compatibility between event sources from AWS services and encrypted topics" (topic policy and key policy '
    "allow cloudwatch.amazonaws.com): https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html"
)


def _ref_id(value: Any) -> str | None:
    """The logical id a Ref or GetAtt names."""
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return str(value["Fn::GetAtt"][0])
    return None


def _rules(stack: Stack) -> Iterator[ServiceRequest]:
    for rule_id, rule in stack.of_type("AWS::Events::Rule").items():
        for target in rule["Properties"].get("Targets", []):
            machine = _ref_id(target["Arn"])
            if machine in stack.of_type("AWS::StepFunctions::StateMachine"):
                role = _ref_id(target.get("RoleArn"))
                yield ServiceRequest(
                    "rule target",
                    "events.amazonaws.com",
                    rule_id,
                    "states:StartExecution",
                    machine,
                    role,
                    EVENTBRIDGE_TARGET,
                )
            queue = _ref_id((target.get("DeadLetterConfig") or {}).get("Arn"))
            if queue:
                yield ServiceRequest(
                    "rule dead-letter queue",
                    "events.amazonaws.com",
                    rule_id,
                    "sqs:SendMessage",
                    queue,
                    None,
                    EVENTBRIDGE_DLQ,
                )


def _schedules(stack: Stack) -> Iterator[ServiceRequest]:
    for schedule_id, schedule in stack.of_type("AWS::Scheduler::Schedule").items():
        target = schedule["Properties"]["Target"]
        role = _ref_id(target["RoleArn"])
        function = _ref_id(target["Arn"])
        if function:
            yield ServiceRequest(
                "schedule target",
                "scheduler.amazonaws.com",
                schedule_id,
                "lambda:InvokeFunction",
                function,
                role,
                SCHEDULER,
            )
        queue = _ref_id((target.get("DeadLetterConfig") or {}).get("Arn"))
        if queue:
            yield ServiceRequest(
                "schedule dead-letter queue",
                "scheduler.amazonaws.com",
                schedule_id,
                "sqs:SendMessage",
                queue,
                role,
                SCHEDULER,
            )


def _alarms(stack: Stack) -> Iterator[ServiceRequest]:
    for alarm_id, alarm in stack.of_type("AWS::CloudWatch::Alarm").items():
        for action in [
            *alarm["Properties"].get("AlarmActions", []),
            *alarm["Properties"].get("OKActions", []),
        ]:
            topic = _ref_id(action)
            if topic not in stack.of_type("AWS::SNS::Topic"):
                continue
            yield ServiceRequest(
                "alarm action", "cloudwatch.amazonaws.com", alarm_id, "sns:Publish", topic, None, ALARM_TOPIC
            )
            key = _ref_id(stack.resources[topic]["Properties"].get("KmsMasterKeyId"))
            for key_action in ("kms:GenerateDataKey", "kms:Decrypt") if key else ():
                yield ServiceRequest(
                    "alarm action's topic key",
                    "cloudwatch.amazonaws.com",
                    alarm_id,
                    key_action,
                    str(key),
                    None,
                    ALARM_TOPIC,
                )


SERVICE_ACTIONS: tuple[Callable[[Stack], Iterator[ServiceRequest]], ...] = (_rules, _schedules, _alarms)
