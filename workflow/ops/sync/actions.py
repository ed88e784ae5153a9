"""One sync action: a repair (tag, start an execution, copy), a gate's refusal, a stale tag's delete, or a
failed listing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from workflow.core.reports import destination_dict
from workflow.models.config import ReplicationConfig, SourceConfig
from workflow.models.payloads import Target

ActionKind = Literal["inventory", "gate", "tag", "start", "copy", "delete", "archived", "conflict"]
ActionStatus = Literal["planned", "done", "already-started", "deferred", "failed", "blocked", "skipped"]


def source_label(config: ReplicationConfig, source: SourceConfig) -> str | None:
    """How actions name the source: `account/region` in a config with several sources, else nothing."""
    return source.name if len(config.sources) > 1 else None


@dataclass
class Action:
    """One repair: tag a target, start one execution, or copy one target (local); a failed listing; the
    targets of one image that promotion gates refused (`gate`, blocked) or could not decide yet (deferred);
    or a stale tag to delete (`delete`, rules with propagate_deletes); or the targets of a source image in ECR's
    archive storage class (`archived`, skipped: it cannot be pulled until restored); or a destination tag at
    another digest that its rule refuses to replace (`conflict`, failed with DestinationTagConflict)."""

    kind: ActionKind
    repository: str
    tag: str
    digest: str
    targets: list[Target]
    name: str = ""
    status: ActionStatus = "planned"
    error: str | None = None
    outcome: str | None = None  # a delete's: deleted, kept (moved since), absent; an archived image's status
    # `account/region` -> the digest its tag points at now, which this repair replaces.
    replaces: dict[str, str] = field(default_factory=dict)
    # The source the image is in (`account/region`), in a config with several sources.
    source: str | None = None

    @property
    def destinations(self) -> list[str]:
        """`account/region` of each target, sorted."""
        return sorted(f"{t.account}/{t.region}" for t in self.targets)

    def describe(self) -> str:
        """One human line."""
        where = ", ".join(self.destinations)
        what = {
            "inventory": f"list {self.targets[0].repository} at {where}",
            "gate": f"gates refused {self.repository}:{self.tag} ({self.digest[:19]}) for {where}",
            "tag": f"tag {self.repository}:{self.tag} ({self.digest[:19]}) at {where}",
            "start": f"start execution {self.name} for {self.repository}:{self.tag} -> {where}",
            "copy": f"copy {self.targets[0].source_image} -> {self.targets[0].destination_reference}",
            "delete": f"delete {self.targets[0].repository}:{self.tag} ({self.digest[:19]}), gone from the "
            f"source, at {where}" + (f": {self.outcome}" if self.outcome else ""),
            "archived": f"{self.repository}:{self.tag} ({self.digest[:19]}) is {self.outcome} in the source: not "
            f"copied to {where}; restore it (UpdateImageStorageClass to STANDARD) to replicate it (ImageArchived)",
            "conflict": f"replace {self.repository}:{self.tag} ({self.digest[:19]}) at {where}",
        }[self.kind]
        if self.replaces:
            what += " (" + ", ".join(f"replaces {d} at {w}" for w, d in sorted(self.replaces.items())) + ")"
        if self.source:
            what += f" [source {self.source}]"
        if self.status == "deferred":
            return what + ": deferred, left for the next run"
        return what + (f": {self.error}" if self.error else "")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (keys stable, snake_case; the destinations sorted, each naming the digest it replaces)."""
        return {
            "kind": self.kind,
            "repository": self.repository,
            "tag": self.tag,
            "digest": self.digest,
            "destinations": [
                destination_dict(
                    t.account,
                    t.region,
                    t.repository,
                    replaces=self.replaces.get(f"{t.account}/{t.region}"),
                )
                for t in sorted(self.targets, key=lambda t: (t.account, t.region, t.repository))
            ],
            "name": self.name or None,
            "source": self.source,
            "status": self.status,
            "error": self.error,
            "outcome": self.outcome,
        }
