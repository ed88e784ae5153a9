"""One copy across Regions per Region: which destination seeds its Region, in what order, and what the copy job
makes of the relay's answer (workflow/pipeline/seeds.py, workflow/engine/seeds.py)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from workflow.engine.copier import CopyOutcome
from workflow.engine.seeds import Relayed, Seed, merged, seed_first
from workflow.models.config import parse_config
from workflow.models.payloads import ReplicationRequest
from workflow.pipeline.plan import plan
from workflow.pipeline.seeds import relay_function_arn, relay_regions, seeded

SOURCE = {"account": "111111111111", "region": "us-east-1"}


def config(seeds: bool = True, deletes: bool = False) -> Any:
    destinations = [
        {"account": "222222222222", "regions": ["eu-west-1", "us-east-1", "ap-southeast-2"]},
        {"account": "333333333333", "regions": ["eu-west-1", "us-east-1"]},
        {"account": "444444444444", "regions": ["eu-west-1"]},
    ]
    return parse_config(
        {
            "source": SOURCE,
            "rules": [
                {
                    "name": "fleet",
                    "repositories": ["app"],
                    "tags": {"include": ["*"]},
                    "destinations": destinations,
                    "propagate_deletes": deletes,
                }
            ],
            "regional_seeds": seeds,
        }
    )


def planned(configuration: Any, action: str = "replicate") -> list[Any]:
    request = ReplicationRequest(repository="app", tag="v1", action=action)  # type: ignore[arg-type]
    return plan(request, configuration).targets


def test_each_region_with_several_destinations_gets_a_seed_first_and_the_others_point_at_it() -> None:
    targets = planned(config())
    # eu-west-1 has three destinations: its first is the seed, ahead of every other target
    assert (targets[0].account, targets[0].region, targets[0].seed) == ("222222222222", "eu-west-1", None)
    followers = [t for t in targets if t.region == "eu-west-1" and t.seed is not None]
    assert [t.account for t in followers] == ["333333333333", "444444444444"]
    for follower in followers:
        assert follower.seed.image == targets[0].destination_reference
        assert follower.seed.role_arn == targets[0].role_arn
        assert (
            follower.seed.relay_function
            == "arn:aws:lambda:eu-west-1:111111111111:function:ecr-replication-relay"
        )
    # the source's own Region (its copies never cross Regions) and a Region's only destination have no seed
    assert all(t.seed is None for t in targets if t.region in ("us-east-1", "ap-southeast-2"))
    assert len(targets) == 6
    assert relay_regions(config()) == ["ap-southeast-2", "eu-west-1"]


def test_off_by_default_and_never_for_deletes() -> None:
    assert all(t.seed is None for t in planned(config(seeds=False)))
    assert relay_regions(config(seeds=False)) == []
    deleting = planned(config(deletes=True), "delete")
    assert deleting
    assert all(t.seed is None for t in deleting)


def test_the_seed_carries_its_external_id_and_a_blocked_seed_is_replaced() -> None:
    configuration = config()
    targets = planned(configuration)
    # When the Gate lets every eu-west-1 destination through but the seed, the seeds are chosen again
    passing = [t for t in targets if (t.account, t.region) != ("222222222222", "eu-west-1")]
    again = seeded(passing, configuration)
    eu = [t for t in again if t.region == "eu-west-1"]
    assert (eu[0].account, eu[0].seed) == ("333333333333", None)
    assert eu[1].seed is not None
    assert eu[1].seed.image == eu[0].destination_reference
    assert relay_function_arn(configuration, "eu-west-1").startswith("arn:aws:lambda:eu-west-1:111111111111:")


class FakeLambda:
    """Answers Invoke with a payload (and a FunctionError when told)."""

    def __init__(self, answer: Any, function_error: str | None = None) -> None:
        self.answer, self.function_error = answer, function_error
        self.requests: list[dict[str, Any]] = []

    def invoke(self, FunctionName: str, Payload: bytes) -> dict[str, Any]:
        self.requests.append(json.loads(Payload))
        response: dict[str, Any] = {"Payload": io.BytesIO(json.dumps(self.answer).encode())}
        if self.function_error:
            response["FunctionError"] = self.function_error
        return response


SEED = Seed(
    "seed.example:5000/app:v1",
    "arn:aws:iam::222222222222:role/ecr-replication-target",
    "arn:aws:lambda:eu-west-1:111111111111:function:ecr-replication-relay",
)
DIGEST = "sha256:" + "a" * 64


@pytest.fixture
def seed_present(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The seed holds the digest at once (the wait is not what these tests look at)."""
    waits: list[float] = []
    monkeypatch.setattr(
        "workflow.engine.seeds._wait_for_seed",
        lambda seed, digest, insecure, bound, sleep: waits.append(bound) or True,
    )
    return waits


def run_seed(client: FakeLambda, source: str = f"src.example/app:v1@{DIGEST}") -> tuple[Relayed | None, str]:
    return seed_first(
        SEED,
        source,
        "dst.example/app:v1",
        destination_role_arn="arn:aws:iam::333333333333:role/ecr-replication-target",
        deadline=780.0,
        lambda_client=client,
    )


def test_the_relay_is_asked_for_exactly_the_pinned_digest_from_seed_to_destination(
    seed_present: list[float],
) -> None:
    answer = {"action": "copied", "bytes_copied": 1000, "blobs_copied": 3, "blobs_skipped": 0, "seconds": 1.5}
    client = FakeLambda(answer)
    relayed, reason = run_seed(client)
    assert reason == ""
    assert relayed == Relayed("copied", 1000, 3, 0, 1.5, SEED.image)
    [request] = client.requests
    assert (request["source"], request["destination"]) == (
        f"seed.example:5000/app@{DIGEST}",
        f"dst.example/app@{DIGEST}",
    )
    assert request["source_role_arn"] == SEED.role_arn
    assert request["destination_role_arn"].startswith("arn:aws:iam::333333333333:")
    assert seed_present == [260.0]  # a third of the copy's deadline, under SEED_WAIT_SECONDS


@pytest.mark.parametrize(
    ("answer", "error", "reason"),
    [
        (
            {"errorType": "Sandbox.Timedout", "errorMessage": "timed out"},
            "Unhandled",
            "the relay failed: Sandbox.Timedout",
        ),
        (
            {"error": "RegistryAuthError", "message": "cannot assume"},
            None,
            "the relay failed: RegistryAuthError",
        ),
        (
            {"action": "copied", "bytes_copied": -1, "blobs_copied": 0, "blobs_skipped": 0, "seconds": 1},
            None,
            "not a copy outcome",
        ),
        (["not", "an", "object"], None, "RelayAnswerInvalid"),
    ],
)
def test_a_failed_or_malformed_relay_answer_is_a_reason_to_copy_from_the_source(
    seed_present: list[float], answer: Any, error: str | None, reason: str
) -> None:
    relayed, why = run_seed(FakeLambda(answer, error))
    assert relayed is None
    assert reason in why


def test_an_unpinned_source_is_not_seeded(seed_present: list[float]) -> None:
    relayed, why = run_seed(FakeLambda({}), source="src.example/app:v1")
    assert (relayed, why) == (None, "the source is not pinned to a digest")


def test_the_outcome_counts_the_relays_bytes_as_moved_inside_the_region() -> None:
    final = CopyOutcome(
        "tagged", "s", "d", DIGEST, DIGEST, "m", [], 0, 0, 0, 0.2, 1, "2026-01-01T00:00:00+00:00"
    )
    outcome = merged(final, Relayed("copied", 1000, 3, 1, 1.5, SEED.image), seconds=9.0)
    assert (outcome.action, outcome.bytes_copied, outcome.bytes_in_region, outcome.blobs_copied) == (
        "copied",
        1000,
        1000,
        3,
    )
    assert (outcome.seeded_from, outcome.seconds, outcome.referrers_copied) == (SEED.image, 9.0, 1)
    assert merged(final, None, seconds=9.0) is final
