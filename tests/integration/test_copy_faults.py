"""Fault injection through a proxy: transient faults end in a correct copy, corruption in DigestMismatch."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from tests.integration.conftest import copy_between
from tests.integration.faults import Fault, FaultProxy
from tests.integration.images import ImageBuilder
from tests.integration.registries import (
    PASSWORD,
    USERNAME,
    RegistryServer,
    blob_files,
    skopeo_digest,
    skopeo_raw,
)
from workflow.core.exceptions import DigestMismatch, RegistryAuthError, RegistryUnavailable
from workflow.registry.retry import RetryPolicy

pytestmark = pytest.mark.integration
FAST = RetryPolicy(attempts=4, base_delay=0.05, max_delay=0.2)
BLOB_GET = r"/blobs/sha256:[a-f0-9]{64}$"
LAYER = 300_000


@pytest.fixture
def setup(
    builder: ImageBuilder,
    source_registry: RegistryServer,
    dest_registry: RegistryServer,
    repo: str,
    proxy_for: Callable[[RegistryServer], FaultProxy],
) -> tuple[FaultProxy, FaultProxy, str, str]:
    """A two-platform image; proxies in front of the source and the destination."""
    pushed = builder.index(repo, "v1", layer_sizes=(LAYER, LAYER + 1))
    return proxy_for(source_registry), proxy_for(dest_registry), repo, pushed.digest


def _copy(src: FaultProxy, dst: FaultProxy, repo: str, retry: RetryPolicy = FAST) -> object:
    return copy_between(src, dst, f"{repo}:v1", retry=retry, max_parallel_blobs=3)


@pytest.mark.parametrize(
    ("side", "fault"),
    [
        ("source", Fault("GET", BLOB_GET, "status", times=3, status=500)),
        ("source", Fault("GET", BLOB_GET, "reset", times=2)),
        ("source", Fault("GET", BLOB_GET, "truncate", times=2)),
        ("source", Fault("GET", r"/manifests/", "status", times=2, status=502)),
        ("destination", Fault("PUT", r"/blobs/uploads/", "status", times=2, status=503)),
        ("destination", Fault("POST", r"/blobs/uploads/$", "status", times=2, status=500)),
        ("destination", Fault("HEAD", r"/blobs/", "reset", times=2)),
        ("destination", Fault("PUT", r"/manifests/", "status", times=1, status=500)),
    ],
    ids=[
        "blob-500",
        "blob-reset",
        "blob-truncated",
        "manifest-502",
        "upload-put-503",
        "upload-post-500",
        "head-reset",
        "manifest-put-500",
    ],
)
def test_transient_fault_ends_in_a_correct_copy(
    setup: tuple[FaultProxy, FaultProxy, str, str], dest_registry: RegistryServer, side: str, fault: Fault
) -> None:
    # Given a transient fault armed on one side
    src, dst, repo, digest = setup
    (src if side == "source" else dst).add(fault)
    # When the image is copied
    result = _copy(src, dst, repo)
    # Then the fault fired, and the copy is complete and byte-exact
    assert fault.hits == fault.times
    assert result.action == "copied"
    assert skopeo_digest(f"{dest_registry.host}/{repo}:v1") == digest


def test_retry_after_is_honoured_on_429(
    setup: tuple[FaultProxy, FaultProxy, str, str], dest_registry: RegistryServer
) -> None:
    # Given the source throttles the first manifest GET with Retry-After: 1
    src, dst, repo, digest = setup
    src.add(Fault("GET", r"/manifests/v1$", "status", status=429, headers={"Retry-After": "1"}))
    # When the image is copied
    started = time.monotonic()
    _copy(src, dst, repo)
    # Then the engine waited about a second and the copy is correct
    assert time.monotonic() - started >= 1.0
    assert skopeo_digest(f"{dest_registry.host}/{repo}:v1") == digest


def test_upload_retry_uses_a_fresh_upload_session(setup: tuple[FaultProxy, FaultProxy, str, str]) -> None:
    # Given the destination fails the first blob PUT
    src, dst, repo, _ = setup
    dst.add(Fault("PUT", r"/blobs/uploads/", "status", status=500))
    # When the image is copied
    result = _copy(src, dst, repo)
    # Then one more upload session was opened than blobs copied
    assert len(dst.requests("POST", r"/blobs/uploads/$")) == result.blobs_copied + 1


@pytest.mark.parametrize("path", [BLOB_GET, r"/manifests/sha256:"], ids=["blob", "platform-manifest"])
def test_corrupted_bytes_raise_digest_mismatch_and_write_no_manifest(
    setup: tuple[FaultProxy, FaultProxy, str, str], dest_registry: RegistryServer, path: str
) -> None:
    # Given the source corrupts every response for the path
    src, dst, repo, _ = setup
    src.add(Fault("GET", path, "corrupt", times=1000))
    blobs_before = blob_files(dest_registry)
    # When the image is copied, Then DigestMismatch names the digest and the source
    with pytest.raises(DigestMismatch, match=rf"sha256:[a-f0-9]{{64}}.*{src.host}"):
        _copy(src, dst, repo)
    # And no manifest was put at the destination, nor any corrupted blob stored
    assert not dst.requests("PUT", r"/manifests/")
    assert skopeo_raw(f"{dest_registry.host}/{repo}:v1") is None
    assert blob_files(dest_registry) == blobs_before


def test_persistent_5xx_raises_registry_unavailable_naming_blob_and_registry(
    setup: tuple[FaultProxy, FaultProxy, str, str],
) -> None:
    # Given the destination fails every blob upload
    src, dst, repo, _ = setup
    dst.add(Fault("PUT", r"/blobs/uploads/", "status", times=1000, status=503))
    # When the image is copied, Then RegistryUnavailable names the blob and the destination
    with pytest.raises(RegistryUnavailable, match=rf"blob sha256:[a-f0-9]{{64}} .* to {dst.host}/{repo}"):
        _copy(src, dst, repo, RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02))
    assert not dst.requests("PUT", r"/manifests/")


@pytest.mark.parametrize("kind", ["status", "reset"])
def test_a_fault_reading_a_single_image_config_is_retried(
    builder: ImageBuilder,
    source_registry: RegistryServer,
    dest_registry: RegistryServer,
    repo: str,
    proxy_for: Callable[[RegistryServer], FaultProxy],
    kind: str,
) -> None:
    # Given a single-platform image already copied, whose config blob (read for the platform) then fails once
    pushed = builder.image(repo, "v1", layer_sizes=(LAYER,))
    src, dst = proxy_for(source_registry), proxy_for(dest_registry)
    _copy(src, dst, repo)
    fault = src.add(Fault("GET", rf"/blobs/{pushed.blobs[0]}$", kind, status=503))
    # When the image is copied again
    result = _copy(src, dst, repo)
    # Then the read was retried and the copy reports the image present, with its platform
    assert fault.hits == 1
    assert (result.action, result.platforms) == ("present", ["linux/amd64"])


def test_credentials_are_not_offered_to_a_redirect_target_that_asks_for_them(
    builder_for: Callable[[RegistryServer], ImageBuilder],
    basic_registry: RegistryServer,
    dest_registry: RegistryServer,
    repo: str,
    proxy_for: Callable[[RegistryServer], FaultProxy],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a registry with basic auth whose blob downloads redirect to storage answering 401
    # with a bearer challenge of its own
    builder_for(basic_registry).image(repo, "v1", layer_sizes=(LAYER,))
    src = proxy_for(basic_registry)
    src.redirect_blobs = True
    src.storage_challenge = 'Bearer realm="http://127.0.0.1:9/token",service="storage"'
    monkeypatch.setenv(
        "ECR_REPLICATE_REGISTRY_AUTH",
        json.dumps({src.host: {"username": USERNAME, "password": PASSWORD}}),
    )
    # When the image is copied, Then it fails on the redirect target without asking its realm for a token
    with pytest.raises(RegistryAuthError, match=r"redirected to 127\.0\.0\.1:[0-9]+, which refused it"):
        _copy(src, proxy_for(dest_registry), repo)


def test_a_copy_whose_referrers_fail_puts_no_tag(setup: tuple[FaultProxy, FaultProxy, str, str]) -> None:
    # Given a source whose referrer lookups (the referrers API and the tag schema's tag list) keep failing
    src, dst, repo, digest = setup
    src.add(Fault("GET", r"/referrers/|/tags/list", "status", times=100, status=503))
    # When the image is copied
    with pytest.raises(RegistryUnavailable):
        _copy(src, dst, repo)
    # Then the destination holds the image by digest but not the tag: the tag is the copy's last write, so
    # a later precheck cannot take the half-done copy for "present" and skip its signatures
    assert skopeo_digest(f"{dst.upstream}/{repo}@{digest}") == digest
    assert skopeo_digest(f"{dst.upstream}/{repo}:v1") is None
    # And with the faults gone, a re-run completes it
    src.faults.clear()
    assert _copy(src, dst, repo).action == "tagged"  # type: ignore[attr-defined]
    assert skopeo_digest(f"{dst.upstream}/{repo}:v1") == digest
