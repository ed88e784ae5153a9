"""Fixtures: real docker-registry instances (anonymous, htpasswd, token) on loopback, a fault proxy,
image builders and skopeo as an independent digest oracle."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.integration.faults import FaultProxy
from tests.integration.images import ImageBuilder, TokenAuth
from tests.integration.registries import PASSWORD, USERNAME, RegistryServer
from workflow.registry.auth import AUTH_ENV


@pytest.fixture(scope="session")
def source_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """An anonymous registry holding the images to copy."""
    server = RegistryServer.start(tmp_path_factory.mktemp("source"), "none")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def dest_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """An anonymous destination registry."""
    server = RegistryServer.start(tmp_path_factory.mktemp("dest"), "none")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """A registry with htpasswd basic auth (USERNAME / PASSWORD)."""
    server = RegistryServer.start(tmp_path_factory.mktemp("basic"), "htpasswd")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """A registry with token auth; its issuer (server.issuer) checks USERNAME / PASSWORD."""
    server = RegistryServer.start(tmp_path_factory.mktemp("token"), "token")
    yield server
    server.stop()


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
