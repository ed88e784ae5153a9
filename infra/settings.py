"""Deploy settings from CDK context: the config file, emails, copy compute, trust conditions."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from infra import naming
from workflow.core.partitions import partition_of
from workflow.models.config import ReplicationConfig, load_config
from workflow.models.forwarding import bus_policy_statements
from workflow.ops.sync.options import SyncOptions

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
# "The permission policy on the event bus cannot exceed 10 KB in size" (AWS::Events::EventBusPolicy; EventBridge
# API reference, PutPermission).
BUS_POLICY_MAX_BYTES = 10 * 1024
DEFAULT_CONFIG = "examples/replication.yaml"
CopyCompute = Literal["lambda", "ec2"]
COPY_COMPUTES: tuple[CopyCompute, ...] = ("lambda", "ec2")
EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
ORGANIZATION_RE = re.compile(r"o-[a-z0-9]{10,32}")
# Organizations API reference, Root `Id`: "r-" and 4 to 32 lowercase letters or digits.
ROOT_RE = re.compile(r"r-[0-9a-z]{4,32}")
# AWS::CloudFormation::StackSet `CallAs`: SELF from the management account, DELEGATED_ADMIN from a member account
# registered as a delegated administrator for StackSets (CloudFormation template reference).
CallAs = Literal["DELEGATED_ADMIN", "SELF"]
CALL_AS: tuple[CallAs, ...] = ("DELEGATED_ADMIN", "SELF")
PREFIX_RE = re.compile(r"[a-z0-9._/-]{0,200}")
DEFAULT_RECONCILE_SCHEDULE = "rate(1 day)"
DEFAULT_RECONCILE_MAX_IN_FLIGHT = SyncOptions.max_in_flight
RATE_RE = re.compile(r"rate\((\d+) (minute|hour|day)(s?)\)")
CRON_RE = re.compile(r"cron\(([^()]+)\)")
# CodeBuild user guide, "Which regions support AWS Lambda compute in CodeBuild?"
# (https://docs.aws.amazon.com/codebuild/latest/userguide/lambda.html#lambda.regions).
LAMBDA_COMPUTE_REGIONS = (
    "ap-northeast-1",
    "ap-south-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "eu-central-1",
    "eu-west-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-2",
)


class SettingsError(ValueError):
    """A context value is invalid; the message names the context key and what is wrong."""


@dataclass(frozen=True)
class DeploySettings:
    """Everything the stacks are built from."""

    config_path: Path
    config: ReplicationConfig
    emails: tuple[str, ...]
    copy_compute: CopyCompute = "lambda"
    organization_id: str | None = None
    reconcile: bool = True
    reconcile_schedule: str = DEFAULT_RECONCILE_SCHEDULE
    reconcile_max_in_flight: int = DEFAULT_RECONCILE_MAX_IN_FLIGHT
    organization_root_id: str | None = None
    stack_set_call_as: CallAs = "DELEGATED_ADMIN"
    fleet_repository_prefix: str | None = None

    def __post_init__(self) -> None:
        self._check_source()
        self._check_fleet()

    def _check_fleet(self) -> None:
        """The StackSet needs the root's id for `organization: true`; a prefix given must cover the fleet."""
        fleet = naming.fleet_destinations(self.config)
        if any(d.organization for d in fleet) and not self.organization_root_id:
            raise SettingsError(
                "context 'organization_root_id': required when a destination names the whole organization (the "
                "StackSet deploys the fleet role to the root: `aws organizations list-roots`), e.g. r-ab12"
            )
        prefix = self.fleet_repository_prefix
        outside = [
            s for s in naming.fleet_repository_starts(self.config) if prefix and not s.startswith(prefix)
        ]
        if outside:
            raise SettingsError(
                f"context 'fleet_repository_prefix': {prefix!r} does not cover the organization destinations' "
                f"repositories {', '.join(map(repr, outside))}: the fleet role could not write them"
            )

    def _check_source(self) -> None:
        region = self.config.source.region
        partition = partition_of(region).name
        if partition != "aws":
            raise SettingsError(
                f"config source.region: {region} is in partition {partition}; the source stack deploys only in "
                "the aws partition (its state machine's service integrations are arn:aws:states ARNs): keep the "
                f"source in aws and name {partition} accounts as destinations with credentials (docs/deploy.md)"
            )
        if self.copy_compute == "lambda" and region not in LAMBDA_COMPUTE_REGIONS:
            raise SettingsError(
                f"context 'copy_compute': CodeBuild Lambda compute is not offered in the source Region {region} "
                f"(only in {', '.join(LAMBDA_COMPUTE_REGIONS)}); deploy with -c copy_compute=ec2"
            )
        size = len(
            json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": bus_policy_statements(self.config, self.organization_id),
                }
            )
        )
        if size > BUS_POLICY_MAX_BYTES:
            raise SettingsError(
                f"config sources: the home bus policy would be {size:,} bytes for "
                f"{len({s.account for s in self.config.sources}) - 1} other source accounts, over EventBridge's "
                f"{BUS_POLICY_MAX_BYTES:,} (an event bus policy is at most 10 KB): gather fewer accounts into one "
                "installation"
            )

    @property
    def repository_prefix(self) -> str:
        """The fleet role's RepositoryPrefix: the context's, else the path the fleet's repositories share."""
        if self.fleet_repository_prefix is not None:
            return self.fleet_repository_prefix
        return naming.fleet_repository_prefix(self.config)

    @property
    def notify_always(self) -> bool:
        """Whether successful runs are notified too."""
        return self.config.notifications.on == "always"


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def parse_emails(value: Any, default: list[str]) -> tuple[str, ...]:
    """A comma-separated `emails` context value (or the config's list), validated."""
    if value is None:
        return tuple(default)
    emails = tuple(e.strip() for e in _text(value).split(",") if e.strip())
    bad = [e for e in emails if not EMAIL_RE.fullmatch(e)]
    if bad:
        raise SettingsError(f"context 'emails': not an email address: {', '.join(map(repr, bad))}")
    return emails


def settings_from_context(get: Any, root: Path = REPOSITORY_ROOT) -> DeploySettings:
    """Build DeploySettings from a context getter (e.g. `app.node.try_get_context`).

    Keys: `config` (path, default examples/replication.yaml, relative to the repository root),
    `emails` (comma list, overrides notifications.emails), `copy_compute` (lambda | ec2),
    `organization_id` (adds an aws:PrincipalOrgID condition to the destination trust policy),
    `reconcile` (true | false: the daily reconciliation schedule is enabled) and
    `reconcile_schedule` (an EventBridge Scheduler `rate(...)` or `cron(...)` expression) and
    `reconcile_max_in_flight` (1-100: a run tops the RUNNING executions up to this many).
    For organization destinations: `organization_root_id` (r-..., required with `organization: true`),
    `stackset_call_as` (DELEGATED_ADMIN | SELF: who deploys the fleet StackSet) and `fleet_repository_prefix`
    (the fleet role's RepositoryPrefix; default: the path the organization destinations' repositories share).
    ExternalIds come from the config's destinations, because the workflow must send them.
    """
    config_path = Path(_text(get("config")) or DEFAULT_CONFIG)
    if not config_path.is_absolute():
        config_path = root / config_path
    config = load_config(config_path)
    compute = _text(get("copy_compute")) or "lambda"
    if compute not in COPY_COMPUTES:
        raise SettingsError(f"context 'copy_compute': {compute!r} is not one of {', '.join(COPY_COMPUTES)}")
    organization_id = _text(get("organization_id")) or None
    if organization_id and not ORGANIZATION_RE.fullmatch(organization_id):
        raise SettingsError(
            f"context 'organization_id': {organization_id!r} is not an organization id (o-...)"
        )
    if _text(get("external_id")):
        raise SettingsError(
            "context 'external_id' is not supported: set external_id on the destination in the config, "
            "so that the workflow sends it when it assumes the destination role"
        )
    schedule = _text(get("reconcile_schedule")) or DEFAULT_RECONCILE_SCHEDULE
    problem = schedule_problem(schedule)
    if problem:
        raise SettingsError(
            f"context 'reconcile_schedule': {schedule!r} is not a schedule expression: {problem} "
            "(e.g. 'rate(1 day)', 'rate(6 hours)' or 'cron(0 3 * * ? *)')"
        )
    root_id = _text(get("organization_root_id")) or None
    if root_id and not ROOT_RE.fullmatch(root_id):
        raise SettingsError(f"context 'organization_root_id': {root_id!r} is not a root id (r-...)")
    call_as = _text(get("stackset_call_as")) or "DELEGATED_ADMIN"
    if call_as not in CALL_AS:
        raise SettingsError(f"context 'stackset_call_as': {call_as!r} is not one of {', '.join(CALL_AS)}")
    prefix = get("fleet_repository_prefix")
    if prefix is not None and not PREFIX_RE.fullmatch(_text(prefix)):
        raise SettingsError(
            f"context 'fleet_repository_prefix': {prefix!r} is not a repository name prefix (0-200 of a-z0-9._/-)"
        )
    return DeploySettings(
        organization_root_id=root_id,
        stack_set_call_as=call_as,
        fleet_repository_prefix=None if prefix is None else _text(prefix),
        reconcile_max_in_flight=_bounded_int(
            "reconcile_max_in_flight", get("reconcile_max_in_flight"), DEFAULT_RECONCILE_MAX_IN_FLIGHT, 1, 100
        ),
        config_path=config_path,
        config=config,
        emails=parse_emails(get("emails"), config.notifications.emails),
        copy_compute=compute,
        organization_id=organization_id,
        reconcile=parse_flag("reconcile", get("reconcile")),
        reconcile_schedule=schedule,
    )


def _bounded_int(key: str, value: Any, default: int, low: int, high: int) -> int:
    text = _text(value)
    if not text:
        return default
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise SettingsError(f"context {key!r}: {text!r} is not a whole number from {low} to {high}")
    return int(text)


def schedule_problem(expression: str) -> str | None:
    """What EventBridge Scheduler would refuse in a `rate(...)` or `cron(...)` expression, if anything."""
    rate = RATE_RE.fullmatch(expression)
    if rate:
        value, unit, plural = int(rate[1]), rate[2], rate[3]
        if value < 1:
            return "the rate must be at least 1"
        if (value == 1) == bool(plural):
            return f"write {value} {unit}{'' if value == 1 else 's'}"
        return None
    cron = CRON_RE.fullmatch(expression)
    if cron:
        fields = len(cron[1].split())
        return None if fields == 6 else f"a cron expression has 6 fields, not {fields}"
    return "expected rate(N minute|minutes|hour|hours|day|days) or cron(<6 fields>)"


def parse_flag(key: str, value: Any) -> bool:
    """A true/false context value (absent: true)."""
    if value is None or isinstance(value, bool):
        return value is not False
    text = _text(value).lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise SettingsError(f"context {key!r}: {value!r} is not true or false")
