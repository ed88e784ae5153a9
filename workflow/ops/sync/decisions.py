"""Sync's decision for one source image: per target present, tagged or missing (from one listing per
destination repository), then the actions that repair it: a tag, one execution start, or (`local`) a copy per
target; or why not (an archived source image, a refused tag conflict, a gate, a failed listing)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from botocore.exceptions import BotoCoreError, ClientError

from workflow.core.exceptions import DestinationTagConflict, ReplicationError
from workflow.core.redaction import described
from workflow.models.config import ReplicationConfig, SourceConfig
from workflow.models.payloads import ReplicationRequest, Target
from workflow.ops.inventory import Decision, Inventories, SourceImage
from workflow.ops.sync.actions import Action, ActionKind, source_label
from workflow.ops.sync.executions import execution_name
from workflow.ops.sync.gating import SyncGates
from workflow.ops.sync.report import SyncReport
from workflow.pipeline.plan import plan

# Targets to tag, targets missing the image, and `account/region` -> the digest each replaces.
Sorted = tuple[list[Target], list[Target], dict[str, str]]


class ImageDecisions:
    """Decides each source image of one run and records its actions in the report."""

    def __init__(
        self,
        config: ReplicationConfig,
        inventories: Inventories,
        gates: SyncGates,
        *,
        local: bool,
        operator: bool,
        day: date,
        log: Callable[[str], None],
    ) -> None:
        self.config = config
        self.inventories = inventories
        self.gates = gates
        self.local = local
        self.operator = operator
        self.day = day
        self.log = log
        # (account, region, repository) of destination repositories that could not be listed.
        self._unlisted: set[tuple[str, str, str]] = set()

    def decide(self, image: SourceImage, source: SourceConfig, report: SyncReport) -> None:
        """Count the image's targets and record the actions that repair those lacking it."""
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
        to_tag, missing, replaces = self._sort(image, source, targets, report)
        label = source_label(self.config, source)
        if image.archived and (to_tag or missing):
            report.actions.append(self._archived(image, [*to_tag, *missing], label))
            return
        allowed = self.gates.allowed(image, source, [*to_tag, *missing], report)
        to_tag = [t for t in to_tag if id(t) in allowed]
        missing = [t for t in missing if id(t) in allowed]
        if self.operator:
            # An operator cannot write at a destination: the execution's Precheck puts the tag.
            missing, to_tag = [*to_tag, *missing], []
        self._repairs(image, (to_tag, missing, replaces), label, report)

    def _sort(
        self, image: SourceImage, source: SourceConfig, targets: list[Target], report: SyncReport
    ) -> Sorted:
        """The targets to tag and those missing the image; the others are counted (present, archived there)
        or failed (not listed, a refused tag conflict)."""
        to_tag: list[Target] = []
        missing: list[Target] = []
        replaces: dict[str, str] = {}
        for target in targets:
            looked = self._look(image, target, report, source)
            if looked is None:
                continue
            decision, current = looked
            if decision == "present":
                report.present += 1
            elif decision == "archived":
                report.archived_at_destination += 1
            elif current is not None and target.on_tag_conflict == "refuse":
                self._refuse(image, target, current, report, source_label(self.config, source))
            else:
                if current is not None:
                    replaces[f"{target.account}/{target.region}"] = current
                (to_tag if decision == "tagged" else missing).append(target)
        return to_tag, missing, replaces

    @staticmethod
    def _archived(image: SourceImage, targets: list[Target], label: str | None) -> Action:
        """A source image in ECR's archive storage class: nothing of it can be read (its pull is a 404; ECR user
        guide, "Archiving an image"), its gates included: reported, not tried, until it is restored."""
        archived = Action("archived", image.repository, image.tag, image.digest, targets, source=label)
        archived.status, archived.outcome = "skipped", image.status
        return archived

    def _repairs(self, image: SourceImage, sorted_: Sorted, label: str | None, report: SyncReport) -> None:
        """A tag action, then a copy per missing target (`local`) or one execution start for them all."""
        to_tag, missing, replaces = sorted_
        if to_tag:
            report.actions.append(self._action("tag", image, to_tag, replaces, source=label))
        if missing and self.local:
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
            destination = self.inventories.destination(target)
            decision = destination.decide(target.repository, image.tag, image.digest)
            found = None if decision == "present" else destination.lookup(target.repository, image.tag)
        except (ReplicationError, ClientError, BotoCoreError) as error:
            self._unlisted.add(where)
            failed = Action(
                "inventory",
                image.repository,
                "",
                "",
                [target],
                status="failed",
                error=described(error),
                source=source_label(self.config, source),
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
