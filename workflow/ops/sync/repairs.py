"""Sync's repairs made from the sync process itself: a tag put in place, and (`local`) a direct copy."""

from __future__ import annotations

from typing import Any

from workflow.core.exceptions import ReplicationError
from workflow.engine import ecr
from workflow.engine.copier import copy_image, probe_destination
from workflow.models.payloads import Target
from workflow.ops.inventory import AwsClients, EcrDestination, Inventories
from workflow.ops.sync.actions import Action
from workflow.registry.auth import ecr_host_parts, ecr_registry_of


class DirectRepairs:
    """Tags and copies one sync makes without an execution, through the destination roles."""

    def __init__(
        self, inventories: Inventories, clients: AwsClients, insecure: tuple[str, ...] | list[str]
    ) -> None:
        self.inventories = inventories
        self.clients = clients
        self.insecure = insecure

    def tag(self, action: Action) -> None:
        """Put the tag where the digest already is (ECR: PutImage of its manifest; a registry: the probe's put)."""
        for target in action.targets:
            destination = self.inventories.destination(target)
            if isinstance(destination, EcrDestination):
                destination.put_tag(target.repository, target.tag, action.digest)
                continue
            result = probe_destination(
                target.source_image,
                target.destination_reference,
                destination_session=self._session(target),
                source_session=self._source_session(action),
                insecure_registries=self.insecure,
            )
            if result.action == "copy-needed":
                raise ReplicationError(f"{target.destination_reference}: the digest vanished before tagging")
        action.status = "done"

    def _session(self, target: Target) -> Any:
        """The destination role's session where the registry is ECR or stands for it (its token is the
        role's), else None."""
        if ecr_registry_of(target.registry) is None:
            return None
        return self.clients.session_for(
            target.role_arn, target.external_id, target.credentials, target.region
        )

    def copy(self, action: Action) -> None:
        """Copy one target here with the copy engine (`local`), creating its ECR repository first."""
        target = action.targets[0]
        session = self._session(target)
        if ecr_host_parts(target.registry) is not None and target.create_repository is not None:
            ecr.ensure_repository(
                session,
                target.region,
                target.repository,
                target.create_repository,
                registry_id=target.account,
            )
        copy_image(
            target.source_image,
            target.destination_reference,
            source_session=self._source_session(action),
            destination_session=session,
            insecure_registries=self.insecure,
        )
        action.status = "done"

    def _source_session(self, action: Action) -> Any:
        """The session that reads the action's source: the base one, or a source's read-only role's."""
        return self.clients.session_for(action.targets[0].source_role_arn)
