"""ECR managed signing, stood in locally: DescribeImageSigningStatus answers, and the signature AWS Signer makes.

moto 5.2.5 has no DescribeImageSigningStatus (found by trying: "The describe_image_signing_status action has not
been implemented"). `SigningStatuses` holds, per repository and manifest digest, the answers to give in turn (the
last repeats), in the shape the ECR API reference documents (DescribeImageSigningStatus, ImageSigningStatus):
`signingStatuses` of {signingProfileArn, status IN_PROGRESS | COMPLETE | FAILED, failureCode, failureReason}.
An image with no script has an empty list (no signing rule matched it); `missing_images` answer
ImageNotFoundException. `applied(statuses)` adds the action to moto's ECR while the context lasts.

`ManagedSigner` makes what ECR managed signing leaves in the repository: a Notation signature by AWS Signer, a
JWS envelope (ES384, as AWS Signer's Notation-OCI-SHA384-ECDSA platform; scheme notary.x509.signingAuthority)
whose protected header carries the signed attributes `com.amazonaws.signer.signingProfileVersion` and
`com.amazonaws.signer.signingJob`, pushed as a referrer of the image. The local registries (distribution 2.8)
have no referrers API, so, as Notation does there, the referrer is listed in the `sha256-<hex>` tag schema's index.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from moto.ecr.exceptions import ImageNotFoundException
from moto.ecr.responses import ECRResponse

from workflow.local.images import OCI_INDEX, OCI_MANIFEST, Blob, Image, push_image

NOTATION_SIGNATURE = "application/vnd.cncf.notary.signature"
JWS = "application/jose+json"
EMPTY = "application/vnd.oci.empty.v1+json"


def status(profile_arn: str, state: str, code: str = "", reason: str = "") -> dict[str, Any]:
    """One ImageSigningStatus entry (failureCode and failureReason only when FAILED, as documented)."""
    entry = {"signingProfileArn": profile_arn, "status": state}
    if state == "FAILED":
        entry.update(failureCode=code or "SIGNING_FAILED", failureReason=reason or "The signing job failed.")
    return entry


class SigningStatuses:
    """Scripted DescribeImageSigningStatus answers per (repository, digest); thread-safe (Map iterations)."""

    def __init__(self) -> None:
        self._scripts: dict[tuple[str, str], list[list[dict[str, Any]]]] = {}
        self._calls: dict[tuple[str, str], int] = {}
        self.missing_images: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def set(self, repository: str, digest: str, *answers: list[dict[str, Any]]) -> None:
        """Answer for `repository@digest` with each list of statuses in turn, the last one from then on."""
        with self._lock:
            self._scripts[(repository, digest)] = list(answers) or [[]]
            self._calls[(repository, digest)] = 0

    def calls(self, repository: str, digest: str) -> int:
        """How many times the signing status of `repository@digest` was read."""
        with self._lock:
            return self._calls.get((repository, digest), 0)

    def answer(self, registry_id: str, repository: str, image_id: dict[str, Any]) -> dict[str, Any]:
        """The response for one call, shaped as ECR's."""
        digest = str(image_id.get("imageDigest") or "")
        key = (repository, digest)
        with self._lock:
            if key in self.missing_images:
                raise ImageNotFoundException(f"{{imageDigest:'{digest}'}}", repository, registry_id)
            script = self._scripts.get(key, [[]])
            calls = self._calls.get(key, 0)
            self._calls[key] = calls + 1
            statuses = script[min(calls, len(script) - 1)]
        return {
            "registryId": registry_id,
            "repositoryName": repository,
            "imageId": {"imageDigest": digest},
            "signingStatuses": statuses,
        }


@contextlib.contextmanager
def applied(statuses: SigningStatuses) -> Iterator[SigningStatuses]:
    """Make moto's ECR answer DescribeImageSigningStatus from `statuses` while the context lasts."""

    def describe_image_signing_status(response: ECRResponse) -> str:
        registry_id = response._get_param("registryId") or response.current_account
        answer = statuses.answer(
            registry_id, response._get_param("repositoryName"), response._get_param("imageId")
        )
        return json.dumps(answer)

    with mock.patch.object(
        ECRResponse, "describe_image_signing_status", describe_image_signing_status, create=True
    ):
        yield statuses


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class ManagedSigner:
    """AWS Signer as ECR managed signing uses it: a signing profile's certificate and its JWS envelopes."""

    def __init__(self, profile_arn: str) -> None:
        self.profile_arn = profile_arn
        self.version = uuid.uuid4().hex[:10]
        self.key = ec.generate_private_key(ec.SECP384R1())
        now = datetime.now(UTC)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "AWS Signer (local stand-in)")])
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
            .sign(self.key, hashes.SHA384())
        )

    def envelope(self, media_type: str, digest: str, size: int) -> bytes:
        """The JWS envelope AWS Signer returns for the manifest `digest`."""
        region, account = self.profile_arn.split(":")[3:5]
        protected = {
            "alg": "ES384",
            "cty": "application/vnd.cncf.notary.payload.v1+json",
            "crit": [
                "io.cncf.notary.signingScheme",
                "io.cncf.notary.authenticSigningTime",
                "com.amazonaws.signer.signingProfileVersion",
                "com.amazonaws.signer.signingJob",
            ],
            "io.cncf.notary.signingScheme": "notary.x509.signingAuthority",
            "io.cncf.notary.authenticSigningTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "com.amazonaws.signer.signingProfileVersion": f"{self.profile_arn}/{self.version}",
            "com.amazonaws.signer.signingJob": f"arn:aws:signer:{region}:{account}:/signing-jobs/{uuid.uuid4()}",
        }
        payload = {"targetArtifact": {"mediaType": media_type, "digest": digest, "size": size}}
        header, body = _b64(json.dumps(protected).encode()), _b64(json.dumps(payload).encode())
        r, s = decode_dss_signature(self.key.sign(f"{header}.{body}".encode(), ec.ECDSA(hashes.SHA384())))
        certificate = base64.b64encode(self.certificate.public_bytes(serialization.Encoding.DER)).decode()
        envelope = {
            "payload": body,
            "protected": header,
            "header": {"x5c": [certificate], "io.cncf.notary.signingAgent": "ECR managed signing (local)"},
            "signature": _b64(r.to_bytes(48, "big") + s.to_bytes(48, "big")),
        }
        return json.dumps(envelope).encode()

    def referrer(self, subject: Blob) -> Image:
        """The signature manifest ECR pushes for the image whose top manifest is `subject`."""
        signature = Blob(JWS, self.envelope(subject.media_type, subject.digest, len(subject.data)))
        config = Blob(EMPTY, b"{}")
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": NOTATION_SIGNATURE,
            "config": config.descriptor(),
            "layers": [signature.descriptor()],
            "subject": subject.descriptor(),
        }
        return Image(top=Blob(OCI_MANIFEST, json.dumps(manifest).encode()), blobs=[config, signature])

    def sign(self, registry_url: str, repository: str, subject: Blob) -> str:
        """Push the signature of `subject` to the repository and list it in the referrers tag schema's index."""
        referrer = self.referrer(subject)
        push_image(registry_url, repository, referrer.digest, referrer)
        entry = {**referrer.top.descriptor(), "artifactType": NOTATION_SIGNATURE}
        index = Blob(
            OCI_INDEX, json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}).encode()
        )
        push_image(registry_url, repository, subject.digest.replace(":", "-", 1), Image(top=index))
        return referrer.digest
