"""ECR managed signing (AWS Signer, November 2025): did ECR sign this image with the named signing profile?

Read two ways, both needed to pass:
- the signing status: `DescribeImageSigningStatus` answers `signingStatuses`, one per signing profile whose
  rule matched the image, each with `signingProfileArn`, `status` IN_PROGRESS | COMPLETE | FAILED and, when
  FAILED, `failureCode` and `failureReason` (ECR API reference, DescribeImageSigningStatus and
  ImageSigningStatus: https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_DescribeImageSigningStatus.html);
  an image that does not exist raises ImageNotFoundException. ECR user guide, "Managed signing":
  https://docs.aws.amazon.com/AmazonECR/latest/userguide/managed-signing.html.
- the signature it produced: AWS Signer signs container images as Notation signatures, pushed to the image's
  repository as referrers (AWS Signer developer guide, "Procedure for signing an image"); the JWS envelope's
  protected header carries AWS Signer's signed attributes `com.amazonaws.signer.signingProfileVersion`
  (`<profile ARN>/<version>`) and `com.amazonaws.signer.signingJob` (aws-signer-notation-plugin, the
  attributes its verifier reads). The envelope must sign this digest and verify with its own certificate.

Not done here: the certificate chain to AWS Signer's root and revocation (signer:GetRevocationStatus), which
Notation's AWS Signer plugin checks; the status answer, from ECR itself, is what this gate trusts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

from botocore.exceptions import ClientError

from workflow.core.exceptions import ImageNotFound
from workflow.gates.decision import SignatureRefused
from workflow.gates.discovery import FoundSignature
from workflow.gates.notation import signed_attributes

PROFILE_VERSION = "com.amazonaws.signer.signingProfileVersion"
SIGNING_JOB = "com.amazonaws.signer.signingJob"
NOT_FOUND: Final = "NOT_FOUND"  # no status for the profile: no signing rule with it matched the image (yet)
MAX_TEXT = 300  # failure codes and reasons read from ECR, echoed in a reason

SigningState = Literal["IN_PROGRESS", "COMPLETE", "FAILED", "NOT_FOUND"]


@dataclass(frozen=True)
class SigningStatus:
    """The image's ECR managed signing status for one signing profile."""

    profile_arn: str
    status: SigningState
    failure: str = ""


def read_signing_status(
    ecr: Any, repository: str, digest: str, profile_arn: str, registry_id: str | None = None
) -> SigningStatus:
    """The status for `profile_arn` (NOT_FOUND when ECR lists none for it); ImageNotFound for a missing image."""
    request: dict[str, Any] = {"repositoryName": repository, "imageId": {"imageDigest": digest}}
    if registry_id:
        request["registryId"] = registry_id
    try:
        response = ecr.describe_image_signing_status(**request)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ImageNotFoundException":
            raise ImageNotFound(
                f"{repository}@{digest} does not exist (DescribeImageSigningStatus)"
            ) from None
        raise
    for item in response.get("signingStatuses") or []:
        if not isinstance(item, dict) or item.get("signingProfileArn") != profile_arn:
            continue
        status = item.get("status")
        if status == "FAILED":
            failure = (
                f"{item.get('failureCode') or 'no failureCode'}: {item.get('failureReason') or 'no reason'}"
            )
            return SigningStatus(profile_arn, "FAILED", failure[:MAX_TEXT])
        if status == "IN_PROGRESS":
            return SigningStatus(profile_arn, "IN_PROGRESS")
        if status == "COMPLETE":
            return SigningStatus(profile_arn, "COMPLETE")
        return SigningStatus(profile_arn, "FAILED", f"unknown signing status {str(status)[:40]!r}")
    return SigningStatus(profile_arn, NOT_FOUND)


def managed_signature(found: list[FoundSignature], profile_arn: str, digest: str) -> str:
    """Where the Notation signature ECR made with `profile_arn` for `digest` is; SignatureRefused if none is."""
    refusals = []
    for item in found:
        if item.kind != "notation":
            continue
        try:
            header = signed_attributes(item.payload, item.media_type, digest)
        except SignatureRefused as refusal:
            refusals.append(f"{item.where}: {refusal}")
            continue
        version = str(header.get(PROFILE_VERSION) or "")
        if version.startswith(profile_arn + "/"):
            return f"profile version {version.rsplit('/', 1)[1][:40]}, {item.where}"
        refusals.append(f"{item.where}: signed with {version[:MAX_TEXT] or 'no AWS Signer profile'}")
    detail = f" ({'; '.join(refusals[:3])})" if refusals else ""
    raise SignatureRefused(f"no Notation signature by {profile_arn} for {digest} in the repository{detail}")
