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
from datetime import UTC, datetime
from typing import Any

from workflow.core.exceptions import InvalidRequest
from workflow.core.redaction import described
from workflow.models.config import ReplicationConfig, SourceConfig
from workflow.models.rules import compile_pattern
from workflow.ops.inventory import AwsClients, Inventories
from workflow.ops.sync.actions import Action
from workflow.ops.sync.decisions import ImageDecisions
from workflow.ops.sync.deletes import StaleTags
from workflow.ops.sync.executions import ExecutionStarter, region_of_arn
from workflow.ops.sync.gating import SyncGates
from workflow.ops.sync.options import SyncOptions
from workflow.ops.sync.repairs import DirectRepairs
from workflow.ops.sync.report import SyncReport
from workflow.ops.sync.walk import SourceWalk
from workflow.pipeline.gate import GateStep
from workflow.pipeline.organizations import OrganizationDirectory, needs_organizations, resolve
from workflow.registry.factory import make_client

__all__ = ["SyncReport", "Syncer", "reconcile", "sync"]

ProgressCallback = Callable[[str, int, int], None]
LogCallback = Callable[[str], None]


class Syncer:
    """One sync run over a config; clients are injected (see `AwsClients`). Phase 1 is `SourceWalk`'s, each
    image decided by `ImageDecisions` under `SyncGates`; phase 2 runs the actions here."""

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
        # One day per run, so a run that crosses midnight still names its work once.
        self.day = now().astimezone(UTC).date()
        self.starter = ExecutionStarter(options, self.clients, self.day, log=self.log, sleep=sleep)
        self.operator = options.as_operator and not options.local
        self.inventories = Inventories(config, self.clients, as_operator=self.operator)
        self.insecure = self.inventories.insecure
        # The sources this run walks: every source of the config, or the one `source` names.
        self.sources = [s for s in config.sources if options.source in (None, s.name)]
        self._check_options()
        self.direct = DirectRepairs(self.inventories, self.clients, self.insecure)
        self.stale = StaleTags(config, self.inventories, self.clients, self.insecure, log=self.log)
        self.walk = self._walk()

    def _walk(self) -> SourceWalk:
        """The inventory phase, deciding each image under the rules' gates."""
        gates = SyncGates(self.config, self._gate_step, log=self.log)
        decisions = ImageDecisions(
            self.config,
            self.inventories,
            gates,
            local=self.options.local,
            operator=self.operator,
            day=self.day,
            log=self.log,
        )
        return SourceWalk(
            self.config,
            self.options,
            self.sources,
            inventories=self.inventories,
            decisions=decisions,
            stale=self.stale,
            progress=self.progress,
            log=self.log,
        )

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
        for source in self.sources:
            if options.since is not None and self.inventories.source_is_registry(source):
                registry, _ = self.config.endpoint(source.account, source.region)
                raise InvalidRequest(
                    f"--since needs an ECR source: the registry {registry} does not report push times"
                )

    def _gate_step(self, source: SourceConfig) -> GateStep:
        """The gates of one source's images: its scans and signatures, read where it is."""
        registry, insecure = self.config.endpoint(source.account, source.region)
        role = self.config.source_role_arn(source)
        return GateStep(
            self.config,
            ecr=self.clients.client("ecr", source.region, role),
            registry=make_client(
                registry,
                session=self.inventories.source_session(source),
                insecure_registries=self.insecure if insecure else (),
            ),
        )

    def inventory(self, report: SyncReport) -> None:
        """Phase 1: count, decide and record the actions, source by source."""
        self.walk.inventory(report)

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
        _notify(clients, topic_arn, report)
        result["notified"] = True
    return result


def _notify(clients: AwsClients, topic_arn: str, report: SyncReport) -> None:
    """Publish what a reconciliation repaired or failed: its table, then each action not deferred."""
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


def _publish(clients: AwsClients, topic_arn: str, subject: str, message: str) -> None:
    region = topic_arn.split(":")[3]
    clients.client("sns", region).publish(
        TopicArn=topic_arn, Subject=subject[:100], Message=message[:200_000]
    )
