"""A malicious registry and a throttling proxy of our own: everything a registry returns is untrusted,
every wait is bounded, racing writers and a busy ECR are absorbed (issue 11)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.integration.faults import Fault, FaultProxy, Throttle
from tests.integration.hostile import (
    OCI_INDEX,
    OCI_MANIFEST,
    HostileRegistry,
    answer,
    canonical,
    head_for,
    image_manifest,
    index_of,
    nested,
    trickle,
)
from tests.integration.images import ImageBuilder
from tests.integration.registries import RegistryServer, skopeo_digest
from workflow.cli import main as cli_main
from workflow.core.exceptions import RegistryAuthError, RegistryProtocolError, RegistryTimeout
from workflow.engine.copier import MAX_MANIFEST_DEPTH, copy_image
from workflow.gates.discovery import MAX_SIGNATURES_PER_LOOK
from workflow.gates.image import gate_image
from workflow.gates.notation import ARTIFACT_TYPE as NOTATION_ARTIFACT
from workflow.gates.notation import JWS as NOTATION_JWS
from workflow.local.signing import cosign_signature, new_key, public_pem, signature_tag
from workflow.models.config import parse_config
from workflow.models.policy import Gates, SignatureGate
from workflow.ops.status import image_status
from workflow.registry import listing as listing_module
from workflow.registry import transport as transport_module
from workflow.registry.auth import AUTH_ENV
from workflow.registry.client import RegistryClient
from workflow.registry.deadline import Bounds
from workflow.registry.retry import RetryPolicy

pytestmark = pytest.mark.integration
FAST = RetryPolicy(attempts=3, base_delay=0.05, max_delay=0.2)
SHORT = Bounds(exchange=1.0, blob_grace=1.0, blob_rate=1 << 20)


@pytest.fixture
def hostile() -> Iterator[Callable[[], HostileRegistry]]:
    """Malicious registries, stopped after the test."""
    made: list[HostileRegistry] = []

    def make() -> HostileRegistry:
        made.append(HostileRegistry())
        return made[-1]

    yield make
    for registry in made:
        registry.stop()


def _copy(source: str, destination: str, *hosts: str, **options: object) -> object:
    return copy_image(
        source, destination, insecure_registries=hosts, retry=FAST, max_parallel_blobs=2, **options
    )  # type: ignore[arg-type]


def _repositories(registry: RegistryServer) -> list[str]:
    return RegistryClient(registry.host, insecure=True).list_repositories()


# 1. Untrusted values


def test_a_crafted_tag_in_a_source_tag_list_is_refused_and_written_nowhere(
    hostile: Callable[[], HostileRegistry], dest_registry: RegistryServer, repo: str
) -> None:
    # Given a source whose tag list holds a signature-looking tag that climbs into another repository
    source = hostile()
    digest = source.add_image("app", "v1")
    crafted = f"{digest.replace(':', '-')}.sig/../../../../victim/manifests/latest"
    source.tags["app"].append(crafted)
    source.manifests[f"app@{crafted}"] = source.manifests["app@v1"]
    # When the image is copied
    with pytest.raises(RegistryProtocolError, match=r"refusing tag '[^']*\.sig/\.\./") as error:
        _copy(f"{source.host}/app:v1", f"{dest_registry.host}/{repo}:v1", source.host, dest_registry.host)
    # Then the copy fails naming the tag, which was never asked for nor written anywhere
    assert len(str(error.value)) < 400
    assert not source.requests("GET", r"\.\./")
    assert "victim" not in _repositories(dest_registry)


def test_a_crafted_layer_digest_is_refused_before_any_request_uses_it(
    hostile: Callable[[], HostileRegistry], dest_registry: RegistryServer, repo: str
) -> None:
    # Given a source manifest whose layer "digest" is a path into another repository
    source = hostile()
    crafted = "sha256:../../../victim/blobs/sha256:" + "a" * 64
    source.add_manifest("app", image_manifest(b"{}", [b"layer"], layer_digests=[crafted]), "v1")
    # When it is copied, Then the manifest is refused naming the digest, and no request carries it
    with pytest.raises(RegistryProtocolError, match=r"refusing digest 'sha256:\.\./"):
        _copy(f"{source.host}/app:v1", f"{dest_registry.host}/{repo}:v1", source.host, dest_registry.host)
    assert [r.path for r in source.log if "victim" in r.path] == []
    assert repo not in _repositories(dest_registry)


def test_a_crafted_referrer_descriptor_is_refused(
    hostile: Callable[[], HostileRegistry], dest_registry: RegistryServer, repo: str
) -> None:
    # Given a source whose referrers API lists a descriptor with a digest that is a path
    source = hostile()
    digest = source.add_image("app", "v1")
    listing = canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_INDEX, "digest": "sha256:../../victim/manifests/x", "size": 2}],
        }
    )
    source.on("GET", f"/referrers/{digest}", answer(200, listing, {"Content-Type": OCI_INDEX}))
    # When it is copied, Then the listing is refused naming the digest
    with pytest.raises(RegistryProtocolError, match=r"refusing digest 'sha256:\.\./\.\./victim"):
        _copy(f"{source.host}/app:v1", f"{dest_registry.host}/{repo}:v1", source.host, dest_registry.host)
    assert not source.requests("GET", "victim")


@pytest.mark.parametrize("where", ["another host", "another repository"])
def test_an_upload_location_off_the_repository_gets_no_blob(
    hostile: Callable[[], HostileRegistry], builder: ImageBuilder, source_registry: RegistryServer, where: str
) -> None:
    # Given a destination whose upload session points at another host, or at another repository
    destination, elsewhere = hostile(), hostile()
    builder.image("app", "v1", layer_sizes=(2048,))
    location = (
        f"http://{elsewhere.host}/v2/app/blobs/uploads/x"
        if where == "another host"
        else "/v2/victim/blobs/uploads/x"
    )
    destination.on("POST", r"/blobs/uploads/$", answer(202, b"", {"Location": location}))
    # When an image is copied there, Then the copy fails naming the URL, and no byte went to it
    with pytest.raises(RegistryProtocolError, match="upload Location: refusing URL"):
        _copy(
            f"{source_registry.host}/app:v1",
            f"{destination.host}/app:v1",
            source_registry.host,
            destination.host,
        )
    assert elsewhere.log == []
    assert not destination.requests("PUT", "victim")
    assert not destination.requests("PATCH", "victim")


# 2. Credentials


def test_source_credentials_never_go_to_a_token_realm_on_another_host(
    hostile: Callable[[], HostileRegistry],
    dest_registry: RegistryServer,
    monkeypatch: pytest.MonkeyPatch,
    repo: str,
) -> None:
    # Given credentials for a source that names a token realm on another host
    source, collector = hostile(), hostile()
    source.add_image("app", "v1")
    monkeypatch.setenv(AUTH_ENV, json.dumps({source.host: {"username": "u", "password": "secret"}}))
    realm = f'Bearer realm="http://localhost:{collector.server.server_address[1]}/token",service="x"'
    source.on("GET", "/manifests/", answer(401, b"", {"WWW-Authenticate": realm}))
    # When the image is copied, Then the realm is refused and the other host receives nothing
    with pytest.raises(RegistryAuthError, match=r"token realm .* is on another host"):
        _copy(f"{source.host}/app:v1", f"{dest_registry.host}/{repo}:v1", source.host, dest_registry.host)
    assert collector.log == []


# 3. Deadlines


def _trickled(status: int, headers: dict[str, str], body: bytes, *, headers_too: bool) -> object:
    head = head_for(status, headers, len(body))
    return trickle(b"", head + body, interval=0.5) if headers_too else trickle(head, body, interval=0.5)


@pytest.mark.parametrize("stall", ["manifest headers", "manifest body", "blob body", "upload answer"])
def test_a_server_sending_a_byte_at_a_time_ends_the_copy_within_its_bound(
    hostile: Callable[[], HostileRegistry],
    builder: ImageBuilder,
    source_registry: RegistryServer,
    dest_registry: RegistryServer,
    repo: str,
    stall: str,
) -> None:
    # Given a registry that sends one byte every half second at one point of the copy
    evil = hostile()
    digest = evil.add_image("app", "v1")
    raw = evil.manifests["app@v1"][0]
    blob = json.loads(raw)["layers"][0]["digest"]
    if stall.startswith("manifest"):
        headers = {
            "Content-Type": "application/vnd.oci.image.manifest.v1+json",
            "Docker-Content-Digest": digest,
        }
        evil.on("GET", "/manifests/v1", _trickled(200, headers, raw, headers_too=stall == "manifest headers"))  # type: ignore[arg-type]
    elif stall == "blob body":
        evil.on("GET", f"/blobs/{blob}", _trickled(200, {}, evil.blobs[blob], headers_too=False))  # type: ignore[arg-type]
    else:
        evil.on("PUT", "/blobs/uploads/", _trickled(201, {}, b"", headers_too=True))  # type: ignore[arg-type]
    if stall == "upload answer":
        builder.image("app", "v1", layer_sizes=(4096,))
        source, destination = f"{source_registry.host}/app:v1", f"{evil.host}/app:v1"
    else:
        source, destination = f"{evil.host}/app:v1", f"{dest_registry.host}/{repo}:v1"
    # When copied with a 1 s exchange bound and blobs at no less than 1 MiB/s (plus 1 s)
    started = time.monotonic()
    with pytest.raises(RegistryTimeout, match=r"not done within 1\.0 s") as error:
        _copy(source, destination, evil.host, source_registry.host, dest_registry.host, bounds=SHORT)
    # Then it ends within its bound (plus slack), naming what stalled
    assert time.monotonic() - started < 4.0
    assert ("blob" if stall in ("blob body", "upload answer") else "manifest") in str(error.value)


def test_the_copy_deadline_ends_a_copy_whatever_it_is_waiting_for(
    hostile: Callable[[], HostileRegistry], dest_registry: RegistryServer, repo: str
) -> None:
    # Given a source whose manifest comes a byte a second, and generous per-exchange bounds
    evil = hostile()
    digest = evil.add_image("app", "v1")
    raw = evil.manifests["app@v1"][0]
    headers = {"Content-Type": "application/vnd.oci.image.manifest.v1+json", "Docker-Content-Digest": digest}
    evil.on("GET", "/manifests/v1", _trickled(200, headers, raw, headers_too=False))  # type: ignore[arg-type]
    # When copied with a 1.5 s deadline for the whole copy
    started = time.monotonic()
    with pytest.raises(RegistryTimeout, match="the deadline passed"):
        _copy(
            f"{evil.host}/app:v1",
            f"{dest_registry.host}/{repo}:v1",
            evil.host,
            dest_registry.host,
            bounds=Bounds(exchange=60),
            deadline=1.5,
        )
    # Then it ends at the deadline
    assert time.monotonic() - started < 3.0


# 4. Pagination


def _endless(evil: HostileRegistry, path: str, loop: bool) -> None:
    pages = iter(range(10**6))

    def page(handler: object) -> None:
        n = 0 if loop else next(pages)
        link = f'<{path}?n=1&last=p{n}>; rel="next"'
        body = {"tags": [f"t{n}"], "repositories": [f"r{n}"], "manifests": []}
        answer(200, canonical(body), {"Link": link, "Content-Type": OCI_INDEX})(handler)  # type: ignore[arg-type]

    evil.on("GET", path, page)


@pytest.mark.parametrize("listing", ["tags", "referrers", "catalog"])
@pytest.mark.parametrize("loop", [True, False], ids=["loop", "endless"])
def test_endless_or_looping_pagination_ends_in_a_named_error(
    hostile: Callable[[], HostileRegistry], monkeypatch: pytest.MonkeyPatch, listing: str, loop: bool
) -> None:
    # Given a registry whose Link: rel="next" loops back, or never ends (a page cap of 20 for the test)
    monkeypatch.setattr(listing_module, "MAX_PAGES", 20)
    evil = hostile()
    digest = "sha256:" + "b" * 64
    path = {
        "tags": "/v2/app/tags/list",
        "referrers": f"/v2/app/referrers/{digest}",
        "catalog": "/v2/_catalog",
    }
    _endless(evil, path[listing], loop)
    client = RegistryClient(evil.host, insecure=True, retry=FAST)
    call = {
        "tags": lambda: client.list_tags("app"),
        "referrers": lambda: client.referrers("app", digest),
        "catalog": client.list_repositories,
    }[listing]
    # When listed, Then it ends with RegistryProtocolError saying why, after at most 20 pages
    with pytest.raises(RegistryProtocolError, match="loops back" if loop else "more than 20 pages"):
        call()
    assert len(evil.requests("GET", path[listing].split("?")[0])) <= 20


# 5. Manifest depth


def test_deeply_nested_indexes_end_at_once_in_a_named_error(
    hostile: Callable[[], HostileRegistry], dest_registry: RegistryServer, repo: str
) -> None:
    # Given a source index nesting 50 levels of indexes
    evil = hostile()
    evil.add_image("app", "leaf")
    raw = evil.manifests["app@leaf"][0]
    child_type = "application/vnd.oci.image.manifest.v1+json"
    for _ in range(50):
        raw = index_of([raw], child_type)
        evil.add_manifest("app", raw, media_type=OCI_INDEX)
        child_type = OCI_INDEX
    evil.add_manifest("app", raw, "deep", media_type=OCI_INDEX)
    # When it is copied, Then RegistryProtocolError names the nesting, after a handful of requests
    with pytest.raises(RegistryProtocolError, match=f"deeper than {MAX_MANIFEST_DEPTH} levels"):
        _copy(f"{evil.host}/app:deep", f"{dest_registry.host}/{repo}:deep", evil.host, dest_registry.host)
    assert len(evil.requests("GET", "/manifests/")) <= MAX_MANIFEST_DEPTH + 1


# 6. Error bodies


def test_a_huge_error_body_becomes_a_short_message_in_the_result(
    hostile: Callable[[], HostileRegistry],
    builder: ImageBuilder,
    source_registry: RegistryServer,
    tmp_path: Path,
) -> None:
    # Given a destination answering the manifest PUT with a 2 MB error body
    destination = hostile()
    builder.image("app", "v1", layer_sizes=(1024,))
    huge = canonical({"errors": [{"code": "MANIFEST_INVALID", "message": "x" * (2 << 20)}]})
    destination.on("PUT", "/manifests/", answer(400, huge, {"Content-Type": "application/json"}))
    result = tmp_path / "result.json"
    # When the copy command runs
    code = cli_main(
        [
            "copy",
            f"{source_registry.host}/app:v1",
            f"{destination.host}/app:v1",
            "--insecure-registry",
            source_registry.host,
            "--insecure-registry",
            destination.host,
            "--result-file",
            str(result),
        ]
    )
    # Then it fails, and result.json holds a message of a few hundred characters, marked as cut
    written = json.loads(result.read_text())
    assert code == 1
    assert written["error"] == "RegistryProtocolError"
    assert "MANIFEST_INVALID" in written["message"]
    assert "(cut)" in written["message"]
    assert result.stat().st_size < 1024


# 7. Concurrent writers


def test_a_manifest_put_refused_for_a_blob_another_writer_is_storing_is_retried(
    builder: ImageBuilder,
    source_registry: RegistryServer,
    dest_registry: RegistryServer,
    proxy_for: Callable[[RegistryServer], FaultProxy],
    repo: str,
) -> None:
    # Given a destination that once refuses the manifest PUT with MANIFEST_BLOB_UNKNOWN (as while another
    # copy is storing the same blobs), and once answers DIGEST_INVALID to a blob it did store
    pushed = builder.image(repo, "v1", layer_sizes=(4096,))
    proxy = proxy_for(dest_registry)
    unknown = canonical(
        {"errors": [{"code": "MANIFEST_BLOB_UNKNOWN", "message": "blob unknown to registry"}]}
    )
    invalid = canonical({"errors": [{"code": "DIGEST_INVALID", "message": "provided digest did not match"}]})
    proxy.add(Fault("PUT", r"/manifests/v1$", "status", status=400, body=unknown))
    proxy.add(Fault("PUT", r"/blobs/uploads/.*digest=", "forwarded-status", status=400, body=invalid))
    # When the image is copied, Then it succeeds byte-exact after confirming the blobs are there
    outcome = _copy(
        f"{source_registry.host}/{repo}:v1", f"{proxy.host}/{repo}:v1", source_registry.host, proxy.host
    )
    assert outcome.action == "copied"  # type: ignore[attr-defined]
    assert len(proxy.requests("PUT", r"/manifests/v1$")) == 2
    assert skopeo_digest(f"{dest_registry.host}/{repo}:v1") == pushed.digest


# 8. PutImage pacing and throttling


def _many_manifests(builder: ImageBuilder, repo: str) -> str:
    platforms = (("linux", "amd64"), ("linux", "arm64"), ("linux", "s390x"), ("linux", "ppc64le"))
    return builder.index(repo, "v1", layer_sizes=(512,), platforms=platforms).digest


@pytest.mark.parametrize("paced", [True, False], ids=["paced", "throttled"])
def test_manifest_puts_are_paced_and_throttling_is_honoured(
    builder: ImageBuilder,
    source_registry: RegistryServer,
    dest_registry: RegistryServer,
    proxy_for: Callable[[RegistryServer], FaultProxy],
    repo: str,
    paced: bool,
) -> None:
    # Given a destination that allows 1 manifest PUT a second (2 at once, a second's slack for network
    # jitter) and answers 429 TOOMANYREQUESTS
    # (Retry-After: 1) beyond that, and an index of 4 platforms: 5 PUTs
    digest = _many_manifests(builder, repo)
    proxy = proxy_for(dest_registry)
    proxy.throttle = Throttle("PUT", r"/manifests/", rate=1, burst=2)
    # When copied paced at 1 PUT a second, or unpaced
    outcome = _copy(
        f"{source_registry.host}/{repo}:v1",
        f"{proxy.host}/{repo}:v1",
        source_registry.host,
        proxy.host,
        put_rate=1 if paced else None,
    )
    # Then the copy succeeds; paced, it is never throttled; unpaced, each 429 is waited out (Retry-After)
    assert outcome.source_digest == digest  # type: ignore[attr-defined]
    assert skopeo_digest(f"{dest_registry.host}/{repo}:v1") == digest
    if paced:
        assert proxy.throttle.throttled == 0
    else:
        assert proxy.throttle.throttled >= 1


def test_ecr_throttling_exception_is_retried(
    builder: ImageBuilder,
    source_registry: RegistryServer,
    dest_registry: RegistryServer,
    proxy_for: Callable[[RegistryServer], FaultProxy],
    repo: str,
) -> None:
    # Given a destination answering the first manifest PUT 400 ThrottlingException, as ECR's API may
    pushed = builder.image(repo, "v1", layer_sizes=(512,))
    proxy = proxy_for(dest_registry)
    body = canonical({"errors": [{"code": "ThrottlingException", "message": "Rate exceeded"}]})
    proxy.add(Fault("PUT", r"/manifests/", "status", status=400, body=body))
    # When copied, Then the PUT is retried and the copy succeeds
    _copy(f"{source_registry.host}/{repo}:v1", f"{proxy.host}/{repo}:v1", source_registry.host, proxy.host)
    assert skopeo_digest(f"{dest_registry.host}/{repo}:v1") == pushed.digest


def test_a_patch_upload_never_sends_a_second_patch(
    builder: ImageBuilder,
    source_registry: RegistryServer,
    dest_registry: RegistryServer,
    proxy_for: Callable[[RegistryServer], FaultProxy],
    repo: str,
) -> None:
    # Given blobs of several 1 MiB chunks and a first upload PUT that fails (so one upload is retried)
    builder.image(repo, "v1", layer_sizes=(2_500_000, 3_100_000))
    proxy = proxy_for(dest_registry)
    proxy.add(Fault("PUT", r"/blobs/uploads/", "status", status=503))
    # When copied in PATCH mode (ECR keeps the data of the first PATCH only)
    _copy(
        f"{source_registry.host}/{repo}:v1",
        f"{proxy.host}/{repo}:v1",
        source_registry.host,
        proxy.host,
        upload_mode="patch",
    )
    # Then every upload session got exactly one PATCH, a fresh session for the retry
    patches = [path.split("?")[0] for method, path, _ in proxy.log if method == "PATCH"]
    assert patches
    assert len(patches) == len(set(patches))
    assert len(patches) == len(proxy.requests("POST", r"/blobs/uploads/$"))


# 9. Round 2 (issue 21): nesting, signature work, trickled answers


def _sign(evil: HostileRegistry, repository: str, digest: str, key: ec.EllipticCurvePrivateKey) -> None:
    """A cosign signature of `repository@digest` under its `.sig` tag, as cosign pushes it."""
    image = cosign_signature(f"{evil.host}/{repository}", digest, key)
    for blob in image.blobs:
        evil.add_blob(blob.data)
    evil.add_manifest(repository, image.top.data, signature_tag(digest))


def _signature_gate(key: ec.EllipticCurvePrivateKey) -> dict[str, Gates]:
    return {"signed": Gates(signature=SignatureGate(cosign_keys=[public_pem(key)]))}


def test_a_manifest_nested_10000_deep_is_a_named_error_in_the_copy_result(
    hostile: Callable[[], HostileRegistry], dest_registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    # Given a source whose tag holds a JSON document nested 10,000 deep (a registry stores it as any other)
    evil = hostile()
    evil.add_manifest("app", nested(10_000), "deep")
    result = tmp_path / "result.json"
    # When the copy command copies it
    code = cli_main(
        [
            "copy",
            f"{evil.host}/app:deep",
            f"{dest_registry.host}/{repo}:deep",
            "--insecure-registry",
            evil.host,
            "--insecure-registry",
            dest_registry.host,
            "--result-file",
            str(result),
        ]
    )
    # Then it fails with the registry's error by name, saying why, and nothing was written
    written = json.loads(result.read_text())
    assert code == 1
    assert written["error"] == "RegistryProtocolError"
    assert "nests deeper than 64 levels" in written["message"]
    assert repo not in _repositories(dest_registry)


def test_a_referrer_index_nested_5000_deep_does_not_stop_a_validly_signed_release(
    hostile: Callable[[], HostileRegistry],
) -> None:
    # Given a validly signed image (cosign, under its .sig tag) in a registry without the referrers API,
    # and anyone's referrer index nested 5,000 deep under its sha256-<hex> tag
    evil, key = hostile(), new_key()
    digest = evil.add_image("app", "v1")
    _sign(evil, "app", digest, key)
    evil.add_manifest("app", nested(5_000), digest.replace(":", "-"), media_type=OCI_INDEX)
    # When the Gate looks at it
    decisions = gate_image(
        _signature_gate(key),
        "app",
        digest,
        ecr=None,
        registry=RegistryClient(evil.host, insecure=True, retry=FAST),
    )
    # Then the valid signature counts: the release passes, and the unreadable index is named
    decision = decisions["signed"]
    assert decision.verdict == "pass", decision.reason
    assert decision.reason.startswith("signed with trusted cosign key 0")
    assert "nests deeper than 64 levels" in decision.reason


def _junk_referrers(evil: HostileRegistry, digest: str, manifests: int, layers: int) -> None:
    """`manifests` Notation-typed referrers of `digest`, each of `layers` envelope layers that verify nowhere."""
    descriptors = []
    for m in range(manifests):
        layer_list = [
            {"mediaType": NOTATION_JWS, **evil.add_blob(f'{{"junk": "{m}-{n}"}}'.encode())}
            for n in range(layers)
        ]
        raw = canonical(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "artifactType": NOTATION_ARTIFACT,
                "config": {"mediaType": "application/vnd.oci.empty.v1+json", **evil.add_blob(b"{}")},
                "layers": layer_list,
                "subject": {"mediaType": OCI_MANIFEST, "digest": digest, "size": 1},
            }
        )
        descriptors.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": evil.add_manifest("app", raw),
                "size": len(raw),
                "artifactType": NOTATION_ARTIFACT,
            }
        )
    listing = canonical({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors})
    evil.on("GET", f"/referrers/{digest}", answer(200, listing, {"Content-Type": OCI_INDEX}))


@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_a_gate_look_verifies_a_bounded_number_of_signatures(
    hostile: Callable[[], HostileRegistry], signed: bool
) -> None:
    # Given 20 referrers of 250 envelope layers each (5,000 blobs), and, or not, a valid cosign signature
    evil, key = hostile(), new_key()
    digest = evil.add_image("app", "v1")
    _junk_referrers(evil, digest, manifests=20, layers=250)
    if signed:
        _sign(evil, "app", digest, key)
    # When the Gate looks once
    started = time.monotonic()
    decision = gate_image(
        _signature_gate(key),
        "app",
        digest,
        ecr=None,
        registry=RegistryClient(evil.host, insecure=True, retry=FAST),
    )["signed"]
    # Then it reads at most MAX_SIGNATURES_PER_LOOK signature blobs and decides with what it found:
    # the valid signature passes; without one it blocks, saying where it stopped
    assert len(evil.requests("GET", "/blobs/")) <= MAX_SIGNATURES_PER_LOOK
    assert time.monotonic() - started < 5.0
    if signed:
        assert decision.verdict == "pass", decision.reason
    else:
        assert decision.verdict == "block"
        assert f"stopped after {MAX_SIGNATURES_PER_LOOK} signatures" in decision.reason


def _status_config(source: str, healthy: str, evil: str) -> dict[str, object]:
    return {
        "source": {"account": "111111111111", "region": "us-east-1"},
        "rules": [
            {
                "name": "releases",
                "repositories": ["app"],
                "tags": {"include": ["release-*"]},
                "destinations": [
                    {"account": "222222222222", "regions": ["eu-west-1"]},
                    {"account": "333333333333", "regions": ["eu-west-1"]},
                ],
            }
        ],
        "endpoints": [
            {"account": "111111111111", "region": "us-east-1", "registry": source, "insecure": True},
            {"account": "222222222222", "region": "eu-west-1", "registry": healthy, "insecure": True},
            {"account": "333333333333", "region": "eu-west-1", "registry": evil, "insecure": True},
        ],
    }


def test_status_names_a_destination_serving_a_manifest_nested_10000_deep_and_keeps_the_others(
    hostile: Callable[[], HostileRegistry],
) -> None:
    # Given a source and a healthy destination holding release-1, and a destination whose HEAD gives no
    # digest and whose GET gives a document nested 10,000 deep
    source, healthy, evil = hostile(), hostile(), hostile()
    source.add_image("app", "release-1")
    healthy.manifests["app@release-1"] = source.manifests["app@release-1"]
    evil.on("HEAD", "/manifests/", answer(200, b"", {"Content-Type": OCI_MANIFEST}))
    evil.on("GET", "/manifests/", answer(200, nested(10_000), {"Content-Type": OCI_MANIFEST}))
    # When the status is asked
    report = image_status(
        parse_config(_status_config(source.host, healthy.host, evil.host)), "app", "release-1"
    )
    # Then the healthy row is present and the hostile one says the named error
    rows = {e.account: (e.state, e.error) for e in report.entries}
    assert rows["222222222222"] == ("present", None)
    state, error = rows["333333333333"]
    assert state == "unknown"
    assert error is not None
    assert error.startswith("RegistryProtocolError:")
    assert "nests deeper than 64 levels" in error


def _close_delimited(status: int, headers: dict[str, str]) -> bytes:
    """A status line and headers without Content-Length: the body ends when the server closes."""
    lines = [f"HTTP/1.1 {status} X", *(f"{k}: {v}" for k, v in headers.items()), "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.mark.parametrize("trickled", ["headers", "close-delimited body"])
def test_a_trickled_answer_is_cut_at_the_exchange_bound_as_a_registry_timeout(
    hostile: Callable[[], HostileRegistry], trickled: str
) -> None:
    # Given a registry whose manifest answer, headers and all or a body without Content-Length, comes a
    # byte every 50 ms: 5 s in all
    evil = hostile()
    evil.add_image("app", "v1")
    raw = evil.manifests["app@v1"][0]
    head = _close_delimited(200, {"Content-Type": OCI_MANIFEST})
    reply = (
        trickle(b"", head + raw, interval=0.05)
        if trickled == "headers"
        else trickle(head, raw, interval=0.05)
    )
    evil.on("GET", "/manifests/v1", reply)  # type: ignore[arg-type]
    client = RegistryClient(evil.host, insecure=True, retry=FAST, bounds=Bounds(exchange=1.0))
    # When the manifest is read with a 1 s exchange bound
    started = time.monotonic()
    with pytest.raises(RegistryTimeout, match=r"GET manifest app:v1: not done within 1\.0 s"):
        client.get_manifest("app", "v1")
    # Then it is cut at the bound, as RegistryTimeout (never a truncated answer, never "not JSON")
    assert time.monotonic() - started < 2.5


def test_status_ends_within_the_exchange_bound_for_a_trickling_destination(
    hostile: Callable[[], HostileRegistry], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a destination whose HEAD gives no digest and whose GET sends its headers a byte every 50 ms,
    # and registry exchanges bounded to 1 s
    monkeypatch.setattr(transport_module, "EXCHANGE_SECONDS", 1.0)
    source, healthy, evil = hostile(), hostile(), hostile()
    source.add_image("app", "release-1")
    healthy.manifests["app@release-1"] = source.manifests["app@release-1"]
    raw = source.manifests["app@release-1"][0]
    evil.on("HEAD", "/manifests/", answer(200, b"", {"Content-Type": OCI_MANIFEST}))
    head = _close_delimited(200, {"Content-Type": OCI_MANIFEST})
    evil.on("GET", "/manifests/", trickle(b"", head + raw, interval=0.05))  # type: ignore[arg-type]
    # When the status is asked
    started = time.monotonic()
    report = image_status(
        parse_config(_status_config(source.host, healthy.host, evil.host)), "app", "release-1"
    )
    # Then it ends within the bound (plus slack), the trickling row says RegistryTimeout, the other is there
    assert time.monotonic() - started < 3.0
    rows = {e.account: (e.state, e.error) for e in report.entries}
    assert rows["222222222222"] == ("present", None)
    assert rows["333333333333"][0] == "unknown"
    assert (rows["333333333333"][1] or "").startswith("RegistryTimeout:")
