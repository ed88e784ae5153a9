"""Signature verification against vectors made by the real tools (see data/gates/README.md), and refusals.

cosign: containers/image's fixture `dir-img-cosign-valid`, signed by `cosign sign` with `cosign.pub`'s key.
Notation: notation-go's JWS envelopes (`internal/mock/testdata`, `internal/testdata/jws_signature.sig`).
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509

from tests.unit.fake_signatures import FakeRegistry, cosign_manifest, index_of, signature_manifest
from workflow.core.exceptions import DigestMismatch
from workflow.gates.cosign import SIMPLE_SIGNING, verify_cosign
from workflow.gates.decision import SignatureRefused
from workflow.gates.discovery import FoundSignature, find_signatures
from workflow.gates.notation import ARTIFACT_TYPE as NOTATION_ARTIFACT
from workflow.gates.notation import COSE, JWS, verify_notation
from workflow.gates.signature import evaluate_signatures
from workflow.models.policy import SignatureGate, parse_certificates, parse_public_key
from workflow.registry.media import OCI_MANIFEST, sha256_digest

DATA = Path(__file__).parent / "data" / "gates"
COSIGN_PUB = (DATA / "cosign.pub").read_text()
OTHER_PUB = (DATA / "cosign2.pub").read_text()
PAYLOAD = (DATA / "cosign-valid.payload").read_bytes()
SIGNATURE = (DATA / "cosign-valid.sig").read_text()
COSIGN_DIGEST = sha256_digest((DATA / "cosign-valid.manifest.json").read_bytes())
ROOT_PEM = (DATA / "NotationTestRoot.pem").read_text()
NOTATION_DIGEST = "sha256:60043cf45eaebc4c0867fea485a039b598f52fd09fd5b07b0b2d2f88fad9d74e"
OTHER_DIGEST = "sha256:" + "0" * 64


def envelope(name: str) -> bytes:
    return (DATA / name).read_bytes()


def x5c(name: str) -> list[x509.Certificate]:
    return [
        x509.load_der_x509_certificate(base64.b64decode(c))
        for c in json.loads(envelope(name))["header"]["x5c"]
    ]


# cosign


def test_cosign_vector_verifies_over_its_manifest_digest() -> None:
    # Given the payload cosign signed for the fixture manifest, and two trusted keys (the signer second)
    keys = [parse_public_key(OTHER_PUB), parse_public_key(COSIGN_PUB)]
    # When verified / Then the signer's key is the one named
    assert verify_cosign(PAYLOAD, SIGNATURE, keys, COSIGN_DIGEST) == 1


def test_cosign_payload_for_another_digest_is_refused() -> None:
    # Given the real signature but an image of another digest / When verified / Then refused, naming both
    with pytest.raises(SignatureRefused, match=f"for {COSIGN_DIGEST}, not {OTHER_DIGEST}"):
        verify_cosign(PAYLOAD, SIGNATURE, [parse_public_key(COSIGN_PUB)], OTHER_DIGEST)


def test_cosign_wrong_key_is_refused() -> None:
    # Given only a key that did not sign it / When verified / Then refused
    with pytest.raises(SignatureRefused, match="does not verify with any trusted cosign key"):
        verify_cosign(PAYLOAD, SIGNATURE, [parse_public_key(OTHER_PUB)], COSIGN_DIGEST)


def test_cosign_tampered_payload_is_refused() -> None:
    # Given the payload changed to name another digest (one character), signature unchanged
    tampered = PAYLOAD.replace(COSIGN_DIGEST[-4:].encode(), b"0000")
    assert tampered != PAYLOAD
    # When verified / Then the signature no longer verifies
    with pytest.raises(SignatureRefused, match="does not verify"):
        verify_cosign(tampered, SIGNATURE, [parse_public_key(COSIGN_PUB)], COSIGN_DIGEST)


def test_cosign_signature_that_is_not_base64_is_refused() -> None:
    with pytest.raises(SignatureRefused, match="not base64"):
        verify_cosign(PAYLOAD, "not base64!", [parse_public_key(COSIGN_PUB)], COSIGN_DIGEST)


# Notation


def test_notation_vector_verifies_to_its_trust_anchor() -> None:
    # Given notation-go's valid envelope and the Notation Test Root as anchor
    anchors = parse_certificates(ROOT_PEM)
    # When verified / Then the signer's subject is returned
    subject = verify_notation(envelope("notation-ca_valid_sig_env.json"), JWS, anchors, NOTATION_DIGEST)
    assert subject.startswith("CN=Notation Test Root")


def test_notation_self_signed_certificate_as_its_own_anchor_verifies() -> None:
    # Given the envelope signed by the self-signed "alpine" certificate, trusted directly
    name = "notation-jws_signature.json"
    digest = json.loads(base64.urlsafe_b64decode(json.loads(envelope(name))["payload"] + "=="))[
        "targetArtifact"
    ]["digest"]
    # When verified / Then it passes
    assert verify_notation(envelope(name), JWS, x5c(name), digest).startswith("CN=alpine")


def test_notation_expired_envelope_is_refused() -> None:
    with pytest.raises(SignatureRefused, match="the signature expired at 2022-07-29T23:59Z"):
        verify_notation(
            envelope("notation-ca_expired_sig_env.json"), JWS, parse_certificates(ROOT_PEM), NOTATION_DIGEST
        )


def test_notation_invalid_signature_is_refused() -> None:
    with pytest.raises(SignatureRefused, match="does not verify with its signing certificate"):
        verify_notation(
            envelope("notation-ca_invalid_sig_env.json"), JWS, parse_certificates(ROOT_PEM), NOTATION_DIGEST
        )


def test_notation_untrusted_chain_is_refused() -> None:
    # Given an anchor that is not the chain's root (the "alpine" certificate)
    with pytest.raises(SignatureRefused, match="certificate chain is not trusted"):
        verify_notation(
            envelope("notation-ca_valid_sig_env.json"),
            JWS,
            x5c("notation-jws_signature.json"),
            NOTATION_DIGEST,
        )


def test_notation_chain_not_valid_now_is_refused() -> None:
    # Given a verification time after the chain's certificates expired (2122)
    later = datetime(2123, 1, 1, tzinfo=UTC)
    with pytest.raises(SignatureRefused, match="is not valid at 2123-01-01"):
        verify_notation(
            envelope("notation-ca_valid_sig_env.json"),
            JWS,
            x5c("notation-ca_valid_sig_env.json")[-1:],
            NOTATION_DIGEST,
            later,
        )


def test_notation_envelope_for_another_digest_is_refused() -> None:
    with pytest.raises(SignatureRefused, match=f"for {NOTATION_DIGEST}, not {OTHER_DIGEST}"):
        verify_notation(
            envelope("notation-ca_valid_sig_env.json"), JWS, parse_certificates(ROOT_PEM), OTHER_DIGEST
        )


def test_notation_tampered_payload_is_refused() -> None:
    # Given the envelope's payload swapped for one naming another digest, signature unchanged
    data = json.loads(envelope("notation-ca_valid_sig_env.json"))
    payload = {"targetArtifact": {"mediaType": OCI_MANIFEST, "digest": OTHER_DIGEST, "size": 1}}
    data["payload"] = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    with pytest.raises(SignatureRefused, match="does not verify"):
        verify_notation(json.dumps(data).encode(), JWS, parse_certificates(ROOT_PEM), OTHER_DIGEST)


def test_notation_cose_is_refused_as_unsupported() -> None:
    with pytest.raises(SignatureRefused, match="COSE signature envelopes are not supported"):
        verify_notation(b"\xd2\x84", COSE, parse_certificates(ROOT_PEM), NOTATION_DIGEST)


# Discovery and the gate's decision


def test_cosign_signature_under_the_sig_tag_is_found_and_passes() -> None:
    # Given a registry without the referrers API and cosign's signature under sha256-<hex>.sig
    registry = FakeRegistry(referrers_api=False)
    registry.add(cosign_manifest(), tag=COSIGN_DIGEST.replace(":", "-") + ".sig", blob=PAYLOAD)
    # When the signatures are found and the gate evaluated
    found = find_signatures(registry, "app", COSIGN_DIGEST)  # type: ignore[arg-type]
    decision = evaluate_signatures(found, SignatureGate(cosign_keys=[COSIGN_PUB]), COSIGN_DIGEST)
    # Then it passes, saying which key and where
    assert [f.kind for f in found] == ["cosign"]
    assert decision.verdict == "pass"
    assert decision.reason == f"signed with trusted cosign key 0, tag {COSIGN_DIGEST.replace(':', '-')}.sig"


def test_notation_referrer_is_found_through_the_api_and_the_tag_schema() -> None:
    # Given the notation envelope pushed as a referrer, once with the API and once in the sha256-<hex> index
    body = envelope("notation-ca_valid_sig_env.json")
    manifest = signature_manifest(JWS, body, {}, NOTATION_ARTIFACT)
    with_api = FakeRegistry(referrers_api=True)
    with_api.add(manifest, blob=body, referrer=True)
    tag_schema = FakeRegistry(referrers_api=False)
    entry = {
        "mediaType": OCI_MANIFEST,
        "digest": sha256_digest(manifest),
        "size": len(manifest),
        "artifactType": NOTATION_ARTIFACT,
    }
    tag_schema.add(manifest, blob=body)
    tag_schema.add(index_of([entry]), tag=NOTATION_DIGEST.replace(":", "-"))
    gate = SignatureGate(notation_trust_anchors=[ROOT_PEM])
    for registry in (with_api, tag_schema):
        # When found and evaluated
        decision = evaluate_signatures(
            find_signatures(registry, "app", NOTATION_DIGEST), gate, NOTATION_DIGEST
        )  # type: ignore[arg-type]
        # Then both pass through the same envelope
        assert decision.verdict == "pass", decision.reason
        assert decision.reason.startswith("signed by CN=Notation Test Root")


def test_an_image_not_signed_yet_is_waited_for_then_blocked_after_the_wait() -> None:
    # Given an image with no signature yet (CI signs after it pushes) and a gate waiting 10 minutes
    found = find_signatures(FakeRegistry(referrers_api=True), "app", COSIGN_DIGEST)  # type: ignore[arg-type]
    gate = SignatureGate(cosign_keys=[COSIGN_PUB], wait_minutes=10)
    # When evaluated 4 minutes after the first look / Then it waits, saying for what
    early = evaluate_signatures(found, gate, COSIGN_DIGEST, waited_seconds=240)
    assert (early.verdict, early.reason) == (
        "wait",
        f"no signature found for {COSIGN_DIGEST} (OCI referrers and the cosign .sig tag); waited 4 of 10 min",
    )
    # When evaluated once the 10 minutes are over / Then it blocks, saying it waited
    late = evaluate_signatures(found, gate, COSIGN_DIGEST, waited_seconds=600)
    assert (late.verdict, late.reason) == (
        "block",
        f"no signature found for {COSIGN_DIGEST} (OCI referrers and the cosign .sig tag), after waiting 10 min",
    )


def test_signature_by_an_unknown_key_is_blocked_saying_so() -> None:
    # Given a real cosign signature, but the rule trusts another key
    found = [FoundSignature("cosign", "tag x.sig", SIMPLE_SIGNING, PAYLOAD, SIGNATURE)]
    # When evaluated / Then it is blocked, saying what was found and why it failed
    decision = evaluate_signatures(found, SignatureGate(cosign_keys=[OTHER_PUB]), COSIGN_DIGEST)
    assert decision.verdict == "block"
    assert decision.reason == (
        "no signature by a trusted identity; found 1 signature: cosign signature (tag x.sig): "
        "does not verify with any trusted cosign key (an unknown key, or a changed payload)"
    )


def test_a_cosign_signature_when_only_notation_is_trusted_is_blocked() -> None:
    found = [FoundSignature("cosign", "tag x.sig", SIMPLE_SIGNING, PAYLOAD, SIGNATURE)]
    decision = evaluate_signatures(found, SignatureGate(notation_trust_anchors=[ROOT_PEM]), COSIGN_DIGEST)
    assert decision.verdict == "block"
    assert "no cosign key is trusted by this rule" in decision.reason


def test_a_blob_that_does_not_hash_to_its_digest_is_refused() -> None:
    # Given a signature layer whose bytes were replaced in the registry
    registry = FakeRegistry(referrers_api=False)
    manifest = cosign_manifest()
    registry.add(manifest, tag=COSIGN_DIGEST.replace(":", "-") + ".sig")
    registry.blobs[sha256_digest(PAYLOAD)] = PAYLOAD + b" "
    # When found / Then it fails by name
    with pytest.raises(DigestMismatch, match="signature blob"):
        find_signatures(registry, "app", COSIGN_DIGEST)  # type: ignore[arg-type]


def test_the_vector_digest_is_the_fixture_manifest() -> None:
    # Guard: the cosign vector's payload names exactly the fixture manifest's sha256
    assert json.loads(PAYLOAD)["critical"]["image"]["docker-manifest-digest"] == COSIGN_DIGEST
    assert (
        "sha256:" + hashlib.sha256((DATA / "cosign-valid.manifest.json").read_bytes()).hexdigest()
        == COSIGN_DIGEST
    )
