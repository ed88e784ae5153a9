"""Promotion gates the way teams build, sign and scan: pushed first, signed after, scanned later, per platform.

The `signed` rule of the e2e runtime (tests/e2e/conftest.py, `gated_rules`) replicates every tag (`*`) of the
`signed` repository to eu-west-1 and us-west-2 when each platform image's scan has no CRITICAL finding and a
cosign signature by SIGNING_KEY is there, waiting up to 1 minute for each. The Gate Lambda runs in-process, so
its clock can be the test's `World`: each look is 10 s after the last, CI's signature arrives when a look reaches
its second, and the scan fake reads the same clock (its scans are "not found" until their second).
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.conftest import E2E, EU, PLATFORMS, SIGNING_KEY, SIGNING_PROFILE, US, statuses
from workflow.local.images import build_image, push_image, sha256
from workflow.local.managed_signing import ManagedSigner, status
from workflow.local.scans import complete, finding
from workflow.local.signing import cosign_signature, push_signature, signature_tag

pytestmark = pytest.mark.e2e

REPOSITORY = "signed"
START = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
CRITICAL = finding("CVE-2026-1234", "CRITICAL", "openssl", "3.0.2")


class World:
    """Seconds since the push as the Gate reads them: look n is at n * `step` s; `actions` happen at their second."""

    def __init__(self, step: float, actions: dict[float, Callable[[], None]] | None = None) -> None:
        self.step = step
        self.seconds = 0.0
        self.looks = 0
        self.actions = dict(actions or {})
        self._lock = threading.Lock()

    def look(self) -> datetime:
        """The next look's time; first, whatever CI does by then."""
        with self._lock:
            self.seconds = self.step * self.looks
            self.looks += 1
            for at in sorted(a for a in self.actions if a <= self.seconds):
                self.actions.pop(at)()
            return START + timedelta(seconds=self.seconds)

    def elapsed(self) -> float:
        """Seconds since the push, as of the last look (the scan fake's clock)."""
        return self.seconds

    def gate_clock(self) -> type[datetime]:
        """`datetime` for workflow.pipeline.gate, whose now() is the next look."""
        world = self

        class Clock(datetime):
            @classmethod
            def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
                return world.look()

        return Clock


def in_world(e2e: E2E, monkeypatch: pytest.MonkeyPatch, world: World, scans_after: float) -> None:
    """The Gate reads `world`'s clock; images pushed from now on have their scans not found until `scans_after`
    s of it."""
    monkeypatch.setattr("workflow.pipeline.gate.datetime", world.gate_clock())
    monkeypatch.setattr(e2e.runtime.scans, "clock", world.elapsed)
    monkeypatch.setattr(e2e.runtime.scans, "not_found_seconds", scans_after)


def push_release(e2e: E2E, *scans: dict[str, Any]) -> tuple[str, Any]:
    """A new two-platform image under a new tag of `signed`; each platform's scan gives `scans` once it shows."""
    tag = e2e.new_tag()
    image = build_image(f"signed {tag}", PLATFORMS, layer_sizes=(4 * 1024, 1024))
    e2e.push(tag, image, REPOSITORY)
    e2e.runtime.scans.set_image(REPOSITORY, image, *scans)
    return tag, image


def sign(e2e: E2E, digest: str) -> Callable[[], None]:
    """CI's `cosign sign` of `signed@digest` with the trusted key, to run when due."""
    source = e2e.runtime.registry("source")

    def cosign_sign() -> None:
        push_signature(source.url, source.host, REPOSITORY, digest, SIGNING_KEY)

    return cosign_sign


def waits(execution: Any) -> list[dict[str, Any]]:
    """The Gate's progress after each look."""
    return [output["plan"]["gate"] for output in execution.state_outputs("Gate")]


def summary_of(execution: Any) -> dict[str, Any]:
    return execution.state_outputs("Summarize")[-1]["summary"]


def test_an_image_signed_20_s_after_its_push_and_scanned_later_still_is_copied_once_both_arrive(
    e2e: E2E, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a two-platform image pushed to `signed`, which CI signs 20 s after the push, and whose platform
    # images' scans (clean) show 40 s after it
    world = World(step=10)
    in_world(e2e, monkeypatch, world, scans_after=40)
    tag, image = push_release(e2e, complete([]))
    world.actions[20] = sign(e2e, image.digest)
    # When its push event runs the workflow
    executions = e2e.run_event(tag, image, repository=REPOSITORY)
    # Then one execution waited in its Wait loop: at 0 and 10 s for both, at 20 and 30 s for the scans only
    [execution] = executions
    assert execution.status == "SUCCEEDED", execution.cause
    progress = waits(execution)
    assert [p["verdict"] for p in progress] == ["wait", "wait", "wait", "wait", "done"]
    for look in progress[:2]:
        assert f"no signature found for {image.digest}" in look["waiting_for"]
        assert "linux/amd64: scan not found yet (ScanNotFoundException)" in look["waiting_for"]
    for look in progress[2:4]:
        assert "no signature found" not in look["waiting_for"]
        assert "linux/arm64: scan not found yet (ScanNotFoundException)" in look["waiting_for"]
    assert execution.states_entered().count("GateWait") == 4
    # And once both had arrived it copied the image to every destination, digest for digest
    assert statuses(execution) == {"222222222222/eu-west-1": "copied", "333333333333/us-west-2": "copied"}
    assert e2e.digest_at(EU, tag, REPOSITORY) == image.digest
    assert e2e.digest_at(US, tag, REPOSITORY) == image.digest
    # And the signature travelled with its subject, as cosign's tag
    assert e2e.digest_at(EU, signature_tag(image.digest), REPOSITORY) is not None
    assert e2e.runtime.notifications() == []


def test_the_same_image_never_signed_is_blocked_after_the_wait_and_copied_nowhere(
    e2e: E2E, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the same kind of image, its scans showing 40 s after the push, but never signed
    in_world(e2e, monkeypatch, World(step=10), scans_after=40)
    tag, image = push_release(e2e, complete([]))
    # When its push event runs the workflow
    [execution] = e2e.run_event(tag, image, repository=REPOSITORY)
    # Then the Gate looked every 10 s until the rule's minute was over, and blocked both destinations saying why
    assert execution.status == "SUCCEEDED", execution.cause
    assert [p["verdict"] for p in waits(execution)] == ["wait"] * 6 + ["done"]
    assert summary_of(execution)["outcome"] == "BLOCKED"
    assert statuses(execution) == {"222222222222/eu-west-1": "blocked", "333333333333/us-west-2": "blocked"}
    reason = (
        f"rule 'signed': no signature found for {image.digest} (OCI referrers and the cosign .sig tag), "
        "after waiting 1 min"
    )
    assert {line["cause"] for line in summary_of(execution)["lines"]} == {reason}
    # And nothing was copied anywhere
    assert "Precheck" not in execution.states_entered()
    assert e2e.digest_at(EU, tag, REPOSITORY) is None
    assert e2e.digest_at(US, tag, REPOSITORY) is None
    # And the BLOCKED email says why
    [email] = e2e.runtime.notifications()
    assert email["subject"].startswith(f"ECR replication BLOCKED: {REPOSITORY}:{tag}")
    assert reason.split("rule 'signed': ", 1)[1] in email["message"]


def test_a_critical_finding_in_one_platform_only_blocks_and_the_summary_names_that_platform(e2e: E2E) -> None:
    # Given a signed two-platform image whose amd64 image scans clean and whose arm64 image has a CRITICAL finding
    tag, image = push_release(e2e, complete([]))
    amd64, arm64 = image.manifests
    e2e.runtime.scans.set(REPOSITORY, arm64.digest, complete([CRITICAL]))
    sign(e2e, image.digest)()
    # When its push event runs the workflow (the signature's own push event too, which ends SKIPPED)
    executions = e2e.run_event(tag, image, repository=REPOSITORY)
    assert sorted(e.output["outcome"] for e in executions) == ["BLOCKED", "SKIPPED"]
    [execution] = [e for e in executions if e.output["outcome"] != "SKIPPED"]
    # Then both destinations are blocked on the arm64 finding, and the reason names arm64 and not amd64
    assert execution.status == "SUCCEEDED", execution.cause
    assert summary_of(execution)["outcome"] == "BLOCKED"
    assert statuses(execution) == {"222222222222/eu-west-1": "blocked", "333333333333/us-west-2": "blocked"}
    for line in summary_of(execution)["lines"]:
        assert line["cause"].startswith(
            "rule 'signed': linux/arm64: 1 CRITICAL finding: CVE-2026-1234 (openssl 3.0.2); scan completed "
        )
        assert "linux/amd64" not in line["cause"]
    assert e2e.runtime.scans.calls(REPOSITORY, amd64.digest) >= 1
    assert e2e.digest_at(EU, tag, REPOSITORY) is None
    [email] = e2e.runtime.notifications()
    assert "linux/arm64: 1 CRITICAL finding: CVE-2026-1234 (openssl 3.0.2)" in email["message"]


def test_a_signature_push_under_a_match_all_rule_ends_skipped_without_an_email(e2e: E2E) -> None:
    # Given an image of `signed` (whose rule takes every tag), and CI pushing its cosign signature, which
    # ECR announces as a PUSH of the tag sha256-<hex>.sig
    _, image = push_release(e2e, complete([]))
    e2e.runtime.drop_events()  # the release's own push event is another test's
    source = e2e.runtime.registry("source")
    signature = cosign_signature(f"{source.host}/{REPOSITORY}", image.digest, SIGNING_KEY)
    # When the signature is pushed, and the source's ECR sends its push event through EventBridge
    push_image(source.url, REPOSITORY, signature_tag(image.digest), signature)
    executions = e2e.deliver()
    # Then its execution plans nothing and ends SKIPPED, before any gate, saying it travels with its subject
    [execution] = executions
    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.output["outcome"] == "SKIPPED"
    assert execution.output["skipped_reason"] == (
        f"{REPOSITORY}:{signature_tag(image.digest)} is a signature or attestation artifact of {image.digest} "
        "(cosign's tag schema); it is copied with its subject, never on its own"
    )
    assert "Gate" not in execution.states_entered()
    assert len(execution.arn.rsplit(":", 1)[1]) <= 80  # Step Functions' execution name limit
    # And no email is sent about it
    assert [n for n in e2e.runtime.notifications() if signature_tag(image.digest) in n["message"]] == []


def test_an_image_ecr_signs_on_push_passes_once_signing_is_complete_and_its_signature_travels(
    e2e: E2E,
) -> None:
    # Given an image of `managed` (ECR managed signing with SIGNING_PROFILE required), whose signing ECR reports
    # IN_PROGRESS at the first look and COMPLETE after, with the Notation signature AWS Signer made pushed
    # beside it as a referrer
    tag = e2e.new_tag()
    image = build_image(f"managed {tag}", PLATFORMS, layer_sizes=(2 * 1024,))
    e2e.push(tag, image, "managed")
    source = e2e.runtime.registry("source")
    referrer = ManagedSigner(SIGNING_PROFILE).sign(source.url, "managed", image.top)
    e2e.runtime.signing.set(
        "managed",
        image.digest,
        [status(SIGNING_PROFILE, "IN_PROGRESS")],
        [status(SIGNING_PROFILE, "COMPLETE")],
    )
    # When its push event runs the workflow
    [execution] = e2e.run_event(tag, image, repository="managed")
    # Then the Gate waited while signing was in progress, then passed, and the image was copied
    assert execution.status == "SUCCEEDED", execution.cause
    progress = waits(execution)
    assert progress[0]["waiting_for"] == (
        f"rule 'managed': ECR managed signing with {SIGNING_PROFILE} is IN_PROGRESS; waited 0 of 30 min"
    )
    assert progress[-1]["verdict"] == "done"
    assert statuses(execution) == {"222222222222/eu-west-1": "copied"}
    assert e2e.digest_at(EU, tag, "managed") == image.digest
    # And the signature travelled with its subject: the referrer AWS Signer's envelope is in, byte for byte
    host = e2e.runtime.registry_of(EU["account"], EU["region"]).host
    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{host}/managed@{referrer}"],
        capture_output=True,
        timeout=60,
        check=True,
    ).stdout
    assert sha256(raw) == referrer
