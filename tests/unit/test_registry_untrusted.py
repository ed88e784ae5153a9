"""Values from a registry are checked before use; realms, manifest trees and the PUT pace are bounded."""

from __future__ import annotations

import re

import pytest
import urllib3

from workflow.core.exceptions import RegistryAuthError, RegistryProtocolError, RegistryTimeout
from workflow.engine.copier import _Copier
from workflow.registry import paths
from workflow.registry.auth import Authenticator, Credentials
from workflow.registry.client import RegistryClient
from workflow.registry.listing import _next_target
from workflow.registry.media import OCI_INDEX, Manifest, parse_manifest
from workflow.registry.pacing import TokenBucket
from workflow.registry.reference import parse_reference

BASE = "https://reg.example.com"
UPLOADS = "/v2/app/blobs/uploads/"


@pytest.mark.parametrize(
    "location",
    [
        "https://evil.example.com/v2/app/blobs/uploads/x",
        "http://reg.example.com/v2/app/blobs/uploads/x",
        "/v2/other/blobs/uploads/x",
        "/v2/app/blobs/uploads/../../../other/blobs/uploads/x",
        "/v2/app/blobs/uploads/%2e%2e/x",
        "/v2/app/blobs/uploads/a%2F..%2Fb",
    ],
)
def test_an_upload_location_off_the_repository_is_refused(location: str) -> None:
    # Given a Location elsewhere, When checked, Then RegistryProtocolError names it
    with pytest.raises(RegistryProtocolError, match="refusing URL"):
        paths.same_endpoint(BASE, BASE + UPLOADS, location, UPLOADS, "upload Location")


def test_an_upload_location_in_the_repository_is_made_absolute() -> None:
    # Given ECR-style absolute and docker-style relative Locations, Then both resolve on the same origin
    absolute = f"{BASE}/v2/app/blobs/uploads/abc?_state=x"
    assert paths.same_endpoint(BASE, BASE + UPLOADS, absolute, UPLOADS, "w") == absolute
    assert paths.same_endpoint(BASE, BASE + UPLOADS, "/v2/app/blobs/uploads/abc", UPLOADS, "w") == (
        f"{BASE}/v2/app/blobs/uploads/abc"
    )


@pytest.mark.parametrize(
    ("check", "value"),
    [
        (paths.tag, "../../x"),
        (paths.tag, "a" * 129),
        (paths.digest, "sha256:../x"),
        (paths.digest, "md5:" + "a" * 32),
        (paths.media_type, "text/plain\r\nX-Injected: 1"),
        (paths.size, -1),
        (paths.size, True),
        (paths.size, "12"),
        (paths.repository, "app/../other"),
    ],
)
def test_values_outside_the_distribution_grammar_are_refused_and_cut(check: object, value: object) -> None:
    # Given a value a registry might send, When checked, Then RegistryProtocolError quotes it, cut
    with pytest.raises(RegistryProtocolError, match="refusing") as error:
        check(value, "reg/app")  # type: ignore[operator]
    assert len(str(error.value)) < 300


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ('</v2/_catalog?last=b&n=2>; rel="next"', "/v2/_catalog?last=b&n=2"),
        ('</v2/_catalog?last=a>; rel="prev", </v2/_catalog?last=c>; rel="next"', "/v2/_catalog?last=c"),
        ("", None),
        ('</v2/_catalog?last=b>; rel="prev"', None),
    ],
)
def test_next_link_reads_rfc8288_headers(link: str, expected: str | None) -> None:
    # Given a Link header When read Then the next URL, or None
    assert _next_target(link) == expected


def _authenticator(registry: str, credentials: Credentials | None, insecure: bool = False) -> Authenticator:
    authenticator = Authenticator(registry, urllib3.PoolManager(), credentials=credentials, insecure=insecure)
    authenticator._fetch_token = lambda scope: "token"  # type: ignore[method-assign]
    return authenticator


CREDENTIALS = Credentials("u", "p")


@pytest.mark.parametrize(
    ("registry", "realm"),
    [
        ("reg.example.com", "https://reg.example.com/token"),
        ("reg.example.com:5000", "https://reg.example.com:5001/token"),
        ("registry-1.docker.io", "https://auth.docker.io/token"),
    ],
)
def test_credentials_go_to_the_registrys_own_realm(registry: str, realm: str) -> None:
    # Given credentials and a realm on the registry's host (or its known token service), Then it is used
    assert _authenticator(registry, CREDENTIALS).challenge(f'Bearer realm="{realm}"', "repository:a:pull")


def test_credentials_never_go_to_a_realm_on_another_host() -> None:
    # Given credentials and a realm on another host, Then the challenge is refused, naming the realm
    with pytest.raises(
        RegistryAuthError, match=re.escape("'https://collector.example/t' is on another host")
    ):
        _authenticator("reg.example.com", CREDENTIALS).challenge(
            'Bearer realm="https://collector.example/t"', "repository:a:pull"
        )
    # And without credentials there is nothing to leak: an anonymous token may come from anywhere HTTPS
    assert _authenticator("reg.example.com", None).challenge(
        'Bearer realm="https://auth.example/t"', "repository:a:pull"
    )


class _SelfListing(RegistryClient):
    """A source whose index lists itself (digest checks aside): the tree walk must end at once."""

    def __init__(self, index: Manifest) -> None:
        super().__init__("reg.example.com")
        self.index = index
        self.fetched = 0

    def get_manifest(self, repository: str, reference: str) -> Manifest | None:
        self.fetched += 1
        return self.index


def test_an_index_listing_itself_ends_at_once_in_a_named_error() -> None:
    # Given an index whose child is its own digest
    digest = "sha256:" + "c" * 64
    raw = b'{"schemaVersion":2,"manifests":[{"mediaType":"%s","digest":"%s","size":1}]}' % (
        OCI_INDEX.encode(),
        digest.encode(),
    )
    index = parse_manifest(raw, OCI_INDEX, digest, "reg/app")
    source = _SelfListing(index)
    ref = parse_reference("reg.example.com/app:v1")
    # When its tree is walked, Then RegistryProtocolError says so before anything is fetched
    with pytest.raises(RegistryProtocolError, match="lists itself"):
        _Copier(source, source, ref, ref, None, 1, "put").fetch_tree(index)
    assert source.fetched == 0


def test_the_put_bucket_paces_and_holds() -> None:
    # Given a bucket of 10 a second, burst 2, on a fake clock
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(round(seconds, 3))
        now[0] += seconds

    bucket = TokenBucket(10, burst=2, clock=lambda: now[0], sleep=sleep)
    # When 4 slots are taken at once, Then two pass and the others wait 0.1 s each
    for _ in range(4):
        bucket.acquire("put")
    assert slept == [0.1, 0.1]
    # When the registry says it throttles for 1 s, Then the next slot waits that long
    bucket.hold(1.0)
    bucket.acquire("put")
    assert slept[-1] == pytest.approx(1.0, abs=0.01)
    # And a slot past the copy's deadline is RegistryTimeout, not a wait
    bucket.hold(5.0)
    with pytest.raises(RegistryTimeout, match="deadline"):
        bucket.acquire("put", deadline=now[0] + 1.0)
