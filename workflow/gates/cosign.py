"""cosign signatures with a public key: the "simple signing" payload and its signature.

Format (cosign's SIGNATURE_SPEC.md): a layer of media type application/vnd.dev.cosign.simplesigning.v1+json
whose bytes are the payload, `{"critical": {"image": {"docker-manifest-digest": ...}, "type": ...}}`, and the
base64 signature of those bytes in the layer annotation dev.cosignproject.cosign/signature. cosign signs
with SHA-256: ECDSA (ASN.1 DER), RSA PKCS#1 v1.5, or Ed25519 over the payload itself.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from workflow.gates.decision import SignatureRefused
from workflow.models.policy import PublicKey

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
ARTIFACT_TYPE = "application/vnd.dev.cosign.artifact.sig.v1+json"  # cosign --registry-referrers-mode=oci-1-1
SIGNATURE_TYPE = "cosign container image signature"


def _verify(key: PublicKey, signature: bytes, payload: bytes) -> None:
    if isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
    elif isinstance(key, rsa.RSAPublicKey):
        key.verify(signature, payload, padding.PKCS1v15(), hashes.SHA256())
    else:
        key.verify(signature, payload)


def signed_digest(payload: bytes) -> str:
    """The manifest digest a (verified) simple-signing payload names."""
    try:
        document: Any = json.loads(payload)
        critical = document["critical"]
        digest = critical["image"]["docker-manifest-digest"]
        kind = critical["type"]
    except (ValueError, KeyError, TypeError):
        raise SignatureRefused("the signed payload is not a cosign simple-signing document") from None
    if kind != SIGNATURE_TYPE or not isinstance(digest, str):
        raise SignatureRefused(f"the signed payload is of type {kind!r}, not {SIGNATURE_TYPE!r}")
    return digest


def verify_cosign(payload: bytes, signature_b64: str, keys: list[PublicKey], digest: str) -> int:
    """The index of the trusted key that signed `payload` for `digest`; SignatureRefused says why not."""
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureRefused("the signature annotation is not base64") from None
    for index, key in enumerate(keys):
        try:
            _verify(key, signature, payload)
        except InvalidSignature:
            continue
        signed = signed_digest(payload)
        if signed != digest:
            raise SignatureRefused(f"signed by trusted key {index}, but for {signed}, not {digest}")
        return index
    raise SignatureRefused(
        "does not verify with any trusted cosign key (an unknown key, or a changed payload)"
    )
