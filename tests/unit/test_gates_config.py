"""The `gates:` block of a rule: validated with paths like the rest of the config."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from workflow.core.exceptions import InvalidConfig
from workflow.models.config import parse_config
from workflow.pipeline.plan import plan
from workflow.pipeline.request import parse_request

DATA = Path(__file__).parent / "data" / "gates"
COSIGN_KEY = (DATA / "cosign.pub").read_text()
ROOT = (DATA / "NotationTestRoot.pem").read_text()
BASE: dict[str, Any] = {
    "source": {"account": "111111111111", "region": "us-east-1"},
    "rules": [
        {
            "name": "production",
            "repositories": ["app"],
            "tags": {"include": ["release-*"]},
            "destinations": [{"account": "222222222222", "regions": ["eu-west-1"]}],
        }
    ],
}


def with_gates(gates: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data["rules"][0]["gates"] = gates
    return data


def problems_of(gates: Any) -> list[str]:
    with pytest.raises(InvalidConfig) as caught:
        parse_config(with_gates(gates))
    return caught.value.problems


def test_full_gates_block_is_parsed() -> None:
    # Given a rule with both gates, an accepted risk and inline keys
    gates = {
        "scan": {
            "block_at": "HIGH",
            "ignore": [{"id": "CVE-2026-1", "reason": "not reachable"}],
            "wait_minutes": 20,
        },
        "signature": {"cosign_keys": [COSIGN_KEY], "notation_trust_anchors": [ROOT]},
        "allow_override": True,
    }
    # When it is validated
    rule = parse_config(with_gates(gates)).rules[0]
    # Then every field is kept, the keys are parsed, and on_missing defaults to block
    assert rule.gates is not None
    assert rule.gates.scan is not None
    assert rule.gates.signature is not None
    assert rule.gates.scan.block_at == "HIGH"
    assert rule.gates.scan.on_missing == "block"
    assert rule.gates.scan.ignored_ids == {"CVE-2026-1"}
    assert len(rule.gates.signature.public_keys) == 1
    assert rule.gates.signature.anchors[0].subject.rfc4514_string().startswith("CN=Notation Test Root")
    assert rule.gates.allow_override is True


def test_rule_without_gates_has_none() -> None:
    # Given/When a rule with no gates block / Then it has no gates
    assert parse_config(copy.deepcopy(BASE)).rules[0].gates is None


@pytest.mark.parametrize(
    ("gates", "expected"),
    [
        ({"scan": {"block_at": "SEVERE"}}, "rules[0].gates.scan.block_at"),
        ({"scan": {"block_at": "HIGH", "wait_minutes": 61}}, "rules[0].gates.scan.wait_minutes"),
        ({"scan": {"block_at": "HIGH", "on_missing": "maybe"}}, "rules[0].gates.scan.on_missing"),
        ({"scan": {"block_at": "HIGH", "ignore": [{"id": "CVE-1"}]}}, "rules[0].gates.scan.ignore[0].reason"),
        ({}, "rules[0].gates: names no gate"),
        ({"signature": {}}, "rules[0].gates.signature: names no trusted identity"),
        ({"scan": {"block_at": "HIGH"}, "extra": 1}, "rules[0].gates.extra: unknown field"),
    ],
)
def test_bad_gate_settings_name_their_path(gates: dict[str, Any], expected: str) -> None:
    # Given a gates block with one mistake / When validated / Then the problem names its path
    problems = problems_of(gates)
    assert any(p.startswith(expected) for p in problems), problems


def test_ignoring_one_finding_twice_is_refused() -> None:
    # Given the same finding id ignored twice
    ignore = [{"id": "CVE-1", "reason": "a"}, {"id": "CVE-1", "reason": "b"}]
    # When validated / Then it is one problem naming the id
    assert problems_of({"scan": {"block_at": "LOW", "ignore": ignore}}) == [
        "rules[0].gates.scan.ignore: finding id(s) ignored twice: CVE-1"
    ]


def test_keys_and_certificates_must_parse() -> None:
    # Given a key that is not PEM, a truncated key and a certificate that is garbage
    broken_key = COSIGN_KEY.replace("MFkw", "MFkX")
    signature = {
        "cosign_keys": ["ssh-ed25519 AAAA", broken_key],
        "notation_trust_anchors": ["-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"],
    }
    # When validated
    problems = problems_of({"signature": signature})
    # Then each is named by its index, all at once
    keys = next(p for p in problems if p.startswith("rules[0].gates.signature.cosign_keys"))
    assert "[0]: not a PEM public key" in keys
    assert "[1]: not a valid PEM public key" in keys
    anchors = next(p for p in problems if p.startswith("rules[0].gates.signature.notation_trust_anchors"))
    assert "[0]: not a valid PEM certificate" in anchors


def test_an_expired_trust_anchor_is_refused() -> None:
    # Given a trust anchor certificate that expired (made here: no real vector is expired as an anchor)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old root")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder(
            subject_name=name,
            issuer_name=name,
            public_key=key.public_key(),
            serial_number=1,
            not_valid_before=now - timedelta(days=30),
            not_valid_after=now - timedelta(days=1),
        )
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )
    # When validated / Then it is refused, naming the certificate and the day
    (problem,) = problems_of({"signature": {"notation_trust_anchors": [certificate]}})
    assert problem.startswith(
        "rules[0].gates.signature.notation_trust_anchors: [0]: certificate CN=old root expired on"
    )


def test_a_short_rsa_key_is_refused() -> None:
    # Given a 1024-bit RSA key
    pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the weak key under test
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    # When validated / Then the problem says how many bits are needed
    (problem,) = problems_of({"signature": {"cosign_keys": [pem]}})
    assert "RSA key of 1024 bits; at least 2048 are needed" in problem


def test_a_gated_rule_plans_its_targets_for_the_gate_step() -> None:
    # Given a gated rule and an ungated one for the same image, to different accounts, and a third rule
    # to the gated rule's destination
    data = with_gates({"scan": {"block_at": "HIGH"}})
    ungated = copy.deepcopy(data["rules"][0])
    ungated.pop("gates")
    ungated.update(name="mirror", destinations=[{"account": "333333333333", "regions": ["eu-west-1"]}])
    same = copy.deepcopy(ungated)
    same.update(name="also", destinations=data["rules"][0]["destinations"])
    data["rules"] += [ungated, same]
    config = parse_config(data)
    # When a matching push is planned
    result = plan(parse_request({"repository": "app", "tag": "release-1"}), config)
    # Then every destination is planned, each naming every rule that selects it, and the plan is gated
    assert result.gated is True
    assert sorted((t.account, tuple(t.selecting_rules)) for t in result.targets) == [
        ("222222222222", ("production", "also")),
        ("333333333333", ("mirror",)),
    ]
    # And without gates the plan is not gated (no Gate step runs)
    ungated_only = plan(
        parse_request({"repository": "app", "tag": "release-1"}), parse_config({**data, "rules": [ungated]})
    )
    assert ungated_only.gated is False
