"""Replication config (YAML or JSON) -> validated model. Every problem is reported at once, with its path."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator, Mapping
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, Self, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from workflow.core.exceptions import InvalidConfig
from workflow.core.grammar import account_problem, cut, region_problem, repository_problem, shown
from workflow.core.partitions import SUPPORTED, partition_of
from workflow.models import loops
from workflow.models.payloads import RepositorySettings
from workflow.models.policy import Gates
from workflow.models.rules import NameFilter, compile_pattern

DEFAULT_ROLE_NAME = "ecr-replication-target"
# The role the service-managed StackSet deploys to every account of the organizational units a config names
# (infra/stacks/fleet_role.py): a name of its own, so an account also named by `account:` (whose destination
# stack creates ecr-replication-target) never gets two stacks creating one role.
FLEET_ROLE_NAME = "ecr-replication-fleet"
REPOSITORY_PLACEHOLDER = "{repository}"
TEMPLATE_SAMPLE = "sample/repository"
# Destinations (account, Region, repository) over all rules, resolved organization destinations included.
# Up to 40 (workflow/pipeline/fanout.py INLINE_LIMIT) the inline Map carries them in the execution's state; past
# that the Distributed Map reads the targets from the fan-out bucket and writes its results there, and each
# state holds only their locations and at most FAILURES_SHOWN summary lines, whatever the number
# (tests/unit/test_asl.py measures 2,000). Each destination is one child execution of the Distributed Map, so
# the parent's history stays a few dozen events (bench/fan_out.py counts them at 1,000). The bound is the
# largest fan-out measured.
MAX_DESTINATIONS = 2_000
# Organizations ids (Organizations API reference, OrganizationalUnit `Id` and Root `Id`,
# https://docs.aws.amazon.com/organizations/latest/APIReference/API_OrganizationalUnit.html).
OU_ID_RE = re.compile(r"ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}")
ROOT_ID_RE = re.compile(r"r-[0-9a-z]{4,32}")
# Sources of one config: each other one is a forwarding stack, and the home bus policy names each other account
# (an event bus policy is at most 10 KB: AWS::Events::EventBusPolicy).
MAX_SOURCES = 50
# The read-only role the forwarding stack deploys in a source account other than the home one; the home roles
# (copy, precheck, gate, reconcile) assume it to read that account's repositories.
SOURCE_ACCESS_ROLE_NAME = "ecr-replication-source-access"
# A customer-managed key is named by ARN or key id: the destination role is granted on it, and IAM
# cannot name a key by alias.
KEY_ARN_RE = re.compile(rf"arn:(?:{'|'.join(SUPPORTED)}):kms:[a-z0-9-]+:[0-9]{{12}}:key/[A-Za-z0-9-]+")
KEY_ID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32}")
# host[:port]: a DNS name, an IPv4 address or a bracketed IPv6 address, then an optional port.
REGISTRY_RE = re.compile(
    r"(?P<host>[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]{1,5}))?"
)


class _Strict(BaseModel):
    # Each field's docstring is its schema `description` (editors show it as hover help).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, use_attribute_docstrings=True)


def _check(problem: str | None, value: Any) -> Any:
    if problem:
        raise ValueError(problem)
    return value


def _check_patterns(patterns: list[str]) -> list[str]:
    problems = []
    for pattern in patterns:
        try:
            compile_pattern(pattern)
        except ValueError as error:
            problems.append(str(error))
    if problems:
        raise ValueError("; ".join(problems))
    return patterns


def _check_regions(regions: list[str]) -> list[str]:
    problems = [p for p in map(region_problem, regions) if p]
    if problems:
        raise ValueError("; ".join(problems))
    return regions


def _check_role_name(role_name: str | None) -> str | None:
    if role_name is not None and not re.fullmatch(r"[\w+=,.@-]{1,64}", role_name, re.ASCII):
        raise ValueError(f"{shown(role_name)} is not a valid IAM role name")
    return role_name


def _check_external_id(external_id: str | None) -> str | None:
    if external_id is not None and not re.fullmatch(r"[\w+=,.@:/-]{2,1224}", external_id, re.ASCII):
        raise ValueError(
            f"{shown(external_id)} is not a valid ExternalId "
            "(2 to 1224 characters of letters, digits and _+=,.@:/-)"
        )
    return external_id


def _check_template(template: str) -> str:
    try:
        rendered = template.format(repository=TEMPLATE_SAMPLE)
    except (KeyError, IndexError, ValueError):
        raise ValueError(
            f"{shown(template)} is not a valid repository template (the only placeholder is {{repository}})"
        ) from None
    if repository_problem(rendered):
        raise ValueError(f"{shown(template)} does not render to a valid ECR repository name")
    return template


class SourceConfig(_Strict):
    """Where images are pushed: one account and Region. The home source is where the source stack is deployed
    (the first of `sources`, or the one marked `home: true`); the others forward their push events to it."""

    account: str
    """The source account id (12 digits, quoted in YAML): where images are pushed."""
    region: str
    """The source Region (e.g. us-east-1)."""
    home: bool = Field(
        default=False,
        description="This source is where the source stack (the workflow) is deployed; default: the first one.",
    )

    _account = field_validator("account")(lambda v: _check(account_problem(v), v))
    _region = field_validator("region")(lambda v: _check(region_problem(v), v))

    @property
    def name(self) -> str:
        """`account/region`: how plans, records, the email, events and `status` name the source."""
        return f"{self.account}/{self.region}"


class TagRules(_Strict):
    """Tag patterns; an exclude wins over an include."""

    include: list[str] = Field(min_length=1)
    """Tags that replicate: globs (`release-*`), `re:` RE2 expressions or `semver:` ranges; at least one."""
    exclude: list[str] = Field(default_factory=list)
    """Tags that never replicate, even when an include matches (same pattern forms)."""
    case_insensitive: bool = Field(
        default=False,
        description="Globs and re: patterns of this rule's include and exclude ignore case "
        "('*-rc*' also excludes 'release-1.0.0-RC1'); they are case-sensitive by default.",
    )

    _patterns = field_validator("include", "exclude")(_check_patterns)


# Secrets Manager secret names: 1-512 of letters, digits and /_+=.@- (CreateSecret `Name`,
# https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_CreateSecret.html).
SECRET_NAME_RE = re.compile(r"[A-Za-z0-9/_+=.@-]{1,512}")
# A secret's ARN ends in its name, a hyphen and six random characters Secrets Manager appends ("Secret names
# and ARNs"). IAM evaluates GetSecretValue against that complete ARN: a policy naming a partial ARN never
# matches (API reference, GetSecretValue, SecretId: "specify a complete ARN").
SECRET_ARN_SUFFIX_RE = re.compile(r".+-[A-Za-z0-9]{6}")
USER_ARN_RE = re.compile(
    r"arn:(?P<partition>[a-z-]+):iam::(?P<account>[0-9]{12}):user/[\w+=,.@/-]{1,512}", re.ASCII
)


class PartitionCredentials(_Strict):
    """Credentials for a destination in another partition, where no role of the source can be assumed.

    `secret` (an ARN, or a name in the source Region) is a Secrets Manager secret in the source account
    whose value is `{"AccessKeyId": ..., "SecretAccessKey": ...}`: an access key pair of the IAM user
    `principal` in the destination's partition, which assumes the destination role there. `kms_key` is the
    secret's customer-managed key, if it has one (ARN or key id, in the source account).
    """

    secret: str
    """The Secrets Manager secret (ARN, or a name in the source Region) holding the key pair as JSON."""
    principal: str
    """The IAM user ARN, in the destination's partition, whose access key pair the secret holds."""
    kms_key: str | None = None
    """The secret's customer-managed KMS key (ARN or key id), if it has one."""

    @field_validator("secret")
    @classmethod
    def _secret(cls, secret: str) -> str:
        if secret.startswith("arn:"):
            parts = secret.split(":", 6)
            if len(parts) != 7 or parts[2] != "secretsmanager" or parts[5] != "secret" or not parts[6]:
                raise ValueError(
                    f"{shown(secret)} is not a Secrets Manager secret ARN "
                    "(arn:<partition>:secretsmanager:<region>:<account>:secret:<name>-<6 characters>)"
                )
            if not SECRET_ARN_SUFFIX_RE.fullmatch(parts[6]):
                raise ValueError(
                    f"{shown(secret)} is a partial ARN: IAM evaluates GetSecretValue against the complete one, "
                    "so a policy naming this never matches; use the complete ARN (with the 6-character suffix "
                    "Secrets Manager appends to the name, e.g. ...:secret:name-AbCdEf), or the name alone"
                )
        elif not SECRET_NAME_RE.fullmatch(secret):
            raise ValueError(
                f"{shown(secret)} is not a secret ARN or name (1-512 of letters, digits and /_+=.@-)"
            )
        return secret

    @field_validator("principal")
    @classmethod
    def _principal(cls, principal: str) -> str:
        if not USER_ARN_RE.fullmatch(principal):
            raise ValueError(
                f"{shown(principal)} is not an IAM user ARN (arn:<partition>:iam::<account>:user/<name>): "
                "the secret holds that user's access key pair"
            )
        return principal

    @field_validator("kms_key")
    @classmethod
    def _kms_key(cls, kms_key: str | None) -> str | None:
        if kms_key is not None and not (KEY_ARN_RE.fullmatch(kms_key) or KEY_ID_RE.fullmatch(kms_key)):
            raise ValueError(
                f"{shown(kms_key)} is not a KMS key ARN or key id (IAM cannot name a key by alias)"
            )
        return kms_key

    def secret_arn(self, source: SourceConfig) -> str:
        """The secret's ARN as IAM names it: the given ARN, or the name with the six characters Secrets
        Manager appends to it (`-??????`; Secrets Manager user guide, "Secret names and ARNs")."""
        if self.secret.startswith("arn:"):
            return self.secret
        return partition_of(source.region).arn(
            "secretsmanager", source.region, source.account, f"secret:{self.secret}-??????"
        )

    def secret_region(self, source: SourceConfig) -> str:
        """The Region the secret is read in: its ARN's, else the source's."""
        return self.secret.split(":")[3] if self.secret.startswith("arn:") else source.region

    def key_arn(self, source: SourceConfig) -> str | None:
        """The ARN of the secret's customer-managed key, if it has one."""
        if self.kms_key is None or KEY_ARN_RE.fullmatch(self.kms_key):
            return self.kms_key
        region = self.secret_region(source)
        return partition_of(region).arn("kms", region, source.account, f"key/{self.kms_key}")


class DestinationConfig(_Strict):
    """One destination account, in one or more Regions (another partition's with `credentials`)."""

    account: str
    """The destination account id (12 digits, quoted in YAML)."""
    regions: list[str] = Field(min_length=1)
    """The Regions of that account that receive the images."""
    role_name: str = DEFAULT_ROLE_NAME
    """The role the destination stack creates there, which the source roles assume to write."""
    repository: str = REPOSITORY_PLACEHOLDER
    """The destination repository name; `{repository}` is the source repository (e.g. `mirror/{repository}`)."""
    external_id: str | None = None
    """An sts:ExternalId the destination role requires (optional)."""
    credentials: PartitionCredentials | None = None
    """Only for a destination in another partition (aws-cn, aws-us-gov): where its access key pair is kept."""

    _account = field_validator("account")(lambda v: _check(account_problem(v), v))

    @property
    def partition(self) -> str:
        """The partition of the destination's Regions (the config refuses Regions of several)."""
        return partition_of(self.regions[0]).name

    _regions = field_validator("regions")(_check_regions)
    _role_name = field_validator("role_name")(_check_role_name)
    _external_id = field_validator("external_id")(_check_external_id)
    _template = field_validator("repository")(_check_template)

    def render_repository(self, source_repository: str) -> str:
        """The destination repository name for a source repository."""
        return self.repository.format(repository=source_repository)


SELECTORS = ("accounts", "organizational_units", "organization")


class FleetDestination(_Strict):
    """Several accounts in the same Regions: a list of `accounts`, the accounts of `organizational_units`
    (nested OUs included) or of the whole `organization`, less `exclude_accounts`.

    Accounts of organizational units and of the organization are read from AWS Organizations when a run plans
    (workflow/pipeline/organizations.py): an account that joins receives matching images from its next run;
    suspended and closed accounts are skipped, and the plan says so. Their role is the one the fleet StackSet
    deploys (`ecr-replication-fleet` unless `role_name` says otherwise).
    """

    accounts: list[str] | None = Field(
        default=None, min_length=1, description="These accounts, each in every Region of `regions`."
    )
    organizational_units: list[str] | None = Field(
        default=None,
        min_length=1,
        description="Every active account of these organizational units (ou-...), nested OUs included, read "
        "from AWS Organizations when a run plans.",
    )
    organization: Literal[True] | None = Field(
        default=None,
        description="true: every active account of the organization, read from AWS Organizations when a run "
        "plans (the management account excepted: StackSets do not deploy the role there).",
    )
    exclude_accounts: list[str] = Field(
        default_factory=list,
        description="Accounts left out of `organizational_units` or `organization` (not with `accounts`).",
    )
    regions: list[str] = Field(min_length=1)
    """The Regions of each of those accounts that receive the images."""
    role_name: str | None = Field(
        default=None,
        description=f"The destination role: default {FLEET_ROLE_NAME} (the fleet StackSet's role) for "
        f"organizational_units and organization, {DEFAULT_ROLE_NAME} for accounts.",
    )
    repository: str = REPOSITORY_PLACEHOLDER
    """The destination repository name; `{repository}` is the source repository (e.g. `mirror/{repository}`)."""
    external_id: str | None = None
    """An sts:ExternalId the destination role requires (optional; the same for every fleet destination)."""

    _regions = field_validator("regions")(_check_regions)
    _role_name = field_validator("role_name")(_check_role_name)
    _external_id = field_validator("external_id")(_check_external_id)
    _template = field_validator("repository")(_check_template)

    @field_validator("accounts", "exclude_accounts")
    @classmethod
    def _accounts(cls, accounts: list[str] | None) -> list[str] | None:
        problems = [p for p in map(account_problem, accounts or []) if p]
        duplicates = sorted({a for a in accounts or [] if (accounts or []).count(a) > 1})
        if duplicates:
            problems.append(f"{', '.join(duplicates)} listed twice")
        if problems:
            raise ValueError("; ".join(problems))
        return accounts

    @field_validator("organizational_units")
    @classmethod
    def _units(cls, units: list[str] | None) -> list[str] | None:
        bad = [unit for unit in units or [] if not isinstance(unit, str) or not OU_ID_RE.fullmatch(unit)]
        if bad:
            raise ValueError(
                f"not an organizational unit id (ou-<4-32 of a-z0-9>-<8-32 of a-z0-9>): {cut(', '.join(map(shown, bad)))}"
            )
        return units

    @model_validator(mode="before")
    @classmethod
    def _one_selector(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        given = [name for name in ("account", *SELECTORS) if name in data]
        if len(given) != 1:
            raise ValueError(
                f"a destination names exactly one of account, {', '.join(SELECTORS)} "
                f"(here: {', '.join(given) or 'none'})"
            )
        if "accounts" in data and "exclude_accounts" in data:
            raise ValueError(
                "exclude_accounts applies to organizational_units and organization, not to accounts"
            )
        return data

    @property
    def by_organization(self) -> bool:
        """True when the accounts are read from AWS Organizations (organizational units, organization)."""
        return self.accounts is None

    @property
    def role(self) -> str:
        """The destination role's name."""
        if self.role_name is not None:
            return self.role_name
        return FLEET_ROLE_NAME if self.by_organization else DEFAULT_ROLE_NAME

    def selector(self) -> str:
        """What the destination names, as a person reads it."""
        if self.organization:
            return "the organization"
        if self.organizational_units:
            return f"organizational unit(s) {', '.join(self.organizational_units)} (nested OUs included)"
        return f"accounts {', '.join(self.accounts or [])}"

    def for_account(self, account: str) -> DestinationConfig:
        """This destination's Regions, role and repository template, in one account."""
        return DestinationConfig(
            account=account,
            regions=self.regions,
            role_name=self.role,
            repository=self.repository,
            external_id=self.external_id,
        )


def _destination_kind(value: Any) -> str:
    """`by-account` for one `account`, `by-selector` for accounts, organizational units or the organization."""
    if isinstance(value, Mapping):
        return "by-account" if "account" in value and not set(SELECTORS) & set(value) else "by-selector"
    return "by-selector" if isinstance(value, FleetDestination) else "by-account"


DESTINATION_TAGS = ("by-account", "by-selector")
Destination = Annotated[
    Annotated[DestinationConfig, Tag("by-account")] | Annotated[FleetDestination, Tag("by-selector")],
    Discriminator(_destination_kind),
]


class Rule(_Strict):
    """Which repositories and tags replicate to which destinations."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    """The rule's name, shown in plans, summaries and metrics (letters, digits, `_.-`; up to 64)."""
    repositories: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    """Source repositories the rule selects: globs, `re:` or `semver:` patterns (default: all)."""
    tags: TagRules
    """Which tags of those repositories replicate."""
    destinations: list[Destination] = Field(min_length=1)
    """Where the images go: each names one `account`, a list of `accounts`, `organizational_units` or the whole
    `organization`, in `regions`."""
    create_repository: RepositorySettings | None = None
    """Create a missing destination repository with these settings; without it, it must exist."""
    gates: Gates | None = None
    """Promotion gates: scan findings and signatures an image must pass before it is copied."""
    propagate_deletes: bool = False
    """Remove a tag deleted at the source from the destinations, where it still points at the same digest."""
    on_tag_conflict: Literal["replace", "refuse"] = "replace"
    """When a destination tag points at another digest: `replace` it (the default), or `refuse` and fail
    that destination with DestinationTagConflict, leaving its image alone."""
    sources: list[str] | None = Field(
        default=None,
        min_length=1,
        description="The sources (`account/region`, each one of the config's sources) whose pushes this rule "
        "replicates; default: every source.",
    )

    _patterns = field_validator("repositories")(_check_patterns)

    @field_validator("sources")
    @classmethod
    def _sources(cls, sources: list[str] | None) -> list[str] | None:
        for name in sources or ():
            account, separator, region = name.partition("/")
            problem = account_problem(account) or region_problem(region)
            if not separator or problem:
                raise ValueError(
                    f"{shown(name)} is not a source account/region (e.g. 111111111111/us-east-1)"
                    + (f": {problem}" if separator and problem else "")
                )
        return sources

    def applies_to(self, source: SourceConfig) -> bool:
        """Whether this rule replicates the pushes of `source`."""
        return self.sources is None or source.name in self.sources

    @cached_property
    def repository_filter(self) -> NameFilter:
        """The compiled repository patterns."""
        return NameFilter.compile(self.repositories)

    @cached_property
    def tag_filter(self) -> NameFilter:
        """The compiled tag patterns."""
        return NameFilter.compile(self.tags.include, self.tags.exclude, self.tags.case_insensitive)

    def indexed_accounts(self) -> Iterator[tuple[int, DestinationConfig]]:
        """(index in `destinations`, destination) of every destination in one named account: `account`, and
        each of `accounts`."""
        for index, destination in enumerate(self.destinations):
            if isinstance(destination, DestinationConfig):
                yield index, destination
            elif not destination.by_organization:
                yield from ((index, destination.for_account(a)) for a in destination.accounts or [])

    @property
    def account_destinations(self) -> list[DestinationConfig]:
        """The destinations in named accounts (what is known without AWS Organizations); after a run's
        resolution (workflow/pipeline/organizations.py), every destination."""
        return [destination for _, destination in self.indexed_accounts()]

    @property
    def organization_destinations(self) -> list[FleetDestination]:
        """The destinations naming organizational units or the organization (resolved when a run plans)."""
        return [d for d in self.destinations if isinstance(d, FleetDestination) and d.by_organization]


class Notifications(_Strict):
    """Who is told, and when."""

    emails: list[str] = Field(default_factory=list)
    """Addresses subscribed to the summary topic (each confirms the subscription once)."""
    on: Literal["failure", "always"] = "failure"
    """When a summary is emailed: `failure` (and blocked releases) or `always`."""
    runbook_url: str | None = Field(default=None, max_length=1024)
    """Where your team reads docs/runbook.md; the email links each failed line's section under it.
    Default: the runbook on GitHub at this version. Each failed line repeats it, so it is bounded (the
    summary keeps links only while its share of the payload quota allows)."""

    @field_validator("runbook_url")
    @classmethod
    def _runbook_url(cls, url: str | None) -> str | None:
        if url is not None and not re.fullmatch(r"https?://[^\s#]+", url):
            raise ValueError(f"not an http(s) URL without a #fragment: {url[:140]!r}")
        return url

    @field_validator("emails")
    @classmethod
    def _emails(cls, emails: list[str]) -> list[str]:
        bad = [e for e in emails if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", e)]
        if bad:
            raise ValueError(f"not an email address: {cut(', '.join(map(repr, bad)))}")
        return emails


class Endpoint(_Strict):
    """A registry endpoint override for one account/Region (local runtime and tests)."""

    account: str
    """The account id whose registry this endpoint replaces."""
    region: str
    """The Region whose registry this endpoint replaces."""
    registry: str
    """The registry `host[:port]` to use instead of ECR (local runtime and tests)."""
    insecure: bool = False
    """Speak plain HTTP to it (loopback test registries only)."""

    _account = field_validator("account")(lambda v: _check(account_problem(v), v))
    _region = field_validator("region")(lambda v: _check(region_problem(v), v))

    @field_validator("registry")
    @classmethod
    def _registry(cls, registry: str) -> str:
        match = REGISTRY_RE.fullmatch(registry)
        if not match or not 1 <= int(match["port"] or 443) <= 65535:
            raise ValueError(f"{shown(registry)} is not a registry host[:port] (port 1-65535)")
        return registry


# An IAM role or user ARN whose name may hold IAM's wildcards (`*`, `?`): the trust policy matches
# aws:PrincipalArn with ArnLike (IAM User Guide, "IAM JSON policy elements: Condition operators", ARN).
PRINCIPAL_PATTERN_RE = re.compile(
    r"arn:(?P<partition>[a-z-]+):iam::(?P<account>[0-9]{12}):(?:role|user)/[\w+=,.@/*?-]{1,512}", re.ASCII
)
DEFAULT_READER_ROLE = "ecr-replication-reader"
STATE_MACHINE_ARN_RE = re.compile(
    r"arn:(?P<partition>[a-z-]+):states:(?P<region>[a-z0-9-]+):(?P<account>[0-9]{12}):stateMachine:"
    r"[A-Za-z0-9_-]{1,80}"
)


class Operators(_Strict):
    """People of the source account who run `status`, `sync` and `start` by hand (on-call, platform team).

    Each destination stack then has a read-only role (`role_name`) that trusts these principals, and the
    source stack the managed policies their permission set attaches (docs/deploy.md, "Operators").
    """

    principals: list[str] = Field(min_length=1)
    """IAM role or user ARNs of the source account that may read the destinations; `*` and `?` match as in
    IAM (e.g. an IAM Identity Center permission set's role:
    `arn:aws:iam::111111111111:role/aws-reserved/sso.amazonaws.com/*AWSReservedSSO_EcrOperator_*`)."""
    role_name: str = DEFAULT_READER_ROLE
    """The read-only role each destination stack creates for them (DescribeImages on the rules'
    repositories, nothing else)."""

    @field_validator("principals")
    @classmethod
    def _principals(cls, principals: list[str]) -> list[str]:
        bad = [p for p in principals if not PRINCIPAL_PATTERN_RE.fullmatch(p)]
        if bad:
            raise ValueError(
                f"not an IAM role or user ARN (pattern): {cut(', '.join(map(repr, bad)))}; e.g. "
                "arn:aws:iam::111111111111:role/aws-reserved/sso.amazonaws.com/*AWSReservedSSO_EcrOperator_*"
            )
        return principals

    _role_name = field_validator("role_name")(lambda v: _check_role_name(v))


class ReplicationConfig(_Strict):
    """The whole replication config."""

    given_source: SourceConfig | None = Field(
        default=None, alias="source", description="The one source: the same as `sources` with one entry."
    )
    given_sources: list[SourceConfig] | None = Field(
        default=None,
        alias="sources",
        min_length=1,
        max_length=MAX_SOURCES,
        description="Every account and Region whose pushes replicate; the first (or the one marked home) is "
        "where the source stack is deployed, the others forward their push events to it.",
    )
    rules: list[Rule] = Field(min_length=1)
    """Which repositories and tags replicate where; at least one rule."""
    notifications: Notifications = Field(default_factory=Notifications)
    """Who is emailed the summaries, and when. Without emails no one is told of a failed run."""
    max_concurrency: int = Field(default=4, ge=1, le=40)
    """Destinations copied at once per image (1-40)."""
    operators: Operators | None = None
    """People who run `status`, `sync` and `start` by hand, reading the destinations through a read-only
    role (optional)."""
    state_machine_arn: str | None = None
    """The deployed state machine (source stack output `StateMachineArn`), so `start` and `sync` need no
    `--state-machine-arn` (`$ECR_REPLICATE_STATE_MACHINE_ARN` overrides it)."""
    endpoints: list[Endpoint] = Field(default_factory=list)
    """Registry endpoints that replace ECR for an account/Region (the local runtime and its tests)."""
    regional_seeds: bool = False
    """One copy across Regions per Region: with several destinations in one Region, the first (its seed) is
    copied from the source, the others inside the Region from the seed by a relay function deployed in that
    Region (README, "One copy across Regions per Region"); each falls back to the source if that fails."""

    @field_validator("state_machine_arn")
    @classmethod
    def _state_machine_arn(cls, arn: str | None) -> str | None:
        if arn is not None and not STATE_MACHINE_ARN_RE.fullmatch(arn):
            raise ValueError(
                f"{shown(arn)} is not a state machine ARN (arn:aws:states:<region>:<account>:stateMachine:<name>)"
            )
        return arn

    def warnings(self) -> list[str]:
        """What is valid but probably not meant, one line each."""
        if self.notifications.emails:
            return []
        return [
            "notifications: no emails: no one is emailed when a run fails or a release is blocked (add "
            "notifications.emails, or deploy with -c emails=...)"
        ]

    @property
    def sources(self) -> tuple[SourceConfig, ...]:
        """Every source, in the config's order."""
        if self.given_sources:
            return tuple(self.given_sources)
        return (self.given_source,) if self.given_source else ()

    @property
    def source(self) -> SourceConfig:
        """The home source: where the source stack (the workflow, its roles and its trigger) is deployed."""
        return next((s for s in self.sources if s.home), self.sources[0])

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy; `source` or `sources` in `update` replace the config's sources, as in a config file."""
        changes = dict(update or {})
        if "source" in changes:
            changes.update(given_source=changes.pop("source"), given_sources=None)
        if "sources" in changes:
            changes.update(given_sources=list(changes.pop("sources")), given_source=None)
        return super().model_copy(update=changes, deep=deep)

    def source_named(self, account: str, region: str) -> SourceConfig | None:
        """The configured source in `account`/`region`, if there is one."""
        return next((s for s in self.sources if (s.account, s.region) == (account, region)), None)

    def rules_for(self, source: SourceConfig) -> list[Rule]:
        """The rules that replicate the pushes of `source`."""
        return [rule for rule in self.rules if rule.applies_to(source)]

    def source_role_arn(self, source: SourceConfig) -> str | None:
        """The read-only role the home roles assume to read a source in another account (its forwarding
        stack deploys it there); None for a source in the home account, which the home roles read directly."""
        if source.account == self.source.account:
            return None
        return partition_of(source.region).role_arn(source.account, SOURCE_ACCESS_ROLE_NAME)

    @model_validator(mode="after")
    def _semantics(self) -> ReplicationConfig:
        problems = _source_problems(self)
        if not problems:
            problems = [
                *_source_partitions(self),
                *_rule_sources(self),
                *self._duplicate_rule_names(),
                *self._duplicate_destinations(),
                *self._loops(),
                *self._too_many_destinations(),
                *self._external_id_disagreements(),
                *self._kms_keys(),
                *self._partitions(),
                *self._source_owned(),
                *_fleet_problems(self),
            ]
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def _duplicate_rule_names(self) -> list[str]:
        seen: set[str] = set()
        problems = []
        for index, rule in enumerate(self.rules):
            if rule.name in seen:
                problems.append(f"rules[{index}].name: duplicate rule name {rule.name!r}")
            seen.add(rule.name)
        return problems

    def _duplicate_destinations(self) -> list[str]:
        problems = []
        for index, rule in enumerate(self.rules):
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

    def destination_count(self) -> int:
        """Destinations (account, Region, repository) over all rules, in named accounts (resolved organization
        destinations included, after a run's resolution)."""
        return len(
            {
                (d.account, region, d.repository)
                for rule in self.rules
                for d in rule.account_destinations
                for region in d.regions
            }
        )

    def _too_many_destinations(self) -> list[str]:
        count = self.destination_count()
        return [] if count <= MAX_DESTINATIONS else [too_many_destinations(count)]

    def _external_id_disagreements(self) -> list[str]:
        """A destination role's trust policy requires an ExternalId of every assumer, or of none."""
        first: dict[tuple[str, str], tuple[str, DestinationConfig]] = {}
        problems = []
        for index, rule in enumerate(self.rules):
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

    def _kms_keys(self) -> list[str]:
        return [
            f"rules[{index}].create_repository.kms_key: {shown(create.kms_key)} is not a KMS key ARN or "
            "key id (the destination role is granted on the key, which IAM cannot name by alias)"
            for index, rule in enumerate(self.rules)
            if (create := rule.create_repository) is not None
            and create.kms_key is not None
            and not (KEY_ARN_RE.fullmatch(create.kms_key) or KEY_ID_RE.fullmatch(create.kms_key))
        ]

    def _partitions(self) -> list[str]:
        """Partition, Region and account agree: one partition per account, credentials where (and only
        where) the destination's partition is not the source's, secrets and keys in the source account."""
        source = partition_of(self.source.region).name
        problems: list[str] = []
        accounts: dict[str, tuple[str, str]] = {}
        for index, rule in enumerate(self.rules):
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
                problems.extend(self._credentials_problems(path, destination, partition, source))
        return problems

    def _credentials_problems(
        self, path: str, destination: DestinationConfig, partition: str, source: str
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
            if (arn_partition, account) != (source, self.source.account) or region_problem(region):
                problems.append(
                    f"{path}.credentials.secret: {shown(credentials.secret)} is not a secret of the source "
                    f"account ({source}, {self.source.account}, a Region of {source})"
                )
            elif partition_of(region).name != source:
                problems.append(f"{path}.credentials.secret: Region {region} is not in {source}")
        if credentials.kms_key and KEY_ARN_RE.fullmatch(credentials.kms_key):
            _, key_partition, _, key_region, key_account, _ = credentials.kms_key.split(":")
            if (key_partition, key_account, key_region) != (
                source,
                self.source.account,
                credentials.secret_region(self.source),
            ):
                problems.append(
                    f"{path}.credentials.kms_key: {shown(credentials.kms_key)} is not a key of the source "
                    f"account in the secret's Region ({source}, {self.source.account}, "
                    f"{credentials.secret_region(self.source)})"
                )
        return problems

    def _source_owned(self) -> list[str]:
        """Operators and the state machine belong to the source account, Region and partition."""
        source, partition = self.source, partition_of(self.source.region).name
        problems = []
        for index, principal in enumerate(self.operators.principals if self.operators else ()):
            match = PRINCIPAL_PATTERN_RE.fullmatch(principal)
            if match and (match["partition"], match["account"]) != (partition, source.account):
                problems.append(
                    f"operators.principals[{index}]: {shown(principal)} is not a principal of the source "
                    f"account ({partition}, {source.account}); the destination's read-only role trusts "
                    "people of the source account only"
                )
        roles = {d.role_name for rule in self.rules for d in rule.destinations}
        if self.operators is not None and self.operators.role_name in roles:
            problems.append(
                f"operators.role_name: {self.operators.role_name!r} is a destination's role_name; the operators' "
                "read-only role needs a name of its own"
            )
        match = STATE_MACHINE_ARN_RE.fullmatch(self.state_machine_arn or "")
        if match and (match["partition"], match["region"], match["account"]) != (
            partition,
            source.region,
            source.account,
        ):
            problems.append(
                f"state_machine_arn: {shown(self.state_machine_arn)} is not in the source account and Region "
                f"({source.account}, {source.region})"
            )
        return problems

    def _loops(self) -> list[str]:
        """A destination in a source's account and Region whose copies a rule could select again: each tag the
        product puts there is an ECR push event on that source's bus, which reaches the workflow as every
        source's push does (workflow/models/loops.py)."""
        problems = []
        for index, rule in enumerate(self.rules):
            for d_index, destination in rule.indexed_accounts():
                for region in destination.regions:
                    place = self.source_named(destination.account, region)
                    if place is None:
                        continue
                    loop = loops.selected_again(destination.repository, rule, self.rules_for(place))
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

    def organization_destinations(self) -> Iterator[tuple[str, FleetDestination]]:
        """(path, destination) of every destination naming organizational units or the organization."""
        for index, rule in enumerate(self.rules):
            for d_index, destination in enumerate(rule.destinations):
                if isinstance(destination, FleetDestination) and destination.by_organization:
                    yield f"rules[{index}].destinations[{d_index}]", destination

    def endpoint(self, account: str, region: str) -> tuple[str, bool]:
        """The registry host of an account/Region and whether it is plain HTTP."""
        for endpoint in self.endpoints:
            if endpoint.account == account and endpoint.region == region:
                return endpoint.registry, endpoint.insecure
        return partition_of(region).ecr_registry(account, region), False

    def summary_line(self) -> str:
        """One line: rules, destinations, Regions, and the organization destinations resolved when a run plans."""
        destinations = {
            (d.account, r) for rule in self.rules for d in rule.account_destinations for r in d.regions
        }
        accounts = {account for account, _ in destinations}
        fleet = [destination.selector() for _, destination in self.organization_destinations()]
        resolved = (
            f", and {len(fleet)} resolved when a run plans ({'; '.join(dict.fromkeys(fleet))})"
            if fleet
            else ""
        )
        others = f" and {len(self.sources) - 1} more source(s)" if len(self.sources) > 1 else ""
        return (
            f"{len(self.rules)} rule(s) ({', '.join(r.name for r in self.rules)}), "
            f"{len(destinations)} destination(s) in {len(accounts)} account(s){resolved}, "
            f"source {self.source.account}/{self.source.region}{others}"
        )


def _fleet_problems(config: ReplicationConfig) -> list[str]:
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


def _source_problems(config: ReplicationConfig) -> list[str]:
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


def _source_partitions(config: ReplicationConfig) -> list[str]:
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


def _rule_sources(config: ReplicationConfig) -> list[str]:
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


class _ConfigLoader(yaml.SafeLoader):
    """YAML as the config reads it: `on`, `off`, `yes` and `no` stay strings (as in YAML 1.2), and a
    key given twice in one mapping is an error naming both lines."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if isinstance(key, str | int | float | bool) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {shown(key)} on line {line} (first on line {seen[key]})", None
                )
            if isinstance(key, str | int | float | bool):
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


_ConfigLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's members; a key given twice is an error."""
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise ValueError(f"duplicate key {shown(key)}")
        data[key] = value
    return data


def too_many_destinations(count: int) -> str:
    """The problem of a config (or an organization's accounts) with more destinations than one run carries."""
    return (
        f"rules: {count} destinations (account, Region, repository) in all; at most {MAX_DESTINATIONS} per image "
        "(the largest fan-out measured: README, 'A fleet of destinations')"
    )


def _format_location(location: tuple[int | str, ...]) -> str:
    path = ""
    for part in location:
        if part in DESTINATION_TAGS:
            continue
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            name = cut(str(part), 64)
            path += f".{name}" if path else name
    return path or "(root)"


SEMANTIC_PREFIXES = ("rules", "source", "notifications", "operators", "state_machine_arn")


def _model_at(location: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The config model a location (without its last part) names, following fields, lists and optionals."""
    model: type[BaseModel] | None = ReplicationConfig
    for part in location:
        if part in DESTINATION_TAGS:  # the discriminated union's choice (`Destination`)
            model = DestinationConfig if part == "by-account" else FleetDestination
            continue
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        model = _model_of(field.annotation)
    return model


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in get_args(annotation):
        found = _model_of(argument)
        if found is not None:
            return found
    return None


def _unknown_field(location: tuple[int | str, ...]) -> str:
    """ "unknown field", with the closest known field's name, or the known fields when none is close."""
    model = _model_at(location[:-1])
    if model is None or not location or len(str(location[-1])) > 64:  # no field name is that long
        return "unknown field"
    known = list(model.model_fields)
    close = difflib.get_close_matches(str(location[-1]), known, n=1, cutoff=0.6)
    if close:
        return f"unknown field; did you mean {close[0]!r}?"
    return f"unknown field (fields here: {', '.join(known)})"


def _problems(error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors():
        location = tuple(part for part in item["loc"] if not str(part).startswith("function-"))
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = _unknown_field(location)
        elif item["type"] == "missing":
            message = "required field is missing"
        elif item["type"] == "string_type" and type(item.get("input")) in (int, float):
            message += (
                ' (YAML read a number here: quote it, e.g. "012345678901"; unquoted, leading zeros are lost)'
            )
        for line in message.split("\n"):
            prefixed = line if line.startswith(SEMANTIC_PREFIXES) else None
            problems.append(prefixed or f"{_format_location(location)}: {line}")
    return problems


def parse_config(data: Mapping[str, Any]) -> ReplicationConfig:
    """Validate a config mapping; raises InvalidConfig listing every problem."""
    if not isinstance(data, Mapping):
        raise InvalidConfig([f"(root): expected a mapping, got {type(data).__name__}"])
    try:
        return ReplicationConfig.model_validate(data, strict=True)
    except ValidationError as error:
        raise InvalidConfig(_problems(error)) from None


def load_config(path: str | Path) -> ReplicationConfig:
    """Load and validate a YAML or JSON config file; raises InvalidConfig."""
    return parse_config(read_config(path))


def read_config(path: str | Path) -> Any:
    """The data of a YAML or JSON config file, read as `load_config` reads it (not validated); raises
    InvalidConfig when it cannot be read or parsed."""
    path = Path(path)
    kind = "JSON" if path.suffix == ".json" else "YAML"
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as error:
        raise InvalidConfig([f"{path}: cannot read: {error.strerror}"]) from None
    except UnicodeDecodeError as error:
        raise InvalidConfig([f"{path}: not UTF-8 text (byte {error.start}: {error.reason})"]) from None
    try:
        return _parse_text(text, kind)
    except (json.JSONDecodeError, yaml.YAMLError, ValueError, RecursionError) as error:
        reason = "nested too deeply to parse" if isinstance(error, RecursionError) else error
        raise InvalidConfig([f"{path}: not valid {kind}: {cut(str(reason), 400)}"]) from None


def _parse_text(text: str, kind: str) -> Any:
    if kind == "JSON":
        return json.loads(text, object_pairs_hook=_unique_keys)
    return yaml.load(text, Loader=_ConfigLoader)  # noqa: S506 - a SafeLoader subclass
