"""Retry policy and manifest parsing."""

from __future__ import annotations

import json
import ssl

import pytest

from workflow.core.exceptions import RegistryProtocolError, RegistryUnavailable
from workflow.registry.media import DOCKER_MANIFEST, OCI_INDEX, parse_manifest, sha256_digest
from workflow.registry.retry import RetryPolicy, TransientError, parse_retry_after, transport_fault


def test_transient_errors_are_retried_then_reported() -> None:
    # Given an operation that always fails transiently
    sleeps: list[float] = []

    def failing() -> None:
        raise TransientError("HTTP 503", retry_after=2)

    # When run with three attempts, Then it waited per Retry-After and raised naming the operation
    with pytest.raises(
        RegistryUnavailable, match=r"blob sha256:x to r: HTTP 503 \(gave up after 3 attempts\)"
    ):
        RetryPolicy(attempts=3).run(failing, "blob sha256:x to r", sleep=sleeps.append)
    assert sleeps == [2, 2]


def test_backoff_grows_with_jitter_and_a_cap() -> None:
    # Given a policy, Then each delay lies between half and all of its exponential ceiling, capped
    policy = RetryPolicy(base_delay=1, max_delay=5)
    for attempt, ceiling in [(1, 1), (2, 2), (3, 4), (4, 5), (8, 5)]:
        assert ceiling / 2 <= policy.delay(attempt) <= ceiling
    assert policy.delay(1, retry_after=1000) == policy.max_retry_after


def test_success_after_a_transient_fault_returns_the_value() -> None:
    # Given an operation failing once, When run, Then its value comes back after one sleep
    calls = iter([TransientError("reset"), "ok"])

    def flaky() -> str:
        item = next(calls)
        if isinstance(item, Exception):
            raise item
        return item

    sleeps: list[float] = []
    assert RetryPolicy().run(flaky, "x", sleep=sleeps.append) == "ok"
    assert len(sleeps) == 1


def test_retry_after_parsing() -> None:
    # Given header values, Then seconds parse and dates or absence give None
    assert (parse_retry_after("3"), parse_retry_after(None), parse_retry_after("Wed, 21 Oct 2015")) == (
        3.0,
        None,
        None,
    )


def test_a_wrapped_connection_failure_is_transient_and_keeps_its_reason() -> None:
    # Given a client error wrapping a refused connection (as urllib3 wraps it)
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except OSError as refused:
            raise RuntimeError("Failed to establish a new connection") from refused
    except RuntimeError as wrapped:
        # When classified, Then it is retried and the reason survives
        fault = transport_fault(wrapped, "reg: GET /v2/")
    assert isinstance(fault, TransientError)
    assert str(fault) == "reg: GET /v2/ failed: RuntimeError (Connection refused)"


def test_an_untrusted_certificate_is_final() -> None:
    # Given a verification failure carried as the argument of a client error
    refused = ssl.SSLCertVerificationError(1, "certificate verify failed")
    refused.verify_message = "self-signed certificate"
    # When classified, Then it is not retried and says what to do
    fault = transport_fault(OSError(refused), "reg: GET /v2/")
    assert isinstance(fault, RegistryProtocolError)
    assert "TLS certificate not trusted (self-signed certificate)" in str(fault)


def test_index_and_manifest_parse() -> None:
    # Given an OCI index and a Docker manifest
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": DOCKER_MANIFEST,
                    "digest": "sha256:" + "1" * 64,
                    "size": 10,
                    "platform": {"os": "linux", "architecture": "arm", "variant": "v7"},
                }
            ],
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "digest": "sha256:" + "2" * 64,
                "size": 3,
            },
            "layers": [
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "digest": "sha256:" + "3" * 64,
                    "size": 4,
                }
            ],
        }
    ).encode()
    # When parsed, Then children, platforms and blobs come out
    parsed_index = parse_manifest(index, None, sha256_digest(index), "r")
    parsed_manifest = parse_manifest(manifest, "application/json", sha256_digest(manifest), "r")
    assert parsed_index.is_index
    assert parsed_index.children[0].platform == "linux/arm/v7"
    assert [b.size for b in parsed_manifest.blobs] == [3, 4]
    assert parsed_manifest.descriptor().size == len(manifest)


@pytest.mark.parametrize("raw", [b"not json", b"[]", b'{"schemaVersion": 1, "fsLayers": []}'])
def test_unsupported_manifests_raise(raw: bytes) -> None:
    # Given bytes that are no supported manifest, When parsed, Then RegistryProtocolError names the registry
    with pytest.raises(RegistryProtocolError, match=r"^reg/app"):
        parse_manifest(raw, None, "sha256:x", "reg/app")
