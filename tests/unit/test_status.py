"""`ecr-replicate status` against moto: present, stale, missing, unknown; --all; exit codes; call count."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.unit.fake_ecr import EcrManifests, digest, push, use_moto_environment
from tests.unit.test_sync import CONFIG, DESTINATION, IDLE, ROLE, build_world, refuse_role_of
from workflow.cli import main
from workflow.core.exceptions import ImageNotFound, InvalidRequest
from workflow.local.scans import ScanResults, applied, in_progress
from workflow.models.config import parse_config
from workflow.ops.inventory import AwsClients
from workflow.ops.status import image_status
from workflow.ops.sync.options import SyncOptions
from workflow.ops.sync.syncer import sync

EU, US = f"{DESTINATION}/eu-west-1", f"{DESTINATION}/us-west-2"


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    """test_sync's world: eu-west-1 holds app:release-1 and release-2's digest as `old`; us-west-2 nothing. The
    source's manifests (which the gates read) come from moto's ECR."""
    use_moto_environment(monkeypatch)
    with mock_aws(config=IDLE):
        clients = build_world(AwsClients(boto3.Session()))
        source = EcrManifests(clients.client("ecr", "us-east-1"))
        monkeypatch.setattr("workflow.ops.status.make_client", lambda *_, **__: source)
        yield clients


@pytest.fixture
def config_file(tmp_path: Path) -> str:
    path = tmp_path / "replication.json"
    path.write_text(json.dumps(CONFIG))
    return str(path)


def states(report: Any) -> dict[tuple[str, str], tuple[str, str | None]]:
    """(tag, account/region) -> (state, destination digest)."""
    return {(e.tag, f"{e.account}/{e.region}"): (e.state, e.digest) for e in report.entries}


def test_present_at_one_destination_missing_at_the_other(world: AwsClients) -> None:
    # Given app:release-1 at eu-west-1 only
    # When asking its status
    report = image_status(parse_config(CONFIG), "app", "release-1", clients=world)
    # Then eu-west-1 has it with the source digest and its push time, us-west-2 lacks it
    assert states(report) == {
        ("release-1", EU): ("present", digest(10)),
        ("release-1", US): ("missing", None),
    }
    present = next(e for e in report.entries if e.state == "present")
    assert present.pushed_at is not None
    assert present.source_digest == digest(10)
    assert report.complete is False


def test_another_digest_under_the_tag_is_stale(world: AwsClients) -> None:
    # Given eu-west-1 holding app:release-2 under another digest than the source's
    push(world.client("ecr", "eu-west-1", ROLE), "app", "release-2", 99)
    # When asking its status / Then stale, naming the destination's digest
    report = image_status(parse_config(CONFIG), "app", "release-2", clients=world)
    assert states(report)[("release-2", EU)] == ("stale", digest(99))
    assert states(report)[("release-2", US)] == ("missing", None)


def test_all_covers_every_tag_the_rules_accept_and_complete_when_everything_is_there(
    world: AwsClients,
) -> None:
    # Given app's tags release-1, release-2, release-3-rc1 (excluded) and dev-1 (not included)
    config = parse_config(CONFIG)
    # When asking every accepted tag
    report = image_status(config, "app", clients=world)
    # Then two tags at two destinations
    assert sorted(states(report)) == [
        ("release-1", EU),
        ("release-1", US),
        ("release-2", EU),
        ("release-2", US),
    ]
    # and once every destination has them, the report is complete
    for region in ("eu-west-1", "us-west-2"):
        destination = world.client("ecr", region, ROLE)
        if region == "us-west-2":
            destination.create_repository(repositoryName="app")
            push(destination, "app", "release-1", 10)
        push(destination, "app", "release-2", 20)
    assert image_status(config, "app", clients=world).complete is True


def test_a_destination_that_cannot_be_read_is_unknown_and_the_others_are_read(
    world: AwsClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a third destination whose role is not deployed
    raw = json.loads(json.dumps(CONFIG))
    raw["rules"][0]["destinations"].append({"account": "333333333333", "regions": ["eu-west-1"]})
    refuse_role_of("333333333333", monkeypatch)
    # When asking the status
    report = image_status(parse_config(raw), "app", "release-1", clients=world)
    # Then it is unknown with the error, and the others are still known
    unknown = [e for e in report.entries if e.state == "unknown"]
    assert [
        (e.account, e.error is not None and e.error.startswith("RegistryAuthError")) for e in unknown
    ] == [("333333333333", True)]
    assert states(report)[("release-1", EU)] == ("present", digest(10))


def test_bad_queries_are_named(world: AwsClients) -> None:
    # Given the config / Then a repository no rule selects, a tag no rule accepts, a tag not in the source
    config = parse_config(CONFIG)
    with pytest.raises(InvalidRequest, match="selects the repository 'other-repo'"):
        image_status(config, "other-repo", "release-1", clients=world)
    with pytest.raises(InvalidRequest, match="no rule replicates app:dev-1"):
        image_status(config, "app", "dev-1", clients=world)
    with pytest.raises(ImageNotFound, match="app:release-9 is not in the source"):
        image_status(config, "app", "release-9", clients=world)


def ecr_calls(world: AwsClients) -> Counter[str]:
    """Count every ECR call of the clients `world` makes from now on."""
    calls: Counter[str] = Counter()
    world.on_client = lambda client: client.meta.events.register(
        "before-call.ecr.*", lambda model, **_: calls.update([model.name])
    )
    world._clients.clear()
    return calls


def test_calls_for_100_tags_are_one_listing_per_repository_as_for_sync(
    world: AwsClients,
) -> None:
    # Given app with 100 more release tags, 50 of them at eu-west-1
    source, eu = world.client("ecr", "us-east-1"), world.client("ecr", "eu-west-1", ROLE)
    for n in range(100):
        push(source, "app", f"release-100{n}", 1000 + n)
        if n % 2:
            push(eu, "app", f"release-100{n}", 1000 + n)
    config = parse_config({**CONFIG, "rules": [{**CONFIG["rules"][0], "repositories": ["app"]}]})

    # When asking the status of every tag, and running a dry-run sync of the same repository
    calls = ecr_calls(world)
    report = image_status(config, "app", clients=world)
    status_calls = +calls
    calls.clear()
    sync(config, SyncOptions(local=True, dry_run=True), clients=world)

    # Then 102 tags x 2 destinations are reported from one source listing and one per destination
    assert len(report.entries) == 204
    assert Counter(e.state for e in report.entries) == {"missing": 153, "present": 51}
    assert status_calls == {"DescribeImages": 3}
    # and that is what sync reads for the same work (it lists the source's repositories too)
    assert calls == {"DescribeRepositories": 1, "DescribeImages": 3}


def test_cli_exit_codes_table_and_json(
    world: AwsClients, config_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given app:release-1 missing at us-west-2
    # When asking with the CLI / Then exit 1 and a row per destination with state and digest
    assert main(["status", config_file, "app:release-1"]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["IMAGE", "DESTINATION", "STATE", "DIGEST", "PUSHED"]
    assert f"app:release-1  {EU} app  present  {digest(10)[:19]}" in out
    assert f"app:release-1  {US} app  missing  -" in out
    # and --json for scripts
    assert main(["status", config_file, "app", "--all", "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["complete"] is False
    assert document["counts"] == {"present": 1, "stale": 0, "missing": 3, "blocked": 0, "unknown": 0}
    assert {d["tag"] for d in document["destinations"]} == {"release-1", "release-2"}
    # and a tag no rule replicates is bad input
    assert main(["status", config_file, "app:dev-1"]) == 2
    assert "no rule replicates app:dev-1" in capsys.readouterr().err
    # and exit 0 once every destination has it
    us = world.client("ecr", "us-west-2", ROLE)
    us.create_repository(repositoryName="app")
    push(us, "app", "release-1", 10)
    assert main(["status", config_file, "app:release-1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["complete"] is True


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["app"], "is not REPOSITORY:TAG"),
        (["app:release-1", "--all"], "without a tag with --all"),
        (["App:release-1"], "not a valid ECR repository name"),
        (["app:bad tag"], "not a valid image tag"),
    ],
)
def test_cli_bad_input_exits_2(
    config_file: str, arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a malformed image argument / Then exit 2 with one line naming it, before any AWS call
    assert main(["status", config_file, *arguments]) == 2
    assert message in capsys.readouterr().err


class _ADayLater(datetime):
    """datetime whose now() is a day from now: status asked long after the pushes (their scans are overdue)."""

    @classmethod
    def now(cls, tz: Any = None) -> _ADayLater:  # type: ignore[override]
        return datetime.now(tz) + timedelta(days=1)  # type: ignore[return-value]


@pytest.fixture
def a_day_later(monkeypatch: pytest.MonkeyPatch) -> None:
    """The gates count a day as waited since each push (workflow.pipeline.gate.waited_since)."""
    monkeypatch.setattr("workflow.pipeline.gate.datetime", _ADayLater)


def gated_config(block_at: str) -> dict[str, Any]:
    """CONFIG with a scan gate on its rule."""
    return {**CONFIG, "rules": [{**CONFIG["rules"][0], "gates": {"scan": {"block_at": block_at}}}]}


def test_a_gated_rule_blocks_where_the_image_is_missing_and_reads_each_scan_once(
    world: AwsClients, tmp_path: Path, capsys: pytest.CaptureFixture[str], a_day_later: None
) -> None:
    # Given a rule gated at HIGH, app:release-1 scanned with one HIGH finding (moto's scan result) and
    # app:release-2 never scanned a day after its push (no result: blocked by default); release-1 is at
    # eu-west-1 only, and eu-west-1 holds release-2 under another digest (stale)
    world.client("ecr", "us-east-1").start_image_scan(repositoryName="app", imageId={"imageTag": "release-1"})
    push(world.client("ecr", "eu-west-1", ROLE), "app", "release-2", 99)
    config = parse_config(gated_config("HIGH"))

    # When asking the status of every accepted tag, counting ECR calls
    calls = ecr_calls(world)
    report = image_status(config, "app", clients=world)

    # Then where the image is missing (or stale) it is blocked, and where it already is it stays present
    assert states(report) == {
        ("release-1", EU): ("present", digest(10)),
        ("release-1", US): ("blocked", None),
        ("release-2", EU): ("blocked", digest(99)),
        ("release-2", US): ("blocked", None),
    }
    # with the gate's reason on every entry, the one a person can act on
    gate = {(e.tag, f"{e.account}/{e.region}"): e.gate for e in report.entries}
    assert gate[("release-1", US)] == gate[("release-1", EU)]
    assert gate[("release-1", US)] is not None
    assert gate[("release-1", US)].startswith(
        "rule 'production' blocks: 1 HIGH finding: CVE-9999-9999 (moto_fake 9.9.9)"
    )
    assert gate[("release-2", US)] == (
        "rule 'production' blocks: no scan after waiting 30 min (ScanNotFoundException: is scan on push on for "
        "this repository, and does ECR scan this image type?); blocked (on_missing: block)"
    )
    # and each image's scan was read once, not once per destination
    assert calls["DescribeImageScanFindings"] == 2
    assert report.complete is False

    # And the CLI exits 1, counts them, and prints each image's reason once
    path = tmp_path / "gated.json"
    path.write_text(json.dumps(gated_config("HIGH")))
    assert main(["status", str(path), "app:release-1"]) == 1
    out = capsys.readouterr().out
    assert f"app:release-1  {US} app  blocked  -" in out
    assert out.count("app:release-1: rule 'production' blocks: 1 HIGH finding") == 1
    assert main(["status", str(path), "app", "--all", "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["counts"] == {"present": 1, "stale": 0, "missing": 0, "blocked": 3, "unknown": 0}


def test_an_image_the_gates_pass_is_reported_as_without_gates(world: AwsClients) -> None:
    # Given a rule gated at CRITICAL and app:release-1 scanned with only a HIGH finding
    world.client("ecr", "us-east-1").start_image_scan(repositoryName="app", imageId={"imageTag": "release-1"})
    # When asking its status
    report = image_status(parse_config(gated_config("CRITICAL")), "app", "release-1", clients=world)
    # Then present and missing as without gates, and no gate reason
    assert states(report) == {
        ("release-1", EU): ("present", digest(10)),
        ("release-1", US): ("missing", None),
    }
    assert [e.gate for e in report.entries] == [None, None]


def test_a_destination_another_ungated_rule_selects_is_not_blocked(
    world: AwsClients, a_day_later: None
) -> None:
    # Given the gated rule blocking app:release-1 (never scanned a day after its push), and an ungated rule
    # also sending it to us-west-2
    raw = gated_config("HIGH")
    raw["rules"].append(
        {
            "name": "mirror",
            "repositories": ["app"],
            "tags": {"include": ["release-1"]},
            "destinations": [{"account": DESTINATION, "regions": ["us-west-2"]}],
        }
    )
    # When asking its status
    report = image_status(parse_config(raw), "app", "release-1", clients=world)
    # Then us-west-2 is missing (the ungated rule replicates it there), not blocked; eu-west-1 keeps its copy
    assert states(report) == {
        ("release-1", EU): ("present", digest(10)),
        ("release-1", US): ("missing", None),
    }
    gates = {f"{e.account}/{e.region}": e.gate for e in report.entries}
    assert gates[US] is None
    assert gates[EU] is not None
    assert gates[EU].startswith("rule 'production' blocks: no scan after waiting 30 min")


def test_an_image_just_pushed_without_a_scan_yet_waits_rather_than_blocks(world: AwsClients) -> None:
    # Given a gated rule and app:release-1 pushed moments ago, its scan not there yet (ScanNotFoundException)
    # When asking its status right away
    report = image_status(parse_config(gated_config("HIGH")), "app", "release-1", clients=world)
    # Then missing stays missing and the gate says it waits for the scan, counting from the push
    assert states(report)[("release-1", US)] == ("missing", None)
    gates = {f"{e.account}/{e.region}": e.gate for e in report.entries}
    assert (
        gates[US] == "rule 'production' waits: scan not found yet (ScanNotFoundException); waited 0 of 30 min"
    )


def test_a_scan_in_progress_is_named_but_does_not_block(world: AwsClients) -> None:
    # Given a gated rule and app:release-1's scan still IN_PROGRESS (the runtime's scan fake)
    with applied(ScanResults()) as scans:
        scans.set("app", digest(10), in_progress())
        # When asking its status
        report = image_status(parse_config(gated_config("HIGH")), "app", "release-1", clients=world)
    # Then missing stays missing (the workflow would wait for the scan), and the gate says it waits
    assert states(report)[("release-1", US)] == ("missing", None)
    gates = {f"{e.account}/{e.region}": e.gate for e in report.entries}
    assert gates[US] == gates[EU]
    assert gates[US] is not None
    assert gates[US].startswith("rule 'production' waits: scan IN_PROGRESS")
