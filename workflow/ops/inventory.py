"""What the source holds and what each destination already has, listed in few API calls.

Sources and destinations are either Amazon ECR (DescribeRepositories / DescribeImages, paginated, one
listing per repository, of every image status: an image in the archive storage class is listed only when
the filter asks for it, and cannot be pulled, so each image says its `imageStatus`) or a plain distribution registry (the config's `endpoints`, used by the local
runtime): `/v2/_catalog` and `/v2/<name>/tags/list` with `Link` pagination, and a HEAD per manifest.

Clients are injected: `AwsClients` makes boto3 clients per Region and role (assuming destination roles
through STS once per run: their credentials renew themselves), so tests pass moto-backed sessions
and the benchmark counts calls through `on_client`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NamedTuple, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from workflow.core.exceptions import RegistryAuthError, RegistryProtocolError
from workflow.core.partitions import partition_of
from workflow.engine.ecr import ARCHIVED_STATUSES
from workflow.engine.roles import destination_session
from workflow.models.config import ReplicationConfig, SourceConfig
from workflow.models.payloads import CredentialsSecret, Target
from workflow.registry.auth import ecr_host_parts
from workflow.registry.client import RegistryClient
from workflow.registry.factory import make_client

# archived: the destination holds the image in the archive storage class; a push would restore it, so it is
# left alone.
Decision = Literal["present", "tagged", "missing", "archived"]
BOTO_CONFIG = Config(retries={"mode": "adaptive", "max_attempts": 10}, user_agent_extra="ecr-replicate-sync")
PAGE_SIZE = 1000
SESSION_NAME = "ecr-replicate-sync"


@dataclass(frozen=True)
class TagState:
    """What a destination tag points at, and when that image was pushed there (ECR only)."""

    digest: str
    pushed_at: datetime | None = None
    archived: bool = False  # in ECR's archive storage class at the destination


@dataclass(frozen=True)
class SourceImage:
    """One tag of one source repository; `status` is ECR's imageStatus (ARCHIVED and ACTIVATING images
    cannot be pulled: they are not copied until restored)."""

    repository: str
    tag: str
    digest: str
    pushed_at: datetime | None = None
    status: str = "ACTIVE"

    @property
    def archived(self) -> bool:
        """True when the image is in the archive storage class, or on its way back from it."""
        return self.status in ARCHIVED_STATUSES


class _Access(NamedTuple):
    """How a session is had: the role, its ExternalId and, in another partition, the secret and STS Region."""

    role_arn: str
    external_id: str | None
    credentials: CredentialsSecret | None
    region: str | None


class AwsClients:
    """boto3 clients per (service, Region, role), cached; destination roles are assumed through STS."""

    def __init__(
        self,
        session: Any = None,
        *,
        config: Config = BOTO_CONFIG,
        on_client: Callable[[Any], None] | None = None,
    ) -> None:
        self.session = session or boto3.Session()
        self.config = config
        self.on_client = on_client
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, str, _Access | None], Any] = {}
        self._sessions: dict[_Access, Any] = {}

    def session_for(
        self,
        role_arn: str | None = None,
        external_id: str | None = None,
        credentials: CredentialsSecret | None = None,
        region: str | None = None,
    ) -> Any:
        """The base session, or a session holding the role's credentials (they renew themselves); a role in
        another partition is assumed in `region` with the key pair its `credentials` secret holds."""
        if role_arn is None:
            return self.session
        key = _Access(role_arn, external_id, credentials, region if credentials else None)
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                session = self._assume(key)
                self._sessions[key] = session
            return session

    def _assume(self, access: _Access) -> Any:
        secret = access.credentials
        return destination_session(
            access.role_arn,
            SESSION_NAME,
            external_id=access.external_id,
            region=access.region,
            secret_id=secret.secret_id if secret else None,
            secret_region=secret.region if secret else None,
            sts_client=None if secret else self._client("sts", None, None),
            secrets_client=self._client("secretsmanager", secret.region, None) if secret else None,
        )

    def client(
        self,
        service: str,
        region: str | None,
        role_arn: str | None = None,
        external_id: str | None = None,
        credentials: CredentialsSecret | None = None,
    ) -> Any:
        """A client for `service` in `region`, through `role_arn` when given (with `credentials` in another
        partition)."""
        if role_arn is None:
            with self._lock:
                return self._client(service, region, None)
        self.session_for(role_arn, external_id, credentials, region)
        with self._lock:
            return self._client(
                service, region, _Access(role_arn, external_id, credentials, region if credentials else None)
            )

    def _client(self, service: str, region: str | None, access: _Access | None) -> Any:
        key = (service, region or "", access)
        client = self._clients.get(key)
        if client is None:
            session = self.session if access is None else self._sessions[access]
            client = session.client(service, region_name=region, config=self.config)  # type: ignore[call-overload]
            if self.on_client:
                self.on_client(client)
            self._clients[key] = client
        return client


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class SourceInventory(Protocol):
    """Lists the source's repositories and their tagged images."""

    def repositories(self) -> Iterator[str]:
        """Every repository name."""
        ...

    def images(self, repository: str, accept: Callable[[str], bool]) -> Iterator[SourceImage]:
        """Every (tag, digest) of `repository` whose tag `accept` keeps."""
        ...


class DestinationInventory(Protocol):
    """Says, per tag, whether a destination repository already has an image."""

    def decide(self, repository: str, tag: str, digest: str) -> Decision:
        """Decide "present" (same digest under the tag), "tagged" (digest there, tag not) or "missing"."""
        ...

    def lookup(self, repository: str, tag: str) -> TagState | None:
        """What `tag` points at in `repository` (None when the tag is not there)."""
        ...

    def tags(self, repository: str) -> dict[str, str]:
        """Every tag of `repository` and the digest it points at (empty when the repository does not exist)."""
        ...


class EcrSource:
    """An ECR registry as a source: one DescribeRepositories listing, one DescribeImages listing per repo."""

    def __init__(self, client: Any, registry_id: str) -> None:
        self.client = client
        self.registry_id = registry_id

    def repositories(self) -> Iterator[str]:
        """Every repository of the registry (paginated)."""
        paginator = self.client.get_paginator("describe_repositories")
        for page in paginator.paginate(registryId=self.registry_id, PaginationConfig={"PageSize": PAGE_SIZE}):
            for repository in page["repositories"]:
                yield repository["repositoryName"]

    def images(self, repository: str, accept: Callable[[str], bool]) -> Iterator[SourceImage]:
        """Every accepted tag of `repository` with its digest, push time and status (archived ones too)."""
        paginator = self.client.get_paginator("describe_images")
        pages = paginator.paginate(
            registryId=self.registry_id,
            repositoryName=repository,
            filter={"tagStatus": "TAGGED", "imageStatus": "ANY"},
            PaginationConfig={"PageSize": PAGE_SIZE},
        )
        for page in pages:
            for detail in page["imageDetails"]:
                for tag in detail.get("imageTags") or ():
                    if accept(tag):
                        yield SourceImage(
                            repository,
                            tag,
                            detail["imageDigest"],
                            detail.get("imagePushedAt"),
                            detail.get("imageStatus") or "ACTIVE",
                        )


@dataclass
class _RepositoryState:
    tags: dict[str, str] = field(default_factory=dict)
    digests: set[str] = field(default_factory=set)
    pushed: dict[str, datetime] = field(default_factory=dict)
    archived: set[str] = field(default_factory=set)  # digests in the archive storage class


class EcrDestination:
    """An ECR registry as a destination: ONE DescribeImages listing per repository, then lookups."""

    def __init__(self, client: Any, registry_id: str) -> None:
        self.client = client
        self.registry_id = registry_id
        self._lock = threading.Lock()
        self._states: dict[str, _RepositoryState] = {}

    def state(self, repository: str) -> _RepositoryState:
        """Tags -> digest and every digest of `repository` (empty when it does not exist yet)."""
        with self._lock:
            if repository not in self._states:
                self._states[repository] = self._list(repository)
            return self._states[repository]

    def _list(self, repository: str) -> _RepositoryState:
        state = _RepositoryState()
        paginator = self.client.get_paginator("describe_images")
        try:
            for page in paginator.paginate(
                registryId=self.registry_id,
                repositoryName=repository,
                filter={"imageStatus": "ANY"},
                PaginationConfig={"PageSize": PAGE_SIZE},
            ):
                for detail in page["imageDetails"]:
                    state.digests.add(detail["imageDigest"])
                    if detail.get("imageStatus") in ARCHIVED_STATUSES:
                        state.archived.add(detail["imageDigest"])
                    if detail.get("imagePushedAt"):
                        state.pushed[detail["imageDigest"]] = detail["imagePushedAt"]
                    for tag in detail.get("imageTags") or ():
                        state.tags[tag] = detail["imageDigest"]
        except ClientError as error:
            if _error_code(error) != "RepositoryNotFoundException":
                raise
        return state

    def decide(self, repository: str, tag: str, digest: str) -> Decision:
        """Decide from the cached listing of `repository`."""
        state = self.state(repository)
        if digest in state.archived:
            return "archived"
        if state.tags.get(tag) == digest:
            return "present"
        return "tagged" if digest in state.digests else "missing"

    def lookup(self, repository: str, tag: str) -> TagState | None:
        """From the cached listing of `repository`."""
        state = self.state(repository)
        digest = state.tags.get(tag)
        return (
            None if digest is None else TagState(digest, state.pushed.get(digest), digest in state.archived)
        )

    def tags(self, repository: str) -> dict[str, str]:
        """From the cached listing of `repository`."""
        return dict(self.state(repository).tags)

    def put_tag(self, repository: str, tag: str, digest: str) -> None:
        """Put `tag` on the image `digest` already in `repository` (PutImage with its own manifest)."""
        response = self.client.batch_get_image(
            registryId=self.registry_id,
            repositoryName=repository,
            imageIds=[{"imageDigest": digest}],
        )
        images = response.get("images") or []
        if not images:
            raise RegistryProtocolError(
                f"{self.registry_id}/{repository}: image {digest} vanished before tagging"
            )
        image = images[0]
        arguments: dict[str, Any] = {
            "registryId": self.registry_id,
            "repositoryName": repository,
            "imageTag": tag,
            "imageManifest": image["imageManifest"],
            "imageDigest": digest,
        }
        if image.get("imageManifestMediaType"):
            arguments["imageManifestMediaType"] = image["imageManifestMediaType"]
        self.client.put_image(**arguments)
        with self._lock:
            state = self._states.get(repository)
            if state is not None:
                state.tags[tag] = digest


class RegistrySource:
    """A distribution registry as a source: the catalog, tag lists, and a HEAD per accepted tag."""

    def __init__(self, client: RegistryClient) -> None:
        self.client = client

    def repositories(self) -> Iterator[str]:
        """Every repository in `/v2/_catalog` (bounded `Link` pagination, each name checked)."""
        yield from self.client.list_repositories(PAGE_SIZE)

    def images(self, repository: str, accept: Callable[[str], bool]) -> Iterator[SourceImage]:
        """Every accepted tag of `repository`, with the digest from a HEAD (no push time: registries lack it)."""
        for tag in self.client.list_tags(repository):
            if not accept(tag):
                continue
            digest = self.client.head_manifest(repository, tag)
            if digest is not None:
                yield SourceImage(repository, tag, digest)


class RegistryDestination:
    """A distribution registry as a destination: a HEAD of the tag, then of the digest (precheck logic)."""

    def __init__(self, client: RegistryClient) -> None:
        self.client = client

    def decide(self, repository: str, tag: str, digest: str) -> Decision:
        """Decide with at most two HEAD requests."""
        if self.client.head_manifest(repository, tag) == digest:
            return "present"
        return "tagged" if self.client.head_manifest(repository, digest) == digest else "missing"

    def lookup(self, repository: str, tag: str) -> TagState | None:
        """One HEAD of the tag (registries report no push time)."""
        digest = self.client.head_manifest(repository, tag)
        return None if digest is None else TagState(digest)

    def tags(self, repository: str) -> dict[str, str]:
        """The tag list, then a HEAD per tag."""
        listed = {
            tag: self.client.head_manifest(repository, tag) for tag in self.client.list_tags(repository)
        }
        return {tag: digest for tag, digest in listed.items() if digest is not None}


class Inventories:
    """The source inventory of each source of a config, and one destination inventory per account/Region and role.

    Destination listings are cached for the life of this object (one listing per repository); their ECR
    clients' role credentials renew themselves (see `workflow.engine.roles`).
    """

    def __init__(self, config: ReplicationConfig, clients: AwsClients, *, as_operator: bool = False) -> None:
        self.config = config
        self.clients = clients
        self.as_operator = as_operator
        self.insecure = tuple(sorted(e.registry for e in config.endpoints if e.insecure))
        self._destinations: dict[tuple[str, ...], DestinationInventory] = {}

    def source_is_registry(self, source: SourceConfig | None = None) -> bool:
        """True when a source (default: the home one) is a plain distribution registry (an `endpoints` entry)."""
        source = source or self.config.source
        registry, _ = self.config.endpoint(source.account, source.region)
        return ecr_host_parts(registry) is None

    def source_session(self, source: SourceConfig) -> Any:
        """The session that reads `source`: the base one, or in another account than the home one its read-only
        role's (assumed once, renewed by itself)."""
        return self.clients.session_for(self.config.source_role_arn(source))

    def source(self, source: SourceConfig | None = None) -> SourceInventory:
        """The inventory of a source (default: the home one): ECR through the base session (its read-only role
        in another account), or a registry endpoint."""
        source = source or self.config.source
        registry, insecure = self.config.endpoint(source.account, source.region)
        if ecr_host_parts(registry) is None:
            # A listing in place of ECR's DescribeImages (the local runtime): no registry token (ecr_token).
            return RegistrySource(
                make_client(registry, insecure_registries=self.insecure if insecure else (), ecr_token=False)
            )
        client = self.clients.client("ecr", source.region, self.config.source_role_arn(source))
        return EcrSource(client, source.account)

    def destination(self, target: Target) -> DestinationInventory:
        """The destination inventory of a target's account/Region, shared by every repository there."""
        if ecr_host_parts(target.registry) is None:
            key: tuple[str, ...] = ("registry", target.registry)
            if key not in self._destinations:
                client = make_client(target.registry, insecure_registries=self.insecure, ecr_token=False)
                self._destinations[key] = RegistryDestination(client)
        else:
            role_arn, external_id, credentials = self._access(target)
            secret = credentials.secret_id if credentials else ""
            key = ("ecr", target.account, target.region, role_arn, external_id or "", secret)
            if key not in self._destinations:
                client = self.clients.client("ecr", target.region, role_arn, external_id, credentials)
                self._destinations[key] = EcrDestination(client, target.account)
        return self._destinations[key]

    def _access(self, target: Target) -> tuple[str, str | None, CredentialsSecret | None]:
        """The role (ExternalId, credentials secret) a destination is read through: the destination role, or
        for an operator the read-only role its destination stack creates for the config's operators."""
        if not self.as_operator:
            return target.role_arn, target.external_id, target.credentials
        operators = self.config.operators
        if operators is None:
            raise RegistryAuthError("reading as an operator needs `operators` in the config")
        if target.credentials is not None:
            # No role can be assumed across partitions, and an operator does not hold the stored key pair.
            raise RegistryAuthError(
                f"{target.account}/{target.region} is in another partition: an operator of the source account "
                "cannot read it (the reconciliation reads it, with its stored key pair)"
            )
        return partition_of(target.region).role_arn(target.account, operators.role_name), None, None
