"""Notation JWS envelopes made here in the Notary Project's documented format (signature-envelope-jws.md).

The real vectors (test_gates_signatures.py) are RSA-PSS under notary.x509; these cover what they do not:
ES256 (JWS raw r||s signatures), a CA-issued leaf, and notary.x509.signingAuthority (AWS Signer's
scheme), whose certificates are checked at the authentic signing time rather than now.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from workflow.gates.decision import SignatureRefused
from workflow.gates.notation import JWS, PAYLOAD_TYPE, verify_notation

DIGEST = "sha256:" + "cd" * 32
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[str, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool,
    not_after: datetime,
) -> x509.Certificate:
    issuer_name, issuer_key = issuer or (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=365))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


class Signer:
    """A root CA and a leaf it issued, signing ES256 envelopes."""

    def __init__(self, leaf_not_after: datetime = NOW + timedelta(days=30)) -> None:
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = _certificate(
            "Test Signer Root", self.root_key, None, ca=True, not_after=NOW + timedelta(days=3650)
        )
        self.leaf_key = ec.generate_private_key(ec.SECP256R1())
        self.leaf = _certificate(
            "release signer",
            self.leaf_key,
            ("Test Signer Root", self.root_key),
            ca=False,
            not_after=leaf_not_after,
        )

    def envelope(self, digest: str = DIGEST, **header: Any) -> bytes:
        protected = {
            "alg": "ES256",
            "crit": ["io.cncf.notary.signingScheme"],
            "cty": PAYLOAD_TYPE,
            "io.cncf.notary.signingScheme": "notary.x509",
            "io.cncf.notary.signingTime": (NOW - timedelta(hours=1)).isoformat(),
            **header,
        }
        payload = {
            "targetArtifact": {
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": digest,
                "size": 1,
            }
        }
        signing_input = f"{_b64(json.dumps(protected).encode())}.{_b64(json.dumps(payload).encode())}"
        r, s = decode_dss_signature(self.leaf_key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        x5c = [
            base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode()
            for c in (self.leaf, self.root)
        ]
        protected_b64, payload_b64 = signing_input.split(".")
        return json.dumps(
            {
                "protected": protected_b64,
                "payload": payload_b64,
                "signature": _b64(raw),
                "header": {"x5c": x5c},
            }
        ).encode()


def test_es256_envelope_by_a_ca_issued_leaf_verifies() -> None:
    signer = Signer()
    assert verify_notation(signer.envelope(), JWS, [signer.root], DIGEST, NOW) == "CN=release signer"


def test_signing_authority_checks_certificates_at_the_authentic_signing_time() -> None:
    # Given AWS Signer's scheme: a leaf that has expired since it signed, with an authentic signing time
    signer = Signer(leaf_not_after=NOW - timedelta(days=1))
    signed_at = (NOW - timedelta(days=10)).isoformat()
    envelope = signer.envelope(
        **{
            "crit": ["io.cncf.notary.signingScheme", "io.cncf.notary.authenticSigningTime"],
            "io.cncf.notary.signingScheme": "notary.x509.signingAuthority",
            "io.cncf.notary.authenticSigningTime": signed_at,
        }
    )
    # When verified now / Then it passes: the leaf was valid when it signed
    assert verify_notation(envelope, JWS, [signer.root], DIGEST, NOW) == "CN=release signer"


def test_notary_x509_with_an_expired_leaf_is_refused() -> None:
    # Given the plain notary.x509 scheme and a leaf that has expired / Then refused: checked at now
    signer = Signer(leaf_not_after=NOW - timedelta(days=1))
    with pytest.raises(SignatureRefused, match="CN=release signer is not valid at 2026-12-01T10:00Z"):
        verify_notation(signer.envelope(), JWS, [signer.root], DIGEST, NOW)


def test_signing_authority_without_its_authentic_time_is_refused() -> None:
    signer = Signer()
    envelope = signer.envelope(**{"io.cncf.notary.signingScheme": "notary.x509.signingAuthority"})
    with pytest.raises(SignatureRefused, match=re.escape("without io.cncf.notary.authenticSigningTime")):
        verify_notation(envelope, JWS, [signer.root], DIGEST, NOW)


def test_an_unknown_critical_header_is_refused() -> None:
    signer = Signer()
    envelope = signer.envelope(**{"crit": ["io.cncf.notary.signingScheme", "x-custom"], "x-custom": 1})
    with pytest.raises(SignatureRefused, match="unsupported or absent critical parameters: x-custom"):
        verify_notation(envelope, JWS, [signer.root], DIGEST, NOW)


def test_a_leaf_of_another_root_is_not_trusted() -> None:
    signer, other = Signer(), Signer()
    with pytest.raises(SignatureRefused, match="certificate chain is not trusted"):
        verify_notation(signer.envelope(), JWS, [other.root], DIGEST, NOW)
