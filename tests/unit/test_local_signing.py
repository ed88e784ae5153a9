"""The local cosign signer: what it pushes verifies with the product's cosign verifier, and only with its key."""

from __future__ import annotations

import json

import pytest

from workflow.gates.cosign import verify_cosign
from workflow.gates.decision import SignatureRefused
from workflow.local.signing import SIGNATURE_ANNOTATION, cosign_signature, new_key, public_pem, signature_tag
from workflow.models.policy import parse_public_key

DIGEST = "sha256:" + "ef" * 32


def _signature_layer(top: bytes) -> tuple[str, str]:
    layer = json.loads(top)["layers"][0]
    return layer["digest"], layer["annotations"][SIGNATURE_ANNOTATION]


def test_a_local_signature_verifies_with_its_key_only() -> None:
    """Given a signature made with a fresh key for DIGEST,
    When the product's verifier checks it against that key, another key, and another digest,
    Then only the first verifies."""
    key, other = new_key(), new_key()
    image = cosign_signature("127.0.0.1:5000/app", DIGEST, key)
    layer_digest, signature = _signature_layer(image.top.data)
    payload = next(b.data for b in image.blobs if b.digest == layer_digest)
    assert verify_cosign(payload, signature, [parse_public_key(public_pem(key))], DIGEST) == 0
    with pytest.raises(SignatureRefused, match="does not verify"):
        verify_cosign(payload, signature, [parse_public_key(public_pem(other))], DIGEST)
    with pytest.raises(SignatureRefused, match="not sha256:00"):
        verify_cosign(payload, signature, [parse_public_key(public_pem(key))], "sha256:" + "00" * 32)


def test_the_signature_tag_is_cosigns() -> None:
    """Given a digest, When its signature tag is named, Then it is cosign's `sha256-<hex>.sig`."""
    assert signature_tag(DIGEST) == "sha256-" + "ef" * 32 + ".sig"
