"""Replication config (YAML or JSON) -> validated model. Every problem is reported at once, with its path.

The model is made of `config_parts` (each checking its own fields) and checked across them by `config_checks`;
the names other modules use are importable from here."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Self, get_args

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from workflow.core.exceptions import InvalidConfig
from workflow.core.grammar import cut, shown
from workflow.core.partitions import partition_of
from workflow.models import config_checks
from workflow.models.config_checks import MAX_DESTINATIONS as MAX_DESTINATIONS
from workflow.models.config_checks import too_many_destinations as too_many_destinations
from workflow.models.config_parts import DEFAULT_ROLE_NAME as DEFAULT_ROLE_NAME
from workflow.models.config_parts import (
    DESTINATION_TAGS,
    STATE_MACHINE_ARN_RE,
    DestinationConfig,
    Endpoint,
    FleetDestination,
    Notifications,
    Operators,
    Rule,
    SourceConfig,
    _Strict,
)
from workflow.models.config_parts import FLEET_ROLE_NAME as FLEET_ROLE_NAME
from workflow.models.config_parts import KEY_ARN_RE as KEY_ARN_RE
from workflow.models.config_parts import REPOSITORY_PLACEHOLDER as REPOSITORY_PLACEHOLDER

# Sources of one config: each other one is a forwarding stack, and the home bus policy names each other account
# (an event bus policy is at most 10 KB: AWS::Events::EventBusPolicy).
MAX_SOURCES = 50
# The read-only role the forwarding stack deploys in a source account other than the home one; the home roles
# (copy, precheck, gate, reconcile) assume it to read that account's repositories.
SOURCE_ACCESS_ROLE_NAME = "ecr-replication-source-access"


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
        """The checks across the parts (`config_checks`), once every field is valid."""
        problems = config_checks.problems_of(self)
        if problems:
            raise ValueError("\n".join(problems))
        return self

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
