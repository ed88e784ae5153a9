"""Backfill and reconciliation: replicate what the rules accept and the destinations lack.

`sync()` works in two phases:
1. Inventory. For each source (or `source` alone), list the repositories its rules (and `repository_glob`)
   select, then each one's
   tagged images; keep the tags the rules accept (`plan()`, exactly as live replication), then decide per
   target from ONE listing per destination repository: "present", "tagged" (the digest is there, the
   tag is not) or "missing". API calls grow with repositories x destinations, never with tags. A
   destination repository that cannot be listed (e.g. its role is not deployed yet) is one failed
   "inventory" action; the other destinations are still repaired. For rules with `propagate_deletes`,
   the destination tags they accept that the source repository lacks are "delete" actions (stale tags,
   `workflow.ops.sync.deletes`). A source image in ECR's archive storage class cannot be pulled: its targets
   that lack it are one "archived" action, skipped (no copy, no failure) until it is restored; an image
   archived at a destination is left alone there (a push would restore it).
2. Repair (skipped with `dry_run`). Put missing tags; for each image with missing destinations start one
   execution (input `{"repository", "tag", "destinations"}`, exactly the missing destinations) under a
   name derived from repository, digest, tag, that destination set and the UTC day of the run, so a
   re-run never starts work that is still running, and work whose executions ended is retried (up to
   `MAX_ATTEMPTS` a day, again on later days: Step Functions keeps names for 90 days); or, with `local`,
   copy directly with the copy engine (execution starts: `workflow.ops.sync.executions`); with `apply_deletes`,
   remove the stale tags under the delete checks. At most `max_in_flight` at once. Without `wait`, executions outlive
   the run, so it tops the state machine's RUNNING executions up to `max_in_flight` (each runs CodeBuild
   jobs, whose concurrency has an account quota) and defers the rest to the next run.

`reconcile()` is the scheduled form: start executions without waiting, and publish to SNS only when it
repaired something or failed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from workflow.core.exceptions import DestinationTagConflict, GateCheckFailed, InvalidRequest, ReplicationError
from workflow.core.redaction import described, redact
from workflow.core.reports import destination_dict
from workflow.models.config import ReplicationConfig, SourceConfig
from workflow.models.payloads import ReplicationRequest, Target
from workflow.models.rules import NameFilter, compile_pattern, tag_matches
from workflow.ops.inventory import (
    AwsClients,
    Decision,
    DestinationInventory,
    Inventories,
    SourceImage,
    SourceInventory,
)
from workflow.ops.sync.actions import Action, ActionKind, ActionStatus
from workflow.ops.sync.deletes import StaleTags
from workflow.ops.sync.executions import ExecutionStarter, execution_name, region_of_arn
from workflow.ops.sync.options import SyncOptions
from workflow.ops.sync.repairs import DirectRepairs
from workflow.pipeline.gate import GateStep, waited_since
from workflow.pipeline.organizations import OrganizationDirectory, needs_organizations, resolve
from workflow.pipeline.plan import plan
from workflow.registry.factory import make_client

ProgressCallback = Callable[[str, int, int], None]
LogCallback = Callable[[str], None]


@dataclass
class SyncReport:
    """Counts and actions of one sync run."""

    dry_run: bool = False
    local: bool = False
    apply_deletes: bool = False
    repositories: int = 0
    examined: int = 0
    not_matching: int = 0
    before_since: int = 0
    present: int = 0
    archived_at_destination: int = 0
    actions: list[Action] = field(default_factory=list)
    # Accounts of organization destinations that receive nothing, each with why.
    skipped_accounts: list[str] = field(default_factory=list)

    def _count(self, kind: ActionKind, status: ActionStatus) -> int:
        return sum(
            len(a.targets) if kind == "tag" else 1
            for a in self.actions
            if a.kind == kind and a.status == status
        )

    @property
    def tagged(self) -> int:
        """Targets tagged (or to tag, in a dry run)."""
        return self._count("tag", "planned" if self.dry_run else "done")

    @property
    def started(self) -> int:
        """Executions started, or copies made with `local` (or planned, in a dry run)."""
        kind: ActionKind = "copy" if self.local else "start"
        return self._count(kind, "planned" if self.dry_run else "done")

    @property
    def already_started(self) -> int:
        """Executions a previous run had already started under the same name."""
        return self._count("start", "already-started")

    @property
    def deferred(self) -> int:
        """Executions not started because `max_in_flight` were running, and images whose scan a gate
        waits for: left for the next run."""
        return self._count("start", "deferred") + self._count("gate", "deferred")

    @property
    def blocked(self) -> int:
        """Targets not repaired because a promotion gate refused the image."""
        return sum(len(a.targets) for a in self.actions if a.kind == "gate" and a.status == "blocked")

    @property
    def archived(self) -> int:
        """Targets lacking a source image that is archived (not copied until it is restored)."""
        return sum(len(a.targets) for a in self.actions if a.kind == "archived")

    @property
    def stale(self) -> int:
        """Destination tags of opted-in rules that the source no longer has."""
        return sum(1 for a in self.actions if a.kind == "delete")

    @property
    def deleted(self) -> int:
        """Stale tags removed (or to remove, in a dry run with apply_deletes)."""
        if not self.apply_deletes:
            return 0
        status: ActionStatus = "planned" if self.dry_run else "done"
        return sum(
            1
            for a in self.actions
            if a.kind == "delete" and a.status == status and a.outcome in (None, "deleted")
        )

    @property
    def failed(self) -> int:
        """Actions that failed."""
        return sum(1 for a in self.actions if a.status == "failed")

    @property
    def repaired(self) -> bool:
        """True when this run tagged, started or copied anything."""
        return not self.dry_run and (self.tagged + self.started) > 0

    def rows(self) -> list[tuple[str, int]]:
        """The final table's rows."""
        verb = "would " if self.dry_run else ""
        started = (
            ("copied" if self.local else "executions started")
            if not self.dry_run
            else ("copy" if self.local else "start executions")
        )
        return [
            ("repositories", self.repositories),
            ("images examined", self.examined),
            ("  not matching the rules", self.not_matching),
            ("  pushed before --since", self.before_since),
            ("already present (targets)", self.present),
            (f"{verb}tag (targets)" if self.dry_run else "tagged (targets)", self.tagged),
            (f"{verb}{started}" if self.dry_run else started, self.started),
            ("already started", self.already_started),
            ("blocked by promotion gates (targets)", self.blocked),
            ("archived in the source, not copied (targets)", self.archived),
            ("archived at the destination, left alone (targets)", self.archived_at_destination),
            ("deferred to the next run", self.deferred),
            ("stale tags (gone from the source)", self.stale),
            (f"{verb}delete (stale tags)" if self.dry_run else "deleted (stale tags)", self.deleted),
            ("failed", self.failed),
        ]

    def table(self) -> str:
        """The final table as text."""
        width = max(len(label) for label, _ in self.rows())
        return "\n".join(f"{label:<{width}}  {value:>8}" for label, value in self.rows())

    def counts(self) -> dict[str, int]:
        """The table's counts under stable snake_case keys, the same in a dry run (then: what a run would do)
        and a real run."""
        return {
            "repositories": self.repositories,
            "images_examined": self.examined,
            "not_matching": self.not_matching,
            "before_since": self.before_since,
            "present": self.present,
            "tagged": self.tagged,
            "started": 0 if self.local else self.started,
            "copied": self.started if self.local else 0,
            "already_started": self.already_started,
            "blocked": self.blocked,
            "deferred": self.deferred,
            "stale": self.stale,
            "deleted": self.deleted,
            "failed": self.failed,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready counts and the actions that did something or failed (keys stable, snake_case)."""
        return {
            "dry_run": self.dry_run,
            "local": self.local,
            "counts": self.counts(),
            "actions": [
                {
                    "kind": a.kind,
                    "repository": a.repository,
                    "tag": a.tag,
                    "digest": a.digest,
                    "destinations": [
                        destination_dict(
                            t.account,
                            t.region,
                            t.repository,
                            replaces=a.replaces.get(f"{t.account}/{t.region}"),
                        )
                        for t in sorted(a.targets, key=lambda t: (t.account, t.region, t.repository))
                    ],
                    "name": a.name or None,
                    "source": a.source,
                    "status": a.status,
                    "error": a.error,
                    "outcome": a.outcome,
                }
                for a in self.actions
            ],
        }


class Syncer:
    """One sync run over a config; clients are injected (see `AwsClients`)."""

    def __init__(
        self,
        config: ReplicationConfig,
        options: SyncOptions,
        *,
        clients: AwsClients | None = None,
        progress: ProgressCallback | None = None,
        log: LogCallback | None = None,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.options = options
        self.clients = clients or AwsClients()
        self.progress = progress or (lambda _phase, _done, _total: None)
        self.log = log or (lambda _line: None)
        # Organization destinations resolve once per run: an account that joined since the last run is backfilled.
        self.resolution = resolve(config, self._directory(config))
        self.config = config = self.resolution.config
        for skipped in self.resolution.skipped:
            self.log(f"skipped: {skipped.line()}")
        self.sleep = sleep
        # One day per run, so a run that crosses midnight still names its work once.
        self.day = now().astimezone(UTC).date()
        self.starter = ExecutionStarter(options, self.clients, self.day, log=self.log, sleep=sleep)
        self.operator = options.as_operator and not options.local
        self.inventories = Inventories(config, self.clients, as_operator=self.operator)
        self.insecure = self.inventories.insecure
        self._check_options()
        self.direct = DirectRepairs(self.inventories, self.clients, self.insecure)
        self.stale = StaleTags(config, self.inventories, self.clients, self.insecure, log=self.log)
        self.repository_filter = (
            NameFilter.compile([options.repository_glob]) if options.repository_glob else None
        )
        # (account, region, repository) of destination repositories that could not be listed.
        self._unlisted: set[tuple[str, str, str]] = set()
        self._gates: dict[str, GateStep] = {}

    def _directory(self, config: ReplicationConfig) -> OrganizationDirectory | None:
        if not needs_organizations(config):
            return None
        return OrganizationDirectory(self.clients.client("organizations", config.source.region))

    def _check_options(self) -> None:
        options = self.options
        if bool(options.state_machine_arn) == bool(options.local):
            raise InvalidRequest(
                "give exactly one of a state machine ARN (start executions) and local (copy here)"
            )
        if options.state_machine_arn:
            region_of_arn(options.state_machine_arn)
        if options.max_in_flight < 1:
            raise InvalidRequest(f"max in flight must be at least 1, got {options.max_in_flight}")
        if self.operator and self.config.operators is None:
            raise InvalidRequest("running as an operator needs `operators` in the config (docs/deploy.md)")
        if options.repository_glob is not None:
            try:
                compile_pattern(options.repository_glob)
            except ValueError as error:
                raise InvalidRequest(f"--repository: {error}") from None
        names = [source.name for source in self.config.sources]
        if options.source is not None and options.source not in names:
            raise InvalidRequest(
                f"--source {options.source!r} is not one of the sources ({', '.join(names)})"
            )
        for source in self.sources():
            if options.since is not None and self.inventories.source_is_registry(source):
                registry, _ = self.config.endpoint(source.account, source.region)
                raise InvalidRequest(
                    f"--since needs an ECR source: the registry {registry} does not report push times"
                )

    # Inventory

    def sources(self) -> list[SourceConfig]:
        """The sources this run walks: every source of the config, or the one `source` names."""
        return [s for s in self.config.sources if self.options.source in (None, s.name)]

    def label(self, source: SourceConfig) -> str | None:
        """How actions name the source: `account/region` in a config with several sources, else nothing."""
        return source.name if len(self.config.sources) > 1 else None

    def source(self, source: SourceConfig | None = None) -> SourceInventory:
        """The inventory of a source, default the home one (see `Inventories.source`)."""
        return self.inventories.source(source)

    def destination(self, target: Target) -> DestinationInventory:
        """The destination inventory of a target's account/Region (see `Inventories.destination`)."""
        return self.inventories.destination(target)

    def _repository_selected(self, repository: str, source: SourceConfig) -> bool:
        if self.repository_filter is not None and not self.repository_filter.matches(repository):
            return False
        return any(rule.repository_filter.matches(repository) for rule in self.config.rules_for(source))

    def inventory(self, report: SyncReport) -> None:
        """Phase 1: count, decide and record the actions, source by source."""
        for source in self.sources():
            inventory = self.source(source)
            repositories = sorted(r for r in inventory.repositories() if self._repository_selected(r, source))
            report.repositories += len(repositories)
            where = f" in {source.name}" if self.label(source) else ""
            self.log(f"{len(repositories)} source repositories selected{where}")
            for index, repository in enumerate(repositories, 1):
                self._inventory_repository(inventory, source, repository, report)
                self.progress("inventory", index, len(repositories))

    def _inventory_repository(
        self, inventory: SourceInventory, source: SourceConfig, repository: str, report: SyncReport
    ) -> None:
        rules = [rule for rule in self.config.rules_for(source) if rule.repository_filter.matches(repository)]

        seen: set[str] = set()

        def accept(tag: str) -> bool:
            seen.add(tag)
            report.examined += 1
            if any(tag_matches(rule.tag_filter, tag)[0] for rule in rules):
                return True
            report.not_matching += 1
            return False

        since = self.options.since
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        for image in inventory.images(repository, accept):
            if since is not None and image.pushed_at is not None and image.pushed_at < since:
                report.before_since += 1
                continue
            self._decide(image, source, report)
        stale = self.stale.find(repository, seen, report.actions.append, source)
        for action in stale:
            action.source = self.label(source)
        report.actions.extend(stale)

    def _decide(self, image: SourceImage, source: SourceConfig, report: SyncReport) -> None:
        request = ReplicationRequest(
            repository=image.repository,
            tag=image.tag,
            digest=image.digest,
            source_account=source.account,
            source_region=source.region,
        )
        targets = plan(request, self.config).targets
        if not targets:
            report.not_matching += 1
            return
        missing: list[Target] = []
        to_tag: list[Target] = []
        replaces: dict[str, str] = {}
        for target in targets:
            looked = self._look(image, target, report, source)
            if looked is None:
                continue
            decision, current = looked
            if decision == "present":
                report.present += 1
                continue
            if decision == "archived":
                report.archived_at_destination += 1
                continue
            if current is not None and target.on_tag_conflict == "refuse":
                self._refuse(image, target, current, report, self.label(source))
                continue
            if current is not None:
                replaces[f"{target.account}/{target.region}"] = current
            (to_tag if decision == "tagged" else missing).append(target)
        label = self.label(source)
        if image.archived and (to_tag or missing):
            # Nothing of it can be read (its pull is a 404; ECR user guide, "Archiving an image"), its gates
            # included: reported, not tried, until it is restored.
            archived = Action(
                "archived", image.repository, image.tag, image.digest, [*to_tag, *missing], source=label
            )
            archived.status, archived.outcome = "skipped", image.status
            report.actions.append(archived)
            return
        allowed = self._gated(image, source, [*to_tag, *missing], report)
        to_tag = [t for t in to_tag if id(t) in allowed]
        missing = [t for t in missing if id(t) in allowed]
        if self.operator and not self.options.local:
            # An operator cannot write at a destination: the execution's Precheck puts the tag.
            missing, to_tag = [*to_tag, *missing], []
        if to_tag:
            report.actions.append(self._action("tag", image, to_tag, replaces, source=label))
        if missing and self.options.local:
            report.actions.extend(self._action("copy", image, [t], replaces, source=label) for t in missing)
        elif missing:
            destinations = [f"{t.account}/{t.region}" for t in missing]
            name = execution_name(
                image.repository, image.digest, image.tag, destinations, day=self.day, source=label
            )
            report.actions.append(self._action("start", image, missing, replaces, name=name, source=label))

    @staticmethod
    def _action(
        kind: ActionKind,
        image: SourceImage,
        targets: list[Target],
        replaces: dict[str, str],
        name: str = "",
        source: str | None = None,
    ) -> Action:
        """An action for `targets` (of the image in `source`, when named), naming the digests it replaces."""
        action = Action(kind, image.repository, image.tag, image.digest, targets, name=name, source=source)
        action.replaces = {where: replaces[where] for where in action.destinations if where in replaces}
        return action

    def _look(
        self, image: SourceImage, target: Target, report: SyncReport, source: SourceConfig
    ) -> tuple[Decision, str | None] | None:
        """The target's decision and, unless present, the other digest its tag points at (None when the tag
        is not there); None when its repository could not be listed (a failed action, once)."""
        where = (target.account, target.region, target.repository)
        if where in self._unlisted:
            return None
        try:
            destination = self.destination(target)
            decision = destination.decide(target.repository, image.tag, image.digest)
            found = None if decision == "present" else destination.lookup(target.repository, image.tag)
        except (ReplicationError, ClientError, BotoCoreError) as error:
            self._unlisted.add(where)
            reason = described(error)
            failed = Action(
                "inventory",
                image.repository,
                "",
                "",
                [target],
                status="failed",
                error=reason,
                source=self.label(source),
            )
            report.actions.append(failed)
            self.log(f"failed: {failed.describe()}")
            return None
        current = found.digest if found is not None and found.digest != image.digest else None
        return decision, current

    def _refuse(
        self, image: SourceImage, target: Target, current: str, report: SyncReport, source: str | None
    ) -> None:
        """A destination tag at another digest that the target's rule refuses to replace: a failed action."""
        refused = Action(
            "conflict", image.repository, image.tag, image.digest, [target], status="failed", source=source
        )
        refused.error = (
            f"{DestinationTagConflict.__name__}: {target.destination_reference} points at {current}, not "
            f"{image.digest}; the rule refuses to replace it (on_tag_conflict: refuse)"
        )
        report.actions.append(refused)
        self.log(f"failed: {refused.describe()}")

    def _gate_step(self, source: SourceConfig) -> GateStep:
        """The gates of one source's images: its scans and signatures, read where it is."""
        if source.name not in self._gates:
            registry, insecure = self.config.endpoint(source.account, source.region)
            role = self.config.source_role_arn(source)
            self._gates[source.name] = GateStep(
                self.config,
                ecr=self.clients.client("ecr", source.region, role),
                registry=make_client(
                    registry,
                    session=self.inventories.source_session(source),
                    insecure_registries=self.insecure if insecure else (),
                ),
            )
        return self._gates[source.name]

    def _gated(
        self, image: SourceImage, source: SourceConfig, targets: list[Target], report: SyncReport
    ) -> set[int]:
        """The ids of the targets the rules' promotion gates let through; the others become one `gate` action
        (blocked, or deferred while a scan a gate waits for is not complete; no override here)."""
        if not targets or not self._gate_step(source).used_rules(targets):
            return {id(t) for t in targets}
        label = self.label(source)
        try:
            decisions = self._gate_step(source).target_decisions(
                image.repository, image.digest, targets, waited=waited_since(image.pushed_at)
            )
        except (ReplicationError, ClientError, BotoCoreError) as error:
            name = type(error).__name__ if isinstance(error, ReplicationError) else GateCheckFailed.__name__
            failed = Action(
                "gate", image.repository, image.tag, image.digest, targets, status="failed", source=label
            )
            failed.error = redact(f"{name}: the gates could not be checked: {error}")
            report.actions.append(failed)
            self.log(f"failed: {failed.describe()}")
            return set()
        refused = [(t, d) for t, d in zip(targets, decisions, strict=True) if d.verdict != "pass"]
        outcomes: tuple[tuple[str, ActionStatus], ...] = (("block", "blocked"), ("wait", "deferred"))
        for verdict, status in outcomes:
            group = [(t, d) for t, d in refused if d.verdict == verdict]
            if group:
                reasons = "; ".join(dict.fromkeys(d.reason for _, d in group))
                action = Action(
                    "gate",
                    image.repository,
                    image.tag,
                    image.digest,
                    [t for t, _ in group],
                    status=status,
                    source=label,
                )
                action.error = reasons
                report.actions.append(action)
                self.log(f"{status}: {action.describe()}")
        return {id(t) for t, d in zip(targets, decisions, strict=True) if d.verdict == "pass"}

    # Repair

    def repair(self, report: SyncReport) -> None:
        """Phase 2: run the actions, at most `max_in_flight` at once."""
        actions = report.actions
        if not actions:
            return
        self.starter.prepare([action for action in actions if self._starts(action)])
        actions = [
            action
            for action in actions
            if action.status == "planned" and (action.kind != "delete" or self.options.apply_deletes)
        ]
        with ThreadPoolExecutor(max_workers=self.options.max_in_flight, thread_name_prefix="sync") as pool:
            futures = {pool.submit(self._run, action): action for action in actions}
            for done, future in enumerate(as_completed(futures), 1):
                action = futures[future]
                error = future.exception()
                if error is not None:
                    action.status, action.error = "failed", described(error)
                self.log(f"{action.status}: {action.describe()}")
                self.progress("repair", done, len(actions))

    def _starts(self, action: Action) -> bool:
        """Whether the action is done by an execution: a start, or an operator's delete."""
        return action.kind == "start" or (action.kind == "delete" and self.operator)

    def _run(self, action: Action) -> None:
        if action.kind == "tag":
            self.direct.tag(action)
        elif action.kind == "copy":
            self.direct.copy(action)
        elif action.kind == "delete" and not self.operator:
            self.stale.apply(action)
        else:
            self.starter.start(action)

    def run(self) -> SyncReport:
        """Both phases (the second only without `dry_run`)."""
        options = self.options
        report = SyncReport(dry_run=options.dry_run, local=options.local, apply_deletes=options.apply_deletes)
        report.skipped_accounts = [skipped.line() for skipped in self.resolution.skipped]
        self.inventory(report)
        if not self.options.dry_run:
            self.repair(report)
        return report


def sync(
    config: ReplicationConfig,
    options: SyncOptions,
    *,
    clients: AwsClients | None = None,
    progress: ProgressCallback | None = None,
    log: LogCallback | None = None,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> SyncReport:
    """Backfill: replicate every selected image the destinations lack; see the module docstring."""
    return Syncer(config, options, clients=clients, progress=progress, log=log, sleep=sleep, now=now).run()


def reconcile(
    config: ReplicationConfig,
    *,
    state_machine_arn: str,
    topic_arn: str | None = None,
    clients: AwsClients | None = None,
    since: datetime | None = None,
    log: LogCallback | None = None,
    max_in_flight: int = SyncOptions.max_in_flight,
) -> dict[str, Any]:
    """Scheduled repair: start executions for what is missing (without waiting), tag what lacks a tag.

    Starts executions only until `max_in_flight` are RUNNING; the rest is deferred to the next run.
    Publishes to `topic_arn` only when it repaired something or failed; an exception is re-raised after
    publishing, so the invocation fails too.
    """
    clients = clients or AwsClients()
    options = SyncOptions(
        state_machine_arn=state_machine_arn, since=since, wait=False, max_in_flight=max_in_flight
    )
    try:
        report = sync(config, options, clients=clients, log=log)
    except Exception as error:
        if topic_arn:
            _publish(
                clients,
                topic_arn,
                "ecr-replicate reconciliation FAILED",
                f"Reconciliation failed before repairing: {described(error)}",
            )
        raise
    result = report.to_dict()
    result["notified"] = False
    if topic_arn and (report.repaired or report.failed):
        outcome = "FAILED" if report.failed else "repaired"
        lines = [a.describe() for a in report.actions if a.status != "deferred"]
        body = "\n".join(
            [
                f"Reconciliation {outcome} at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
                "",
                report.table(),
                "",
                *lines,
            ]
        )
        _publish(clients, topic_arn, f"ecr-replicate reconciliation {outcome}", body)
        result["notified"] = True
    return result


def _publish(clients: AwsClients, topic_arn: str, subject: str, message: str) -> None:
    region = topic_arn.split(":")[3]
    clients.client("sns", region).publish(
        TopicArn=topic_arn, Subject=subject[:100], Message=message[:200_000]
    )
