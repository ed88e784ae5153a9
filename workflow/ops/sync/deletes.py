"""Sync's stale tags: tags at the destinations of rules with `propagate_deletes` that the source lacks.

For each source repository sync examines, each destination repository an opted-in rule writes is read
from its one listing (the one the inventory makes anyway); a tag there that the rule accepts and the
source repository no longer has is one "delete" action. It is reported; with `apply_deletes`, it is
removed under the live workflow's checks (`workflow.pipeline.deletes`): only the tag, only while it still points
at the digest listed here. The source side is the listing sync just made (the reconcile role reads the
source by DescribeImages only), so a tag pushed again at the source within the run is not seen.
A source repository that no longer exists at all is not examined, so its destinations are left alone.

Several source repositories may write one destination repository (a template without `{repository}`, or
two rules naming the same one). A destination tag is stale only when NO source repository replicated into
that destination repository has it: each such repository is listed too (once a run), whether sync
examines it or not; if one cannot be listed, nothing is deleted there and the listing is a failed
"inventory" action.
"""

from __future__ import annotations

from collections.abc import Callable

from botocore.exceptions import BotoCoreError, ClientError

from workflow.core.exceptions import ReplicationError
from workflow.core.redaction import described
from workflow.models.config import ReplicationConfig, SourceConfig
from workflow.models.payloads import DestinationRef, ReplicationRequest, Target
from workflow.ops.inventory import AwsClients, Inventories, SourceInventory
from workflow.ops.sync.actions import Action
from workflow.pipeline import deletes
from workflow.pipeline.plan import plan, replicated_into, rule_targets
from workflow.registry.auth import ecr_registry_of


class StaleTags:
    """Finds the stale tags of one source repository's opted-in destinations, and removes one on request."""

    def __init__(
        self,
        config: ReplicationConfig,
        inventories: Inventories,
        clients: AwsClients,
        insecure: tuple[str, ...] | list[str],
        *,
        log: Callable[[str], None],
    ) -> None:
        self.config = config
        self.inventories = inventories
        self.clients = clients
        self.insecure = insecure
        self.log = log
        self._seen: set[tuple[str, str, str, str, str]] = set()
        self._sources: dict[str, SourceInventory] = {}
        self._source_repositories: dict[str, list[str]] = {}
        self._source_tags: dict[tuple[str, str], set[str]] = {}

    def find(
        self,
        repository: str,
        source_tags: set[str],
        failed: Callable[[Action], None],
        source: SourceConfig | None = None,
    ) -> list[Action]:
        """A "delete" action per destination tag an opted-in rule of `source` (default: the home one) accepts and
        no source repository replicated there has (of any source); a listing that fails is passed to `failed` as a
        failed "inventory" action."""
        source = source or self.config.source
        self._source_tags[(source.name, repository)] = set(source_tags)
        found: list[Action] = []
        for rule in self.config.rules_for(source):
            if not (rule.propagate_deletes and rule.repository_filter.matches(repository)):
                continue
            for listing in rule_targets(rule, repository, "listing", self.config, "delete", source):
                try:
                    listed = self.inventories.destination(listing).tags(listing.repository)
                    kept = source_tags | self._tags_into(listing)
                except (ReplicationError, ClientError, BotoCoreError) as error:
                    refused = Action("inventory", repository, "", "", [listing], status="failed")
                    refused.error = described(error)
                    failed(refused)
                    self.log(f"failed: {refused.describe()}")
                    continue
                for tag, digest in sorted(listed.items()):
                    if tag in kept:
                        continue
                    for target in self._targets(repository, tag, digest, listing, source):
                        key = (source.name, target.account, target.region, target.repository, tag)
                        if key not in self._seen:
                            self._seen.add(key)
                            found.append(Action("delete", repository, tag, digest, [target]))
        return found

    def _tags_into(self, listing: Target) -> set[str]:
        """Every tag of every repository, of every source, replicated into the listing's destination repository
        (a repository of the same name in another source may have put the tag there)."""
        tags: set[str] = set()
        for source in self.config.sources:
            if source.name not in self._source_repositories:
                self._source_repositories[source.name] = list(self._source_inventory(source).repositories())
            for repository in self._source_repositories[source.name]:
                if replicated_into(self.config, repository, listing.registry, listing.repository):
                    tags |= self._tags_of(source, repository)
        return tags

    def _tags_of(self, source: SourceConfig, repository: str) -> set[str]:
        """Every tag of a source repository (one listing, cached; its digests are not asked for)."""
        key = (source.name, repository)
        if key not in self._source_tags:
            listed: set[str] = set()

            def note(tag: str) -> bool:
                listed.add(tag)
                return False  # the tag alone is wanted: no image (nor a HEAD for its digest)

            for _ in self._source_inventory(source).images(repository, note):
                pass
            self._source_tags[key] = listed
        return self._source_tags[key]

    def _source_inventory(self, source: SourceConfig) -> SourceInventory:
        if source.name not in self._sources:
            self._sources[source.name] = self.inventories.source(source)
        return self._sources[source.name]

    def _targets(
        self, repository: str, tag: str, digest: str, listing: Target, source: SourceConfig
    ) -> list[Target]:
        """The delete targets the live workflow would plan for `tag` at the listing's account/Region (rules,
        opt-in) for an image of `source`."""
        request = ReplicationRequest(
            repository=repository,
            tag=tag,
            digest=digest,
            action="delete",
            destinations=[DestinationRef(account=listing.account, region=listing.region)],
            source_account=source.account,
            source_region=source.region,
        )
        return plan(request, self.config).targets

    def apply(self, action: Action) -> None:
        """Remove the action's tag where it still points at the listed digest; the outcome in `action.outcome`."""
        target = action.targets[0]
        session = None
        if ecr_registry_of(target.registry) is not None:  # ECR, or an endpoint standing for it
            session = self.clients.session_for(
                target.role_arn, target.external_id, target.credentials, target.region
            )
        result = deletes.delete_tag(target, session, insecure_registries=self.insecure, check_source=False)
        action.outcome = f"{result.action} ({result.reason})" if result.reason else result.action
        action.status = "done"
