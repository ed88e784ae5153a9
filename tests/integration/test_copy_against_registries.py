"""The copy engine against real docker-registry instances, with skopeo as the digest oracle."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

import pytest

from tests.integration.conftest import Copying, copy_between
from tests.integration.faults import Fault, FaultProxy
from tests.integration.images import ImageBuilder, Pushed
from tests.integration.registries import (
    PASSWORD,
    USERNAME,
    RegistryServer,
    blob_files,
    blob_size,
    skopeo_digest,
    skopeo_raw,
)
from workflow.core.exceptions import (
    DestinationTagImmutable,
    ImageNotFound,
    RegistryAuthError,
    RegistryProtocolError,
)
from workflow.engine.copier import ProgressEvent, probe_destination
from workflow.engine.copier import copy_image as copy
from workflow.registry.retry import RetryPolicy

pytestmark = pytest.mark.integration
FAST = RetryPolicy(attempts=4, base_delay=0.05, max_delay=0.2)


def _insecure(*servers: RegistryServer | FaultProxy) -> tuple[str, ...]:
    return tuple(s.host for s in servers)


def _assert_same_tree(pushed: Pushed, destination: str, repo: str, server: RegistryServer) -> None:
    assert skopeo_raw(f"{destination}", server) == pushed.raw
    for child in pushed.children:
        assert skopeo_digest(f"{server.host}/{repo}@{child.digest}", server) == child.digest


def _signature_tag(subject: Pushed) -> str:
    """The cosign tag-schema signature tag of `subject`: `sha256-<hex>.sig`."""
    return subject.digest.replace(":", "-") + ".sig"


def _image_with_sbom_behind_the_api(
    builder: ImageBuilder, proxy: FaultProxy, repo: str
) -> tuple[Pushed, Pushed, FaultProxy]:
    """An index `repo:v1` with an SPDX SBOM referrer, listed by `proxy`'s referrers API."""
    pushed = builder.index(repo, "v1")
    sbom = builder.referrer(repo, pushed)
    proxy.referrers = {pushed.digest: [sbom.descriptor(artifactType="application/spdx+json")]}
    return pushed, sbom, proxy


def test_multiarch_oci_index_is_copied_byte_exact(copying: Copying) -> None:
    # Given a two-platform OCI index in the source registry
    dest_registry, repo = copying.destination, copying.repo
    pushed = copying.builder.index(repo, "v1")
    events: list[ProgressEvent] = []
    # When it is copied to an empty repository
    result = copying.copy(progress=events.append)
    # Then skopeo reads the same index and platform manifests, and every blob is on disk
    assert result.action == "copied"
    assert result.source_digest == result.destination_digest == pushed.digest
    assert result.platforms == ["linux/amd64", "linux/arm64"]
    assert result.blobs_copied == len(set(pushed.blobs))
    assert result.blobs_skipped == 0
    assert result.bytes_copied == sum(blob_size(dest_registry, b) for b in set(pushed.blobs))
    _assert_same_tree(pushed, f"{dest_registry.host}/{repo}:v1", repo, dest_registry)
    assert set(pushed.blobs) <= blob_files(dest_registry)
    assert {e.kind for e in events} >= {"blob-start", "blob-bytes", "blob-done", "manifest"}
    assert sum(e.nbytes for e in events if e.kind == "blob-bytes") == result.bytes_copied


def test_docker_manifest_list_to_basic_auth_registry(
    builder: ImageBuilder,
    source_registry: RegistryServer,
    basic_registry: RegistryServer,
    repo: str,
    registry_auth: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a Docker v2 schema 2 manifest list and a destination behind htpasswd basic auth
    pushed = builder.index(repo, "release-1", docker=True, platforms=(("linux", "amd64"), ("linux", "arm")))
    # When it is copied with credentials from ECR_REPLICATE_REGISTRY_AUTH
    result = copy_between(source_registry, basic_registry, f"{repo}:release-1", f"mirror/{repo}:release-1")
    # Then the manifest list and its manifests keep their digests
    assert result.media_type == "application/vnd.docker.distribution.manifest.list.v2+json"
    _assert_same_tree(
        pushed, f"{basic_registry.host}/mirror/{repo}:release-1", f"mirror/{repo}", basic_registry
    )
    assert PASSWORD not in result.to_json() + "".join(capsys.readouterr())


def test_token_auth_source_and_destination(
    builder_for: Callable[[RegistryServer], ImageBuilder],
    token_registry: RegistryServer,
    basic_registry: RegistryServer,
    repo: str,
    registry_auth: None,
) -> None:
    # Given an OCI image in a token-auth registry
    pushed = builder_for(token_registry).index(repo, "v2")
    issued_before = len(token_registry.issuer.requests) if token_registry.issuer else 0
    # When it is copied to another repository of the same token-auth registry
    result = copy_between(token_registry, token_registry, f"{repo}:v2", f"copy/{repo}:v2")
    # Then it arrives intact, after tokens for a pull scope and a push scope were issued
    assert result.action == "copied"
    _assert_same_tree(pushed, f"{token_registry.host}/copy/{repo}:v2", f"copy/{repo}", token_registry)
    assert token_registry.issuer is not None
    scopes = " ".join(token_registry.issuer.requests[issued_before:])
    assert f"repository%3A{repo.replace('/', '%2F')}%3Apull" in scopes
    assert f"repository%3Acopy%2F{repo.replace('/', '%2F')}%3Apull%2Cpush" in scopes


def test_wrong_credentials_raise_registry_auth_error(
    builder: ImageBuilder,
    source_registry: RegistryServer,
    basic_registry: RegistryServer,
    repo: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a destination behind basic auth and a wrong password
    builder.image(repo, "v1")
    monkeypatch.setenv(
        "ECR_REPLICATE_REGISTRY_AUTH",
        json.dumps({basic_registry.host: {"username": "replicator", "password": "wrong-pw"}}),
    )
    # When copying, Then the auth error names the registry and not the password
    with pytest.raises(RegistryAuthError, match=basic_registry.host) as caught:
        copy_between(source_registry, basic_registry, f"{repo}:v1", retry=FAST)
    assert "wrong-pw" not in str(caught.value)


def test_tls_registries_are_copied_to_and_from_when_their_ca_is_trusted(
    builder: ImageBuilder,
    source_registry: RegistryServer,
    tls_registry: RegistryServer,
    dest_registry: RegistryServer,
    repo: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a registry serving HTTPS with a certificate from a CA named by SSL_CERT_FILE
    assert tls_registry.tls is not None
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_registry.tls.ca))
    pushed = builder.index(repo, "v1")
    # When an image is copied into it (verified TLS: it is not an insecure registry) and out again
    into = copy(
        f"{source_registry.host}/{repo}:v1",
        f"{tls_registry.host}/{repo}:v1",
        insecure_registries=_insecure(source_registry),
    )
    out = copy(
        f"{tls_registry.host}/{repo}:v1",
        f"{dest_registry.host}/{repo}:v1",
        insecure_registries=_insecure(dest_registry),
    )
    # Then both copies moved every blob and kept the digest
    assert into.action == out.action == "copied"
    assert into.blobs_copied == out.blobs_copied == len(set(pushed.blobs))
    assert skopeo_digest(f"{tls_registry.host}/{repo}:v1") == pushed.digest
    assert skopeo_digest(f"{dest_registry.host}/{repo}:v1") == pushed.digest


def test_untrusted_tls_certificate_fails_at_once_and_says_so(
    tls_registry: RegistryServer, dest_registry: RegistryServer, repo: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a registry whose certificate comes from a CA the client does not trust
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    # When copying from it, Then the failure names the certificate problem and is not retried
    # (retries that run out end in RegistryUnavailable instead)
    with pytest.raises(RegistryProtocolError, match="TLS certificate not trusted") as caught:
        copy(
            f"{tls_registry.host}/{repo}:v1",
            f"{dest_registry.host}/{repo}:v1",
            insecure_registries=_insecure(dest_registry),
        )
    assert tls_registry.host in str(caught.value)
    assert "SSL_CERT_FILE" in str(caught.value)


def test_present_then_tagged_then_partial_skip(copying: Copying) -> None:
    # Given an image already copied once
    pushed = copying.builder.index(copying.repo, "v1")
    copying.copy()
    # When it is copied again, and then to a new tag
    again = copying.copy()
    retag = copying.copy(to=":stable")
    # Then nothing moves the second time, and the retag puts only the tag
    assert (again.action, again.bytes_copied, again.blobs_copied) == ("present", 0, 0)
    assert (retag.action, retag.bytes_copied, retag.blobs_copied) == ("tagged", 0, 0)
    assert copying.digest_at(":stable") == pushed.digest


def test_blobs_the_destination_has_are_skipped(copying: Copying) -> None:
    # Given the destination already holds one platform's image of a two-platform index
    dest_registry, repo = copying.destination, copying.repo
    pushed = copying.builder.index(repo, "v1")
    first_child = pushed.children[0]
    copying.copy(f"@{first_child.digest}")
    # When the index is copied
    result = copying.copy()
    # Then the first platform's blobs are skipped and the second's copied
    assert result.blobs_skipped == len(first_child.blobs)
    assert result.blobs_copied == len(pushed.children[1].blobs)
    _assert_same_tree(pushed, f"{dest_registry.host}/{repo}:v1", repo, dest_registry)


def test_single_docker_manifest_with_patch_upload_reports_its_platform(copying: Copying) -> None:
    # Given a single-platform Docker image
    pushed = copying.builder.image(copying.repo, "arm", docker=True, platform=("linux", "arm64"))
    # When copied with the POST, PATCH, PUT upload
    result = copying.copy(":arm", upload_mode="patch")
    # Then the digest is kept and the platform comes from the config
    assert copying.digest_at(":arm") == pushed.digest
    assert result.platforms == ["linux/arm64"]


def test_signature_tag_schema_is_copied(copying: Copying) -> None:
    # Given an image with a cosign-style signature tag, in a registry without the referrers API
    pushed = copying.builder.index(copying.repo, "v1")
    signature = copying.builder.signature_tag(copying.repo, pushed.digest)
    # When the image is copied
    result = copying.copy()
    # Then the signature tag arrives with the same digest
    assert result.referrers_copied == 1
    assert copying.digest_at(f":{_signature_tag(pushed)}") == signature.digest


def test_referrers_api_copies_oci_referrer_and_writes_fallback_index(
    builder: ImageBuilder,
    source_registry: RegistryServer,
    dest_registry: RegistryServer,
    repo: str,
    proxy_for: Callable[[RegistryServer], FaultProxy],
) -> None:
    # Given a source that serves the referrers API (a proxy standing in for an OCI 1.1 registry)
    pushed, sbom, proxy = _image_with_sbom_behind_the_api(builder, proxy_for(source_registry), repo)
    # When the image is copied to a registry without the referrers API
    result = copy_between(proxy, dest_registry, f"{repo}:v1")
    # Then the referrer is there by digest and listed in the sha256-<hex> fallback index
    assert result.referrers_copied == 1
    assert skopeo_digest(f"{dest_registry.host}/{repo}@{sbom.digest}") == sbom.digest
    fallback = json.loads(
        skopeo_raw(f"{dest_registry.host}/{repo}:{pushed.digest.replace(':', '-')}") or b"{}"
    )
    assert [m["digest"] for m in fallback["manifests"]] == [sbom.digest]
    assert proxy.requests("GET", "/referrers/")


def test_tag_schema_signature_is_copied_from_a_source_with_the_referrers_api(
    builder: ImageBuilder,
    source_registry: RegistryServer,
    dest_registry: RegistryServer,
    repo: str,
    proxy_for: Callable[[RegistryServer], FaultProxy],
) -> None:
    # Given a source with the referrers API listing an SBOM, and a cosign signature kept as a tag
    # (cosign's default even where the API exists)
    pushed, sbom, proxy = _image_with_sbom_behind_the_api(builder, proxy_for(source_registry), repo)
    signature = builder.signature_tag(repo, pushed.digest)
    # When the image is copied
    result = copy_between(proxy, dest_registry, f"{repo}:v1")
    # Then both arrive: the SBOM by digest, the signature under its tag
    assert result.referrers_copied == 2
    assert skopeo_digest(f"{dest_registry.host}/{repo}@{sbom.digest}") == sbom.digest
    assert skopeo_digest(f"{dest_registry.host}/{repo}:{_signature_tag(pushed)}") == signature.digest


def test_signature_of_a_signature_is_copied_through_the_tag_schema(copying: Copying) -> None:
    # Given an image whose signature tag is itself signed (sha256-<image>.sig <- sha256-<signature>.sig)
    pushed = copying.builder.index(copying.repo, "v1")
    signature = copying.builder.signature_tag(copying.repo, pushed.digest)
    countersignature = copying.builder.signature_tag(copying.repo, signature.digest)
    # When the image is copied
    result = copying.copy()
    # Then both levels arrive under their tags with the same digests
    assert result.referrers_copied == 2
    for subject, referrer in ((pushed, signature), (signature, countersignature)):
        assert copying.digest_at(f":{_signature_tag(subject)}") == referrer.digest


def test_referrers_of_referrers_are_copied_even_when_the_first_level_is_already_there(
    builder: ImageBuilder,
    source_registry: RegistryServer,
    dest_registry: RegistryServer,
    repo: str,
    proxy_for: Callable[[RegistryServer], FaultProxy],
) -> None:
    # Given an image with an SBOM, already copied, through a source that serves the referrers API
    _, sbom, proxy = _image_with_sbom_behind_the_api(builder, proxy_for(source_registry), repo)
    assert copy_between(proxy, dest_registry, f"{repo}:v1").referrers_copied == 1
    # And the SBOM is signed afterwards
    signature = builder.referrer(repo, sbom, artifact_type="application/vnd.dev.cosign.artifact.sig.v1+json")
    proxy.referrers[sbom.digest] = [
        signature.descriptor(artifactType="application/vnd.dev.cosign.artifact.sig.v1+json")
    ]
    # When the image is copied again
    result = copy_between(proxy, dest_registry, f"{repo}:v1")
    # Then only the new signature is put, and it is listed in the SBOM's fallback index
    assert (result.action, result.referrers_copied) == ("present", 1)
    assert skopeo_digest(f"{dest_registry.host}/{repo}@{signature.digest}") == signature.digest
    fallback = json.loads(skopeo_raw(f"{dest_registry.host}/{repo}:{sbom.digest.replace(':', '-')}") or b"{}")
    assert [m["digest"] for m in fallback["manifests"]] == [signature.digest]


def test_blob_redirect_to_storage_drops_authorization(
    builder_for: Callable[[RegistryServer], ImageBuilder],
    basic_registry: RegistryServer,
    dest_registry: RegistryServer,
    repo: str,
    proxy_for: Callable[[RegistryServer], FaultProxy],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given an authenticated source whose blob GETs redirect to an S3-like store refusing Authorization
    pushed = builder_for(basic_registry).index(repo, "v1")
    proxy = proxy_for(basic_registry)
    proxy.redirect_blobs = True
    monkeypatch.setenv(
        "ECR_REPLICATE_REGISTRY_AUTH", json.dumps({proxy.host: {"username": USERNAME, "password": PASSWORD}})
    )
    # When the image is copied
    copy_between(proxy, dest_registry, f"{repo}:v1")
    # Then every blob came through the store, never with an Authorization header
    assert len(proxy.s3_log) == len(set(pushed.blobs))
    assert not any(has_auth for _, has_auth in proxy.s3_log)
    _assert_same_tree(pushed, f"{dest_registry.host}/{repo}:v1", repo, dest_registry)


def test_precheck_reports_copy_needed_then_tags_then_present(copying: Copying) -> None:
    # Given an image not yet at the destination
    pushed = copying.builder.image(copying.repo, "v1")
    insecure = _insecure(copying.source, copying.destination)
    src, dst = f"{copying.source.host}/{copying.repo}:v1", f"{copying.destination.host}/{copying.repo}"
    # When prechecking before a copy, after a copy under another tag, and once more
    needed = probe_destination(src, f"{dst}:v1", insecure_registries=insecure)
    copying.copy(to=":other")
    tagged = probe_destination(src, f"{dst}:v1", insecure_registries=insecure)
    present = probe_destination(src, f"{dst}:v1", insecure_registries=insecure)
    # Then it is copy-needed, then tagged (the tag is put), then present
    assert (needed.action, needed.digest) == ("copy-needed", pushed.digest)
    assert (tagged.action, tagged.destination_digest) == ("tagged", pushed.digest)
    assert present.action == "present"
    assert skopeo_digest(f"{dst}:v1") == pushed.digest


def test_read_only_precheck_says_tagged_but_puts_no_tag(copying: Copying) -> None:
    # Given the digest is at the destination under another tag only
    pushed = copying.builder.image(copying.repo, "v1")
    insecure = _insecure(copying.source, copying.destination)
    src, dst = f"{copying.source.host}/{copying.repo}:v1", f"{copying.destination.host}/{copying.repo}"
    copying.copy(to=":other")
    # When prechecking without putting the tag (a dry run)
    result = probe_destination(src, f"{dst}:v1", insecure_registries=insecure, put_tag=False)
    # Then a real run would only tag, and the tag is still missing (skopeo, independently)
    assert (result.action, result.digest) == ("tagged", pushed.digest)
    tags = subprocess.run(
        ["skopeo", "list-tags", "--tls-verify=false", f"docker://{dst}"],
        check=True,
        capture_output=True,
        text=True,
    )
    assert json.loads(tags.stdout)["Tags"] == ["other"]


def test_a_copy_whose_source_tag_is_pushed_again_mid_copy_leaves_the_tag_to_the_newer_push(
    copying: Copying,
) -> None:
    # Given v1 pushed as A, and a copy of it under way that sees v1 pushed again as B after A's manifest
    first = copying.builder.image(copying.repo, "v1")
    newer: list[Pushed] = []

    def push_again(event: ProgressEvent) -> None:
        if event.kind == "manifest" and not newer:
            newer.append(copying.builder.image(copying.repo, "v1"))

    # When the copy of v1 reaches its tag
    result = copying.copy(progress=push_again)
    # Then A is at the destination by digest only: the tag is left for B's own copy, and it says superseded
    [second] = newer
    assert second.digest != first.digest
    assert (result.action, result.destination_digest) == ("superseded", first.digest)
    assert copying.digest_at(f"@{first.digest}") == first.digest
    assert copying.digest_at(":v1") is None


def test_a_pinned_copy_or_tag_put_for_an_older_push_never_moves_the_tag_back(copying: Copying) -> None:
    # Given v1 pushed as A (its copy job pinned to v1@A), then as B, and B already replicated
    first = copying.builder.image(copying.repo, "v1")
    second = copying.builder.image(copying.repo, "v1")
    insecure = _insecure(copying.source, copying.destination)
    src, dst = f"{copying.source.host}/{copying.repo}", f"{copying.destination.host}/{copying.repo}"
    copying.copy()
    copying.copy(f"@{first.digest}", ":other")
    # When A's copy runs late, and a precheck finds A's digest there without the tag
    late = copying.copy(f":v1@{first.digest}", ":v1")
    probed = probe_destination(f"{src}:v1@{first.digest}", f"{dst}:v2", insecure_registries=insecure)
    # Then neither puts the tag: both are superseded, and the destination keeps B
    assert (late.action, late.source_digest) == ("superseded", first.digest)
    assert (probed.action, probed.digest, probed.destination_digest) == ("superseded", first.digest, None)
    assert copying.digest_at(":v1") == second.digest
    assert copying.digest_at(":v2") is None


def test_missing_source_raises_image_not_found(
    source_registry: RegistryServer, dest_registry: RegistryServer, repo: str
) -> None:
    # Given a tag that does not exist, When copying, Then ImageNotFound names it
    with pytest.raises(ImageNotFound, match=f"{repo}:nope"):
        copy_between(source_registry, dest_registry, f"{repo}:nope")


def test_immutable_destination_tag_raises(
    builder: ImageBuilder,
    source_registry: RegistryServer,
    dest_registry: RegistryServer,
    repo: str,
    proxy_for: Callable[[RegistryServer], FaultProxy],
) -> None:
    # Given a destination that refuses to move the tag the way ECR does for an immutable tag
    builder.image(repo, "v1")
    proxy = proxy_for(dest_registry)
    proxy.add(_immutable_tag_refusal(repo, times=10))
    # When copying, Then DestinationTagImmutable names the destination
    with pytest.raises(DestinationTagImmutable, match=f"{repo}:v1"):
        copy_between(source_registry, proxy, f"{repo}:v1")


def test_an_immutable_tag_another_run_just_put_at_the_same_digest_is_not_a_failure(
    builder: ImageBuilder,
    source_registry: RegistryServer,
    dest_registry: RegistryServer,
    repo: str,
    proxy_for: Callable[[RegistryServer], FaultProxy],
) -> None:
    # Given an image already at the destination, which ECR would refuse to tag again (immutable), and a
    # race: this run's first look at the tag found nothing
    pushed = builder.image(repo, "v1")
    copy_between(source_registry, dest_registry, f"{repo}:v1")
    proxy = proxy_for(dest_registry)
    proxy.add(Fault("HEAD", f"/v2/{repo}/manifests/v1$", "status", status=404))
    refusal = proxy.add(_immutable_tag_refusal(repo, times=1))
    # When copying again
    result = copy_between(source_registry, proxy, f"{repo}:v1")
    # Then the refusal was seen, and the tag already holding the same digest counts as done
    assert refusal.hits == 1
    assert result.action == "tagged"
    assert skopeo_digest(f"{dest_registry.host}/{repo}:v1") == pushed.digest


def _immutable_tag_refusal(repo: str, times: int) -> Fault:
    """ECR's answer to a manifest PUT under an immutable tag that already exists."""
    body = json.dumps(
        {
            "errors": [
                {
                    "code": "TAG_INVALID",
                    "message": f"The image tag 'v1' already exists in the "
                    f"'{repo}' repository and cannot be overwritten because the tag is immutable.",
                }
            ]
        }
    )
    return Fault(
        "PUT",
        f"/v2/{repo}/manifests/v1$",
        "status",
        times=times,
        status=400,
        body=body.encode(),
        headers={"Content-Type": "application/json"},
    )
