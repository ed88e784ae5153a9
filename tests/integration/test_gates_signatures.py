"""The signature gate against a real registry (docker-registry on loopback, no referrers API).

The signature is made here in cosign's documented format (SIGNATURE_SPEC.md: a simple-signing payload
layer, its ECDSA P-256/SHA-256 signature base64 in the `dev.cosignproject.cosign/signature` annotation,
pushed under `sha256-<hex>.sig`), since the image it signs is made here too.
"""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.integration.images import ImageBuilder, Pushed
from tests.integration.registries import RegistryServer
from workflow.gates.cosign import SIGNATURE_ANNOTATION, SIMPLE_SIGNING
from workflow.gates.discovery import find_signatures
from workflow.gates.signature import evaluate_signatures
from workflow.local.images import OCI_CONFIG, OCI_MANIFEST
from workflow.models.policy import SignatureGate
from workflow.registry.client import RegistryClient

pytestmark = pytest.mark.integration


def public_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def cosign_sign(
    builder: ImageBuilder, repository: str, subject: str, key: ec.EllipticCurvePrivateKey
) -> None:
    """Push a cosign key signature of `subject` under its .sig tag, as `cosign sign --key` does."""
    payload = json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": f"registry.test/{repository}"},
                "image": {"docker-manifest-digest": subject},
                "type": "cosign container image signature",
            },
            "optional": None,
        }
    ).encode()
    signature = base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()
    layer = builder.push_blob(repository, payload)
    config = builder.push_blob(repository, b"{}")
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config, "size": 2},
        "layers": [
            {
                "mediaType": SIMPLE_SIGNING,
                "digest": layer,
                "size": len(payload),
                "annotations": {SIGNATURE_ANNOTATION: signature},
            }
        ],
    }
    builder.push_manifest(
        repository, subject.replace(":", "-") + ".sig", json.dumps(manifest).encode(), OCI_MANIFEST
    )


def decide(server: RegistryServer, repository: str, digest: str, keys: list[str]) -> tuple[str, str]:
    client = RegistryClient(server.host, insecure=True)
    decision = evaluate_signatures(
        find_signatures(client, repository, digest), SignatureGate(cosign_keys=keys), digest
    )
    return decision.verdict, decision.reason


def test_a_signed_multi_arch_index_passes_only_over_its_index_digest(
    source_registry: RegistryServer, builder: ImageBuilder, repo: str
) -> None:
    # Given a multi-arch index signed over its index digest
    key = ec.generate_private_key(ec.SECP256R1())
    index: Pushed = builder.index(repo, "release-1", layer_sizes=(64,))
    cosign_sign(builder, repo, index.digest, key)
    # When the gate reads the registry for the index / Then it passes
    verdict, reason = decide(source_registry, repo, index.digest, [public_pem(key)])
    assert verdict == "pass", reason
    assert reason == f"signed with trusted cosign key 0, tag {index.digest.replace(':', '-')}.sig"
    # And a platform manifest, which nobody signed, is blocked: the index's signature is not its signature
    child = index.children[0].digest
    assert decide(source_registry, repo, child, [public_pem(key)]) == (
        "block",
        f"no signature found for {child} (OCI referrers and the cosign .sig tag)",
    )


def test_a_signature_by_another_key_is_blocked(
    source_registry: RegistryServer, builder: ImageBuilder, repo: str
) -> None:
    # Given an image signed by a key the rule does not trust
    image = builder.image(repo, "release-2", layer_sizes=(64,))
    cosign_sign(builder, repo, image.digest, ec.generate_private_key(ec.SECP256R1()))
    trusted = public_pem(ec.generate_private_key(ec.SECP256R1()))
    # When gated / Then blocked, saying a signature was found and did not verify
    verdict, reason = decide(source_registry, repo, image.digest, [trusted])
    assert verdict == "block"
    assert reason.startswith(
        "no signature by a trusted identity; found 1 signature: cosign signature (tag sha256-"
    )
