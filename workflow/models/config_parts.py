"""The parts a replication config is made of (pydantic models): its sources, rules and their destinations,
notifications, endpoints and operators, each checking its own fields. The whole config, and the checks across
them, are `config` and `config_checks`."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from workflow.core.grammar import account_problem, cut, region_problem, repository_problem, shown
from workflow.core.partitions import SUPPORTED, partition_of
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
# An organizational unit id (Organizations API reference, OrganizationalUnit `Id`,
# https://docs.aws.amazon.com/organizations/latest/APIReference/API_OrganizationalUnit.html); the root id
# (`organization_root_id`) is a deploy setting, checked by infra/settings.py.
OU_ID_RE = re.compile(r"ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}")
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
