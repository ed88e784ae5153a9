"""Where an image is: for each destination the rules name, present, stale or missing.

`image_status()` reads what `sync` reads (workflow.inventory): one listing of the source repository,
then ONE listing per destination repository (ECR; a HEAD per tag for a plain registry), so its API
calls grow with destinations, not with tags. A destination that cannot be listed (its role is not
deployed, say) is reported as "unknown" with the error; the others are still read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from workflow.config import ReplicationConfig
from workflow.exceptions import ImageNotFound, InvalidRequest, ReplicationError
from workflow.inventory import AwsClients, Inventories, SourceImage
from workflow.models import ReplicationRequest, Target
from workflow.plan import plan
from workflow.rules import tag_matches

State = Literal["present", "stale", "missing", "unknown"]
STATES: tuple[State, ...] = ("present", "stale", "missing", "unknown")


@dataclass(frozen=True)
class DestinationStatus:
    """One source tag at one destination."""

    repository: str
    tag: str
    source_digest: str
    account: str
    region: str
    destination_repository: str
    state: State
    digest: str | None = None
    pushed_at: datetime | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, camelCase like the other reports."""
        return {
            "repository": self.repository,
            "tag": self.tag,
            "sourceDigest": self.source_digest,
            "account": self.account,
            "region": self.region,
            "destinationRepository": self.destination_repository,
            "state": self.state,
            "digest": self.digest,
            "pushedAt": self.pushed_at.isoformat() if self.pushed_at else None,
            "error": self.error,
        }


@dataclass
class StatusReport:
    """Every (tag, destination) of one status query."""

    entries: list[DestinationStatus] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when every destination has every tag with the source's digest."""
        return all(entry.state == "present" for entry in self.entries)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: whether it is complete, counts per state, and every entry."""
        return {
            "complete": self.complete,
            "counts": {state: sum(e.state == state for e in self.entries) for state in STATES},
            "destinations": [entry.to_dict() for entry in self.entries],
        }

    def table(self) -> str:
        """One row per (tag, destination)."""
        header = ("IMAGE", "DESTINATION", "STATE", "DIGEST", "PUSHED")
        rows = [
            (
                f"{e.repository}:{e.tag}",
                f"{e.account}/{e.region} {e.destination_repository}",
                e.state,
                (e.digest or "-")[:19],
                e.pushed_at.strftime("%Y-%m-%d %H:%M:%S %Z").strip() if e.pushed_at else "-",
            )
            for e in self.entries
        ]
        widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
        lines = [
            "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in (header, *rows)
        ]
        lines += [f"{e.account}/{e.region}: {e.error}" for e in self.entries if e.error]
        return "\n".join(lines)


class _Reader:
    def __init__(self, config: ReplicationConfig, clients: AwsClients) -> None:
        self.config = config
        self.inventories = Inventories(config, clients)
        # (account, region, repository) -> why it could not be listed
        self.unlisted: dict[tuple[str, str, str], str] = {}

    def images(self, repository: str, tag: str | None) -> list[SourceImage]:
        rules = [rule for rule in self.config.rules if rule.repository_filter.matches(repository)]
        if not rules:
            raise InvalidRequest(f"no rule of the config selects the repository {repository!r}")
        accept: Callable[[str], bool]
        if tag is None:
            accept = lambda name: any(tag_matches(rule.tag_filter, name)[0] for rule in rules)  # noqa: E731
        else:
            accept = lambda name: name == tag  # noqa: E731
        images = sorted(self.inventories.source().images(repository, accept), key=lambda i: i.tag)
        if tag is not None and not images:
            source = self.config.source
            raise ImageNotFound(f"{repository}:{tag} is not in the source ({source.account}/{source.region})")
        return images

    def entries(self, image: SourceImage, *, required: bool) -> list[DestinationStatus]:
        request = ReplicationRequest(repository=image.repository, tag=image.tag, digest=image.digest)
        targets = plan(request, self.config).targets
        if not targets and required:
            raise InvalidRequest(
                f"no rule replicates {image.repository}:{image.tag}: its tag is not accepted"
            )
        return [
            self._look(
                DestinationStatus(
                    image.repository,
                    image.tag,
                    image.digest,
                    target.account,
                    target.region,
                    target.repository,
                    "unknown",
                ),
                target,
            )
            for target in targets
        ]

    def _look(self, entry: DestinationStatus, target: Target) -> DestinationStatus:
        where = (target.account, target.region, target.repository)
        if where in self.unlisted:
            return replace(entry, error=self.unlisted[where])
        try:
            found = self.inventories.destination(target).lookup(target.repository, target.tag)
        except (ReplicationError, ClientError, BotoCoreError) as error:
            self.unlisted[where] = f"{type(error).__name__}: {error}"
            return replace(entry, error=self.unlisted[where])
        if found is None:
            return replace(entry, state="missing")
        state: State = "present" if found.digest == entry.source_digest else "stale"
        return replace(entry, state=state, digest=found.digest, pushed_at=found.pushed_at)


def image_status(
    config: ReplicationConfig, repository: str, tag: str | None = None, *, clients: AwsClients | None = None
) -> StatusReport:
    """The status of `repository:tag` at every destination the rules name; every accepted tag without `tag`.

    Raises InvalidRequest when no rule selects the repository (or accepts the tag), ImageNotFound when the
    source lacks the tag.
    """
    reader = _Reader(config, clients or AwsClients())
    report = StatusReport()
    for image in reader.images(repository, tag):
        report.entries.extend(reader.entries(image, required=tag is not None))
    return report
