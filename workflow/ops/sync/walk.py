"""Sync's first phase: walk the selected sources' repositories and tagged images, keep what the rules (and
`since`) accept, decide each image (`decisions`) and find each repository's stale tags (`deletes`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC

from workflow.models.config import ReplicationConfig, SourceConfig
from workflow.models.rules import NameFilter, tag_matches
from workflow.ops.inventory import Inventories, SourceInventory
from workflow.ops.sync.actions import source_label
from workflow.ops.sync.decisions import ImageDecisions
from workflow.ops.sync.deletes import StaleTags
from workflow.ops.sync.options import SyncOptions
from workflow.ops.sync.report import SyncReport


class SourceWalk:
    """The inventory phase over `sources`: counts, decisions and stale tags, recorded in the report."""

    def __init__(
        self,
        config: ReplicationConfig,
        options: SyncOptions,
        sources: list[SourceConfig],
        *,
        inventories: Inventories,
        decisions: ImageDecisions,
        stale: StaleTags,
        progress: Callable[[str, int, int], None],
        log: Callable[[str], None],
    ) -> None:
        self.config = config
        self.options = options
        self.sources = sources
        self.inventories = inventories
        self.decisions = decisions
        self.stale = stale
        self.progress = progress
        self.log = log
        self.repository_filter = (
            NameFilter.compile([options.repository_glob]) if options.repository_glob else None
        )

    def _repository_selected(self, repository: str, source: SourceConfig) -> bool:
        if self.repository_filter is not None and not self.repository_filter.matches(repository):
            return False
        return any(rule.repository_filter.matches(repository) for rule in self.config.rules_for(source))

    def inventory(self, report: SyncReport) -> None:
        """Count, decide and record the actions, source by source."""
        for source in self.sources:
            inventory = self.inventories.source(source)
            repositories = sorted(r for r in inventory.repositories() if self._repository_selected(r, source))
            report.repositories += len(repositories)
            where = f" in {source.name}" if source_label(self.config, source) else ""
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
            self.decisions.decide(image, source, report)
        stale = self.stale.find(repository, seen, report.actions.append, source)
        for action in stale:
            action.source = source_label(self.config, source)
        report.actions.extend(stale)
