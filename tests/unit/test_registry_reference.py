"""Image reference parsing and validation."""

from __future__ import annotations

import pytest

from workflow.core.exceptions import InvalidReference
from workflow.registry.reference import DEFAULT_REGISTRY, ImageReference, parse_reference

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:5000/app:v1", ImageReference("127.0.0.1:5000", "app", "v1")),
        ("localhost/team/app/sub:1.2.3", ImageReference("localhost", "team/app/sub", "1.2.3")),
        (f"reg.example.com/app@{DIGEST}", ImageReference("reg.example.com", "app", None, DIGEST)),
        (f"reg.example.com/app:v1@{DIGEST}", ImageReference("reg.example.com", "app", "v1", DIGEST)),
        (
            "111111111111.dkr.ecr.eu-west-1.amazonaws.com/a.b_c-d:release-1_X",
            ImageReference("111111111111.dkr.ecr.eu-west-1.amazonaws.com", "a.b_c-d", "release-1_X"),
        ),
        ("reg.example.com:443/app", ImageReference("reg.example.com:443", "app", "latest")),
        (f"app@{DIGEST}", ImageReference(DEFAULT_REGISTRY, "library/app", None, DIGEST)),
        ("team/app:v1", ImageReference(DEFAULT_REGISTRY, "team/app", "v1")),
    ],
)
def test_valid_references_parse(text: str, expected: ImageReference) -> None:
    # Given a valid reference, When parsed, Then its parts come out and it prints back the same
    parsed = parse_reference(text)
    assert parsed == expected
    assert parse_reference(str(parsed)) == parsed


@pytest.mark.parametrize(
    "text",
    [
        "",
        " reg.example.com/app:v1",
        "reg.example.com/App:v1",
        "reg.example.com/app:-v1",
        "reg.example.com/app:" + "a" * 129,
        "reg.example.com/app@sha256:abc",
        "reg.example.com/app:v1;rm -rf",
        "reg.example.com/app//x:v1",
        "reg.example.com/",
        "reg_ex!.com/app:v1",
        "reg.example.com/app:v 1",
        "reg.example.com/" + "a" * 257,
        "127.0.0.1:70000/repo:tag",
        "127.0.0.1:0/repo:tag",
        "[::1]:65536/repo:tag",
    ],
)
def test_invalid_references_raise(text: str) -> None:
    # Given a malformed reference, When parsed, Then InvalidReference is raised
    with pytest.raises(InvalidReference):
        parse_reference(text)


def test_reference_prefers_digest_and_retags() -> None:
    # Given a reference with tag and digest, Then the digest addresses it, and with_tag drops the digest
    ref = parse_reference(f"reg.example.com/app:v1@{DIGEST}")
    assert ref.reference == DIGEST
    assert str(ref.with_tag("v2")) == "reg.example.com/app:v2"
