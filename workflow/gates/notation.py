"""Notation signatures in JWS envelopes (application/jose+json), verified against X.509 trust anchors.

Format: the Notary Project signature specification (signature-envelope-jws.md). The protected header names
`alg` (PS256/384/512, ES256/384/512), `cty` application/vnd.cncf.notary.payload.v1+json, the signing scheme
and times; `header.x5c` holds the chain, leaf first; the payload's `targetArtifact.digest` is what is signed.
Checked: the signature by the leaf, each certificate issued by the next, the chain ending at a trust anchor,
validity at the signing time (notary.x509.signingAuthority's authentic time) or now (notary.x509), the
envelope's expiry, and the digest. COSE envelopes (application/cose) are refused as unsupported.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID

from workflow.gates.decision import SignatureRefused

ARTIFACT_TYPE = "application/vnd.cncf.notary.signature"
JWS = "application/jose+json"
COSE = "application/cose"
PAYLOAD_TYPE = "application/vnd.cncf.notary.payload.v1+json"
SCHEMES = frozenset({"notary.x509", "notary.x509.signingAuthority"})
KNOWN_CRITICAL = frozenset(
    {"io.cncf.notary.signingScheme", "io.cncf.notary.expiry", "io.cncf.notary.authenticSigningTime"}
)
HASHES: dict[str, hashes.HashAlgorithm] = {
    "256": hashes.SHA256(),
    "384": hashes.SHA384(),
    "512": hashes.SHA512(),
}
CURVES = {"256": ec.SECP256R1, "384": ec.SECP384R1, "512": ec.SECP521R1}


def _b64url(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise SignatureRefused(f"JWS {what} is missing")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise SignatureRefused(f"JWS {what} is not base64url") from None


def _time(header: dict[str, Any], name: str) -> datetime | None:
    value = header.get(name)
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise SignatureRefused(f"JWS header {name} is not an RFC 3339 time: {value!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _verify_signature(alg: str, leaf: x509.Certificate, signature: bytes, signed: bytes) -> None:
    key, family, bits = leaf.public_key(), alg[:2], alg[2:]
    if bits not in HASHES or family not in ("PS", "ES"):
        raise SignatureRefused(f"JWS algorithm {alg!r} is not one Notation allows")
    digest = HASHES[bits]
    try:
        if family == "PS" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signed, padding.PSS(padding.MGF1(digest), digest.digest_size), digest)
        elif (
            family == "ES"
            and isinstance(key, ec.EllipticCurvePublicKey)
            and isinstance(key.curve, CURVES[bits])
        ):
            half = len(signature) // 2
            der = encode_dss_signature(int.from_bytes(signature[:half]), int.from_bytes(signature[half:]))
            key.verify(der, signed, ec.ECDSA(digest))
        else:
            raise SignatureRefused(f"JWS algorithm {alg} does not match the signing certificate's key")
    except InvalidSignature:
        raise SignatureRefused("the JWS signature does not verify with its signing certificate") from None


def _check_leaf(leaf: x509.Certificate) -> None:
    try:
        if not leaf.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature:
            raise SignatureRefused("the signing certificate's key usage lacks digitalSignature")
    except x509.ExtensionNotFound:
        pass
    try:
        usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return
    if ExtendedKeyUsageOID.CODE_SIGNING not in usages:
        raise SignatureRefused("the signing certificate's extended key usage lacks codeSigning")


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return bool(certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _issued_by(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _check_chain(chain: list[x509.Certificate], anchors: list[x509.Certificate], at: datetime) -> str:
    for child, issuer in pairwise(chain):
        if not _is_ca(issuer) or not _issued_by(child, issuer):
            raise SignatureRefused(
                f"certificate chain is broken: {child.subject.rfc4514_string()} is not issued by "
                f"the CA {issuer.subject.rfc4514_string()}"
            )
    top = chain[-1]
    if not any(top == anchor or (_is_ca(anchor) and _issued_by(top, anchor)) for anchor in anchors):
        raise SignatureRefused(
            f"certificate chain is not trusted: it ends at {top.subject.rfc4514_string()}, "
            "which is no trust anchor and is issued by none"
        )
    for certificate in chain:
        if not certificate.not_valid_before_utc <= at <= certificate.not_valid_after_utc:
            raise SignatureRefused(
                f"certificate {certificate.subject.rfc4514_string()} is not valid at {at:%Y-%m-%dT%H:%MZ} "
                f"(valid {certificate.not_valid_before_utc:%Y-%m-%d} to {certificate.not_valid_after_utc:%Y-%m-%d})"
            )
    return chain[0].subject.rfc4514_string()


def _protected_header(envelope: dict[str, Any]) -> dict[str, Any]:
    try:
        header = json.loads(_b64url(envelope.get("protected"), "protected header"))
    except ValueError:
        raise SignatureRefused("JWS protected header is not JSON") from None
    if not isinstance(header, dict):
        raise SignatureRefused("JWS protected header is not a JSON object")
    critical = header.get("crit") or []
    unknown = sorted(str(name) for name in critical if name not in KNOWN_CRITICAL or name not in header)
    if unknown:
        raise SignatureRefused(
            f"JWS header marks unsupported or absent critical parameters: {', '.join(unknown)}"
        )
    if header.get("cty") != PAYLOAD_TYPE:
        raise SignatureRefused(f"JWS content type {header.get('cty')!r} is not {PAYLOAD_TYPE}")
    if header.get("io.cncf.notary.signingScheme") not in SCHEMES:
        raise SignatureRefused(
            f"signing scheme {header.get('io.cncf.notary.signingScheme')!r} is not supported"
        )
    return header


def _envelope(envelope_bytes: bytes, media_type: str) -> tuple[dict[str, Any], list[x509.Certificate]]:
    if media_type == COSE:
        raise SignatureRefused("COSE signature envelopes are not supported; sign with --signature-format jws")
    if media_type != JWS:
        raise SignatureRefused(f"signature envelope type {media_type!r} is not supported")
    try:
        envelope = json.loads(envelope_bytes)
        chain = [x509.load_der_x509_certificate(base64.b64decode(c)) for c in envelope["header"]["x5c"]]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise SignatureRefused("JWS envelope is not JSON with a header.x5c certificate chain") from None
    if not chain:
        raise SignatureRefused("JWS envelope has an empty certificate chain")
    return envelope, chain


def _verified_by_leaf(envelope: dict[str, Any], header: dict[str, Any], leaf: x509.Certificate) -> None:
    signed = f"{envelope.get('protected')}.{envelope.get('payload')}".encode("ascii", "replace")
    _verify_signature(str(header.get("alg")), leaf, _b64url(envelope.get("signature"), "signature"), signed)


def _signed_digest(envelope: dict[str, Any]) -> Any:
    try:
        return json.loads(_b64url(envelope.get("payload"), "payload"))["targetArtifact"]["digest"]
    except (ValueError, KeyError, TypeError):
        raise SignatureRefused("JWS payload has no targetArtifact.digest") from None


def signed_attributes(envelope_bytes: bytes, media_type: str, digest: str) -> dict[str, Any]:
    """The protected header of a JWS envelope that signs `digest` and verifies with its own leaf certificate.

    The certificate is not checked against trust anchors: for a signer the caller trusts by other means (ECR
    managed signing's status answer), this proves the envelope is whole and for this digest. SignatureRefused
    says why not.
    """
    envelope, chain = _envelope(envelope_bytes, media_type)
    try:
        header = json.loads(_b64url(envelope.get("protected"), "protected header"))
    except ValueError:
        raise SignatureRefused("JWS protected header is not JSON") from None
    if not isinstance(header, dict):
        raise SignatureRefused("JWS protected header is not a JSON object")
    _verified_by_leaf(envelope, header, chain[0])
    signed = _signed_digest(envelope)
    if signed != digest:
        raise SignatureRefused(f"the signature is for {signed}, not {digest}")
    return header


def verify_notation(
    envelope_bytes: bytes,
    media_type: str,
    anchors: list[x509.Certificate],
    digest: str,
    now: datetime | None = None,
) -> str:
    """The signer's subject when the envelope signs `digest` under a trust anchor; SignatureRefused otherwise."""
    now = now or datetime.now(UTC)
    envelope, chain = _envelope(envelope_bytes, media_type)
    header = _protected_header(envelope)
    _verified_by_leaf(envelope, header, chain[0])
    _check_leaf(chain[0])
    signing_time = _time(header, "io.cncf.notary.signingTime")
    if header["io.cncf.notary.signingScheme"] == "notary.x509.signingAuthority":
        signing_time = _time(header, "io.cncf.notary.authenticSigningTime")
        if signing_time is None:
            raise SignatureRefused(
                "notary.x509.signingAuthority envelope without io.cncf.notary.authenticSigningTime"
            )
        subject = _check_chain(chain, anchors, signing_time)
    else:
        subject = _check_chain(chain, anchors, now)
    expiry = _time(header, "io.cncf.notary.expiry")
    if expiry is not None and expiry < now:
        raise SignatureRefused(f"the signature expired at {expiry:%Y-%m-%dT%H:%MZ}")
    if signing_time is not None and signing_time > now:
        raise SignatureRefused(f"the signing time {signing_time:%Y-%m-%dT%H:%MZ} is in the future")
    signed_digest = _signed_digest(envelope)
    if signed_digest != digest:
        raise SignatureRefused(f"signed by {subject}, but for {signed_digest}, not {digest}")
    return subject
