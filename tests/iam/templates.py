"""Synthesized templates -> each role's policy statements, with CloudFormation intrinsics resolved to ARNs.

A resource whose physical name CloudFormation chooses resolves to `*` (`wildcard` mode: the recorded calls name
resources the tests created), or, to compare references inside one template with each other, to `<LogicalId>`
(`placeholder` mode). A KMS key is always `<LogicalId>`: no recorded call names a stack's key (the dependent
checks name it so), and `key/*` would grant a role every key of the account. Account, Region, partition,
service and resource type are always kept.
A template with parameters (the fleet role's) resolves them to the values given, else their defaults, with its
conditions, `Fn::If` and `AWS::NoValue`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from workflow.core.partitions import Partition, partition_of

# (CloudFormation type) -> (name property, ARN format); {p} partition, {r} Region, {a} account, {n} name.
ARN_FORMATS = {
    "AWS::Lambda::Function": ("FunctionName", "arn:{p}:lambda:{r}:{a}:function:{n}"),
    "AWS::IAM::Role": ("RoleName", "arn:{p}:iam::{a}:role/{n}"),
    "AWS::CodeBuild::Project": ("Name", "arn:{p}:codebuild:{r}:{a}:project/{n}"),
    "AWS::KMS::Key": (None, "arn:{p}:kms:{r}:{a}:key/{n}"),
    "AWS::Logs::LogGroup": ("LogGroupName", "arn:{p}:logs:{r}:{a}:log-group:{n}:*"),
    "AWS::SQS::Queue": ("QueueName", "arn:{p}:sqs:{r}:{a}:{n}"),
    "AWS::SNS::Topic": ("TopicName", "arn:{p}:sns:{r}:{a}:{n}"),
    "AWS::StepFunctions::StateMachine": ("StateMachineName", "arn:{p}:states:{r}:{a}:stateMachine:{n}"),
    "AWS::CloudWatch::Alarm": ("AlarmName", "arn:{p}:cloudwatch:{r}:{a}:alarm:{n}"),
    "AWS::Events::Rule": ("Name", "arn:{p}:events:{r}:{a}:rule/{n}"),
    "AWS::Scheduler::Schedule": ("Name", "arn:{p}:scheduler:{r}:{a}:schedule/default/{n}"),
    "AWS::S3::Bucket": ("BucketName", "arn:{p}:s3:::{n}"),
}
# Types whose generated name is always a placeholder (see the module docstring).
ALWAYS_PLACEHOLDER = {"AWS::KMS::Key"}
# Types whose Ref is the ARN (the others' Ref is the name).
REF_IS_ARN = {"AWS::SNS::Topic", "AWS::StepFunctions::StateMachine"}
SUB_RE = re.compile(r"\$\{([^}]+)\}")
NO_VALUE = object()  # AWS::NoValue: the property or list item is left out


class UnresolvableIntrinsic(ValueError):
    """A template value the resolver cannot turn into text."""


@dataclass
class Stack:
    """One synthesized template with the account and Region it deploys to."""

    name: str
    template: dict[str, Any]
    account: str
    region: str
    placeholder: bool = False
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        """The template's resources by logical id."""
        return dict(self.template["Resources"])

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        """The resources of one type, by logical id."""
        return {k: v for k, v in self.resources.items() if v["Type"] == resource_type}

    def _name(self, logical_id: str) -> str:
        resource = self.resources[logical_id]
        prop = ARN_FORMATS.get(resource["Type"], (None, ""))[0]
        value = resource.get("Properties", {}).get(prop) if prop else None
        if value is not None:
            return str(self.resolve(value))
        return f"<{logical_id}>" if self.placeholder or resource["Type"] in ALWAYS_PLACEHOLDER else "*"

    def arn(self, logical_id: str) -> str:
        """The ARN (pattern) of a resource."""
        resource_type = self.resources[logical_id]["Type"]
        if resource_type not in ARN_FORMATS:
            raise UnresolvableIntrinsic(f"no ARN format for {resource_type} ({logical_id})")
        template = ARN_FORMATS[resource_type][1]
        return template.format(p=self.partition.name, r=self.region, a=self.account, n=self._name(logical_id))

    @property
    def partition(self) -> Partition:
        """The partition of the stack's Region (AWS::Partition, AWS::URLSuffix)."""
        return partition_of(self.region)

    def _parameter(self, name: str) -> Any:
        declared = self.template["Parameters"][name]
        value = self.parameters.get(name, declared.get("Default"))
        if value is None:
            raise UnresolvableIntrinsic(f"parameter {name} has no value and no default")
        if declared["Type"] == "CommaDelimitedList":
            return value.split(",") if isinstance(value, str) else list(value)
        return value

    def condition(self, name: str) -> bool:
        """The value of one of the template's conditions."""
        return self._holds(self.template["Conditions"][name])

    def _holds(self, expression: Any) -> bool:
        ((function, argument),) = expression.items()
        if function == "Condition":
            return self.condition(argument)
        if function == "Fn::Equals":
            left, right = (self.resolve(a) for a in argument)
            return bool(left == right)
        if function == "Fn::Not":
            return not self._holds(argument[0])
        if function == "Fn::Or":
            return any(self._holds(a) for a in argument)
        if function == "Fn::And":
            return all(self._holds(a) for a in argument)
        raise UnresolvableIntrinsic(f"condition function {function} is not supported")

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.template.get("Parameters", {}):
            return self._parameter(name)
        if name == "AWS::Partition":
            return self.partition.name
        if name == "AWS::URLSuffix":
            return self.partition.dns_suffix
        if name == "AWS::Region":
            return self.region
        if name == "AWS::AccountId":
            return self.account
        if name not in self.resources:
            raise UnresolvableIntrinsic(f"Ref to unknown {name}")
        if self.resources[name]["Type"] in REF_IS_ARN:
            return self.arn(name)
        return self._name(name)

    def _get_att(self, logical_id: str, attribute: str) -> str:
        if attribute in ("Arn", "TopicArn"):
            return self.arn(logical_id)
        if attribute == "Name" and self.resources[logical_id]["Type"] == "AWS::StepFunctions::StateMachine":
            return self._name(logical_id)
        raise UnresolvableIntrinsic(f"Fn::GetAtt {logical_id}.{attribute}")

    def resolve(self, value: Any) -> Any:
        """`value` with every intrinsic function replaced by text (lists and dicts resolved inside)."""
        if isinstance(value, list):
            return [item for item in (self.resolve(v) for v in value) if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) != 1 or not next(iter(value)).startswith(("Ref", "Fn::")):
            return {
                k: item
                for k, item in ((k, self.resolve(v)) for k, v in value.items())
                if item is not NO_VALUE
            }
        ((function, argument),) = value.items()
        if function == "Ref":
            return self._ref(argument)
        if function == "Fn::If":
            name, when_true, when_false = argument
            return self.resolve(when_true if self.condition(name) else when_false)
        if function == "Fn::GetAtt":
            logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            return self._get_att(logical_id, attribute)
        if function == "Fn::Join":
            separator, parts = argument
            return str(separator).join(str(self.resolve(p)) for p in self.resolve(parts))
        if function == "Fn::Split":
            separator, text = argument
            return str(self.resolve(text)).split(separator)
        if function == "Fn::Select":
            index, items = argument
            return self.resolve(items)[int(index)]
        if function == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else argument
            return SUB_RE.sub(lambda m: self._sub(m.group(1), variables), text)
        raise UnresolvableIntrinsic(f"{function} is not supported")

    def _sub(self, name: str, variables: dict[str, Any]) -> str:
        if name in variables:
            return str(self.resolve(variables[name]))
        if "." in name:
            return self._get_att(*name.split(".", 1))
        return self._ref(name)

    def statements(self, role_id: str) -> list[dict[str, Any]]:
        """Every identity-policy statement attached to the role `role_id`, resolved."""
        role = self.resources[role_id]
        if role.get("Properties", {}).get("ManagedPolicyArns"):
            raise UnresolvableIntrinsic(
                f"{self.name}/{role_id} has managed policies, which this test cannot read"
            )
        documents = [p["PolicyDocument"] for p in role.get("Properties", {}).get("Policies", [])]
        for policy in self.of_type("AWS::IAM::Policy").values():
            if {"Ref": role_id} in policy["Properties"].get("Roles", []):
                documents.append(policy["Properties"]["PolicyDocument"])
        found = []
        for document in documents:
            statements = document["Statement"]
            found.extend(self.resolve(statements if isinstance(statements, list) else [statements]))
        return found

    def trust(self, role_id: str) -> list[dict[str, Any]]:
        """The role's trust-policy statements, resolved."""
        document = self.resources[role_id]["Properties"]["AssumeRolePolicyDocument"]
        return list(self.resolve(document["Statement"]))

    def key_policy(self, key_id: str) -> list[dict[str, Any]]:
        """The key policy statements of the KMS key `key_id`, resolved."""
        return list(self.resolve(self.resources[key_id]["Properties"]["KeyPolicy"]["Statement"]))

    def attached_policy(self, resource_type: str, list_property: str, target_id: str) -> list[dict[str, Any]]:
        """The statements of every `resource_type` policy (a topic or queue policy) naming `target_id`."""
        found: list[dict[str, Any]] = []
        for policy in self.of_type(resource_type).values():
            if {"Ref": target_id} in policy["Properties"].get(list_property, []):
                found.extend(self.resolve(policy["Properties"]["PolicyDocument"]["Statement"]))
        return found

    def logical_id_of(self, arn: str) -> str:
        """The logical id of the resource whose ARN (pattern) is `arn`."""
        for logical_id, resource in self.resources.items():
            if resource["Type"] in ARN_FORMATS and self.arn(logical_id) == arn:
                return logical_id
        raise LookupError(f"{self.name}: no resource with the ARN {arn}")

    def role_named(self, name: str) -> str | None:
        """The logical id of the role whose RoleName resolves to `name`."""
        for logical_id, role in self.of_type("AWS::IAM::Role").items():
            if self.resolve(role.get("Properties", {}).get("RoleName")) == name:
                return logical_id
        return None

    def role_of(self, resource_type: str, property_name: str, where: dict[str, Any] | None = None) -> str:
        """The logical id of the role the one resource of `resource_type` (matching `where`) runs as."""
        matches = [
            r
            for r in self.of_type(resource_type).values()
            if all(r["Properties"].get(k) == v for k, v in (where or {}).items())
        ]
        if len(matches) != 1:
            raise LookupError(f"{self.name}: {len(matches)} {resource_type} resources match {where}")
        reference = matches[0]["Properties"][property_name]
        if "Fn::GetAtt" not in reference:
            raise UnresolvableIntrinsic(
                f"{resource_type}.{property_name} is not a GetAtt of a role: {reference}"
            )
        return str(reference["Fn::GetAtt"][0])
