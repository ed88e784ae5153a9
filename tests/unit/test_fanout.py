"""workflow.pipeline.fanout: past the inline limit the targets, results and events live in the fan-out bucket, and
every target comes back with exactly one record (moto's S3 as the bucket)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdas import gate as gate_handler
from lambdas import plan as plan_handler
from lambdas import summarize as summarize_handler
from tests.unit.conftest import FakeLambdaContext, replication_config
from workflow.core.exceptions import FanOutFailed
from workflow.models.config import parse_config
from workflow.models.payloads import Plan, Target, TargetResult
from workflow.pipeline import fanout
from workflow.pipeline.fanout import INLINE_LIMIT, FanOutStore

BUCKET = "fanout-unit-bucket"
DIGEST = "sha256:" + "c" * 64


def target(index: int) -> Target:
    return Target(
        account=f"{300000000000 + index:012d}",
        region="eu-west-1",
        repository="app",
        tag="release-1",
        rule="fleet",
        source_registry="111111111111.dkr.ecr.us-east-1.amazonaws.com",
        source_repository="app",
        source_reference="release-1",
        registry=f"{300000000000 + index:012d}.dkr.ecr.eu-west-1.amazonaws.com",
        role_arn=f"arn:aws:iam::{300000000000 + index:012d}:role/ecr-replication-target",
    )


def copied(item: Target) -> dict[str, Any]:
    return {
        "account": item.account,
        "region": item.region,
        "repository": item.repository,
        "tag": item.tag,
        "status": "copied",
        "digest": DIGEST,
        "bytes_copied": 10,
    }


@pytest.fixture
def store() -> Iterator[FanOutStore]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        yield FanOutStore(s3, BUCKET)


def child(status: str, item: Target, **fields: Any) -> dict[str, Any]:
    """A child execution as ResultWriter writes it (Input and Output are JSON text)."""
    entry = {
        "ExecutionArn": "arn:aws:states:us-east-1:111111111111:execution:ecr-replication/Replicate:x",
        "Input": json.dumps(
            {"execution": "push-1", "dry_run": False, "target": item.model_dump(mode="json")}
        ),
        "Status": status,
    }
    return {**entry, **fields}


def write_results(store: FanOutStore, files: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The manifest and result files of a Map Run; returns the Map's output (what ResultPath puts in the plan)."""
    listed: dict[str, list[dict[str, Any]]] = {"SUCCEEDED": [], "FAILED": [], "PENDING": []}
    for status, children in files.items():
        where = store.put(f"runs/push-1/results/run/{status}_0.json", children)
        listed[status].append({"Key": where.key, "Size": 1})
    manifest = store.put(
        "runs/push-1/results/run/manifest.json", {"DestinationBucket": BUCKET, "ResultFiles": listed}
    )
    return {
        "MapRunArn": "arn:aws:states:...:mapRun:x",
        "ResultWriterDetails": {"Bucket": BUCKET, "Key": manifest.key},
    }


def test_up_to_the_inline_limit_the_plan_keeps_its_targets(store: FanOutStore) -> None:
    # Given a plan of exactly INLINE_LIMIT targets / When spread / Then it is unchanged and nothing is written
    plan = Plan(repository="app", tag="release-1", targets=[target(i) for i in range(INLINE_LIMIT)])
    assert fanout.spread(plan, "push-1", store) == plan
    assert "Contents" not in store.s3.list_objects_v2(Bucket=BUCKET)


def test_past_the_inline_limit_the_targets_go_to_the_bucket(store: FanOutStore) -> None:
    # Given one target more / When spread
    targets = [target(i) for i in range(INLINE_LIMIT + 1)]
    spread = fanout.spread(Plan(repository="app", tag="release-1", targets=targets), "push-1", store)
    # Then the plan is distributed, carries where its targets are, and reads them back whole
    assert spread.fan_out == "distributed"
    assert spread.targets == []
    assert spread.targets_object is not None
    assert spread.targets_object.key == "runs/push-1/targets.json"
    assert spread.results_prefix == "runs/push-1/results"
    assert fanout.targets_of(spread.model_dump(mode="json"), store) == targets


def test_past_the_inline_limit_without_a_bucket_the_plan_fails_by_name() -> None:
    plan = Plan(repository="app", tag="release-1", targets=[target(i) for i in range(INLINE_LIMIT + 1)])
    with pytest.raises(FanOutFailed, match="no fan-out bucket is configured"):
        fanout.spread(plan, "push-1", None)


def test_every_target_gets_one_record_from_the_results_a_failed_child_and_a_missing_one(
    store: FanOutStore,
) -> None:
    # Given four targets: one child succeeded, one failed (States.Runtime), one never ran, one in no file
    targets = [target(i) for i in range(4)]
    map_run = write_results(
        store,
        {
            "SUCCEEDED": [child("SUCCEEDED", targets[0], Output=json.dumps(copied(targets[0])))],
            "FAILED": [child("FAILED", targets[1], Error="States.Runtime", Cause="a path was not found")],
            "PENDING": [child("PENDING", targets[2])],
        },
    )
    # When the results are read for the plan's targets
    records = fanout.map_results(map_run, targets, store)
    # Then each target has exactly one record, in the plan's order, a failed child's from its input
    assert [(r.account, r.status, r.error) for r in records] == [
        (targets[0].account, "copied", None),
        (targets[1].account, "failed", "States.Runtime"),
        (targets[2].account, "failed", "FanOutFailed"),
        (targets[3].account, "failed", "FanOutFailed"),
    ]
    assert records[1].cause == "a path was not found"
    assert records[2].cause == fanout.CHILD_NOT_RUN
    assert records[3].cause == fanout.NO_RESULT


def test_a_childs_output_that_is_not_a_record_fails_that_destination(store: FanOutStore) -> None:
    targets = [target(0)]
    map_run = write_results(
        store, {"SUCCEEDED": [child("SUCCEEDED", targets[0], Output='{"not": "a record"}')]}
    )
    [record] = fanout.map_results(map_run, targets, store)
    assert (record.status, record.error) == ("failed", "FanOutFailed")


def test_an_unreadable_manifest_is_a_named_failure(store: FanOutStore) -> None:
    store.put("runs/push-1/results/run/manifest.json", ["not", "a", "manifest"])
    map_run = {"ResultWriterDetails": {"Bucket": BUCKET, "Key": "runs/push-1/results/run/manifest.json"}}
    with pytest.raises(FanOutFailed, match="is not a ResultWriter manifest"):
        fanout.map_results(map_run, [target(0)], store)


def test_a_gate_or_map_run_failure_fails_every_target_with_its_error(store: FanOutStore) -> None:
    # Given a distributed plan whose Gate function failed, and one whose Map Run failed
    where = store.put("runs/push-1/targets.json", [target(i).model_dump(mode="json") for i in range(3)])
    fan_out = {"mode": "distributed", "targets": where.model_dump(mode="json")}
    gate_failed = {"fan_out": fan_out, "gate_error": {"Error": "Lambda.Unknown", "Cause": "boom"}}
    map_failed = {"fan_out": {**fan_out, "error": {"Error": "States.ItemReaderFailed", "Cause": "no object"}}}
    # When collected / Then every target is failed with that error, none copied
    for event, error in ((gate_failed, "Lambda.Unknown"), (map_failed, "States.ItemReaderFailed")):
        records = fanout.collect(event, store)
        assert [(r.status, r.error) for r in records] == [("failed", error)] * 3
    assert fanout.collect(gate_failed, store)[0].cause == fanout.GATE_FAILED


def test_the_plan_handler_spreads_a_fleet_into_the_bucket(
    store: FanOutStore, monkeypatch: pytest.MonkeyPatch, config_file: Callable[..., Any]
) -> None:
    # Given a config of 50 destinations and the fan-out bucket
    config = replication_config()
    config["rules"][0]["destinations"] = [
        {"account": f"{300000000000 + i:012d}", "regions": ["eu-west-1"]} for i in range(50)
    ]
    config_file(config)
    monkeypatch.setenv("FANOUT_BUCKET", BUCKET)
    # When a push is planned
    output = plan_handler.handler(
        {"execution": "push-7", "input": {"repository": "app", "tag": "release-1.0.0"}}, FakeLambdaContext()
    )
    # Then the state carries the count and where the 50 targets are, not the targets
    assert (output["target_count"], output["fan_out"], output["targets"]) == (50, "distributed", [])
    assert output["targets_object"] == {"Bucket": BUCKET, "Key": "runs/push-7/targets.json"}
    assert (
        len(fanout.targets_of(output, FanOutStore(boto3.client("s3", region_name="us-east-1"), BUCKET))) == 50
    )
    for field in ("map_run", "gate_error", "fan_out_error", "blocked_object"):
        assert output[field] is None


def test_the_summarize_handler_reads_the_results_and_writes_the_events_and_retry_input(
    store: FanOutStore, monkeypatch: pytest.MonkeyPatch, config_file: Callable[..., Any]
) -> None:
    # Given a distributed run of 45 targets: 44 copied, one failed child
    config_file()
    monkeypatch.setenv("FANOUT_BUCKET", BUCKET)
    targets = [target(i) for i in range(45)]
    where = store.put("runs/push-1/targets.json", [t.model_dump(mode="json") for t in targets])
    children = [child("SUCCEEDED", t, Output=json.dumps(copied(t))) for t in targets[:44]]
    map_run = write_results(
        store,
        {"SUCCEEDED": children, "FAILED": [child("FAILED", targets[44], Error="CopyFailed", Cause="x")]},
    )
    event = {
        "execution": "push-1",
        "execution_id": "arn:aws:states:us-east-1:111111111111:execution:ecr-replication:push-1",
        "plan": {"repository": "app", "tag": "release-1", "dry_run": False},
        "results": [],
        "blocked": [],
        "fan_out": {"mode": "distributed", "targets": where.model_dump(mode="json"), "map_run": map_run},
        "gate_error": None,
    }
    # When summarized
    output = summarize_handler.handler(event, FakeLambdaContext())
    # Then the totals count all 45, the events are in the bucket (not the state), and the retry input names
    # exactly the failed destination
    assert (output["totals"]["copied"], output["totals"]["failed"]) == (44, 1)
    assert output["events"] == []
    assert output["events_object"] == {"Bucket": BUCKET, "Key": "runs/push-1/events.json"}
    events = store.get(fanout.S3Object.model_validate(output["events_object"]))
    assert sum(len(batch) for batch in events) == 45
    retry = store.get(fanout.S3Object(bucket=BUCKET, key="runs/push-1/retry.json"))
    assert retry == {
        "repository": "app",
        "tag": "release-1",
        "destinations": [{"account": targets[44].account, "region": "eu-west-1"}],
    }
    assert [line["account"] for line in output["lines"]] == [targets[44].account]
    assert map_run["ResultWriterDetails"]["Key"] in output["message"]


def test_the_gate_handler_reads_a_distributed_plans_targets_and_puts_them_back(
    store: FanOutStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a distributed plan, and a Gate that lets every target through
    targets = [target(i) for i in range(45)]
    where = store.put("runs/push-1/targets.json", [t.model_dump(mode="json") for t in targets])
    plan = Plan(repository="app", tag="release-1", fan_out="distributed", targets_object=where)
    monkeypatch.setenv("FANOUT_BUCKET", BUCKET)
    seen: list[int] = []

    class PassingGate:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        def run(self, plan: dict[str, Any]) -> dict[str, Any]:
            seen.append(len(plan["targets"]))
            blocked = [
                {**copied(Target.model_validate(plan["targets"][0])), "status": "blocked", "digest": None}
            ]
            gate = {"verdict": "done", "looks": 1}
            return {**plan, "targets": plan["targets"][1:], "blocked": blocked, "gate": gate}

    monkeypatch.setattr(gate_handler, "GateStep", PassingGate)
    monkeypatch.setattr(gate_handler, "load_handler_config", lambda: parse_config(replication_config()))
    monkeypatch.setattr(gate_handler, "make_client", lambda *a, **k: None)
    # When gated
    output = gate_handler.handler(
        {"execution": "push-1", "plan": plan.model_dump(mode="json")}, FakeLambdaContext()
    )
    # Then the Gate saw every target, and the state carries where the passing ones and the blocked one are
    assert seen == [45]
    assert (output["targets"], output["blocked"]) == ([], [])
    assert len(fanout.targets_of(output, store)) == 44
    assert [r.status for r in fanout.records_of(output, store)] == ["blocked"]


def test_records_of_keeps_inline_blocked_records() -> None:
    blocked = [{**copied(target(0)), "status": "blocked", "digest": None}]
    assert [r.status for r in fanout.records_of({"blocked": blocked}, None)] == ["blocked"]
    assert TargetResult.model_validate(blocked[0]).status == "blocked"
