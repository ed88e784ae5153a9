"""Real cosign signatures for the demo and the e2e tests: a key made at start, a signature pushed as cosign does.

cosign's format (its SIGNATURE_SPEC.md): a manifest under the tag `sha256-<hex>.sig` whose layer, of media type
application/vnd.dev.cosign.simplesigning.v1+json, is the simple-signing payload naming the signed manifest
digest, with the base64 ECDSA-P256/SHA-256 signature of those bytes in the layer annotation
`dev.cosignproject.cosign/signature`. The product verifies it as it verifies one cosign made
(workflow/gates/cosign.py; tests/unit/data/gates holds vectors cosign made).
"""

from __future__ import annotations

import base64
import json

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from workflow.local.images import OCI_CONFIG, OCI_MANIFEST, Blob, Image, push_image, sha256

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"


def new_key() -> ec.EllipticCurvePrivateKey:
    """A fresh ECDSA P-256 key, the kind `cosign generate-key-pair` makes."""
    return ec.generate_private_key(ec.SECP256R1())


def public_pem(key: ec.EllipticCurvePrivateKey) -> str:
    """The key's public half as PEM, as a rule's `gates.signature.cosign_keys` entry takes it."""
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def signature_tag(digest: str) -> str:
    """cosign's tag for the signatures of the manifest `digest`."""
    return digest.replace(":", "-", 1) + ".sig"


def cosign_signature(reference: str, digest: str, key: ec.EllipticCurvePrivateKey) -> Image:
    """The signature image cosign pushes for `reference` (e.g. `registry/app`) at `digest`."""
    payload = json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": reference},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        },
        separators=(",", ":"),
    ).encode()
    signature = base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()
    layer = Blob(SIMPLE_SIGNING, payload)
    config = Blob(
        OCI_CONFIG,
        json.dumps(
            {
                "architecture": "",
                "os": "",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": [sha256(payload)]},
            },
            separators=(",", ":"),
        ).encode(),
    )
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [layer.descriptor(annotations={SIGNATURE_ANNOTATION: signature})],
    }
    return Image(top=Blob(OCI_MANIFEST, json.dumps(manifest).encode()), blobs=[config, layer])


def push_signature(
    registry_url: str, host: str, repository: str, digest: str, key: ec.EllipticCurvePrivateKey
) -> str:
    """Sign `repository@digest` with `key` and push the signature under cosign's tag; returns that tag."""
    tag = signature_tag(digest)
    push_image(registry_url, repository, tag, cosign_signature(f"{host}/{repository}", digest, key))
    return tag
