"""ECR managed signing as a signature policy: DescribeImageSigningStatus's answers and the signature ECR made.

The ECR client is a real boto3 client with botocore's Stubber: requests and responses are checked against the
ECR API model (DescribeImageSigningStatus, ImageSigningStatus), so their shapes are the documented ones.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from tests.unit.fake_signatures import FakeRegistry
from workflow.core.exceptions import ImageNotFound, InvalidConfig
from workflow.gates.image import gate_image
from workflow.gates.managed import read_signing_status
from workflow.local.images import OCI_MANIFEST, Blob
from workflow.local.managed_signing import ManagedSigner, SigningStatuses, applied, status
from workflow.models.config import parse_config
from workflow.models.policy import Gates
from workflow.pipeline.gate import GateStep
from workflow.pipeline.plan import plan
from workflow.pipeline.request import parse_request

PROFILE = "arn:aws:signer:us-east-1:111111111111:/signing-profiles/release_signing"
OTHER = "arn:aws:signer:us-east-1:111111111111:/signing-profiles/nightly_signing"
IMAGE = Blob(OCI_MANIFEST, json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}).encode())
GATES = {
    "prod": Gates.model_validate(
        {"signature": {"ecr_managed_signing": {"signing_profile_arn": PROFILE}, "wait_minutes": 5}}
    )
}


def ecr_answering(*answers: list[dict[str, Any]] | str) -> tuple[Any, Stubber]:
    """DescribeImageSigningStatus for app@IMAGE answering each list of statuses (or raising an error code)."""
    client = boto3.client("ecr", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(client)
    expected = {
        "repositoryName": "app",
        "imageId": {"imageDigest": IMAGE.digest},
        "registryId": "111111111111",
    }
    for answer in answers:
        if isinstance(answer, str):
            stub.add_client_error(
                "describe_image_signing_status", answer, "no such image", expected_params=expected
            )
            continue
        response = {
            "repositoryName": "app",
            "registryId": "111111111111",
            "imageId": {"imageDigest": IMAGE.digest},
            "signingStatuses": answer,
        }
        stub.add_response("describe_image_signing_status", response, expected)
    return client, stub


class Source(FakeRegistry):
    """The source registry as the Gate step reads it too: the tag resolves to IMAGE."""

    def head_manifest(self, repository: str, reference: str) -> str | None:
        return IMAGE.digest


def registry_signed_by(*signers: ManagedSigner) -> Source:
    """The source: the image, and a Notation signature referrer by each signer (as ECR managed signing pushes it)."""
    registry = Source(referrers_api=True)
    registry.add(IMAGE.data)
    for signer in signers:
        referrer = signer.referrer(IMAGE)
        registry.add(referrer.top.data, blob=referrer.blobs[1].data, referrer=True)
    return registry


def decide(ecr: Any, registry: FakeRegistry, waited: float = 0) -> Any:
    return gate_image(
        GATES,
        "app",
        IMAGE.digest,
        ecr=ecr,
        registry=registry,
        registry_id="111111111111",
        waited_seconds=waited,
    )["prod"]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ([status(PROFILE, "COMPLETE")], ("COMPLETE", "")),
        ([status(PROFILE, "IN_PROGRESS")], ("IN_PROGRESS", "")),
        (
            [status(PROFILE, "FAILED", "KMS_KEY_DISABLED", "The signing key is disabled.")],
            ("FAILED", "KMS_KEY_DISABLED: The signing key is disabled."),
        ),
        ([status(OTHER, "COMPLETE")], ("NOT_FOUND", "")),
        ([], ("NOT_FOUND", "")),
    ],
    ids=["complete", "in-progress", "failed", "another-profile-only", "none"],
)
def test_each_signing_status_answer_is_read_for_the_named_profile(
    answer: list[dict[str, Any]], expected: tuple[str, str]
) -> None:
    # Given ECR's answer for the image / When the status for PROFILE is read
    ecr, stub = ecr_answering(answer)
    with stub:
        read = read_signing_status(ecr, "app", IMAGE.digest, PROFILE, "111111111111")
    # Then it is the profile's own status (NOT_FOUND when ECR lists none for it), with the failure when FAILED
    assert (read.status, read.failure) == expected


def test_a_missing_image_is_named() -> None:
    # Given ECR answering ImageNotFoundException / When read / Then ImageNotFound names the image
    ecr, stub = ecr_answering("ImageNotFoundException")
    with stub, pytest.raises(ImageNotFound, match=f"app@{IMAGE.digest} does not exist"):
        read_signing_status(ecr, "app", IMAGE.digest, PROFILE, "111111111111")


def test_complete_with_the_profile_s_signature_in_the_repository_passes() -> None:
    # Given signing COMPLETE for PROFILE and the signature ECR pushed, by PROFILE, for this digest
    signer = ManagedSigner(PROFILE)
    ecr, stub = ecr_answering([status(OTHER, "COMPLETE"), status(PROFILE, "COMPLETE")])
    # When gated / Then it passes, naming the profile version and where the signature is
    with stub:
        decision = decide(ecr, registry_signed_by(signer))
    assert decision.verdict == "pass"
    assert decision.reason.startswith(
        f"signed by ECR managed signing with {PROFILE} (profile version {signer.version}"
    )


def test_in_progress_waits_then_blocks_after_the_wait() -> None:
    # Given signing still IN_PROGRESS at every look
    ecr, stub = ecr_answering([status(PROFILE, "IN_PROGRESS")], [status(PROFILE, "IN_PROGRESS")])
    with stub:
        # When gated 1 minute in / Then it waits
        early = decide(ecr, registry_signed_by(), waited=60)
        # When gated once the 5 minutes are over / Then it blocks, saying it waited
        late = decide(ecr, registry_signed_by(), waited=300)
    assert (early.verdict, early.reason) == (
        "wait",
        f"ECR managed signing with {PROFILE} is IN_PROGRESS; waited 1 of 5 min",
    )
    assert (late.verdict, late.reason) == (
        "block",
        f"ECR managed signing with {PROFILE} is IN_PROGRESS, after waiting 5 min",
    )


def test_failed_blocks_at_once_with_ecr_s_failure() -> None:
    # Given signing FAILED / When gated at the first look / Then it blocks without waiting, with the code
    ecr, stub = ecr_answering([status(PROFILE, "FAILED", "ACCESS_DENIED", "Signer denied the signing job.")])
    with stub:
        decision = decide(ecr, registry_signed_by())
    assert (decision.verdict, decision.reason) == (
        "block",
        f"ECR managed signing with {PROFILE} FAILED (ACCESS_DENIED: Signer denied the signing job.)",
    )


def test_no_status_for_the_profile_waits_then_blocks_saying_no_rule_matched() -> None:
    # Given ECR listing no status for PROFILE (no signing rule with it matched the image)
    ecr, stub = ecr_answering([], [])
    with stub:
        early = decide(ecr, registry_signed_by())
        late = decide(ecr, registry_signed_by(), waited=301)
    # Then it waits, then blocks once the wait is over
    assert early.verdict == "wait"
    assert (late.verdict, late.reason) == (
        "block",
        f"no ECR managed signing with {PROFILE} status (no signing rule with that profile matched the image), "
        "after waiting 5 min",
    )


def test_complete_but_signed_by_another_profile_only_is_not_a_pass() -> None:
    # Given a COMPLETE status for PROFILE, but the only signature in the repository made with OTHER
    ecr, stub = ecr_answering([status(PROFILE, "COMPLETE")], [status(PROFILE, "COMPLETE")])
    with stub:
        early = decide(ecr, registry_signed_by(ManagedSigner(OTHER)))
        late = decide(ecr, registry_signed_by(ManagedSigner(OTHER)), waited=300)
    # Then it waits for the signature, then blocks naming what signed it
    assert early.verdict == "wait"
    assert late.verdict == "block"
    assert f"no Notation signature by {PROFILE} for {IMAGE.digest} in the repository" in late.reason
    assert f"signed with {OTHER}/" in late.reason


def test_a_managed_signing_gate_in_the_config_and_a_bad_profile_arn() -> None:
    # Given a rule whose only trusted identity is ECR managed signing, and one naming a malformed ARN
    def config(arn: str) -> Any:
        return parse_config(
            {
                "source": {"account": "111111111111", "region": "us-east-1"},
                "rules": [
                    {
                        "name": "prod",
                        "repositories": ["app"],
                        "tags": {"include": ["release-*"]},
                        "destinations": [{"account": "222222222222", "regions": ["eu-west-1"]}],
                        "gates": {"signature": {"ecr_managed_signing": {"signing_profile_arn": arn}}},
                    }
                ],
            }
        )

    # When parsed / Then the first is a signature gate waiting 30 minutes by default
    signature = config(PROFILE).rules[0].gates.signature
    assert signature.ecr_managed_signing.signing_profile_arn == PROFILE
    assert signature.wait_minutes == 30
    # And the second is refused in one line naming the field and the form expected
    with pytest.raises(InvalidConfig) as refused:
        config("arn:aws:signer:us-east-1:111111111111:signing-profiles/x")
    [problem] = refused.value.problems
    assert "ecr_managed_signing.signing_profile_arn" in problem
    assert "is not an AWS Signer signing profile ARN" in problem


def test_the_gate_step_reads_the_local_stand_in_through_boto3_as_the_gate() -> None:
    # Given a plan of a rule gated on managed signing, the signature in the repository, and moto's ECR answering
    # DescribeImageSigningStatus from the local runtime's stand-in: IN_PROGRESS, then COMPLETE
    source = registry_signed_by(ManagedSigner(PROFILE))
    cfg = parse_config(
        {
            "source": {"account": "111111111111", "region": "us-east-1"},
            "rules": [
                {
                    "name": "prod",
                    "repositories": ["app"],
                    "tags": {"include": ["release-*"]},
                    "destinations": [{"account": "222222222222", "regions": ["eu-west-1"]}],
                    "gates": {"signature": {"ecr_managed_signing": {"signing_profile_arn": PROFILE}}},
                }
            ],
        }
    )
    planned = plan(parse_request({"repository": "app", "tag": "release-1"}), cfg)
    state = {**planned.model_dump(mode="json"), "target_count": 1}
    statuses = SigningStatuses()
    statuses.set("app", IMAGE.digest, [status(PROFILE, "IN_PROGRESS")], [status(PROFILE, "COMPLETE")])
    # When the Gate step looks twice through boto3 (its calls are recorded as the Gate's for the IAM coverage test)
    with mock_aws(), applied(statuses):
        ecr = boto3.client("ecr", region_name="us-east-1")
        first = GateStep(cfg, ecr=ecr, registry=source).run(state)  # type: ignore[arg-type]
        second = GateStep(cfg, ecr=ecr, registry=source).run(first)  # type: ignore[arg-type]
    # Then the first look waits and the second lets the destination through, pinned to the signed digest
    assert first["gate"]["verdict"] == "wait"
    assert (second["gate"]["verdict"], second["blocked"]) == ("done", [])
    assert [t["gated_digest"] for t in second["targets"]] == [IMAGE.digest]
    assert statuses.calls("app", IMAGE.digest) == 2


def test_the_local_stand_in_answers_a_missing_image_as_ecr_does() -> None:
    # Given an image the stand-in holds as missing / When read through boto3 and moto
    statuses = SigningStatuses()
    statuses.missing_images.add(("app", IMAGE.digest))
    with mock_aws(), applied(statuses), pytest.raises(ImageNotFound):
        read_signing_status(boto3.client("ecr", region_name="us-east-1"), "app", IMAGE.digest, PROFILE)
