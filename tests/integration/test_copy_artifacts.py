"""Everything ECR holds copies between real registries, digest kept (skopeo as the oracle).

Windows images with foreign (non-distributable) layers, Helm charts, OCI 1.1 artifacts, buildx indexes
with attestation manifests, and zstd layers.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from tests.integration.conftest import copy_between
from tests.integration.images import (
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_MANIFEST,
    OCI_EMPTY,
    ImageBuilder,
    Pushed,
)
from tests.integration.registries import RegistryServer, blob_files, skopeo_digest, skopeo_raw
from workflow.local.images import OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST
from workflow.local.images import sha256 as digest_of

pytestmark = pytest.mark.integration

DOCKER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
OCI_NONDISTRIBUTABLE = "application/vnd.oci.image.layer.nondistributable.v1.tar"
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
ZSTD_LAYER = "application/vnd.oci.image.layer.v1.tar+zstd"


def _descriptor(media_type: str, blob: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest_of(blob), "size": len(blob), **extra}


def _manifest(builder: ImageBuilder, repo: str, tag: str, media_type: str, body: dict[str, Any]) -> Pushed:
    raw = json.dumps({"schemaVersion": 2, "mediaType": media_type, **body}, indent=2).encode()
    return Pushed(builder.push_manifest(repo, tag, raw, media_type), raw, media_type)


def _copy(source: RegistryServer, dest: RegistryServer, repo: str, tag: str) -> Any:
    return copy_between(source, dest, f"{repo}:{tag}")


def _windows_image(builder: ImageBuilder, repo: str, foreign_type: str) -> tuple[Pushed, str, list[str]]:
    """A Windows image: a foreign base layer (never pushed anywhere, only its URL is known) and one of its own."""
    base = os.urandom(4096)  # stands for a Windows base layer, which only Microsoft's URL serves
    own = os.urandom(2048)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "windows",
            "os.version": "10.0.20348.2113",
            "rootfs": {"type": "layers"},
        }
    ).encode()
    pushed_blobs = [builder.push_blob(repo, config), builder.push_blob(repo, own)]
    docker = foreign_type == DOCKER_FOREIGN
    foreign = _descriptor(
        foreign_type,
        base,
        urls=[f"https://mcr.microsoft.com/v2/windows/servercore/blobs/{digest_of(base)}"],
    )
    pushed = _manifest(
        builder,
        repo,
        "ltsc2022",
        DOCKER_MANIFEST if docker else OCI_MANIFEST,
        {
            "config": _descriptor(DOCKER_CONFIG if docker else OCI_CONFIG, config),
            "layers": [foreign, _descriptor(DOCKER_LAYER if docker else OCI_LAYER, own)],
        },
    )
    return pushed, digest_of(base), pushed_blobs


@pytest.mark.parametrize(
    "foreign_type",
    [DOCKER_FOREIGN, f"{OCI_NONDISTRIBUTABLE}+gzip", OCI_NONDISTRIBUTABLE],
    ids=["docker-foreign", "oci-nondistributable-gzip", "oci-nondistributable"],
)
def test_an_image_with_a_foreign_layer_copies_with_its_digest_and_without_that_blob(
    builder: ImageBuilder,
    source_registry: RegistryServer,
    dest_registry: RegistryServer,
    repo: str,
    foreign_type: str,
) -> None:
    # Given a Windows-style image whose base layer is foreign: the source holds no blob for it
    pushed, foreign, own_blobs = _windows_image(builder, repo, foreign_type)
    assert foreign not in blob_files(source_registry)
    # When copying it to another registry
    result = _copy(source_registry, dest_registry, repo, "ltsc2022")
    # Then the manifest arrives byte for byte (skopeo reads the same digest), with every blob but the
    # foreign one, which neither registry holds: clients fetch it from its URL
    assert skopeo_digest(f"{dest_registry.host}/{repo}:ltsc2022") == pushed.digest
    assert skopeo_raw(f"{dest_registry.host}/{repo}:ltsc2022") == pushed.raw
    assert set(own_blobs) <= blob_files(dest_registry)
    assert foreign not in blob_files(dest_registry)
    assert (result.action, result.destination_digest) == ("copied", pushed.digest)
    assert (result.blobs_copied, result.platforms) == (2, ["windows/amd64"])


def test_a_zstd_foreign_layer_is_not_fetched_either(
    builder: ImageBuilder, source_registry: RegistryServer, dest_registry: RegistryServer, repo: str
) -> None:
    # Given an OCI image whose non-distributable layer is zstd, inside a multi-platform index
    windows, foreign, _ = _windows_image(builder, repo, f"{OCI_NONDISTRIBUTABLE}+gzip")
    base = os.urandom(1024)
    own = os.urandom(512)
    config = json.dumps({"architecture": "arm64", "os": "windows", "rootfs": {"type": "layers"}}).encode()
    builder.push_blob(repo, config)
    builder.push_blob(repo, own)
    zstd = _descriptor(f"{OCI_NONDISTRIBUTABLE}+zstd", base, urls=[f"https://example.com/{digest_of(base)}"])
    raw = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": _descriptor(OCI_CONFIG, config),
            "layers": [zstd, _descriptor(ZSTD_LAYER, own)],
        }
    ).encode()
    response = builder.client.put(
        f"/v2/{repo}/manifests/{digest_of(raw)}", content=raw, headers={"Content-Type": OCI_MANIFEST}
    )
    if response.status_code != 201:
        # docker-registry 2.8 predates the zstd non-distributable type and wants its blob; push it there
        # only, so the registry takes the manifest and the copier still must not fetch it
        builder.push_blob(repo, base)
        builder.push_manifest(repo, digest_of(raw), raw, OCI_MANIFEST)
    arm = Pushed(digest_of(raw), raw, OCI_MANIFEST)
    index = _manifest(
        builder,
        repo,
        "multi",
        OCI_INDEX,
        {
            "manifests": [
                windows.descriptor({"os": "windows", "architecture": "amd64"}),
                arm.descriptor({"os": "windows", "architecture": "arm64"}),
            ]
        },
    )
    # When copying the index
    result = _copy(source_registry, dest_registry, repo, "multi")
    # Then it and both images arrive with their digests, and no foreign blob was copied
    assert skopeo_digest(f"{dest_registry.host}/{repo}:multi") == index.digest
    assert skopeo_raw(f"{dest_registry.host}/{repo}@{arm.digest}") == raw
    assert foreign not in blob_files(dest_registry)
    assert digest_of(base) not in blob_files(dest_registry)
    assert result.platforms == ["windows/amd64", "windows/arm64"]


def test_a_helm_chart_copies_with_its_digest(
    builder: ImageBuilder, source_registry: RegistryServer, dest_registry: RegistryServer, repo: str
) -> None:
    # Given a Helm chart pushed as OCI (`helm push`): Helm's config and chart media types
    config = json.dumps({"name": "app", "version": "1.2.0", "apiVersion": "v2"}).encode()
    chart = os.urandom(3000)
    blobs = [builder.push_blob(repo, config), builder.push_blob(repo, chart)]
    pushed = _manifest(
        builder,
        repo,
        "1.2.0",
        OCI_MANIFEST,
        {"config": _descriptor(HELM_CONFIG, config), "layers": [_descriptor(HELM_CHART, chart)]},
    )
    # When copying it
    result = _copy(source_registry, dest_registry, repo, "1.2.0")
    # Then the chart arrives byte for byte, config and content blobs included, and names no platform
    assert skopeo_raw(f"{dest_registry.host}/{repo}:1.2.0") == pushed.raw
    assert set(blobs) <= blob_files(dest_registry)
    assert (result.destination_digest, result.platforms, result.blobs_copied) == (pushed.digest, [], 2)


def test_an_oci_artifact_with_the_empty_config_copies_with_its_digest(
    builder: ImageBuilder, source_registry: RegistryServer, dest_registry: RegistryServer, repo: str
) -> None:
    # Given an OCI 1.1 artifact: `artifactType`, the empty config and the empty descriptor as its layer
    # (image-spec manifest.md, "Guidelines for Artifact Usage")
    builder.push_blob(repo, b"{}")
    empty = _descriptor(OCI_EMPTY, b"{}", data="e30=")
    pushed = _manifest(
        builder,
        repo,
        "policy",
        OCI_MANIFEST,
        {
            "artifactType": "application/vnd.example.policy.v1",
            "config": empty,
            "layers": [empty],
            "annotations": {"org.opencontainers.image.created": "2026-01-01T00:00:00Z"},
        },
    )
    # When copying it
    result = _copy(source_registry, dest_registry, repo, "policy")
    # Then it arrives byte for byte with its one blob
    assert skopeo_raw(f"{dest_registry.host}/{repo}:policy") == pushed.raw
    assert digest_of(b"{}") in blob_files(dest_registry)
    assert (result.destination_digest, result.blobs_copied + result.blobs_skipped) == (pushed.digest, 1)


def test_a_buildx_index_with_attestation_manifests_copies_whole(
    builder: ImageBuilder, source_registry: RegistryServer, dest_registry: RegistryServer, repo: str
) -> None:
    # Given what `docker buildx build --provenance --sbom --platform linux/amd64,linux/arm64` pushes:
    # one image per platform and, for each, an attestation manifest on platform unknown/unknown
    images = [builder.image(repo, None, platform=("linux", arch)) for arch in ("amd64", "arm64")]
    attestations = []
    for image in images:
        statement = json.dumps({"_type": "https://in-toto.io/Statement/v0.1", "subject": []}).encode()
        config = json.dumps(
            {"architecture": "unknown", "os": "unknown", "rootfs": {"type": "layers"}}
        ).encode()
        builder.push_blob(repo, statement)
        builder.push_blob(repo, config)
        layer = _descriptor(
            "application/vnd.in-toto+json",
            statement,
            annotations={"in-toto.io/predicate-type": "https://spdx.dev/Document"},
        )
        raw = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": _descriptor(OCI_CONFIG, config),
                "layers": [layer],
            }
        ).encode()
        builder.push_manifest(repo, digest_of(raw), raw, OCI_MANIFEST)
        attestations.append(
            Pushed(digest_of(raw), raw, OCI_MANIFEST).descriptor(
                {"architecture": "unknown", "os": "unknown"},
                annotations={
                    "vnd.docker.reference.digest": image.digest,
                    "vnd.docker.reference.type": "attestation-manifest",
                },
            )
        )
    index = _manifest(
        builder,
        repo,
        "v1",
        OCI_INDEX,
        {
            "manifests": [
                *(
                    i.descriptor({"os": "linux", "architecture": a})
                    for i, a in zip(images, ("amd64", "arm64"), strict=True)
                ),
                *attestations,
            ]
        },
    )
    # When copying the index
    result = _copy(source_registry, dest_registry, repo, "v1")
    # Then the index and all four manifests arrive byte for byte; the platforms named are the real ones
    assert skopeo_raw(f"{dest_registry.host}/{repo}:v1") == index.raw
    for child in json.loads(index.raw)["manifests"]:
        assert skopeo_digest(f"{dest_registry.host}/{repo}@{child['digest']}") == child["digest"]
    assert result.platforms == ["linux/amd64", "linux/arm64"]


def test_zstd_layers_copy_with_their_digest(
    builder: ImageBuilder, source_registry: RegistryServer, dest_registry: RegistryServer, repo: str
) -> None:
    # Given an OCI image whose layers are zstd-compressed
    layers = [os.urandom(size) for size in (700, 90_000)]
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}}).encode()
    blobs = [builder.push_blob(repo, config), *(builder.push_blob(repo, layer) for layer in layers)]
    pushed = _manifest(
        builder,
        repo,
        "zstd",
        OCI_MANIFEST,
        {"config": _descriptor(OCI_CONFIG, config), "layers": [_descriptor(ZSTD_LAYER, b) for b in layers]},
    )
    # When copying it
    result = _copy(source_registry, dest_registry, repo, "zstd")
    # Then every blob and the manifest arrive, digest kept
    assert skopeo_raw(f"{dest_registry.host}/{repo}:zstd") == pushed.raw
    assert set(blobs) <= blob_files(dest_registry)
    assert (result.destination_digest, result.blobs_copied, result.platforms) == (
        pushed.digest,
        3,
        ["linux/amd64"],
    )
