"""The `gates:` block of a rule. Keys and certificates are given inline as PEM text.

Inline, not file paths: the config file is packaged alone into the Lambda functions, so a key beside it
would not be there at run time. Every key and certificate is parsed when the config is validated.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cached_property
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Severity = Literal["CRITICAL", "HIGH", "MEDIUM", "LOW"]
# ECR's FindingSeverity values, lowest first; UNDEFINED and Inspector's UNTRIAGED have no rank and never block.
SEVERITY_RANK = {"INFORMATIONAL": 0, "LOW": 1, "MEDIUM": 2, "HIGH": 3, "CRITICAL": 4}
MAX_WAIT_MINUTES = 60
MIN_RSA_BITS = 2048
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey
# ImageSigningStatus.signingProfileArn's documented pattern and length (ECR API reference, "ImageSigningStatus":
# https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_ImageSigningStatus.html).
SIGNING_PROFILE_ARN_RE = re.compile(
    r"arn:aws(-[a-z]+)*:signer:[a-z0-9-]+:[0-9]{12}:/signing-profiles/[a-zA-Z0-9_]{2,}"
)
SIGNING_PROFILE_ARN_MAX = 200


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IgnoredFinding(_Strict):
    """An accepted risk: a finding id (e.g. a CVE) that never blocks, and why."""

    id: str = Field(min_length=1, max_length=256)
    reason: str = Field(min_length=1, max_length=1024)


class ScanGate(_Strict):
    """Block on findings at or above `block_at`; wait up to `wait_minutes` for a scan to complete."""

    block_at: Severity
    ignore: list[IgnoredFinding] = Field(default_factory=list)
    wait_minutes: int = Field(default=30, ge=0, le=MAX_WAIT_MINUTES)
    on_missing: Literal["block", "allow"] = "block"

    @field_validator("ignore")
    @classmethod
    def _unique(cls, ignore: list[IgnoredFinding]) -> list[IgnoredFinding]:
        ids = [item.id for item in ignore]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"finding id(s) ignored twice: {', '.join(duplicates)}")
        return ignore

    @cached_property
    def ignored_ids(self) -> frozenset[str]:
        """The accepted finding ids."""
        return frozenset(item.id for item in self.ignore)


def _pem_blocks(text: str, kind: str) -> list[bytes]:
    begin = f"-----BEGIN {kind}-----"
    if begin not in text:
        raise ValueError(f"not a PEM {kind.lower()} (no '{begin}' line)")
    return [f"{begin}{part}".encode() for part in text.split(begin)[1:]]


def parse_public_key(text: str) -> PublicKey:
    """One PEM public key (ECDSA, RSA of 2048 bits or more, or Ed25519); ValueError says why not."""
    _pem_blocks(text, "PUBLIC KEY")
    try:
        key = load_pem_public_key(text.strip().encode())
    except ValueError as error:
        raise ValueError(f"not a valid PEM public key ({error})") from None
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        raise ValueError(f"RSA key of {key.key_size} bits; at least {MIN_RSA_BITS} are needed")
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        raise ValueError(f"unsupported key type {type(key).__name__} (ECDSA, RSA or Ed25519)")
    return key


def parse_certificates(text: str, now: datetime | None = None) -> list[x509.Certificate]:
    """Every PEM certificate in `text`, none expired; ValueError says which and why."""
    now = now or datetime.now(UTC)
    certificates = []
    for block in _pem_blocks(text, "CERTIFICATE"):
        try:
            certificate = x509.load_pem_x509_certificate(block)
        except ValueError as error:
            raise ValueError(f"not a valid PEM certificate ({error})") from None
        if certificate.not_valid_after_utc < now:
            raise ValueError(
                f"certificate {certificate.subject.rfc4514_string()} expired on "
                f"{certificate.not_valid_after_utc:%Y-%m-%d}"
            )
        certificates.append(certificate)
    return certificates


def _each(values: list[str], parse: Callable[[str], object]) -> list[str]:
    problems = []
    for index, value in enumerate(values):
        try:
            parse(value)
        except ValueError as error:
            problems.append(f"[{index}]: {error}")
    if problems:
        raise ValueError("; ".join(problems))
    return values


class ManagedSigning(_Strict):
    """ECR managed signing (AWS Signer, November 2025): the image was signed on push with this signing profile."""

    signing_profile_arn: str = Field(max_length=SIGNING_PROFILE_ARN_MAX)

    @field_validator("signing_profile_arn")
    @classmethod
    def _arn(cls, arn: str) -> str:
        if not SIGNING_PROFILE_ARN_RE.fullmatch(arn):
            raise ValueError(
                f"{arn[:80]!r} is not an AWS Signer signing profile ARN "
                "(arn:<partition>:signer:<region>:<account>:/signing-profiles/<name>)"
            )
        return arn


class SignatureGate(_Strict):
    """Trusted identities: an image passes with one signature that verifies against one of them.

    CI signs after it pushes, so a signature not there yet is waited for, up to `wait_minutes`.
    """

    cosign_keys: list[str] = Field(default_factory=list)
    notation_trust_anchors: list[str] = Field(default_factory=list)
    ecr_managed_signing: ManagedSigning | None = None
    wait_minutes: int = Field(default=30, ge=0, le=MAX_WAIT_MINUTES)

    _keys = field_validator("cosign_keys")(lambda v: _each(v, parse_public_key))
    _anchors = field_validator("notation_trust_anchors")(lambda v: _each(v, parse_certificates))

    @model_validator(mode="after")
    def _some_identity(self) -> SignatureGate:
        if not self.cosign_keys and not self.notation_trust_anchors and self.ecr_managed_signing is None:
            raise ValueError(
                "names no trusted identity: give cosign_keys, notation_trust_anchors and/or ecr_managed_signing"
            )
        return self

    @property
    def verifies_signatures(self) -> bool:
        """True when the gate trusts keys or anchors of its own (cosign, Notation), beside managed signing."""
        return bool(self.cosign_keys or self.notation_trust_anchors)

    @cached_property
    def public_keys(self) -> list[PublicKey]:
        """The parsed cosign keys."""
        return [parse_public_key(text) for text in self.cosign_keys]

    @cached_property
    def anchors(self) -> list[x509.Certificate]:
        """The parsed Notation trust anchors."""
        return [cert for text in self.notation_trust_anchors for cert in parse_certificates(text)]


class Gates(_Strict):
    """A rule's promotion gates; an image that fails one is not copied to that rule's destinations."""

    scan: ScanGate | None = None
    signature: SignatureGate | None = None
    allow_override: bool = False

    @model_validator(mode="after")
    def _some_gate(self) -> Gates:
        if self.scan is None and self.signature is None:
            raise ValueError("names no gate: give scan and/or signature")
        return self

    @property
    def wait_seconds(self) -> list[int]:
        """How long each of its gates waits for what it reads (a scan, a signature)."""
        return [gate.wait_minutes * 60 for gate in (self.scan, self.signature) if gate is not None]
