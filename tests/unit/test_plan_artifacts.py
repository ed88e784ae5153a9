"""Signature and attestation artifacts are not images to replicate: their own pushes plan nothing."""

from __future__ import annotations

from typing import Any

import pytest

from workflow.core.grammar import artifact_tag_subject
from workflow.models.config import parse_config
from workflow.pipeline.plan import plan
from workflow.pipeline.request import parse_request

SUBJECT = "sha256:" + "ab" * 32
CONFIG: dict[str, Any] = {
    "source": {"account": "111111111111", "region": "us-east-1"},
    "rules": [
        {
            "name": "everything",
            "repositories": ["app"],
            "tags": {"include": ["*"]},
            "destinations": [{"account": "222222222222", "regions": ["eu-west-1"]}],
            "gates": {"scan": {"block_at": "CRITICAL"}},
        }
    ],
}


def push_event(tag: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "1",
        "detail-type": "ECR Image Action",
        "source": "aws.ecr",
        "account": "111111111111",
        "time": "2026-11-28T00:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "result": "SUCCESS",
            "repository-name": "app",
            "image-digest": "sha256:" + "cd" * 32,
            "action-type": "PUSH",
            "image-tag": tag,
        },
    }


@pytest.mark.parametrize("suffix", [".sig", ".att", ".sbom", ""])
def test_a_signature_push_under_a_match_all_rule_plans_nothing_and_says_why(suffix: str) -> None:
    # Given a rule replicating every tag of `app` (with a scan gate), and cosign's push of a signature,
    # attestation or SBOM (or the OCI referrers tag schema's index) for an image of `app`
    tag = SUBJECT.replace(":", "-") + suffix
    # When the push event is planned
    result = plan(parse_request(push_event(tag)), parse_config(CONFIG))
    # Then nothing replicates, nothing is gated, and the reason names the subject it travels with
    assert result.targets == []
    assert result.gated is False
    assert result.skipped_reason == (
        f"app:{tag} is a signature or attestation artifact of {SUBJECT} (cosign's tag schema); "
        "it is copied with its subject, never on its own"
    )


def test_a_manual_run_for_a_signature_tag_plans_nothing_either() -> None:
    # Given a manual request naming cosign's signature tag
    tag = SUBJECT.replace(":", "-") + ".sig"
    # When planned / Then it is skipped the same way
    result = plan(parse_request({"repository": "app", "tag": tag}), parse_config(CONFIG))
    assert result.targets == []
    assert result.skipped_reason is not None
    assert "signature or attestation artifact" in result.skipped_reason


@pytest.mark.parametrize(
    "tag",
    ["sha256-abc.sig", "sha256-" + "ab" * 32 + "x", "release-" + "ab" * 32 + ".sig", "sha256-" + "AB" * 32],
)
def test_tags_that_only_look_like_the_schema_are_images(tag: str) -> None:
    # Given tags that are not cosign's `sha256-<64 lowercase hex>[.<suffix>]`
    # When checked / Then they are ordinary tags, and the match-all rule plans them
    assert artifact_tag_subject(tag) is None
    result = plan(parse_request(push_event(tag)), parse_config(CONFIG))
    assert [t.tag for t in result.targets] == [tag]
