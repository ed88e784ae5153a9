"""Replication config (YAML or JSON) -> validated model. Every problem is reported at once, with its path."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from workflow.exceptions import InvalidConfig
from workflow.gates.policy import Gates
from workflow.grammar import account_problem, ecr_registry_host, region_problem, repository_problem, shown
from workflow.models import RepositorySettings
from workflow.rules import NameFilter, compile_pattern

DEFAULT_ROLE_NAME = "ecr-replication-target"
REPOSITORY_PLACEHOLDER = "{repository}"
TEMPLATE_SAMPLE = "sample/repository"
MAX_DESTINATIONS = 100  # targets one image can fan out to, over all rules


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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


class SourceConfig(_Strict):
    """Where images are pushed: the account and Region the source stack is deployed in."""

    account: str
    region: str

    _account = field_validator("account")(lambda v: _check(account_problem(v), v))
    _region = field_validator("region")(lambda v: _check(region_problem(v), v))


class TagRules(_Strict):
    """Tag patterns; an exclude wins over an include."""

    include: list[str] = Field(min_length=1)
    exclude: list[str] = Field(default_factory=list)

    _patterns = field_validator("include", "exclude")(_check_patterns)


class DestinationConfig(_Strict):
    """One destination account, in one or more Regions."""

    account: str
    regions: list[str] = Field(min_length=1)
    role_name: str = DEFAULT_ROLE_NAME
    repository: str = REPOSITORY_PLACEHOLDER
    external_id: str | None = None

    _account = field_validator("account")(lambda v: _check(account_problem(v), v))

    @field_validator("regions")
    @classmethod
    def _regions(cls, regions: list[str]) -> list[str]:
        problems = [p for p in map(region_problem, regions) if p]
        if problems:
            raise ValueError("; ".join(problems))
        return regions

    @field_validator("role_name")
    @classmethod
    def _role_name(cls, role_name: str) -> str:
        if not re.fullmatch(r"[\w+=,.@-]{1,64}", role_name):
            raise ValueError(f"{role_name!r} is not a valid IAM role name")
        return role_name

    @field_validator("external_id")
    @classmethod
    def _external_id(cls, external_id: str | None) -> str | None:
        if external_id is not None and not re.fullmatch(r"[\w+=,.@:/-]{2,1224}", external_id, re.ASCII):
            raise ValueError(
                f"{shown(external_id)} is not a valid ExternalId "
                "(2 to 1224 characters of letters, digits and _+=,.@:/-)"
            )
        return external_id

    @field_validator("repository")
    @classmethod
    def _template(cls, template: str) -> str:
        try:
            rendered = template.format(repository=TEMPLATE_SAMPLE)
        except (KeyError, IndexError, ValueError):
            raise ValueError(
                f"{template!r} is not a valid repository template (the only placeholder is {{repository}})"
            ) from None
        if repository_problem(rendered):
            raise ValueError(f"{template!r} does not render to a valid ECR repository name")
        return template

    def render_repository(self, source_repository: str) -> str:
        """The destination repository name for a source repository."""
        return self.repository.format(repository=source_repository)


class Rule(_Strict):
    """Which repositories and tags replicate to which destinations."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    repositories: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    tags: TagRules
    destinations: list[DestinationConfig] = Field(min_length=1)
    create_repository: RepositorySettings | None = None
    gates: Gates | None = None

    _patterns = field_validator("repositories")(_check_patterns)

    @cached_property
    def repository_filter(self) -> NameFilter:
        """The compiled repository patterns."""
        return NameFilter.compile(self.repositories)

    @cached_property
    def tag_filter(self) -> NameFilter:
        """The compiled tag patterns."""
        return NameFilter.compile(self.tags.include, self.tags.exclude)


class Notifications(_Strict):
    """Who is told, and when."""

    emails: list[str] = Field(default_factory=list)
    on: Literal["failure", "always"] = "failure"
    # Where the team reads docs/runbook.md (e.g. its page in the team's Git host); the email links each
    # failed line's section under it. Default: the runbook's path in the repository.
    runbook_url: str | None = None

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
            raise ValueError(f"not an email address: {', '.join(map(repr, bad))}")
        return emails


class Endpoint(_Strict):
    """A registry endpoint override for one account/Region (local runtime and tests)."""

    account: str
    region: str
    registry: str
    insecure: bool = False


class ReplicationConfig(_Strict):
    """The whole replication config."""

    source: SourceConfig
    rules: list[Rule] = Field(min_length=1)
    notifications: Notifications = Field(default_factory=Notifications)
    max_concurrency: int = Field(default=4, ge=1, le=40)
    endpoints: list[Endpoint] = Field(default_factory=list)

    @model_validator(mode="after")
    def _semantics(self) -> ReplicationConfig:
        problems = [
            *self._duplicate_rule_names(),
            *self._duplicate_destinations(),
            *self._loops(),
            *self._too_many_destinations(),
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
            for d_index, destination in enumerate(rule.destinations):
                for region in destination.regions:
                    key = (destination.account, region, destination.repository)
                    if key in seen:
                        problems.append(
                            f"rules[{index}].destinations[{d_index}]: duplicate destination "
                            f"{destination.account}/{region} (already in destinations[{seen[key]}])"
                        )
                    seen.setdefault(key, d_index)
        return problems

    def _too_many_destinations(self) -> list[str]:
        targets = {
            (d.account, region, d.repository)
            for rule in self.rules
            for d in rule.destinations
            for region in d.regions
        }
        if len(targets) <= MAX_DESTINATIONS:
            return []
        return [
            f"rules: {len(targets)} destinations (account, Region, repository) in all; at most "
            f"{MAX_DESTINATIONS}, so that one execution's state stays under Step Functions' 256 KiB limit"
        ]

    def _loops(self) -> list[str]:
        problems = []
        for index, rule in enumerate(self.rules):
            for d_index, destination in enumerate(rule.destinations):
                same_place = (
                    destination.account == self.source.account and self.source.region in destination.regions
                )
                if same_place and destination.repository == REPOSITORY_PLACEHOLDER:
                    problems.append(
                        f"rules[{index}].destinations[{d_index}]: {destination.account}/{self.source.region} "
                        "with repository '{repository}' is the source itself (a replication loop)"
                    )
        return problems

    def endpoint(self, account: str, region: str) -> tuple[str, bool]:
        """The registry host of an account/Region and whether it is plain HTTP."""
        for endpoint in self.endpoints:
            if endpoint.account == account and endpoint.region == region:
                return endpoint.registry, endpoint.insecure
        return ecr_registry_host(account, region), False

    def summary_line(self) -> str:
        """One line: rules, destinations, Regions."""
        destinations = {(d.account, r) for rule in self.rules for d in rule.destinations for r in d.regions}
        accounts = {account for account, _ in destinations}
        return (
            f"{len(self.rules)} rule(s) ({', '.join(r.name for r in self.rules)}), "
            f"{len(destinations)} destination(s) in {len(accounts)} account(s), "
            f"source {self.source.account}/{self.source.region}"
        )


class _Yaml12BoolLoader(yaml.SafeLoader):
    """YAML 1.1 reads `on`, `off`, `yes` and `no` as booleans; keep them strings (as in YAML 1.2)."""


_Yaml12BoolLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12BoolLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _format_location(location: tuple[int | str, ...]) -> str:
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "(root)"


def _problems(error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors():
        location = tuple(part for part in item["loc"] if not str(part).startswith("function-"))
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field"
        elif item["type"] == "missing":
            message = "required field is missing"
        elif item["type"] == "string_type" and type(item.get("input")) in (int, float):
            message += (
                ' (YAML read a number here: quote it, e.g. "012345678901"; unquoted, leading zeros are lost)'
            )
        for line in message.split("\n"):
            prefixed = line if line.startswith(("rules", "source", "notifications")) else None
            problems.append(prefixed or f"{_format_location(location)}: {line}")
    return problems


def parse_config(data: Mapping[str, Any]) -> ReplicationConfig:
    """Validate a config mapping; raises InvalidConfig listing every problem."""
    if not isinstance(data, Mapping):
        raise InvalidConfig([f"(root): expected a mapping, got {type(data).__name__}"])
    try:
        return ReplicationConfig.model_validate(data)
    except ValidationError as error:
        raise InvalidConfig(_problems(error)) from None


def load_config(path: str | Path) -> ReplicationConfig:
    """Load and validate a YAML or JSON config file; raises InvalidConfig."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise InvalidConfig([f"{path}: cannot read: {error.strerror}"]) from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.load(text, Loader=_Yaml12BoolLoader)  # noqa: S506 - a SafeLoader subclass
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise InvalidConfig(
            [f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {error}"]
        ) from None
    return parse_config(data)
