"""Organization destinations -> accounts, read from AWS Organizations when a run plans.

A destination naming `organizational_units` (nested OUs included) or the whole `organization` is resolved into
one destination per active account, so the Plan, the sync and `status` work on named accounts only:
- an organizational unit: `ListAccountsForParent` and `ListChildren` (child OUs), each paginated, down the tree;
- the organization: `ListAccounts`, paginated;
- the management account (`DescribeOrganization`): service-managed StackSets never deploy the fleet role there
  ("Create a stack set with service-managed permissions", CloudFormation user guide), so it is skipped.
Only accounts whose `State` (else the older `Status`) is ACTIVE receive images; suspended, closing, closed and
not-yet-active accounts are skipped, as are `exclude_accounts`, each with its reason in the plan.

The source account reads Organizations through the management account's resource-based delegation policy
("Delegated administrator for AWS Organizations", Organizations user guide; docs/deploy.md gives the policy).
Organizations throttles its API per account and answers TooManyRequestsException past its rate ("Quotas and
service limits for AWS Organizations", section "Throttling limits",
https://docs.aws.amazon.com/organizations/latest/userguide/orgs_reference_limits.html): every answer is cached
in the directory's memory for CACHE_TTL_SECONDS, at most CACHE_MAX_ENTRIES of them (the Plan Lambda keeps one
directory per warm container, so a busy CI account asks at most once per OU per container per TTL; nothing is
shared between containers), and a throttled call is retried by botocore (standard mode, ORGANIZATIONS_ATTEMPTS).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from cachetools import TTLCache

from workflow.core.exceptions import OrganizationLookupFailed, TooManyDestinations
from workflow.core.grammar import ACCOUNT_RE, shown
from workflow.models.config import (
    MAX_DESTINATIONS,
    DestinationConfig,
    FleetDestination,
    ReplicationConfig,
    Rule,
    too_many_destinations,
)
from workflow.models.payloads import Plan

CACHE_TTL_SECONDS = 300
CACHE_MAX_ENTRIES = 64
ORGANIZATIONS_ATTEMPTS = 8
BOTO_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": ORGANIZATIONS_ATTEMPTS}, user_agent_extra="ecr-replicate"
)
# Organizations quota: at most 1,000 OUs in an organization, nested at most 5 deep ("Quotas and service limits
# for AWS Organizations"); a walk that meets more stops with OrganizationLookupFailed rather than loop.
MAX_UNITS = 1000
ACTIVE = "ACTIVE"
STATES = {
    "SUSPENDED": "suspended",
    "PENDING_CLOSURE": "closing",
    "CLOSED": "closed",
    "PENDING_ACTIVATION": "not active yet",
}
# The plan lists at most this many skipped accounts, then how many more.
SKIPPED_SHOWN = 20
HINTS = {
    "AccessDeniedException": "the management account has not delegated this read to the source account, or this "
    "role may not call it: apply the delegation policy (docs/deploy.md, 'Destinations by organization')",
    "AWSOrganizationsNotInUseException": "the source account is in no organization",
    "ParentNotFoundException": "no such organizational unit in this organization",
    "TooManyRequestsException": f"Organizations throttled the source account past {ORGANIZATIONS_ATTEMPTS} attempts",
}


@dataclass(frozen=True)
class Member:
    """An account of the organization, and its state (`State`, else the older `Status`)."""

    account: str
    state: str


class OrganizationDirectory:
    """The accounts of organizational units and of the organization, read through an injected Organizations
    client and cached (TTL and size bounded; `clock` for tests)."""

    def __init__(
        self,
        client: Any,
        *,
        ttl: float = CACHE_TTL_SECONDS,
        max_entries: int = CACHE_MAX_ENTRIES,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.client = client
        self._lock = threading.Lock()
        self._cache: TTLCache[tuple[str, str], Any] = (
            TTLCache(max_entries, ttl, timer=clock) if clock else TTLCache(max_entries, ttl)
        )

    def _cached(self, key: tuple[str, str], read: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        value = read()
        with self._lock:
            self._cache[key] = value
        return value

    def accounts_under(self, unit: str) -> tuple[Member, ...]:
        """Every account of `unit` and of the OUs nested in it."""
        return tuple(self._cached(("unit", unit), lambda: tuple(self._walk(unit))))

    def all_accounts(self) -> tuple[Member, ...]:
        """Every account of the organization."""
        return tuple(self._cached(("organization", ""), lambda: tuple(self._members("list_accounts", {}))))

    def management_account(self) -> str:
        """The organization's management account."""
        answer = self._cached(
            ("management", ""), lambda: self._call("describe_organization", {}, "organization")
        )
        return str(answer["Organization"]["MasterAccountId"])

    def _walk(self, unit: str) -> Iterator[Member]:
        parents, seen = [unit], {unit}
        while parents:
            parent = parents.pop(0)
            yield from self._members("list_accounts_for_parent", {"ParentId": parent})
            for page in self._pages(
                "list_children", {"ParentId": parent, "ChildType": "ORGANIZATIONAL_UNIT"}
            ):
                for child in page.get("Children", []):
                    if child["Id"] not in seen:
                        seen.add(child["Id"])
                        parents.append(child["Id"])
            if len(seen) > MAX_UNITS:
                raise OrganizationLookupFailed(
                    f"{unit} holds more than {MAX_UNITS} organizational units, more than an organization may"
                )

    def _members(self, operation: str, request: dict[str, str]) -> Iterator[Member]:
        for page in self._pages(operation, request):
            for account in page.get("Accounts", []):
                identifier = account.get("Id")
                if not isinstance(identifier, str) or not ACCOUNT_RE.fullmatch(identifier):
                    raise OrganizationLookupFailed(
                        f"organizations:{_action(operation)} answered an account id {shown(identifier)}"
                    )
                yield Member(identifier, str(account.get("State") or account.get("Status") or "UNKNOWN"))

    def _pages(self, operation: str, request: dict[str, str]) -> Iterator[dict[str, Any]]:
        where = request.get("ParentId", "organization")
        try:
            yield from self.client.get_paginator(operation).paginate(**request)
        except ClientError as error:
            raise _failure(operation, where, error) from None
        except BotoCoreError as error:
            raise OrganizationLookupFailed(
                f"organizations:{_action(operation)} on {where}: {type(error).__name__}: {error}"
            ) from None

    def _call(self, operation: str, request: dict[str, str], where: str) -> dict[str, Any]:
        try:
            return dict(getattr(self.client, operation)(**request))
        except ClientError as error:
            raise _failure(operation, where, error) from None
        except BotoCoreError as error:
            raise OrganizationLookupFailed(
                f"organizations:{_action(operation)} on {where}: {type(error).__name__}: {error}"
            ) from None


def _action(operation: str) -> str:
    return "".join(part.capitalize() for part in operation.split("_"))


def _failure(operation: str, where: str, error: ClientError) -> OrganizationLookupFailed:
    details = error.response.get("Error", {})
    code = str(details.get("Code", "ClientError"))
    hint = HINTS.get(code)
    return OrganizationLookupFailed(
        f"organizations:{_action(operation)} on {where}: {code}: {details.get('Message', '')}"
        + (f" ({hint})" if hint else "")
    )


@dataclass(frozen=True)
class Skipped:
    """An account an organization destination names that receives nothing, and why."""

    rule: str
    account: str
    reason: str

    def line(self) -> str:
        """`account: reason (rule R)`."""
        return f"{self.account}: {self.reason} (rule {self.rule})"


@dataclass(frozen=True)
class Resolved:
    """The accounts one organization destination of one rule resolved to."""

    rule: str
    selector: str
    accounts: tuple[str, ...]


@dataclass(frozen=True)
class Resolution:
    """The config with every destination in a named account, what each organization destination resolved to,
    and the accounts skipped."""

    config: ReplicationConfig
    resolved: tuple[Resolved, ...] = ()
    skipped: tuple[Skipped, ...] = ()

    def noted(self, plan: Plan) -> Plan:
        """`plan` with the skipped accounts of the rules that selected its targets (at most SKIPPED_SHOWN)."""
        rules = {rule for target in plan.targets for rule in target.selecting_rules}
        lines = [skipped.line() for skipped in self.skipped if skipped.rule in rules]
        if len(lines) > SKIPPED_SHOWN:
            lines = [*lines[:SKIPPED_SHOWN], f"and {len(lines) - SKIPPED_SHOWN} more accounts skipped"]
        return plan.model_copy(update={"skipped_accounts": lines}) if lines else plan


def needs_organizations(config: ReplicationConfig) -> bool:
    """True when a destination names organizational units or the organization."""
    return any(rule.organization_destinations for rule in config.rules)


def resolve(config: ReplicationConfig, directory: OrganizationDirectory | None) -> Resolution:
    """`config` with its organization destinations resolved into named accounts.

    A destination already named (explicitly, or by an earlier organization destination of the rule) is not
    repeated. Raises OrganizationLookupFailed when Organizations cannot be read (or no `directory` is given),
    TooManyDestinations when the accounts resolved make more destinations than one execution carries.
    """
    if not needs_organizations(config):
        return Resolution(config)
    if directory is None:
        raise OrganizationLookupFailed(
            "organization destinations need AWS Organizations read access to resolve"
        )
    management = directory.management_account()
    rules, resolved, skipped = [], [], []
    for rule in config.rules:
        resolver = _RuleResolver(rule, directory, management)
        rules.append(resolver.rule())
        resolved.extend(resolver.resolved)
        skipped.extend(resolver.skipped)
    resolved_config = config.model_copy(update={"rules": rules})
    count = resolved_config.destination_count()
    if count > MAX_DESTINATIONS:
        raise TooManyDestinations(
            f"{too_many_destinations(count)}, once the organization destinations are resolved"
        )
    return Resolution(resolved_config, tuple(resolved), tuple(dict.fromkeys(skipped)))


class _RuleResolver:
    """One rule's destinations: its named accounts, then each organization destination's active accounts."""

    def __init__(self, rule: Rule, directory: OrganizationDirectory, management: str) -> None:
        self.source_rule = rule
        self.directory = directory
        self.management = management
        self.destinations = rule.account_destinations
        self.named = {(d.account, r, d.repository) for d in self.destinations for r in d.regions}
        self.resolved: list[Resolved] = []
        self.skipped: list[Skipped] = []

    def rule(self) -> Rule:
        for destination in self.source_rule.organization_destinations:
            accounts = [self._add(destination, member) for member in self._members(destination)]
            self.resolved.append(
                Resolved(self.source_rule.name, destination.selector(), tuple(a for a in accounts if a))
            )
        return self.source_rule.model_copy(update={"destinations": self.destinations})

    def _members(self, destination: FleetDestination) -> list[Member]:
        if destination.organization:
            return list(self.directory.all_accounts())
        members = [
            m for unit in destination.organizational_units or [] for m in self.directory.accounts_under(unit)
        ]
        return list({member.account: member for member in members}.values())

    def _add(self, destination: FleetDestination, member: Member) -> str | None:
        reason = self._skip_reason(destination, member)
        if reason:
            self.skipped.append(Skipped(self.source_rule.name, member.account, reason))
            return None
        regions = [
            r for r in destination.regions if (member.account, r, destination.repository) not in self.named
        ]
        if regions:
            added: DestinationConfig = destination.for_account(member.account)
            if regions != destination.regions:
                added = added.model_copy(update={"regions": regions})
            self.destinations.append(added)
            self.named.update((member.account, r, destination.repository) for r in regions)
        return member.account

    def _skip_reason(self, destination: FleetDestination, member: Member) -> str | None:
        if member.account in destination.exclude_accounts:
            return "excluded (exclude_accounts)"
        if member.state != ACTIVE:
            return f"{member.state}: the account is {STATES.get(member.state, 'not active')}"
        if member.account == self.management:
            return (
                "the management account: service-managed StackSets do not deploy the fleet role there "
                "(name it with `account:` to replicate to it)"
            )
        return None
