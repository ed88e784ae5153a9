"""What one sync run found and did: its counts and actions, as a table or JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workflow.ops.sync.actions import Action, ActionKind, ActionStatus


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
        """JSON-ready counts and every action (keys stable, snake_case)."""
        return {
            "dry_run": self.dry_run,
            "local": self.local,
            "counts": self.counts(),
            "actions": [a.to_dict() for a in self.actions],
        }
