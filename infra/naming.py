"""Names and ARNs shared by the source and destination stacks (both synthesized from one config).

The destination stack lives in another account, so it cannot reference the source roles: it
names them. The names here are the contract between the two stacks.
"""

from __future__ import annotations

from workflow.core.partitions import partition_of
from workflow.models.config import FleetDestination, ReplicationConfig, Rule, SourceConfig
from workflow.models.rules import compile_pattern

# IAM quotas: a managed policy is at most 6,144 characters; CDK moves the statements that overflow a
# role's inline policy (10,240) into managed policies whole, so one statement's resources must fit in one
# with room for its actions (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html).
STATEMENT_RESOURCES_MAX_CHARACTERS = 5000
SOURCE_STACK_NAME = "EcrReplicationSource"
DESTINATION_STACK_PREFIX = "EcrReplicationDestination-"
# The fleet role: the StackSet the source stack deploys to the organization destinations' OUs, and the plain
# CloudFormation template (parameters, no CDK bootstrap) infra/app.py writes beside the stacks.
FLEET_STACK_SET_NAME = "ecr-replication-fleet-role"
FLEET_TEMPLATE_FILE = "destination-role.template.json"
RELAY_STACK_PREFIX = "EcrReplicationRelay-"
FORWARDING_STACK_PREFIX = "EcrReplicationForward-"


def copy_role_name(config: ReplicationConfig) -> str:
    """The CodeBuild copy role's name."""
    return f"ecr-replication-copy-{config.source.region}"


def precheck_role_name(config: ReplicationConfig) -> str:
    """The precheck Lambda role's name."""
    return f"ecr-replication-precheck-{config.source.region}"


def reconcile_role_name(config: ReplicationConfig) -> str:
    """The reconciliation Lambda role's name."""
    return f"ecr-replication-reconcile-{config.source.region}"


def relay_role_name(config: ReplicationConfig) -> str:
    """The role of the relay functions (regional_seeds): one role, global, for the relay of every Region."""
    return f"ecr-replication-relay-{config.source.region}"


def gate_role_name(config: ReplicationConfig) -> str:
    """The Gate Lambda role's name (the source-access roles of other source accounts trust it by name)."""
    return f"ecr-replication-gate-{config.source.region}"


def source_reader_role_arns(config: ReplicationConfig) -> list[str]:
    """The ARNs of the home roles that read the sources: copy, precheck, gate and reconcile (a source in another
    account is read through its source-access role, which trusts exactly these)."""
    partition = partition_of(config.source.region)
    names = (
        copy_role_name(config),
        precheck_role_name(config),
        gate_role_name(config),
        reconcile_role_name(config),
    )
    return [partition.role_arn(config.source.account, name) for name in names]


def forwarding_stack_name(source: SourceConfig) -> str:
    """The stack name of the forwarding stack of one source other than the home one."""
    return f"{FORWARDING_STACK_PREFIX}{source.account}-{source.region}"


def source_access_stack_source(config: ReplicationConfig, account: str) -> SourceConfig | None:
    """The source whose forwarding stack deploys `account`'s source-access role (IAM is global: the first of the
    account's sources); None for the home account, whose roles read its sources directly."""
    if account == config.source.account:
        return None
    return next(source for source in config.sources if source.account == account)


def source_access_role_arns(config: ReplicationConfig) -> list[str]:
    """The source-access roles of the other source accounts, which the home roles assume to read them."""
    return sorted({arn for source in config.sources if (arn := config.source_role_arn(source))})


def source_role_arns(config: ReplicationConfig) -> list[str]:
    """The ARNs of the source roles that assume destination roles: copy, precheck and reconcile, and with
    `regional_seeds` the relay functions'."""
    partition = partition_of(config.source.region)
    names = [copy_role_name(config), precheck_role_name(config), reconcile_role_name(config)]
    if config.regional_seeds:
        names.append(relay_role_name(config))
    return [partition.role_arn(config.source.account, name) for name in names]


def relay_stack_name(region: str) -> str:
    """The stack of the relay function of one Region (in the source account)."""
    return f"{RELAY_STACK_PREFIX}{region}"


def operator_policy_names(config: ReplicationConfig) -> tuple[str, str]:
    """The names of the operators' customer managed policies (read, start) the source stack creates: an IAM
    Identity Center permission set references them by name (and path `/`), which must exist in the account
    (IAM Identity Center API reference, CustomerManagedPolicyReference:
    https://docs.aws.amazon.com/singlesignon/latest/APIReference/API_CustomerManagedPolicyReference.html)."""
    region = config.source.region
    return f"ecr-replication-operator-read-{region}", f"ecr-replication-operator-start-{region}"


def reader_role_arns(config: ReplicationConfig) -> list[str]:
    """The read-only destination roles the config's operators assume, one per destination account of the
    source's partition (an operator cannot assume a role in another partition), sorted."""
    if config.operators is None:
        return []
    return sorted(
        {
            partition_of(region).role_arn(destination.account, config.operators.role_name)
            for rule in config.rules
            for destination in rule.account_destinations  # fleet accounts get no reader role
            if destination.credentials is None
            for region in destination.regions
        }
    )


def account_repository_arns(config: ReplicationConfig, account: str) -> list[str]:
    """Every destination repository ARN pattern of `account`, whatever the role writing it, sorted."""
    roles = {d.role_name for rule in config.rules for d in rule.account_destinations if d.account == account}
    return fit_statement(
        {arn for role in roles for arn in destination_repository_arns(config, account, role)}
    )


def destination_stack_name(account: str) -> str:
    """The stack name of the destination-role stack of one account."""
    return f"{DESTINATION_STACK_PREFIX}{account}"


def destination_accounts(config: ReplicationConfig) -> list[str]:
    """Every destination account, sorted."""
    return sorted({d.account for rule in config.rules for d in rule.account_destinations})


def destination_role_arns(config: ReplicationConfig) -> list[str]:
    """Every destination role the source roles may assume, sorted: those in the source's partition (a role
    in another partition is assumed by the principal whose key pair its credentials secret holds), and the
    fleet role in any account (`arn:aws:iam::*:role/<fleet role>`): organization destinations are accounts
    known only when a run plans, and each one's role trusts only the source roles."""
    arns = {
        partition_of(region).role_arn(destination.account, destination.role_name)
        for rule in config.rules
        for destination in rule.account_destinations
        if destination.credentials is None
        for region in destination.regions
    }
    fleet = fleet_destinations(config)
    if fleet:
        arns.add(partition_of(config.source.region).role_arn("*", fleet[0].role))
    return sorted(arns)


def fleet_destinations(config: ReplicationConfig) -> list[FleetDestination]:
    """The destinations naming organizational units or the organization (they share one role: the config)."""
    return [destination for _, destination in config.organization_destinations()]


def fleet_regions(config: ReplicationConfig) -> list[str]:
    """The Regions the fleet role writes in, sorted."""
    return sorted({region for destination in fleet_destinations(config) for region in destination.regions})


def fleet_repository_starts(config: ReplicationConfig) -> list[str]:
    """What every repository the organization destinations write starts with (their templates rendered with
    the rules' repository patterns, up to the first `*`), sorted."""
    return sorted(
        {
            destination.repository.format(repository=pattern).split("*", 1)[0]
            for rule in config.rules
            for destination in rule.organization_destinations
            for pattern in repository_resource_patterns(rule)
        }
    )


def fleet_repository_prefix(config: ReplicationConfig) -> str:
    """The fleet role's default RepositoryPrefix: the path the organization destinations' repositories share
    (`mirror/` for `mirror/{repository}`), cut back to its last `/`, so a repository added under it later needs
    no change in the fleet accounts. Empty (every repository) when they share nothing."""
    starts = fleet_repository_starts(config)
    common = starts[0] if starts else ""
    for start in starts[1:]:
        while not start.startswith(common):  # character by character: `team-a`, `team-b` share `team-`
            common = common[:-1]
    return common if common.endswith("/") or "/" not in common else common[: common.rindex("/") + 1]


def fleet_deletes(config: ReplicationConfig) -> bool:
    """True when a rule with propagate_deletes has organization destinations."""
    return any(rule.propagate_deletes and rule.organization_destinations for rule in config.rules)


def organization_actions(config: ReplicationConfig) -> list[str]:
    """The Organizations actions the Plan and reconcile roles call to resolve the organization destinations
    (workflow/pipeline/organizations.py), exactly: none without organization destinations."""
    fleet = fleet_destinations(config)
    if not fleet:
        return []
    actions = {"organizations:DescribeOrganization"}
    if any(destination.organizational_units for destination in fleet):
        actions |= {"organizations:ListAccountsForParent", "organizations:ListChildren"}
    if any(destination.organization for destination in fleet):
        actions.add("organizations:ListAccounts")
    return sorted(actions)


def credentials_secret_arns(config: ReplicationConfig) -> list[str]:
    """The ARNs (`name-??????` for a secret named by name) of every credentials secret, sorted."""
    return sorted(
        {
            destination.credentials.secret_arn(config.source)
            for rule in config.rules
            for destination in rule.account_destinations
            if destination.credentials is not None
        }
    )


def credentials_key_arns(config: ReplicationConfig) -> dict[str, list[str]]:
    """The customer-managed keys of the credentials secrets, by the Region the secrets are read in."""
    keys: dict[str, set[str]] = {}
    for rule in config.rules:
        for destination in rule.account_destinations:
            credentials = destination.credentials
            key = credentials.key_arn(config.source) if credentials else None
            if credentials is not None and key is not None:
                keys.setdefault(credentials.secret_region(config.source), set()).add(key)
    return {region: sorted(arns) for region, arns in sorted(keys.items())}


def repository_resource_patterns(rule: Rule) -> list[str]:
    """IAM resource patterns for the source repositories a rule names.

    A glob keeps its text (IAM's `*` also spans `/`, as the rule's does); a regular expression
    or a semver range cannot be expressed in IAM, so it widens to every repository (`*`).
    """
    patterns: list[str] = []
    for pattern in rule.repositories:
        resource = pattern if compile_pattern(pattern).kind == "glob" else "*"
        if resource not in patterns:
            patterns.append(resource)
    return ["*"] if "*" in patterns else patterns


def _repository_prefix(source: SourceConfig) -> str:
    return partition_of(source.region).arn("ecr", source.region, source.account, "repository/")


def source_repository_arns(config: ReplicationConfig, account: str | None = None) -> list[str]:
    """The ARNs (or ARN patterns) of every source repository a rule can read in `account` (default: the home
    one), in each of its source Regions, sorted."""
    account = account or config.source.account
    return fit_statement(
        {
            _repository_prefix(source) + pattern
            for source in config.sources
            if source.account == account
            for rule in config.rules_for(source)
            for pattern in repository_resource_patterns(rule)
        }
    )


def source_listing_arns(config: ReplicationConfig, account: str | None = None) -> list[str]:
    """`repository/*` in each source Region of `account` (default: the home one): what DescribeRepositories
    without names is authorized on (reconciliation and sync list the registry)."""
    account = account or config.source.account
    return sorted({_repository_prefix(s) + "*" for s in config.sources if s.account == account})


def destination_repository_arns(
    config: ReplicationConfig, account: str, role_name: str, *, deletes: bool = False
) -> list[str]:
    """The repository ARN patterns the destination role `role_name` in `account` can write, sorted.

    With `deletes`, only those of the rules with `propagate_deletes` (where it may remove tags).
    """
    arns: set[str] = set()
    for rule in config.rules:
        if deletes and not rule.propagate_deletes:
            continue
        for destination in rule.account_destinations:
            if destination.account != account or destination.role_name != role_name:
                continue
            for region in destination.regions:
                prefix = partition_of(region).arn("ecr", region, account, "repository/")
                arns.update(
                    prefix + destination.render_repository(p) for p in repository_resource_patterns(rule)
                )
    return fit_statement(arns)


def _characters(arns: set[str]) -> int:
    return sum(len(arn) + 3 for arn in arns)  # quotes and comma


def fit_statement(arns: set[str]) -> list[str]:
    """Repository ARN patterns, sorted; when their text is over STATEMENT_RESOURCES_MAX_CHARACTERS, the
    repository parts are cut to shorter prefixes (`team-0/*`), down to `repository/*` per Region."""
    if _characters(arns) <= STATEMENT_RESOURCES_MAX_CHARACTERS:
        return sorted(arns)
    parts = [arn.split(":repository/", 1) for arn in arns]
    widened: set[str] = set()
    for length in range(max(len(repository) for _, repository in parts), -1, -1):
        cut = {
            (head, repository if "*" not in repository and len(repository) <= length else
             repository.split("*", 1)[0][:length] + "*")
            for head, repository in parts
        }  # fmt: skip
        prefixes = {(head, repository[:-1]) for head, repository in cut if repository.endswith("*")}
        widened = {
            f"{head}:repository/{repository}"
            for head, repository in cut
            if not any(h == head and repository.startswith(p) and repository != p + "*" for h, p in prefixes)
        }
        if _characters(widened) <= STATEMENT_RESOURCES_MAX_CHARACTERS:
            break
    return sorted(widened)


def widened_rules(config: ReplicationConfig) -> list[str]:
    """Names of the rules whose repository patterns widen to every repository."""
    return [rule.name for rule in config.rules if repository_resource_patterns(rule) == ["*"]]


def gated_repository_arns(
    config: ReplicationConfig,
    *,
    scan: bool = False,
    managed_signing: bool = False,
    account: str | None = None,
) -> list[str]:
    """The ARN patterns of the source repositories in `account` (default: the home one) of rules with promotion
    gates (a scan gate, if `scan`; an ECR managed signing policy, if `managed_signing`)."""
    account = account or config.source.account

    def gated(rule: Rule) -> bool:
        gates = rule.gates
        if gates is None or (scan and gates.scan is None):
            return False
        return not managed_signing or (
            gates.signature is not None and bool(gates.signature.ecr_managed_signing)
        )

    return fit_statement(
        {
            _repository_prefix(source) + pattern
            for source in config.sources
            if source.account == account
            for rule in config.rules_for(source)
            if gated(rule)
            for pattern in repository_resource_patterns(rule)
        }
    )
