"""The Gate step over a plan: the Wait loop's bound, rules sharing a destination, overrides, failing closed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from tests.unit.fake_ecr import push, use_moto_environment
from workflow.core.exceptions import RegistryTimeout, RegistryUnavailable
from workflow.local.archive import applied
from workflow.models.config import parse_config
from workflow.pipeline.gate import GateStep
from workflow.pipeline.plan import plan
from workflow.pipeline.request import parse_request
from workflow.registry.media import OCI_MANIFEST, Manifest

DIGEST = "sha256:" + "12" * 32
START = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
CLEAN = {"imageScanStatus": {"status": "COMPLETE"}, "imageScanFindings": {"findings": []}}
RUNNING = {"imageScanStatus": {"status": "IN_PROGRESS"}}
CRITICAL = {
    "imageScanStatus": {"status": "COMPLETE"},
    "imageScanFindings": {"findings": [{"name": "CVE-2026-1234", "severity": "CRITICAL"}]},
}


class Ecr:
    """DescribeImageScanFindings answering one response (or raising one error)."""

    def __init__(self, answer: dict[str, Any] | Exception) -> None:
        self.answer = answer
        self.calls = 0

    def describe_image_scan_findings(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


class Registry:
    """The source: the tag resolves to DIGEST, a single-platform image; no signatures."""

    registry = "registry.test"

    def head_manifest(self, repository: str, reference: str) -> str | None:
        return DIGEST

    def referrers(self, repository: str, digest: str) -> list[Any]:
        return []

    def get_manifest(self, repository: str, reference: str) -> Manifest | None:
        return Manifest(b"{}", OCI_MANIFEST, DIGEST) if reference == DIGEST else None


def config(**prod_gates: Any) -> Any:
    rule = {"repositories": ["app"], "tags": {"include": ["release-*"]}}
    return parse_config(
        {
            "source": {"account": "111111111111", "region": "us-east-1"},
            "rules": [
                {
                    **rule,
                    "name": "prod",
                    "destinations": [{"account": "222222222222", "regions": ["eu-west-1"]}],
                    "gates": {"scan": {"block_at": "CRITICAL", "wait_minutes": 5}, **prod_gates},
                },
                {
                    **rule,
                    "name": "shared",
                    "destinations": [{"account": "333333333333", "regions": ["us-west-2"]}],
                },
                {
                    **rule,
                    "name": "also-eu",
                    "destinations": [{"account": "222222222222", "regions": ["eu-west-1"]}],
                    "gates": {"scan": {"block_at": "CRITICAL", "wait_minutes": 5}},
                },
            ],
            "notifications": {"emails": ["team@example.com"]},
        }
    )


def planned(cfg: Any, **manual: Any) -> dict[str, Any]:
    result = plan(parse_request({"repository": "app", "tag": "release-1", **manual}), cfg)
    return {**result.model_dump(mode="json"), "target_count": len(result.targets), "max_concurrency": 2}


def step(cfg: Any, ecr: Ecr, now: datetime) -> GateStep:
    return GateStep(cfg, ecr=ecr, registry=Registry(), now=now, poll_seconds=30)  # type: ignore[arg-type]


def test_a_scan_that_never_completes_waits_until_the_rule_s_wait_then_blocks() -> None:
    # Given a scan IN_PROGRESS at every look, and rules waiting 5 minutes for it
    cfg, ecr = config(), Ecr(RUNNING)
    state = planned(cfg)
    # When the Gate looks at the start and then every time it was asked to wait again
    now, looks = START, []
    while True:
        state = step(cfg, ecr, now).run(state)
        looks.append((now - START).total_seconds())
        if state["gate"]["verdict"] == "done":
            break
        now += timedelta(seconds=state["gate"]["wait_seconds"])
        assert len(looks) < 50, "the loop is not bounded"
    # Then it waited in 30-second steps to the 5 minutes and no longer, then blocked the gated destination
    assert looks == [30.0 * i for i in range(11)]
    assert [b["account"] for b in state["blocked"]] == ["222222222222"]
    assert state["blocked"][0]["cause"] == (
        "rule 'prod': scan still IN_PROGRESS after waiting 5 min; blocked (on_missing: block); "
        "rule 'also-eu': scan still IN_PROGRESS after waiting 5 min; blocked (on_missing: block)"
    )
    # And the ungated destination went on, unpinned (its rule has no gates)
    assert [(t["account"], t["gated_digest"]) for t in state["targets"]] == [("333333333333", None)]
    assert state["target_count"] == 1


def test_while_waiting_the_plan_is_unchanged() -> None:
    # Given a scan IN_PROGRESS / When the Gate looks once
    cfg = config()
    before = planned(cfg)
    after = step(cfg, Ecr(RUNNING), START).run(before)
    # Then only its progress is added: the targets are all still there for the next look
    assert {k: v for k, v in after.items() if k != "gate"} == before
    assert after["gate"]["verdict"] == "wait"
    assert after["gate"]["wait_seconds"] == 30
    # And it says what it waits for, rule by rule, as the execution history shows it
    assert after["gate"]["waiting_for"] == (
        "rule 'prod': scan IN_PROGRESS; waited 0 of 5 min; rule 'also-eu': scan IN_PROGRESS; waited 0 of 5 min"
    )


def test_a_clean_scan_passes_and_pins_the_gated_digest() -> None:
    # Given a clean scan / When gated
    state = step(config(), Ecr(CLEAN), START).run(planned(config()))
    # Then every target goes on; those of gated rules pinned to the digest the gates checked
    assert state["blocked"] == []
    assert {t["account"]: t["gated_digest"] for t in state["targets"]} == {
        "222222222222": DIGEST,
        "333333333333": None,
    }


def test_an_override_passes_only_rules_that_allow_it() -> None:
    # Given a CRITICAL finding, prod allowing overrides and also-eu not, both selecting eu-west-1
    cfg = config(allow_override=True)
    override = {"reason": "INC-42 hotfix", "requestedBy": "alice"}
    # When a manual run overrides
    state = step(cfg, Ecr(CRITICAL), START).run(planned(cfg, override=override))
    # Then eu-west-1 replicates (prod let it through) and no destination is blocked
    assert state["blocked"] == []
    assert sorted(t["account"] for t in state["targets"]) == ["222222222222", "333333333333"]
    # And without allow_override anywhere, the override is refused in the reason
    refused = step(config(), Ecr(CRITICAL), START).run(planned(config(), override=override))
    assert refused["blocked"][0]["cause"].endswith("override refused: the rule does not allow_override")


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (
            ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "Describe"),
            "GateCheckFailed",
        ),
        (
            ClientError({"Error": {"Code": "ImageNotFoundException", "Message": "gone"}}, "Describe"),
            "ImageNotFound",
        ),
    ],
)
def test_a_gate_that_cannot_be_read_fails_its_destinations_closed(answer: Exception, error: str) -> None:
    # Given DescribeImageScanFindings failing / When gated
    state = step(config(), Ecr(answer), START).run(planned(config()))
    # Then the gated destination is a failed record with a named error, and only the ungated one goes on
    [failed] = state["blocked"]
    assert (failed["account"], failed["status"], failed["error"]) == ("222222222222", "failed", error)
    assert [t["account"] for t in state["targets"]] == ["333333333333"]


def test_a_signature_not_pushed_yet_is_waited_for_in_the_loop_then_blocks_after_its_wait() -> None:
    # Given a clean scan, and prod also requiring a cosign signature, waited for 2 minutes, that never comes
    key = (Path(__file__).parent / "data" / "gates" / "cosign.pub").read_text()
    signed = {"cosign_keys": [key], "wait_minutes": 2}
    cfg = parse_config(
        {
            "source": {"account": "111111111111", "region": "us-east-1"},
            "rules": [
                {
                    "name": "prod",
                    "repositories": ["app"],
                    "tags": {"include": ["release-*"]},
                    "destinations": [{"account": "222222222222", "regions": ["eu-west-1"]}],
                    "gates": {"scan": {"block_at": "CRITICAL", "wait_minutes": 5}, "signature": signed},
                }
            ],
        }
    )
    state, now, looks = planned(cfg), START, []
    # When the Gate looks at the start and then every time it was asked to wait again
    while True:
        state = step(cfg, Ecr(CLEAN), now).run(state)
        looks.append((now - START).total_seconds())
        if state["gate"]["verdict"] == "done":
            break
        now += timedelta(seconds=state["gate"]["wait_seconds"])
        assert len(looks) < 50, "the loop is not bounded"
    # Then it looked every 30 s until the signature's 2 minutes were over (not the scan's 5), and blocked prod
    assert looks == [0.0, 30.0, 60.0, 90.0, 120.0]
    [blocked] = state["blocked"]
    assert blocked["cause"] == (
        f"rule 'prod': no signature found for {DIGEST} (OCI referrers and the cosign .sig tag), after waiting 2 min"
    )
    assert state["targets"] == []


class Gone(Registry):
    """The source's registry answers 404 for the tag: its image is archived (ECR: a pull of it is a 404)."""

    def head_manifest(self, repository: str, reference: str) -> str | None:
        return None


def test_an_archived_source_image_fails_its_gated_destinations_as_image_archived(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given app:release-1 archived in the source's ECR (listed ARCHIVED, its pull a 404)
    use_moto_environment(monkeypatch, MOTO_ACCOUNT_ID="111111111111")
    with mock_aws(), applied():
        ecr = boto3.client("ecr", region_name="us-east-1")
        ecr.create_repository(repositoryName="app")
        push(ecr, "app", "release-1", 5)
        ecr.update_image_storage_class(
            repositoryName="app", imageId={"imageTag": "release-1"}, targetStorageClass="ARCHIVE"
        )
        cfg = config()
        # When gated
        state = GateStep(cfg, ecr=ecr, registry=Gone(), now=START).run(planned(cfg))  # type: ignore[arg-type]
    # Then its gated destination fails as ImageArchived, saying so; the ungated one goes on to its Precheck
    assert [(b["account"], b["status"], b["error"]) for b in state["blocked"]] == [
        ("222222222222", "failed", "ImageArchived")
    ]
    assert "is ARCHIVED since" in state["blocked"][0]["cause"]
    assert [t["account"] for t in state["targets"]] == ["333333333333"]


class StalledRegistry(Registry):
    """The source registry, its tag lookup ending with a transient registry error."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def head_manifest(self, repository: str, reference: str) -> str | None:
        raise self.error


@pytest.mark.parametrize(
    "error",
    [
        RegistryTimeout("registry.test: HEAD manifest app:release-1: the deadline passed"),
        RegistryUnavailable("manifest app:release-1 at registry.test: HTTP 503 (gave up after 5 attempts)"),
    ],
)
def test_a_registry_that_stalls_or_stays_unavailable_ends_the_look_by_name_for_the_state_machine_to_retry(
    error: Exception,
) -> None:
    # Given the source registry timing out (or unavailable after the client's retries)
    gate = GateStep(config(), ecr=Ecr(CLEAN), registry=StalledRegistry(error), now=START)  # type: ignore[arg-type]
    # When gated / Then the look ends with that error by name (the ASL's Retry on the Gate task matches it),
    # instead of failing the gated destinations at once
    with pytest.raises(type(error), match=r"registry\.test"):
        gate.run(planned(config()))
