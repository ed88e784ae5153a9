"""Recorded calls and registry requests -> (principal, IAM action, resource ARNs), and the config to synthesize.

A call signed with credentials from a recorded AssumeRole is made by the assumed role; one signed with
the key pair a recorded GetSecretValue returned (a destination in another partition) by the principal the
secret is for (`PRINCIPAL_USER` in the destination account); any other call by the component's own role.
A registry request is made by the principal whose credentials got its registry token, the same way, and is
one or more ECR actions on the repository (tests/iam/registry_actions.py). moto answers calls made with the
tests' base credentials as its default account (123456789012) unless told otherwise; that account stands for
the source account here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID

from tests.iam.registry_actions import actions_of
from workflow.core.partitions import partition_of
from workflow.models.config import FLEET_ROLE_NAME, SOURCE_ACCESS_ROLE_NAME

SOURCE = {"account": "111111111111", "region": "us-east-1"}
# The components whose calls the suites must have recorded (Record makes no AWS call; Plan and Summarize use the
# fan-out bucket, in a run past the inline Map's limit).
EXPECTED_COMPONENTS = (
    "Plan",
    "Precheck",
    "Gate",
    "Copy",
    "Relay",
    "Summarize",
    "Reconcile",
    "Sync",
    "Status",
)
# The IAM user of another partition whose key pair a credentials secret holds, as the coverage config names it.
PRINCIPAL_USER = "ecr-replication-coverage"
# The coverage world keeps every credentials secret under this customer-managed key (in the source account),
# so reading one needs kms:Decrypt through Secrets Manager, which the test then evaluates.
SECRET_KEY_ID = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
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
    registry: bool = False  # a registry-protocol request (params: method and path)
    world: str = ""  # the test directory that made it (tests/iam/recorder.py)

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
    ("lambda", "Invoke"): "FunctionName",
}
# API operations whose IAM action has another name ("Actions defined by AWS Lambda": Invoke is lambda:InvokeFunction).
IAM_ACTIONS = {"lambda:Invoke": "lambda:InvokeFunction"}


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
    if signing_name == "organizations":
        # Read to resolve organization destinations: DescribeOrganization and ListAccounts have no resource type,
        # and infra grants the list actions on '*' too (infra/constructs/fleet.py says why).
        return ["*"]
    if (signing_name, operation) == ("secretsmanager", "GetSecretValue"):
        return [_own(_secret_arn(str(params["SecretId"]), region, account, secrets or {}), account)]
    if signing_name == "s3" and operation in ("PutObject", "GetObject"):
        return [f"arn:{partition_of(region).name}:s3:::{params['Bucket']}/{params['Key']}"]
    parameter = ARN_PARAMETERS.get((signing_name, operation))
    if parameter is None:
        raise LookupError(
            f"{signing_name}:{operation}: this test does not know which resource IAM checks it on"
        )
    return [_own(str(params[parameter]), account)]


def _registry_calls(record: dict[str, Any], role: str | None, key_pair: str | None) -> list[Call]:
    """The ECR actions one registry request is authorized as, each a Call on the repository."""
    repository, actions = actions_of(record["method"], record["path"], record["body"])
    region = record["region"]
    # A registry several accounts share in the local runtime stands for the registry of the role's account.
    account = record["account"]
    if role and role.split(":")[4] in (record.get("shared_by") or ()):
        account = role.split(":")[4]
    arn = partition_of(region).arn("ecr", region, account, f"repository/{repository}")
    params = {"method": record["method"], "path": record["path"]}
    return [
        Call(
            record["component"], role, action, (arn,), region, params, key_pair, True, record.get("world", "")
        )
        for action in actions
    ]


def attributed(records: list[dict[str, Any]]) -> list[Call]:
    """The calls and registry requests a component made, with the role that made them."""
    assumed = {r["access_key"]: r["role_arn"] for r in records if r["kind"] == "assumed"}
    key_pairs = {r["access_key"]: r["secret_arn"] for r in records if r["kind"] == "secret"}
    secrets = {}
    for arn in key_pairs.values():
        secrets[arn] = secrets[arn.split(":secret:", 1)[1][:-7]] = arn
    calls = []
    for record in records:
        if record["kind"] not in ("call", "registry") or not record["component"]:
            continue
        role = assumed.get(record["access_key"])
        if record["kind"] == "registry":
            calls.extend(_registry_calls(record, role, key_pairs.get(record["access_key"])))
            continue
        account = role.split(":")[4] if role else SOURCE["account"]
        resources = resources_of(
            record["signing_name"], record["operation"], record["params"], record["region"], account, secrets
        )
        calls.append(
            Call(
                component=record["component"],
                assumed_role=role,
                action=IAM_ACTIONS.get(
                    f"{record['signing_name']}:{record['operation']}",
                    f"{record['signing_name']}:{record['operation']}",
                ),
                resources=tuple(resources),
                region=record["region"],
                params=record["params"],
                via_secret=key_pairs.get(record["access_key"]),
                world=record.get("world", ""),
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


def _repository_key(calls: list[Call]) -> str | None:
    """The customer-managed key the recorded CreateRepository calls name (one at most)."""
    keys = {
        str(c.params.get("encryptionConfiguration", {}).get("kmsKey"))
        for c in calls
        if c.action == "ecr:CreateRepository" and c.params.get("encryptionConfiguration", {}).get("kmsKey")
    }
    if len(keys) > 1:
        raise AssertionError(f"the coverage config names one repository key; the suites used {sorted(keys)}")
    return next(iter(keys), None)


def _gated(calls: list[Call]) -> set[str]:
    """Repositories whose scan findings or signing status were read, or that the Gate read: a gated rule
    selects them."""
    return {
        r.rsplit("repository/", 1)[1]
        for c in calls
        if c.component == "Gate"
        or c.action in ("ecr:DescribeImageScanFindings", "ecr:DescribeImageSigningStatus")
        for r in c.resources
        if ":repository/" in r
    }


def _repositories_of(call: Call) -> set[str]:
    return {r.rsplit("repository/", 1)[1] for r in call.resources if ":repository/" in r}


def without_gates(calls: list[Call]) -> list[Call]:
    """The calls a deployment whose rules have no gates must allow as well: those on repositories no gated rule
    selects (none of the Gate's), and the registry token of each component that made registry requests there."""
    gated = _gated(calls)
    ungated = [
        c for c in calls if c.component != "Gate" and _repositories_of(c) and not _repositories_of(c) & gated
    ]
    readers = {c.component for c in ungated if c.registry}
    tokens = [c for c in calls if c.action == "ecr:GetAuthorizationToken" and c.component in readers]
    return ungated + tokens


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


def coverage_config(calls: list[Call], *, gates: bool = True) -> dict[str, Any]:
    """A config whose synthesized roles are the ones the recorded calls ran as.

    Two rules name every repository the calls touched (source and destination: the destination template
    is `{repository}`): a gated one for the repositories the Gate read or whose findings were read, and one
    without gates for the rest (so a role's gate grants cannot hide what reading the others needs). Each has
    one destination per assumed role, in the Regions its calls went to; a fleet role the resolver reached is one
    organization destination instead (the StackSet's template). Credentials secrets are under a
    customer-managed key (SECRET_KEY_ID); created repositories under the key the calls named, if any. The
    sources are those the calls read (`_sources`), each other account's read through its source-access role.
    `gates=False`: one rule without gates for every repository (for the calls of `without_gates`).
    """
    repositories = {
        r.rsplit("repository/", 1)[1] for c in calls for r in c.resources if ":repository/" in r
    } - {"*"}
    gated = _gated(calls) & repositories if gates else set()
    organizations = bool(organization_actions(calls))
    destinations: dict[tuple[str, str], dict[str, Any]] = {}
    for call in calls:
        if (
            call.action != "sts:AssumeRole"
            or call.assumes_source_access
            or is_fleet_call(call, organizations)
        ):
            continue
        account, name = call.resources[0].split(":")[4], call.resources[0].rsplit("/", 1)[1]
        destinations.setdefault((account, name), {"account": account, "role_name": name, "regions": set()})
    # The relays' Regions (regional_seeds): where the copy job invoked one; a role the relay assumed is a seeded
    # destination's, in those Regions.
    relays = {c.resources[0].split(":")[3] for c in calls if c.action == "lambda:InvokeFunction"}
    for call in calls:
        if call.component == "Relay" and call.action == "sts:AssumeRole":
            account, name = call.resources[0].split(":")[4], call.resources[0].rsplit("/", 1)[1]
            destinations[(account, name)]["regions"].update(relays)
    for call in calls:
        if call.assumed_role and not call.reads_a_source and not is_fleet_call(call, organizations):
            account, name = call.caller_account, call.assumed_role.rsplit("/", 1)[1]
            destinations[(account, name)]["regions"].add(call.region)
        if call.via_secret and call.action == "sts:AssumeRole":
            destination = destinations[(call.caller_account, call.resources[0].rsplit("/", 1)[1])]
            destination["regions"].add(call.region)
            destination["credentials"] = {
                "secret": _configured_secret(call.via_secret),
                "principal": call.principal,
                "kms_key": SECRET_KEY_ID,
            }
    key = _repository_key(calls)
    create: dict[str, Any] = {"tag_mutability": "IMMUTABLE", "scan_on_push": True}
    if key:
        create.update(encryption="KMS", kms_key=key)
    rule = {
        "tags": {"include": ["*"]},
        "destinations": [
            *(
                {**d, "regions": sorted(d["regions"] or {SOURCE["region"]})}
                for _, d in sorted(destinations.items())
            ),
        ],
        "create_repository": create,
        # The suites delete tags too (tests/unit/test_deletes.py), which only opted-in rules may.
        "propagate_deletes": True,
    }
    ungated = sorted(repositories - gated) or ([] if gated else ["*"])
    # Organization destinations in a rule of their own: a customer-managed key is one account's, so the config
    # refuses one for repositories created in every account of an OU (they use ECR's AWS-managed key).
    fleet = organization_destinations(calls)
    fleet_create = {"tag_mutability": "IMMUTABLE", "scan_on_push": True, "encryption": "KMS"}
    rules = [
        {**rule, "name": "coverage", "repositories": ungated},
        {
            **rule,
            "name": "coverage-fleet",
            "repositories": sorted(repositories) if fleet else [],
            "destinations": fleet,
            "create_repository": fleet_create,
        },
        {
            **rule,
            "name": "coverage-gated",
            "repositories": sorted(gated),
            # The signing status is granted only with an ECR managed signing policy.
            "gates": {
                "scan": {"block_at": "CRITICAL"},
                "signature": {"ecr_managed_signing": MANAGED_SIGNING},
            },
        },
    ]
    return {
        "sources": _sources(calls),
        "rules": [r for r in rules if r["repositories"]],
        "notifications": {"emails": ["coverage@example.com"], "on": "failure"},
        # The copy job invoked a relay: the relays and their role are deployed.
        "regional_seeds": bool(relays),
    }


def organization_actions(calls: list[Call]) -> set[str]:
    """The Organizations actions the components that resolve organization destinations made."""
    return {c.action for c in calls if c.action.startswith("organizations:")}


def organization_destinations(calls: list[Call]) -> list[dict[str, Any]]:
    """Organization destinations that make the resolver call what the recorded calls did (organizational units
    when it walked OUs, the whole organization when it listed every account), in the Regions of the calls made
    through fleet roles."""
    actions = organization_actions(calls)
    regions = sorted({c.region for c in calls if is_fleet_call(c, bool(actions))})
    regions = regions or [SOURCE["region"]]
    destinations: list[dict[str, Any]] = []
    units = sorted(
        {
            str(c.params["ParentId"])
            for c in calls
            if c.action == "organizations:ListChildren" and str(c.params["ParentId"]).startswith("ou-")
        }
    )
    if units:
        destinations.append({"organizational_units": units[:1], "regions": regions})
    if "organizations:ListAccounts" in actions:
        destinations.append({"organization": True, "regions": regions})
    return destinations


def _is_fleet_role(arn: str) -> bool:
    return arn.rsplit("/", 1)[1] == FLEET_ROLE_NAME


def is_fleet_call(call: Call, organizations: bool) -> bool:
    """True when `call` assumes or runs as a fleet role while organization destinations are resolved
    (`organizations`): the fleet StackSet's template, not a destination stack, holds that role."""
    role = call.resources[0] if call.action == "sts:AssumeRole" else call.assumed_role
    return bool(organizations and role and _is_fleet_role(role))
