"""The checks across a config's parts (`config_parts`), which no one field can make: sources, rules and
destinations that contradict each other, loops, partitions, bounds. `config.ReplicationConfig` runs them after
its fields validate and reports every problem at once, each a line naming its path."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from workflow.core.grammar import region_problem, shown
from workflow.core.partitions import partition_of
from workflow.models import loops
from workflow.models.config_parts import (
    KEY_ARN_RE,
    KEY_ID_RE,
    PRINCIPAL_PATTERN_RE,
    STATE_MACHINE_ARN_RE,
    USER_ARN_RE,
    DestinationConfig,
    FleetDestination,
    Operators,
    Rule,
    SourceConfig,
)

# Destinations (account, Region, repository) over all rules, resolved organization destinations included.
# Up to 40 (workflow/pipeline/fanout.py INLINE_LIMIT) the inline Map carries them in the execution's state; past
# that the Distributed Map reads the targets from the fan-out bucket and writes its results there, and each
# state holds only their locations and at most FAILURES_SHOWN summary lines, whatever the number
# (tests/unit/test_asl.py measures 2,000). Each destination is one child execution of the Distributed Map, so
# the parent's history stays a few dozen events (bench/fan_out.py counts them at 1,000). The bound is the
# largest fan-out measured.
MAX_DESTINATIONS = 2_000


def too_many_destinations(count: int) -> str:
    """The problem of a config (or an organization's accounts) with more destinations than one run carries."""
    return (
        f"rules: {count} destinations (account, Region, repository) in all; at most {MAX_DESTINATIONS} per image "
        "(the largest fan-out measured: README, 'A fleet of destinations')"
    )


class ConfigLike(Protocol):
    """What the checks read of a config (`config.ReplicationConfig`, which runs them)."""

    @property
    def given_source(self) -> SourceConfig | None: ...

    @property
    def given_sources(self) -> list[SourceConfig] | None: ...

    @property
    def rules(self) -> list[Rule]: ...

    @property
    def operators(self) -> Operators | None: ...

    @property
    def state_machine_arn(self) -> str | None: ...

    @property
    def sources(self) -> tuple[SourceConfig, ...]: ...

    @property
    def source(self) -> SourceConfig: ...

    def source_named(self, account: str, region: str) -> SourceConfig | None: ...

    def rules_for(self, source: SourceConfig) -> list[Rule]: ...

    def organization_destinations(self) -> Iterator[tuple[str, FleetDestination]]: ...

    def destination_count(self) -> int: ...


def problems_of(config: ConfigLike) -> list[str]:
    """Every problem across the config's parts, one line each (the sources' first: the others read them)."""
    found = _source_problems(config)
    if found:
        return found
    return [
        *_source_partitions(config),
        *_rule_sources(config),
        *_duplicate_rule_names(config),
        *_duplicate_destinations(config),
        *_loops(config),
        *_too_many_destinations(config),
        *_external_id_disagreements(config),
        *_kms_keys(config),
        *_partitions(config),
        *_source_owned(config),
        *_fleet_problems(config),
    ]


def _source_problems(config: ConfigLike) -> list[str]:
    """One of `source` and `sources`, each source once, at most one marked home."""
    if config.given_source is None and not config.given_sources:
        return ["source: required field is missing (or list several under sources)"]
    if config.given_source is not None and config.given_sources:
        return ["source: give source or sources, not both (source is sources with one entry)"]
    problems: list[str] = []
    seen: dict[str, int] = {}
    for index, source in enumerate(config.sources):
        first = seen.setdefault(source.name, index)
        if first != index:
            problems.append(f"sources[{index}]: {source.name} is already sources[{first}]")
    homes = [index for index, source in enumerate(config.sources) if source.home]
    if len(homes) > 1:
        problems.append(
            f"sources: {len(homes)} sources marked home (sources{homes}); the source stack is deployed in one"
        )
    return problems


def _source_partitions(config: ConfigLike) -> list[str]:
    """Every source can forward its events to the home Region: EventBridge routes events between accounts
    of one Region everywhere, and between Regions only within aws, never into or out of China or GovCloud
    (EventBridge user guide, "Sending and receiving events between AWS Regions": GovCloud (US-West,
    US-East), China (Ningxia, Beijing) are not supported destination Regions;
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-cross-region.html)."""
    home = config.source
    partition = partition_of(home.region).name
    problems = []
    for index, source in enumerate(config.sources):
        other = partition_of(source.region).name
        if other != partition:
            problems.append(
                f"sources[{index}]: {source.name} is in partition {other}, the home source {home.name} in "
                f"{partition}: EventBridge routes no events across partitions (nor into or out of aws-cn "
                f"and aws-us-gov), so its pushes could not reach the workflow; deploy another installation "
                f"with its home in {other}"
            )
        elif source.region != home.region and partition != "aws":
            problems.append(
                f"sources[{index}]: {source.name} is in another Region than the home source {home.name}: "
                f"EventBridge routes no events between Regions of {partition}; deploy an installation "
                f"with its home in {source.region}"
            )
    return problems


def _rule_sources(config: ConfigLike) -> list[str]:
    """A rule names configured sources only, and every source has a rule that replicates its pushes."""
    names = [source.name for source in config.sources]
    problems = [
        f"rules[{index}].sources[{s_index}]: {shown(name)} is not one of the sources ({', '.join(names)})"
        for index, rule in enumerate(config.rules)
        for s_index, name in enumerate(rule.sources or ())
        if name not in names
    ]
    problems += [
        f"sources[{index}]: no rule replicates the pushes of {source.name} (each rule names other sources)"
        for index, source in enumerate(config.sources)
        if not problems and not config.rules_for(source)
    ]
    return problems


def _duplicate_rule_names(config: ConfigLike) -> list[str]:
    seen: set[str] = set()
    problems = []
    for index, rule in enumerate(config.rules):
        if rule.name in seen:
            problems.append(f"rules[{index}].name: duplicate rule name {rule.name!r}")
        seen.add(rule.name)
    return problems


def _duplicate_destinations(config: ConfigLike) -> list[str]:
    problems = []
    for index, rule in enumerate(config.rules):
        seen: dict[tuple[str, str, str], int] = {}
        for d_index, destination in rule.indexed_accounts():
            for region in destination.regions:
                key = (destination.account, region, destination.repository)
                if key in seen:
                    problems.append(
                        f"rules[{index}].destinations[{d_index}]: duplicate destination "
                        f"{destination.account}/{region} (already in destinations[{seen[key]}])"
                    )
                seen.setdefault(key, d_index)
    return problems


def _loops(config: ConfigLike) -> list[str]:
    """A destination in a source's account and Region whose copies a rule could select again: each tag the
    product puts there is an ECR push event on that source's bus, which reaches the workflow as every
    source's push does (workflow/models/loops.py)."""
    problems = []
    for index, rule in enumerate(config.rules):
        for d_index, destination in rule.indexed_accounts():
            for region in destination.regions:
                place = config.source_named(destination.account, region)
                if place is None:
                    continue
                loop = loops.selected_again(destination.repository, rule, config.rules_for(place))
                if loop is None:
                    continue
                itself = (
                    " (the source itself)"
                    if loop.source == loop.destination and rule.applies_to(place)
                    else ""
                )
                problem = (
                    f"rules[{index}].destinations[{d_index}]: {loop.source} -> {loop.destination}{itself} is "
                    f"selected again by rule {loop.rule!r} (loop in {place.name})"
                )
                if loop.widened:
                    problem += f"; decided conservatively: {'; '.join(loop.widened)}"
                problems.append(problem)
    return problems


def _too_many_destinations(config: ConfigLike) -> list[str]:
    count = config.destination_count()
    return [] if count <= MAX_DESTINATIONS else [too_many_destinations(count)]


def _external_id_disagreements(config: ConfigLike) -> list[str]:
    """A destination role's trust policy requires an ExternalId of every assumer, or of none."""
    first: dict[tuple[str, str], tuple[str, DestinationConfig]] = {}
    problems = []
    for index, rule in enumerate(config.rules):
        for d_index, destination in rule.indexed_accounts():
            path = f"rules[{index}].destinations[{d_index}]"
            key = (destination.account, destination.role_name)
            first_path, other = first.setdefault(key, (path, destination))
            if (destination.external_id is None) != (other.external_id is None):
                problems.append(
                    f"{path}.external_id: {'missing' if destination.external_id is None else 'set'} here "
                    f"but {'set' if destination.external_id is None else 'missing'} in {first_path}, which "
                    f"uses the same role {destination.role_name!r} in account {destination.account}; its "
                    "trust policy can require an ExternalId only of every destination or of none"
                )
    return problems


def _kms_keys(config: ConfigLike) -> list[str]:
    return [
        f"rules[{index}].create_repository.kms_key: {shown(create.kms_key)} is not a KMS key ARN or "
        "key id (the destination role is granted on the key, which IAM cannot name by alias)"
        for index, rule in enumerate(config.rules)
        if (create := rule.create_repository) is not None
        and create.kms_key is not None
        and not (KEY_ARN_RE.fullmatch(create.kms_key) or KEY_ID_RE.fullmatch(create.kms_key))
    ]


def _partitions(config: ConfigLike) -> list[str]:
    """Partition, Region and account agree: one partition per account, credentials where (and only
    where) the destination's partition is not the source's, secrets and keys in the source account."""
    source = partition_of(config.source.region).name
    problems: list[str] = []
    accounts: dict[str, tuple[str, str]] = {}
    for index, rule in enumerate(config.rules):
        for d_index, destination in rule.indexed_accounts():
            path = f"rules[{index}].destinations[{d_index}]"
            partitions = sorted({partition_of(region).name for region in destination.regions})
            if len(partitions) > 1:
                problems.append(
                    f"{path}.regions: Regions of {' and '.join(partitions)} in one destination; an account "
                    "belongs to one partition"
                )
                continue
            partition = partitions[0]
            first_path, first = accounts.setdefault(destination.account, (path, partition))
            if first != partition:
                problems.append(
                    f"{path}.regions: account {destination.account} in {partition} here but in {first} in "
                    f"{first_path}; an account belongs to one partition"
                )
            problems.extend(_credentials_problems(config, path, destination, partition, source))
    return problems


def _credentials_problems(
    config: ConfigLike, path: str, destination: DestinationConfig, partition: str, source: str
) -> list[str]:
    credentials = destination.credentials
    if credentials is None:
        if partition == source:
            return []
        return [
            f"{path}: {destination.account}/{destination.regions[0]} is in partition {partition}, the "
            f"source in {source}; no IAM role can be assumed across partitions, so it needs credentials "
            "(secret and principal, see docs/deploy.md)"
        ]
    if partition == source:
        return [
            f"{path}.credentials: {destination.account} is in the source's partition ({source}), where "
            "the source roles assume the destination role; a stored access key would only add risk"
        ]
    problems = []
    principal = USER_ARN_RE.fullmatch(credentials.principal)
    if principal and principal["partition"] != partition:
        problems.append(
            f"{path}.credentials.principal: {shown(credentials.principal)} is in partition "
            f"{principal['partition']}, the destination in {partition}"
        )
    if credentials.secret.startswith("arn:"):
        _, arn_partition, _, region, account, *_ = credentials.secret.split(":")
        if (arn_partition, account) != (source, config.source.account) or region_problem(region):
            problems.append(
                f"{path}.credentials.secret: {shown(credentials.secret)} is not a secret of the source "
                f"account ({source}, {config.source.account}, a Region of {source})"
            )
        elif partition_of(region).name != source:
            problems.append(f"{path}.credentials.secret: Region {region} is not in {source}")
    if credentials.kms_key and KEY_ARN_RE.fullmatch(credentials.kms_key):
        _, key_partition, _, key_region, key_account, _ = credentials.kms_key.split(":")
        if (key_partition, key_account, key_region) != (
            source,
            config.source.account,
            credentials.secret_region(config.source),
        ):
            problems.append(
                f"{path}.credentials.kms_key: {shown(credentials.kms_key)} is not a key of the source "
                f"account in the secret's Region ({source}, {config.source.account}, "
                f"{credentials.secret_region(config.source)})"
            )
    return problems


def _source_owned(config: ConfigLike) -> list[str]:
    """Operators and the state machine belong to the source account, Region and partition."""
    source, partition = config.source, partition_of(config.source.region).name
    problems = []
    for index, principal in enumerate(config.operators.principals if config.operators else ()):
        match = PRINCIPAL_PATTERN_RE.fullmatch(principal)
        if match and (match["partition"], match["account"]) != (partition, source.account):
            problems.append(
                f"operators.principals[{index}]: {shown(principal)} is not a principal of the source "
                f"account ({partition}, {source.account}); the destination's read-only role trusts "
                "people of the source account only"
            )
    roles = {d.role_name for rule in config.rules for d in rule.destinations}
    if config.operators is not None and config.operators.role_name in roles:
        problems.append(
            f"operators.role_name: {config.operators.role_name!r} is a destination's role_name; the operators' "
            "read-only role needs a name of its own"
        )
    match = STATE_MACHINE_ARN_RE.fullmatch(config.state_machine_arn or "")
    if match and (match["partition"], match["region"], match["account"]) != (
        partition,
        source.region,
        source.account,
    ):
        problems.append(
            f"state_machine_arn: {shown(config.state_machine_arn)} is not in the source account and Region "
            f"({source.account}, {source.region})"
        )
    return problems


def _fleet_problems(config: ConfigLike) -> list[str]:
    """Organization destinations share one fleet role (one StackSet, one template): one role name and
    one ExternalId (or none); their Regions are in the source's partition, where Organizations and the
    source roles are; and repositories they create use no customer-managed key, which differs per account."""
    fleet = list(config.organization_destinations())
    source = partition_of(config.source.region).name
    problems = [
        f"{path}.regions: {region} is not in the source's partition ({source}): organization destinations "
        "are reached by the source's roles, which cannot cross partitions"
        for path, destination in fleet
        for region in destination.regions
        if partition_of(region).name != source
    ]
    if fleet:
        first_path, first = fleet[0]
        for path, destination in fleet[1:]:
            if (destination.role, destination.external_id) != (first.role, first.external_id):
                problems.append(
                    f"{path}: role_name/external_id differ from {first_path}'s; the fleet StackSet deploys "
                    "one role to every organization destination, so they share one name and ExternalId"
                )
    for index, rule in enumerate(config.rules):
        create = rule.create_repository
        if rule.organization_destinations and create is not None and create.kms_key is not None:
            problems.append(
                f"rules[{index}].create_repository.kms_key: a customer-managed key is one account's, and "
                "organization destinations are every account of an OU; use encryption KMS without kms_key "
                "(ECR's AWS-managed key) or AES256"
            )
    return problems
