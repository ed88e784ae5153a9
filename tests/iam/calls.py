"""Recorded calls -> (principal, IAM action, resource ARNs, condition context), and the config to synthesize.

A call signed with credentials from a recorded AssumeRole is made by the assumed role; one signed with
the key pair a recorded GetSecretValue returned (a destination in another partition) by the principal the
secret is for (`PRINCIPAL_USER` in the destination account); any other call by the component's own role. moto answers calls made with the tests' base credentials as its default
account (123456789012) unless told otherwise; that account stands for the source account here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID

from workflow.core.partitions import partition_of
from workflow.models.config import SOURCE_ACCESS_ROLE_NAME

SOURCE = {"account": "111111111111", "region": "us-east-1"}
# The components whose calls the suites must have recorded (Plan, Record and Summarize make no AWS call).
EXPECTED_COMPONENTS = ("Precheck", "Gate", "Copy", "Reconcile", "Sync", "Status")
# The IAM user of another partition whose key pair a credentials secret holds, as the coverage config names it.
PRINCIPAL_USER = "ecr-replication-coverage"
# The signing profile of the coverage rule's managed signing policy (grants ecr:DescribeImageSigningStatus).
MANAGED_SIGNING = {"signing_profile_arn": "arn:aws:signer:us-east-1:111111111111:/signing-profiles/coverage"}


@dataclass(frozen=True)
class Call:
    """One recorded call, attributed."""

    component: str
    assumed_role: str | None  # the role ARN whose credentials signed it, if assumed
    action: str
    resources: tuple[str, ...]
    region: str
    params: dict[str, Any]
    via_secret: str | None = None  # the secret whose key pair signed it, if any

    @property
    def caller_account(self) -> str:
        """The account whose credentials signed the call (for a key pair: the account of the role it assumes)."""
        if self.via_secret:
            return self.resources[0].split(":")[4]
        return self.assumed_role.split(":")[4] if self.assumed_role else SOURCE["account"]

    @property
    def reads_a_source(self) -> bool:
        """Whether the call reads another account's source, through its source-access role."""
        return bool(self.assumed_role and self.assumed_role.endswith(f"role/{SOURCE_ACCESS_ROLE_NAME}"))

    @property
    def assumes_source_access(self) -> bool:
        """Whether the call is the AssumeRole of a source-access role."""
        return self.action == "sts:AssumeRole" and self.resources[0].endswith(
            f"role/{SOURCE_ACCESS_ROLE_NAME}"
        )

    @property
    def principal(self) -> str | None:
        """The principal of another partition a key pair stands for (None for any other call)."""
        if not self.via_secret:
            return None
        partition = self.resources[0].split(":")[1]
        return f"arn:{partition}:iam::{self.caller_account}:user/{PRINCIPAL_USER}"


def _own(arn: str, call_account: str) -> str:
    """`arn` with moto's default account replaced by the caller's (for base-credential calls)."""
    parts = arn.split(":")
    if len(parts) > 4 and parts[4] == DEFAULT_ACCOUNT_ID:
        parts[4] = call_account
    return ":".join(parts)


def _ecr_resources(operation: str, params: dict[str, Any], region: str, account: str) -> list[str]:
    if operation == "GetAuthorizationToken":
        return ["*"]
    registry = params.get("registryId") or account
    if registry == DEFAULT_ACCOUNT_ID:
        registry = account
    names = params.get("repositoryNames") or (
        [params["repositoryName"]] if "repositoryName" in params else ["*"]
    )
    return [f"arn:{partition_of(region).name}:ecr:{region}:{registry}:repository/{name}" for name in names]


def _secret_arn(secret_id: str, region: str, account: str, secrets: dict[str, str]) -> str:
    """The ARN IAM checks GetSecretValue on: the recorded answer's, else the ARN given, else the name with
    six characters standing for the suffix Secrets Manager appends."""
    if secret_id in secrets:
        return secrets[secret_id]
    if secret_id.startswith("arn:"):
        return secret_id
    return partition_of(region).arn("secretsmanager", region, account, f"secret:{secret_id}-000000")


ARN_PARAMETERS = {
    ("sts", "AssumeRole"): "RoleArn",
    ("states", "StartExecution"): "stateMachineArn",
    ("states", "ListExecutions"): "stateMachineArn",
    ("states", "DescribeExecution"): "executionArn",
    ("states", "StopExecution"): "executionArn",
    ("sns", "Publish"): "TopicArn",
}


def resources_of(
    signing_name: str,
    operation: str,
    params: dict[str, Any],
    region: str,
    account: str,
    secrets: dict[str, str] | None = None,
) -> list[str]:
    """The ARNs IAM authorizes `signing_name:operation` on, from the call's parameters (and the ARNs of the
    recorded secrets, by name and by ARN)."""
    if signing_name == "ecr":
        return _ecr_resources(operation, params, region, account)
    if (signing_name, operation) == ("secretsmanager", "GetSecretValue"):
        return [_own(_secret_arn(str(params["SecretId"]), region, account, secrets or {}), account)]
    parameter = ARN_PARAMETERS.get((signing_name, operation))
    if parameter is None:
        raise LookupError(
            f"{signing_name}:{operation}: this test does not know which resource IAM checks it on"
        )
    return [_own(str(params[parameter]), account)]


def attributed(records: list[dict[str, Any]]) -> list[Call]:
    """The calls a component made, with the role that made them."""
    assumed = {r["access_key"]: r["role_arn"] for r in records if r["kind"] == "assumed"}
    key_pairs = {r["access_key"]: r["secret_arn"] for r in records if r["kind"] == "secret"}
    secrets = {}
    for arn in key_pairs.values():
        secrets[arn] = secrets[arn.split(":secret:", 1)[1][:-7]] = arn
    calls = []
    for record in records:
        if record["kind"] != "call" or not record["component"]:
            continue
        role = assumed.get(record["access_key"])
        account = role.split(":")[4] if role else SOURCE["account"]
        resources = resources_of(
            record["signing_name"], record["operation"], record["params"], record["region"], account, secrets
        )
        calls.append(
            Call(
                component=record["component"],
                assumed_role=role,
                action=f"{record['signing_name']}:{record['operation']}",
                resources=tuple(resources),
                region=record["region"],
                params=record["params"],
                via_secret=key_pairs.get(record["access_key"]),
            )
        )
    return calls


def _configured_secret(arn: str) -> str:
    """A recorded secret as a config names it: by name in the source Region (so the policy says
    `name-??????`), else by its ARN in the source account."""
    parts = arn.split(":")
    if parts[3] == SOURCE["region"]:
        return parts[6][:-7]
    return ":".join([*parts[:4], SOURCE["account"], *parts[5:]])


def _sources(calls: list[Call]) -> list[dict[str, str]]:
    """The sources the calls read: SOURCE, every Region where a component read the home account's ECR with its
    own credentials (the home roles read the home account's sources directly), and each account and Region read
    through a source-access role, or whose source-access role was assumed (another account's source)."""
    places = {(SOURCE["account"], SOURCE["region"])}
    for call in calls:
        if call.assumes_source_access and not call.via_secret:
            places.add((call.resources[0].split(":")[4], call.region))
        if not call.action.startswith("ecr:") or call.via_secret:
            continue
        if call.assumed_role is None:
            places.add((SOURCE["account"], call.region))
        elif call.reads_a_source:
            places.add((call.caller_account, call.region))
    others = sorted(places - {(SOURCE["account"], SOURCE["region"])})
    return [SOURCE, *({"account": account, "region": region} for account, region in others)]


def coverage_config(calls: list[Call]) -> dict[str, Any]:
    """A config whose synthesized roles are the ones the recorded calls ran as.

    One rule names every repository the calls touched (source and destination: the destination
    template is `{repository}`), and has one destination per assumed destination role, in the Regions its calls
    went to; the sources are those the calls read (`_sources`), each other account's read through its
    source-access role.
    """
    repositories = sorted(
        {r.rsplit("repository/", 1)[1] for c in calls for r in c.resources if ":repository/" in r} - {"*"}
    )
    destinations: dict[tuple[str, str], dict[str, Any]] = {}
    for call in calls:
        if call.action != "sts:AssumeRole" or call.assumes_source_access:
            continue
        account, name = call.resources[0].split(":")[4], call.resources[0].rsplit("/", 1)[1]
        destinations.setdefault((account, name), {"account": account, "role_name": name, "regions": set()})
    for call in calls:
        if call.assumed_role and not call.reads_a_source:
            account, name = call.caller_account, call.assumed_role.rsplit("/", 1)[1]
            destinations[(account, name)]["regions"].add(call.region)
        if call.via_secret and call.action == "sts:AssumeRole":
            destination = destinations[(call.caller_account, call.resources[0].rsplit("/", 1)[1])]
            destination["regions"].add(call.region)
            destination["credentials"] = {
                "secret": _configured_secret(call.via_secret),
                "principal": call.principal,
            }
    return {
        "sources": _sources(calls),
        "rules": [
            {
                "name": "coverage",
                "repositories": repositories or ["*"],
                "tags": {"include": ["*"]},
                "destinations": [
                    {**d, "regions": sorted(d["regions"] or {SOURCE["region"]})}
                    for _, d in sorted(destinations.items())
                ],
                "create_repository": {"tag_mutability": "IMMUTABLE", "scan_on_push": True},
                # The suites delete tags too (tests/unit/test_deletes.py), which only opted-in rules may.
                "propagate_deletes": True,
                # The Gate function's (and sync's) reads are granted only to gated rules' repositories; the
                # signing status only with an ECR managed signing policy.
                "gates": {
                    "scan": {"block_at": "CRITICAL"},
                    "signature": {"ecr_managed_signing": MANAGED_SIGNING},
                },
            }
        ],
        "notifications": {"emails": ["coverage@example.com"], "on": "failure"},
    }
