"""Where an image is: for each destination the rules name, present, stale, missing, archived or blocked by a gate.

`image_status()` reads what `sync` reads (workflow.ops.inventory): one listing of the source repository (in each
source whose rules select it, or the one asked for: a repository of the same name in two sources is two images),
then ONE listing per destination repository (ECR; a HEAD per tag for a plain registry), so its API
calls grow with destinations, not with tags. A destination that cannot be listed (its role is not
deployed, say) is reported as "unknown" with the error; the others are still read.

When a rule has `gates:`, each source image is gated once (`gate_image`: its scan findings and
signatures read once, whatever the number of destinations). A destination lacking the image (missing
or stale) whose rule's gates block it is "blocked", with the reason; a gate still waiting (a scan in
progress) or failing for an image already there is named in `gate` without changing the state.

An image in ECR's archive storage class cannot be pulled (ECR user guide, "Archiving an image"): a destination
lacking a source image that is archived (or being restored) is "archived", not missing, and the report says
how to restore it; a destination holding its copy archived is "archived" there too (`source_status` tells
which). Gates are not read for an archived source image: nothing of it can be read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from workflow.core.exceptions import ImageNotFound, InvalidRequest, ReplicationError
from workflow.core.redaction import described
from workflow.core.reports import destination_dict
from workflow.gates.decision import Decision
from workflow.gates.image import gate_image
from workflow.models.config import ReplicationConfig, SourceConfig
from workflow.models.payloads import ReplicationRequest, TagConflict, Target
from workflow.models.rules import tag_matches
from workflow.ops.inventory import AwsClients, Inventories, SourceImage
from workflow.pipeline.gate import waited_since
from workflow.pipeline.organizations import OrganizationDirectory, needs_organizations, resolve
from workflow.pipeline.plan import plan
from workflow.registry.client import RegistryClient
from workflow.registry.factory import make_client

State = Literal["present", "stale", "missing", "blocked", "archived", "unknown"]
STATES: tuple[State, ...] = ("present", "stale", "missing", "blocked", "archived", "unknown")
RESTORE = (
    "it cannot be pulled until restored (UpdateImageStorageClass to STANDARD, or Restore in the console); "
    "docs/runbook.md#imagearchived"
)


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
    gate: str | None = None  # why the rule's gates do not let the image through now
    source_status: str = "ACTIVE"  # the source image's ECR imageStatus (ARCHIVED, ACTIVATING: not pullable)
    on_tag_conflict: TagConflict = "replace"  # what the rules do with a tag at another digest here
    source: str | None = None  # where the image is (`account/region`)

    @property
    def would_replace(self) -> str | None:
        """The digest a replication would replace here: a stale tag's, unless the rules refuse to."""
        return self.digest if self.state == "stale" and self.on_tag_conflict == "replace" else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (snake_case, the destination in the CLI's one shape)."""
        return {
            "source": self.source,
            "repository": self.repository,
            "tag": self.tag,
            "source_digest": self.source_digest,
            "destination": destination_dict(self.account, self.region, self.destination_repository),
            "state": self.state,
            "digest": self.digest,
            "pushed_at": self.pushed_at.isoformat() if self.pushed_at else None,
            "error": self.error,
            "gate": self.gate,
            "source_status": self.source_status,
            "would_replace": self.would_replace,
            "tag_conflict": self.on_tag_conflict if self.state == "stale" else None,
        }

    def conflict_note(self) -> str | None:
        """What a replication would do to a stale tag, in one line."""
        if self.state != "stale" or self.digest is None:
            return None
        where = f"{self.repository}:{self.tag} at {self.account}/{self.region}"
        if self.on_tag_conflict == "refuse":
            return (
                f"{where}: the tag points at {self.digest}; the rule refuses to replace it "
                f"(on_tag_conflict: refuse): DestinationTagConflict"
            )
        return f"{where}: the tag points at {self.digest}; a replication would replace {self.digest}"


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
        """One row per (tag, destination); the image's source first when the entries come from several."""
        several = len({e.source for e in self.entries}) > 1
        header = ("IMAGE", "DESTINATION", "STATE", "DIGEST", "PUSHED")
        rows = [
            (
                f"{e.source} {e.repository}:{e.tag}" if several else f"{e.repository}:{e.tag}",
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
        lines += [note for e in self.entries if (note := e.conflict_note())]
        gated = {
            (f"{e.source} " if several else "") + f"{e.repository}:{e.tag}": e.gate
            for e in self.entries
            if e.gate
        }
        lines += [f"{image}: {reason}" for image, reason in gated.items()]
        archived = {
            f"{e.repository}:{e.tag}": e.source_status
            for e in self.entries
            if e.state == "archived" and e.source_status != "ACTIVE"
        }
        lines += [
            f"{image}: {status} in the source (ImageArchived): {RESTORE}"
            for image, status in archived.items()
        ]
        lines += [
            f"{e.account}/{e.region}: {e.destination_repository}:{e.tag} is archived there; left alone (a push "
            "would restore it)"
            for e in self.entries
            if e.state == "archived" and e.source_status == "ACTIVE"
        ]
        return "\n".join(lines)


class _Reader:
    def __init__(self, config: ReplicationConfig, clients: AwsClients, *, as_operator: bool = False) -> None:
        directory = (
            OrganizationDirectory(clients.client("organizations", config.source.region))
            if needs_organizations(config)
            else None
        )
        self.config = config = resolve(config, directory).config
        self.inventories = Inventories(config, clients, as_operator=as_operator)
        # (account, region, repository) -> why it could not be listed
        self.unlisted: dict[tuple[str, str, str], str] = {}
        self.gates = {rule.name: rule.gates for rule in config.rules if rule.gates is not None}
        self._source_registries: dict[str, RegistryClient] = {}

    def sources(self, repository: str, source: str | None) -> list[SourceConfig]:
        """The sources whose rules select `repository` (only `source`, when given)."""
        names = [s.name for s in self.config.sources]
        if source is not None and source not in names:
            raise InvalidRequest(f"{source!r} is not one of the sources ({', '.join(names)})")
        selecting = [
            s
            for s in self.config.sources
            if source in (None, s.name)
            and any(rule.repository_filter.matches(repository) for rule in self.config.rules_for(s))
        ]
        if not selecting:
            where = f" of {source}" if source else ""
            raise InvalidRequest(f"no rule{where} of the config selects the repository {repository!r}")
        return selecting

    def images(self, source: SourceConfig, repository: str, tag: str | None) -> list[SourceImage]:
        rules = [r for r in self.config.rules_for(source) if r.repository_filter.matches(repository)]
        accept: Callable[[str], bool]
        if tag is None:
            accept = lambda name: any(tag_matches(rule.tag_filter, name)[0] for rule in rules)  # noqa: E731
        else:
            accept = lambda name: name == tag  # noqa: E731
        return sorted(self.inventories.source(source).images(repository, accept), key=lambda i: i.tag)

    def entries(self, source: SourceConfig, image: SourceImage, *, required: bool) -> list[DestinationStatus]:
        request = ReplicationRequest(
            repository=image.repository,
            tag=image.tag,
            digest=image.digest,
            source_account=source.account,
            source_region=source.region,
        )
        targets = plan(request, self.config).targets
        if not targets and required:
            raise InvalidRequest(
                f"no rule replicates {image.repository}:{image.tag} from {source.name}: its tag is not accepted"
            )
        decisions = {} if image.archived else self._gate(source, image, targets)
        return [
            _gated(
                self._look(
                    DestinationStatus(
                        image.repository,
                        image.tag,
                        image.digest,
                        target.account,
                        target.region,
                        target.repository,
                        "unknown",
                        source_status=image.status,
                        on_tag_conflict=target.on_tag_conflict,
                        source=source.name,
                    ),
                    target,
                ),
                target.selecting_rules,
                decisions,
            )
            for target in targets
        ]

    def _gate(
        self, source: SourceConfig, image: SourceImage, targets: list[Target]
    ) -> Mapping[str, Decision | str]:
        """Rule -> decision (or why there is none) for the image's gated rules, read once for all targets."""
        used = sorted({rule for target in targets for rule in target.selecting_rules if rule in self.gates})
        if not used:
            return {}
        clients = self.inventories.clients
        try:
            return gate_image(
                {rule: self.gates[rule] for rule in used},
                image.repository,
                image.digest,
                ecr=clients.client("ecr", source.region, self.config.source_role_arn(source)),
                registry=self._registry(source),
                registry_id=source.account,
                waited_seconds=waited_since(image.pushed_at),
            )
        except (ReplicationError, ClientError, BotoCoreError) as error:
            return dict.fromkeys(used, f"the gates could not be checked: {described(error)}")

    def _registry(self, source: SourceConfig) -> RegistryClient:
        if source.name not in self._source_registries:
            registry, insecure = self.config.endpoint(source.account, source.region)
            self._source_registries[source.name] = make_client(
                registry,
                session=self.inventories.source_session(source),
                insecure_registries=self.inventories.insecure if insecure else (),
            )
        return self._source_registries[source.name]

    def _look(self, entry: DestinationStatus, target: Target) -> DestinationStatus:
        where = (target.account, target.region, target.repository)
        if where in self.unlisted:
            return replace(entry, error=self.unlisted[where])
        try:
            found = self.inventories.destination(target).lookup(target.repository, target.tag)
        except (ReplicationError, ClientError, BotoCoreError) as error:
            self.unlisted[where] = described(error)
            return replace(entry, error=self.unlisted[where])
        state: State
        if found is not None and found.digest == entry.source_digest:
            state = "archived" if found.archived else "present"
        elif entry.source_status != "ACTIVE":
            state = "archived"  # it lacks an image that cannot be pulled until restored
        else:
            state = "missing" if found is None else "stale"
        if found is None:
            return replace(entry, state=state)
        return replace(entry, state=state, digest=found.digest, pushed_at=found.pushed_at)


def _gated(
    entry: DestinationStatus, rules: list[str], decisions: Mapping[str, Decision | str]
) -> DestinationStatus:
    """The entry as the gates leave it, decided as the Gate step decides (workflow.pipeline.gate): a
    destination replicates when one rule selecting it passes or has no gates; it is blocked when every
    one blocks and it lacks the image (missing or stale)."""
    own = [(rule, decisions.get(rule)) for rule in rules]
    if any(d is None or (isinstance(d, Decision) and d.verdict == "pass") for _, d in own):
        return entry
    reason = "; ".join(
        f"rule {rule!r} {'blocks' if d.verdict == 'block' else 'waits'}: {d.reason}"
        if isinstance(d, Decision)
        else f"rule {rule!r}: {d}"
        for rule, d in own
    )
    blocked = all(isinstance(d, Decision) and d.verdict == "block" for _, d in own)
    if blocked and entry.state in ("missing", "stale"):
        return replace(entry, state="blocked", gate=reason)
    return replace(entry, gate=reason)


def image_status(
    config: ReplicationConfig,
    repository: str,
    tag: str | None = None,
    *,
    clients: AwsClients | None = None,
    as_operator: bool = False,
    source: str | None = None,
) -> StatusReport:
    """The status of `repository:tag` at every destination the rules name; every accepted tag without `tag`.

    Each source whose rules select the repository is read (only `source`, `account/region`, when given): the
    same repository name in two sources is two images, each with its own entries. `as_operator`: read the
    destinations through the read-only role the config's `operators` may assume. Raises InvalidRequest when no
    rule selects the repository (or accepts the tag), ImageNotFound when no source read has the tag.
    """
    if as_operator and config.operators is None:
        raise InvalidRequest("reading as an operator needs `operators` in the config (docs/deploy.md)")
    reader = _Reader(config, clients or AwsClients(), as_operator=as_operator)
    report = StatusReport()
    sources = reader.sources(repository, source)
    for where in sources:
        for image in reader.images(where, repository, tag):
            report.entries.extend(reader.entries(where, image, required=tag is not None))
    if tag is not None and not report.entries:
        names = ", ".join(s.name for s in sources)
        raise ImageNotFound(f"{repository}:{tag} is not in the source ({names})")
    return report
