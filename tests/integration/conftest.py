"""Fixtures: real docker-registry instances (anonymous, htpasswd, token) on loopback, a fault proxy,
image builders and skopeo as an independent digest oracle; `copy_between`, the copy the tests share, and
`copying`, the setup most copy tests start from."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.integration.faults import FaultProxy
from tests.integration.images import ImageBuilder, TokenAuth
from tests.integration.registries import PASSWORD, USERNAME, RegistryServer, skopeo_digest
from workflow.engine.copier import CopyOutcome, copy_image
from workflow.registry.auth import AUTH_ENV


def copy_between(
    source: RegistryServer | FaultProxy,
    destination: RegistryServer | FaultProxy,
    reference: str,
    to: str | None = None,
    **options: Any,
) -> CopyOutcome:
    """Copy `reference` (`repo:tag`, `repo@digest` or `repo:tag@digest`) from `source` to `destination`, as `to`
    there (by default the same reference), both spoken to over plain HTTP; `options` go to the engine."""
    return copy_image(
        f"{source.host}/{reference}",
        f"{destination.host}/{to or reference}",
        insecure_registries=(source.host, destination.host),
        **options,
    )


@dataclass
class Copying:
    """What most copy tests start from: the anonymous source registry and its image builder, the anonymous
    destination registry, and a repository no other test uses."""

    builder: ImageBuilder
    source: RegistryServer
    destination: RegistryServer
    repo: str

    def copy(self, reference: str = ":v1", to: str | None = None, **options: Any) -> CopyOutcome:
        """Copy `repo` + `reference` (`:tag`, `@digest` or `:tag@digest`) from the source to the destination, as
        `repo` + `to` there (by default the same reference); `options` go to the engine."""
        target = None if to is None else self.repo + to
        return copy_between(self.source, self.destination, self.repo + reference, target, **options)

    def digest_at(self, reference: str) -> str | None:
        """The digest skopeo reads for `repo` + `reference` (`:tag` or `@digest`) at the destination, or None."""
        return skopeo_digest(f"{self.destination.host}/{self.repo}{reference}", self.destination)


def _serve(
    factory: pytest.TempPathFactory, name: str, auth: str, *, tls: bool = False
) -> Iterator[RegistryServer]:
    server = RegistryServer.start(factory.mktemp(name), auth, tls=tls)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def source_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """An anonymous registry holding the images to copy."""
    yield from _serve(tmp_path_factory, "source", "none")


@pytest.fixture(scope="session")
def dest_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """An anonymous destination registry."""
    yield from _serve(tmp_path_factory, "dest", "none")


@pytest.fixture(scope="session")
def basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """A registry with htpasswd basic auth (USERNAME / PASSWORD)."""
    yield from _serve(tmp_path_factory, "basic", "htpasswd")


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """A registry with token auth; its issuer (server.issuer) checks USERNAME / PASSWORD."""
    yield from _serve(tmp_path_factory, "token", "token")


@pytest.fixture(scope="session")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """An anonymous registry serving HTTPS with a certificate from a throwaway CA (server.tls.ca)."""
    yield from _serve(tmp_path_factory, "tls", "none", tls=True)


@pytest.fixture
def registry_auth(
    monkeypatch: pytest.MonkeyPatch, basic_registry: RegistryServer, token_registry: RegistryServer
) -> None:
    """Credentials for the basic and token registries in ECR_REPLICATE_REGISTRY_AUTH."""
    entry = {"username": USERNAME, "password": PASSWORD}
    monkeypatch.setenv(AUTH_ENV, json.dumps({basic_registry.host: entry, token_registry.host: entry}))


@pytest.fixture
def repo() -> str:
    """A repository name no other test uses."""
    return f"test/{uuid.uuid4().hex[:12]}"


@pytest.fixture
def builder(source_registry: RegistryServer) -> Iterator[ImageBuilder]:
    """Builds test images in the source registry."""
    image_builder = ImageBuilder(source_registry.url)
    yield image_builder
    image_builder.close()


@pytest.fixture
def copying(
    builder: ImageBuilder, source_registry: RegistryServer, dest_registry: RegistryServer, repo: str
) -> Copying:
    """The source (with its builder), the destination and a fresh repository, copied between with `copy`."""
    return Copying(builder, source_registry, dest_registry, repo)


@pytest.fixture
def builder_for() -> Iterator[Callable[[RegistryServer], ImageBuilder]]:
    """Builds test images in any of the registries (authenticating when needed)."""
    made: list[ImageBuilder] = []

    def make(server: RegistryServer) -> ImageBuilder:
        made.append(
            ImageBuilder(server.url, TokenAuth(USERNAME, PASSWORD) if server.auth != "none" else None)
        )
        return made[-1]

    yield make
    for image_builder in made:
        image_builder.close()


@pytest.fixture
def proxy_for() -> Iterator[Callable[[RegistryServer], FaultProxy]]:
    """A fault-injecting proxy in front of a registry, stopped after the test."""
    proxies: list[FaultProxy] = []

    def make(server: RegistryServer) -> FaultProxy:
        proxies.append(FaultProxy(server.host))
        return proxies[-1]

    yield make
    for proxy in proxies:
        proxy.stop()
