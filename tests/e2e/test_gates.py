"""Promotion gates through the whole workflow: the Gate step, its Wait loop, blocked records, the email.

The e2e suite's runtime (tests/e2e/conftest.py, `gated_rules`): `prod` and `mirror` replicate `gated`
(prod to eu-west-1: scan at CRITICAL, an ignored finding, a trusted cosign key made at start, override
allowed; mirror to us-west-2: scan at CRITICAL, no override); `quick` gates `quick` without waiting. Scan
results come from the runtime's scan fake (workflow/local/scans.py); signatures are real cosign-format
signatures pushed to the source registry (workflow/local/signing.py) and verified by the product.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.e2e.conftest import (
    ACCEPTED_FINDING,
    E2E,
    EU,
    PLATFORMS,
    SIGNING_KEY,
    US,
    listen,
    received,
    statuses,
)
from workflow.local.images import Image, build_image
from workflow.local.scans import complete, finding, in_progress
from workflow.local.signing import new_key, push_signature
from workflow.models.config import parse_config
from workflow.ops.sync.options import SyncOptions
from workflow.ops.sync.syncer import sync
from workflow.pipeline.announce import BLOCKED, REPLICATED

pytestmark = pytest.mark.e2e

KEY = SIGNING_KEY
CRITICAL = finding("CVE-2026-1234", "CRITICAL", "openssl", "3.0.2")
ACCEPTED = finding(ACCEPTED_FINDING, "CRITICAL", "zlib", "1.2.13")


def release(
    e2e: E2E,
    *scans: dict[str, Any],
    key: ec.EllipticCurvePrivateKey | None = KEY,
    repository: str = "gated",
) -> tuple[str, Image]:
    """Push a new two-platform release image, signed with `key` (None: unsigned); each platform image's scan
    gives these results once the scan fake's "not found" second after the push is over."""
    tag = e2e.new_tag()
    image = build_image(f"gated {tag}", PLATFORMS, layer_sizes=(4 * 1024, 1024))
    e2e.push(tag, image, repository)
    source = e2e.runtime.registry("source")
    if key is not None:
        push_signature(source.url, source.host, repository, image.digest, key)
    e2e.runtime.scans.set_image(repository, image, *scans)
    return tag, image


def summary_of(execution: Any) -> dict[str, Any]:
    return execution.state_outputs("Summarize")[-1]["summary"]


def causes(execution: Any) -> dict[str, str]:
    return {line["destination"].split()[0]: line["cause"] for line in summary_of(execution)["lines"]}


def test_critical_findings_block_every_rule_and_the_email_says_why(e2e: E2E) -> None:
    # Given a signed release image whose scan has a CRITICAL finding
    tag, image = release(e2e, complete([CRITICAL]))
    # When its push event runs the workflow
    [execution] = e2e.run_event(tag, image, repository="gated")
    # Then both destinations are blocked, nothing is copied, and the execution succeeds as BLOCKED
    assert execution.status == "SUCCEEDED", execution.cause
    assert summary_of(execution)["outcome"] == "BLOCKED"
    assert statuses(execution) == {"222222222222/eu-west-1": "blocked", "333333333333/us-west-2": "blocked"}
    assert "Copy" not in execution.states_entered()
    assert "Precheck" not in execution.states_entered()
    assert e2e.digest_at(EU, tag, "gated") is None
    assert e2e.digest_at(US, tag, "gated") is None
    reason = causes(execution)["222222222222/eu-west-1"]
    assert reason.startswith(
        "rule 'prod': linux/amd64: 1 CRITICAL finding: CVE-2026-1234 (openssl 3.0.2); scan completed "
    )
    assert "; linux/arm64: 1 CRITICAL finding: CVE-2026-1234 (openssl 3.0.2); scan completed " in reason
    # And although notifications.on is "failure", the blocked release is emailed with the reason
    [email] = e2e.runtime.notifications()
    assert email["subject"].startswith("ECR replication BLOCKED: gated:" + tag)
    assert "BLOCKED by promotion gates (2), not copied:" in email["message"]
    assert "CVE-2026-1234 (openssl 3.0.2)" in email["message"]
    assert "runbook: docs/runbook.md#imageblocked" in email["message"]


def test_an_untrusted_signature_blocks_one_rule_while_the_other_replicates(e2e: E2E) -> None:
    # Given a clean image signed with a key no rule trusts
    tag, image = release(e2e, complete([]), key=new_key())
    # When its push event runs the workflow
    [execution] = e2e.run_event(tag, image, repository="gated")
    # Then prod (signature gate) blocks eu-west-1, mirror (scan only) copies to us-west-2
    assert execution.status == "SUCCEEDED", execution.cause
    assert statuses(execution) == {"222222222222/eu-west-1": "blocked", "333333333333/us-west-2": "copied"}
    assert (
        "no signature by a trusted identity; found 1 signature" in causes(execution)["222222222222/eu-west-1"]
    )
    assert e2e.digest_at(EU, tag, "gated") is None
    assert e2e.digest_at(US, tag, "gated") == image.digest
    # And the partly blocked run says so in its subject
    [email] = e2e.runtime.notifications()
    assert email["subject"].startswith("ECR replication SUCCEEDED, PARTLY BLOCKED: ")
    assert email["subject"].endswith("(1 copied, 1 blocked)")


def test_a_signed_clean_image_passes_every_gate(e2e: E2E) -> None:
    # Given a clean image signed with the trusted key
    tag, image = release(e2e, complete([]))
    # When its push event runs the workflow
    [execution] = e2e.run_event(tag, image, repository="gated")
    # Then both destinations get it, pinned to the gated digest, and no email is sent (on: failure)
    assert execution.status == "SUCCEEDED", execution.cause
    assert statuses(execution) == {"222222222222/eu-west-1": "copied", "333333333333/us-west-2": "copied"}
    assert e2e.digest_at(EU, tag, "gated") == image.digest
    assert e2e.digest_at(US, tag, "gated") == image.digest
    gate = execution.state_outputs("Gate")[-1]  # the last look: the first ones may find no scan yet
    assert {t["gated_digest"] for t in gate["plan"]["targets"]} == {image.digest}
    assert e2e.runtime.notifications() == []


def test_a_blocked_destination_is_a_blocked_event_beside_the_replicated_one(e2e: E2E) -> None:
    # Given a rule on the default bus delivering our replicated and blocked events to a queue, and a clean
    # image signed with a key no rule trusts (prod blocks eu-west-1, mirror copies to us-west-2)
    queue = listen(e2e, "gate-events", [REPLICATED, BLOCKED])
    tag, image = release(e2e, complete([]), key=new_key())
    # When its push event runs the workflow
    [execution] = e2e.run_event(tag, image, repository="gated")
    # Then the queue got one event per destination of this run: blocked (with the reason) and replicated
    events = [event for event in received(e2e, queue) if event["detail"]["tag"] == tag]
    by_account = {event["detail"]["destination"]["account"]: event for event in events}
    assert len(events) == 2
    assert {a: (e["detail-type"], e["detail"]["action"]) for a, e in by_account.items()} == {
        EU["account"]: (BLOCKED, "blocked"),
        US["account"]: (REPLICATED, "copied"),
    }
    assert "no signature by a trusted identity" in by_account[EU["account"]]["detail"]["reason"]
    assert by_account[EU["account"]]["detail"]["digest"] == image.digest
    assert all(execution.arn in event["resources"] for event in events)
    e2e.runtime.notifications()


def test_a_scan_in_progress_is_waited_for_in_a_wait_state(e2e: E2E) -> None:
    # Given a signed image whose scan is IN_PROGRESS at the first two looks, then complete and clean
    tag, image = release(e2e, in_progress(), in_progress(), complete([]))
    # When its push event runs the workflow
    [execution] = e2e.run_event(tag, image, repository="gated")
    # Then the Gate read each platform image's scan three times (and looked while it was not found yet, the
    # first second after the push), with a Wait state between looks, and both destinations get it
    assert execution.status == "SUCCEEDED", execution.cause
    entered = execution.states_entered()
    assert entered.count("Gate") >= 3
    assert entered.count("GateWait") == entered.count("Gate") - 1
    assert [e2e.runtime.scans.calls("gated", m.digest) for m in image.manifests] == [3, 3]
    assert statuses(execution) == {"222222222222/eu-west-1": "copied", "333333333333/us-west-2": "copied"}


class _Clock(datetime):
    """datetime whose now() moves 25 s on at every call, so each look of the Gate is 25 s after the last."""

    start = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    calls = 0

    @classmethod
    def now(cls, tz: Any = None) -> _Clock:  # type: ignore[override]
        cls.calls += 1
        return cls.start + timedelta(seconds=25 * (cls.calls - 1))  # type: ignore[return-value]


def test_a_scan_still_in_progress_when_the_wait_ends_blocks_after_the_wait_loop(
    e2e: E2E, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a signed image whose scan stays IN_PROGRESS, rules that wait 1 minute for it, and a Gate whose
    # clock moves 25 s per look (the Gate Lambda runs in-process in the local runtime)
    monkeypatch.setattr("workflow.pipeline.gate.datetime", _Clock)
    tag, image = release(e2e, in_progress())
    # When its push event runs the workflow
    [execution] = e2e.run_event(tag, image, repository="gated")
    # Then the Gate looked until the minute was over (looks at 0, 25, 50 and 75 s), waiting in a Wait state
    # between looks, and blocked both destinations saying the scan did not complete
    assert execution.status == "SUCCEEDED", execution.cause
    entered = execution.states_entered()
    assert entered.count("Gate") == 4
    assert entered.count("GateWait") == 3
    assert statuses(execution) == {"222222222222/eu-west-1": "blocked", "333333333333/us-west-2": "blocked"}
    assert "scan still IN_PROGRESS after waiting 1 min" in causes(execution)["333333333333/us-west-2"]
    assert e2e.digest_at(EU, tag, "gated") is None
    assert e2e.digest_at(US, tag, "gated") is None


def test_a_scan_that_does_not_complete_within_the_wait_blocks(
    e2e: E2E, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an image of the `quick` rule (wait_minutes: 0) whose scans started at its push and never complete
    monkeypatch.setattr(e2e.runtime.scans, "not_found_seconds", 0)
    tag, image = release(e2e, in_progress(), key=None, repository="quick")
    # When its push event runs the workflow
    [execution] = e2e.run_event(tag, image, repository="quick")
    # Then it is blocked at the first look, without waiting, saying the scan did not complete
    assert execution.status == "SUCCEEDED", execution.cause
    assert statuses(execution) == {"222222222222/eu-west-1": "blocked"}
    assert "GateWait" not in execution.states_entered()
    assert causes(execution)["222222222222/eu-west-1"] == (
        "rule 'quick': linux/amd64: scan still IN_PROGRESS after waiting 0 min; blocked (on_missing: block); "
        "linux/arm64: scan still IN_PROGRESS after waiting 0 min; blocked (on_missing: block)"
    )
    e2e.runtime.notifications()


def test_an_ignored_finding_passes_the_rule_that_ignores_it_only(e2e: E2E) -> None:
    # Given a signed image whose only CRITICAL finding prod accepts (ignored) and mirror does not
    tag, image = release(e2e, complete([ACCEPTED]))
    # When its push event runs the workflow
    [execution] = e2e.run_event(tag, image, repository="gated")
    # Then prod copies to eu-west-1 and mirror blocks us-west-2 on that finding
    assert execution.status == "SUCCEEDED", execution.cause
    assert statuses(execution) == {"222222222222/eu-west-1": "copied", "333333333333/us-west-2": "blocked"}
    assert "CVE-2026-0001 (zlib 1.2.13)" in causes(execution)["333333333333/us-west-2"]
    assert e2e.digest_at(EU, tag, "gated") == image.digest
    assert e2e.digest_at(US, tag, "gated") is None
    e2e.runtime.notifications()


def test_an_override_applies_where_the_rule_allows_it_and_is_refused_elsewhere(e2e: E2E) -> None:
    # Given a signed image with a CRITICAL finding
    tag, image = release(e2e, complete([CRITICAL]))
    who = "arn:aws:sts::111111111111:assumed-role/release-manager/alice"
    override = {"reason": "hotfix for INC-42; CVE-2026-1234 not reachable", "requestedBy": who}
    # When a manual run asks for a break-glass override
    execution = e2e.run_manual({"repository": "gated", "tag": tag, "override": override})
    # Then prod (allow_override) copies and mirror (no allow_override) still blocks, saying it refused
    assert execution.status == "SUCCEEDED", execution.cause
    assert statuses(execution) == {"222222222222/eu-west-1": "copied", "333333333333/us-west-2": "blocked"}
    assert causes(execution)["333333333333/us-west-2"].endswith(
        "override refused: the rule does not allow_override"
    )
    assert e2e.digest_at(EU, tag, "gated") == image.digest
    assert e2e.digest_at(US, tag, "gated") is None
    # And the summary and the email carry the reason and who asked for it
    assert summary_of(execution)["override"] == {"reason": override["reason"], "requested_by": who}
    [email] = e2e.runtime.notifications()
    assert f"reason: {override['reason']}" in email["message"]
    assert f"requested by: {who}" in email["message"]


def test_sync_applies_the_same_gates(e2e: E2E, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a signed image with a CRITICAL finding that no push event replicated, its scans long done when
    # sync runs (as the daily reconciliation finds them)
    monkeypatch.setattr(e2e.runtime.scans, "not_found_seconds", 0)
    tag, _image = release(e2e, complete([CRITICAL]))
    runtime = e2e.runtime
    config = parse_config(json.loads((runtime.workdir / "replication.json").read_text()))
    # When `sync` runs, copying locally
    report = sync(config, SyncOptions(local=True, repository_glob="gated"))
    # Then it reports the image blocked at both destinations and copies nothing
    blocked = [a for a in report.actions if a.tag == tag]
    assert [(a.kind, a.status, a.destinations) for a in blocked] == [
        ("gate", "blocked", ["222222222222/eu-west-1", "333333333333/us-west-2"])
    ]
    assert "CVE-2026-1234" in (blocked[0].error or "")
    assert report.blocked >= 2  # and earlier tests' images it refuses too
    assert e2e.digest_at(EU, tag, "gated") is None
    assert e2e.digest_at(US, tag, "gated") is None
