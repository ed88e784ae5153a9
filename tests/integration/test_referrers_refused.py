"""A destination that refuses OCI 1.1 referrer manifests with 405, as ECR does (aws/containers-roadmap#2783).

The copy still delivers the image and every referrer the destination accepts; the refused one is named in
the result (`ReferrerRefused`), not a failed copy.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.faults import FaultProxy
from tests.integration.images import ImageBuilder, Pushed
from tests.integration.registries import RegistryServer, skopeo_digest
from workflow.cli import main
from workflow.engine.copier import copy_image as copy
from workflow.engine.copier import probe_destination

pytestmark = pytest.mark.integration
SPDX = "application/spdx+json"


def _signed_image_with_sbom(
    builder: ImageBuilder, source: FaultProxy, repo: str
) -> tuple[Pushed, Pushed, Pushed]:
    """An index `repo:v1` with an SPDX SBOM (an OCI 1.1 referrer, listed by `source`'s referrers API) and a
    cosign signature under its `sha256-<hex>.sig` tag (no subject: not a referrer manifest)."""
    pushed = builder.index(repo, "v1", layer_sizes=(512,))
    sbom = builder.referrer(repo, pushed, artifact_type=SPDX)
    signature = builder.signature_tag(repo, pushed.digest)
    source.referrers = {pushed.digest: [sbom.descriptor(artifactType=SPDX)]}
    return pushed, sbom, signature


def _ecr_like(proxy: FaultProxy) -> FaultProxy:
    """A destination with the referrers API that answers 405 to the PUT of an OCI 1.1 referrer, as ECR."""
    proxy.referrers = {}
    proxy.refuse_referrers = True
    return proxy


def test_a_refused_referrer_is_named_and_the_image_and_other_referrers_are_copied(
    builder: ImageBuilder,
    source_registry: RegistryServer,
    dest_registry: RegistryServer,
    proxy_for: Callable[[RegistryServer], FaultProxy],
    repo: str,
) -> None:
    # Given a signed image with an SBOM, and a destination that refuses OCI 1.1 referrers with 405
    source = proxy_for(source_registry)
    pushed, sbom, signature = _signed_image_with_sbom(builder, source, repo)
    destination = _ecr_like(proxy_for(dest_registry))
    # When copied
    result = copy(
        f"{source.host}/{repo}:v1",
        f"{destination.host}/{repo}:v1",
        insecure_registries=(source.host, destination.host),
    )
    # Then the copy succeeds: the image under its tag and the signature are at the destination
    assert result.action == "copied"
    assert skopeo_digest(f"{dest_registry.host}/{repo}:v1") == pushed.digest
    signature_tag = pushed.digest.replace(":", "-") + ".sig"
    assert skopeo_digest(f"{dest_registry.host}/{repo}:{signature_tag}") == signature.digest
    assert result.referrers_copied == 1
    # And the SBOM the destination refused is named, with its artifact type and the registry's answer
    assert result.referrers_refused == 1
    (refused,) = result.refused_referrers
    assert (refused["digest"], refused["artifact_type"]) == (sbom.digest, SPDX)
    assert "HTTP 405" in str(refused["reason"])
    assert destination.requests("PUT", f"/manifests/{sbom.digest}$") == [
        ("PUT", f"/v2/{repo}/manifests/{sbom.digest}", 405)
    ]


def test_the_copy_command_succeeds_and_names_the_refused_referrer(
    builder: ImageBuilder,
    source_registry: RegistryServer,
    dest_registry: RegistryServer,
    proxy_for: Callable[[RegistryServer], FaultProxy],
    repo: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given the same image and destination, and the copy job's result file
    source = proxy_for(source_registry)
    _, sbom, _ = _signed_image_with_sbom(builder, source, repo)
    destination = _ecr_like(proxy_for(dest_registry))
    result_file = tmp_path / "result.json"
    # When `ecr-replicate copy` runs as the copy job runs it
    code = main(
        [
            "copy", f"{source.host}/{repo}:v1", f"{destination.host}/{repo}:v1",
            "--insecure-registry", source.host, "--insecure-registry", destination.host,
            "--result-file", str(result_file),
        ]
    )  # fmt: skip
    # Then it exits 0, its result names the refused referrer, and its closing line says so
    assert code == 0
    result = json.loads(result_file.read_text())
    assert result["action"] == "copied"
    assert result["referrers_refused"] == 1
    assert result["refused_referrers"][0]["digest"] == sbom.digest
    err = capsys.readouterr().err
    assert f"ReferrerRefused: the destination refused 1 referrer: {sbom.digest} ({SPDX})" in err


def test_an_image_a_destination_signed_itself_is_present_and_its_signature_kept(
    builder: ImageBuilder,
    builder_for: Callable[[RegistryServer], ImageBuilder],
    source_registry: RegistryServer,
    dest_registry: RegistryServer,
    proxy_for: Callable[[RegistryServer], FaultProxy],
    repo: str,
) -> None:
    # Given an image already copied to a destination that signs what is pushed to it (ECR managed signing):
    # its referrers API lists a Notation signature the source does not have
    source = proxy_for(source_registry)
    source.referrers = {}
    pushed = builder.index(repo, "v1", layer_sizes=(512,))
    destination = proxy_for(dest_registry)
    destination.referrers = {}
    insecure = (source.host, destination.host)
    copy(f"{source.host}/{repo}:v1", f"{destination.host}/{repo}:v1", insecure_registries=insecure)
    own = builder_for(dest_registry).referrer(
        repo, pushed, artifact_type="application/vnd.cncf.notary.signature"
    )
    destination.referrers = {
        pushed.digest: [own.descriptor(artifactType="application/vnd.cncf.notary.signature")]
    }
    # When the precheck looks and the copy runs again
    probed = probe_destination(
        f"{source.host}/{repo}:v1", f"{destination.host}/{repo}:v1", insecure_registries=insecure
    )
    again = copy(f"{source.host}/{repo}:v1", f"{destination.host}/{repo}:v1", insecure_registries=insecure)
    # Then the image is present, nothing is copied or removed, and the destination's signature stays
    assert probed.action == "present"
    assert (again.action, again.referrers_copied, again.blobs_copied) == ("present", 0, 0)
    assert skopeo_digest(f"{dest_registry.host}/{repo}@{own.digest}") == own.digest
    assert not destination.requests("DELETE", ".")
