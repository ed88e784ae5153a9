"""Notation JWS envelopes made here in the Notary Project's documented format (signature-envelope-jws.md).

The real vectors (test_gates_signatures.py) are RSA-PSS under notary.x509; these cover what they do not:
ES256 (JWS raw r||s signatures), a CA-issued leaf, and notary.x509.signingAuthority (AWS Signer's
scheme), whose certificates are checked at the authentic signing time rather than now, and only against a
signing-authority trust store (the Notary Project's signing scheme specification, "Trust Stores").
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
        return self.sign(json.dumps(protected).encode(), json.dumps(payload).encode())

    def sign(self, protected: bytes, payload: bytes) -> bytes:
        """The JWS JSON envelope of `payload` under the `protected` header, signed by the leaf."""
        signing_input = f"{_b64(protected)}.{_b64(payload)}"
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


def signing_authority_envelope(signer: Signer, signed_at: datetime) -> bytes:
    """An envelope claiming the notary.x509.signingAuthority scheme and an authentic signing time."""
    return signer.envelope(
        **{
            "crit": ["io.cncf.notary.signingScheme", "io.cncf.notary.authenticSigningTime"],
            "io.cncf.notary.signingScheme": "notary.x509.signingAuthority",
            "io.cncf.notary.authenticSigningTime": signed_at.isoformat(),
        }
    )


def test_signing_authority_checks_certificates_at_the_authentic_signing_time() -> None:
    # Given AWS Signer's scheme: a leaf that has expired since it signed, with an authentic signing time,
    # and its root in the signing-authority trust store
    signer = Signer(leaf_not_after=NOW - timedelta(days=1))
    envelope = signing_authority_envelope(signer, NOW - timedelta(days=10))
    # When verified now / Then it passes: the leaf was valid when the signing authority signed
    verified = verify_notation(envelope, JWS, [], DIGEST, NOW, signing_authorities=[signer.root])
    assert verified == "CN=release signer"


def test_an_expired_ca_leaf_claiming_the_signing_authority_scheme_is_refused() -> None:
    # Given a CA-issued leaf that expired yesterday, signing today an envelope that claims the
    # signingAuthority scheme and a signing time of its own choosing, when it was still valid
    signer = Signer(leaf_not_after=NOW - timedelta(days=1))
    envelope = signing_authority_envelope(signer, NOW - timedelta(days=10))
    # When verified with the root as a CA trust anchor only / Then it is refused: that scheme is trusted
    # only through a signing-authority trust store, never CA anchors at its self-claimed time
    with pytest.raises(SignatureRefused, match="trusted only through a signing-authority trust store"):
        verify_notation(envelope, JWS, [signer.root], DIGEST, NOW)


def test_a_signing_authority_root_does_not_verify_the_notary_x509_scheme() -> None:
    # Given a plain notary.x509 envelope, its root in the signing-authority store only
    signer = Signer()
    # When verified / Then refused: notary.x509 is verified against CA anchors, of which there are none
    with pytest.raises(SignatureRefused, match="certificate chain is not trusted"):
        verify_notation(signer.envelope(), JWS, [], DIGEST, NOW, signing_authorities=[signer.root])


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


@pytest.mark.parametrize("part", ["envelope", "protected header", "payload"])
def test_an_envelope_nested_10000_deep_is_refused_by_name(part: str) -> None:
    # Given an envelope, or its protected header, or its payload, nested 10,000 deep
    signer, deep = Signer(), b"[" * 10_000 + b"]" * 10_000
    protected = json.loads(base64.urlsafe_b64decode(json.loads(signer.envelope())["protected"] + "=="))
    envelope = {
        "envelope": deep,
        "protected header": signer.sign(deep, b"{}"),
        "payload": signer.sign(json.dumps(protected).encode(), deep),
    }[part]
    # When verified / Then it is refused, saying why (never a RecursionError)
    with pytest.raises(SignatureRefused, match=f"JWS {part} nests deeper than 64 levels"):
        verify_notation(envelope, JWS, [signer.root], DIGEST, NOW)
