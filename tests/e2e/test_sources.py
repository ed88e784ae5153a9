"""One deployment for every source, in the local runtime: two Regions of the home account and a second account.

Each source's local ECR emits its push events on its own account's bus in its own Region; the other sources'
forwarding rules send them to the home bus as EventBridge does (workflow/local/forwarding.py: the event keeps its
account and Region; another account's event passes only what the home bus policy allows), where the one home
rule starts the one state machine. Each copy reads from the source the event names.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import E2E, PLATFORMS, listen, received, skopeo_digest
from workflow.cli import main
from workflow.local.images import Image, build_image
from workflow.local.runtime import Execution, LocalRuntime

pytestmark = [pytest.mark.e2e, pytest.mark.own_runtime]

HOME = {"account": "111111111111", "region": "us-east-1"}
WEST = {"account": "111111111111", "region": "eu-west-1"}
PARTNER = {"account": "333333333333", "region": "us-west-2"}
DESTINATION = {"account": "222222222222", "region": "eu-west-1"}
HOME_NAME, WEST_NAME, PARTNER_NAME = (f"{s['account']}/{s['region']}" for s in (HOME, WEST, PARTNER))
CONFIG: dict[str, Any] = {
    "sources": [HOME, WEST, PARTNER],
    "rules": [
        {
            "name": "builds",
            "sources": [HOME_NAME, WEST_NAME],
            "repositories": ["app", "web"],
            "tags": {"include": ["release-*"]},
            "destinations": [{"account": DESTINATION["account"], "regions": [DESTINATION["region"]]}],
        },
        {
            "name": "partner",
            "sources": [PARTNER_NAME],
            "repositories": ["app"],
            "tags": {"include": ["release-*"]},
            "destinations": [
                {
                    "account": DESTINATION["account"],
                    "regions": [DESTINATION["region"]],
                    "repository": "partner/{repository}",
                }
            ],
        },
    ],
    "notifications": {"emails": ["platform-team@example.com"], "on": "always"},
}


@pytest.fixture(scope="module")
def sources() -> Iterator[E2E]:
    with LocalRuntime(CONFIG) as runtime:
        yield E2E(runtime)


def image(text: str) -> Image:
    return build_image(text, PLATFORMS, layer_sizes=(4 * 1024, 1024))


def at_destination(e2e: E2E, repository: str, tag: str) -> str | None:
    return skopeo_digest(
        e2e.runtime.registry_of(DESTINATION["account"], DESTINATION["region"]).host, repository, tag
    )


def summary_of(execution: Execution) -> dict[str, Any]:
    return dict(execution.state_outputs("Summarize")[-1]["summary"])


def test_pushes_in_each_source_are_replicated_by_the_one_state_machine_each_record_naming_its_source(
    sources: E2E,
) -> None:
    """Given app:TAG pushed in the home Region, web:TAG in the home account's eu-west-1 and another app:TAG (other
    content) in the partner account's us-west-2, each emitted by that source's ECR on its own bus
    When the events are delivered Then one state machine runs three executions, each copy from where its image is,
    and every record, summary and replication event names its source."""
    runtime = sources.runtime
    tag = sources.new_tag()
    home, west, partner = image(f"home {tag}"), image(f"west {tag}"), image(f"partner {tag}")
    queue = listen(sources, "sources-replicated", ["ECR Image Replicated"])
    runtime.push("app", tag, home, source="source")
    runtime.push("web", tag, west, source=WEST_NAME)
    runtime.push("app", tag, partner, source=PARTNER_NAME)
    executions = runtime.run_events()
    # Then three executions of the one state machine, none more (the destination is no source)
    assert [e.status for e in executions] == ["SUCCEEDED"] * 3
    assert {e.arn.split(":execution:")[1].split(":")[0] for e in executions} == {
        runtime.state_machine_arn.rsplit(":", 1)[1]
    }
    by_source = {summary_of(e)["source"]: e for e in executions}
    assert set(by_source) == {HOME_NAME, WEST_NAME, PARTNER_NAME}
    # And each image arrived whole, the two app:TAG images kept apart by their rules' destination repositories
    assert at_destination(sources, "app", tag) == home.digest
    assert at_destination(sources, "web", tag) == west.digest
    assert at_destination(sources, "partner/app", tag) == partner.digest
    # And each record names its source
    for name, execution in by_source.items():
        (record,) = execution.state_outputs("Record")
        assert (record["source"], record["status"]) == (name, "copied")
        assert f" from {name}: SUCCEEDED" in summary_of(execution)["message"]
    # And each replication event says where the image came from
    events = received(sources, queue)
    assert sorted((e["detail"]["source"], e["detail"]["destination"]["repository"]) for e in events) == [
        (WEST_NAME, "web"),
        (HOME_NAME, "app"),
        (PARTNER_NAME, "partner/app"),
    ]


def test_status_and_sync_dry_run_of_an_image_in_the_second_account(
    sources: E2E, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given app:TAG in the partner account only, its event dropped (a push from before the rule)
    When `status` and `sync --dry-run` read the sources Then status finds it missing at partner/app, named by its
    source, and the dry run plans one execution for it, from that source."""
    runtime = sources.runtime
    tag = sources.new_tag()
    partner = image(f"partner only {tag}")
    runtime.push("app", tag, partner, source=PARTNER_NAME)
    runtime.drop_events()
    config = str(runtime.config_file)
    assert main(["status", config, f"app:{tag}", "--source", PARTNER_NAME, "--json"]) == 1
    (entry,) = json.loads(capsys.readouterr().out)["destinations"]
    assert (entry["source"], entry["destination"]["repository"], entry["state"], entry["source_digest"]) == (
        PARTNER_NAME,
        "partner/app",
        "missing",
        partner.digest,
    )
    arguments = ["sync", config, "--dry-run", "--json", "--state-machine-arn", runtime.state_machine_arn]
    assert main([*arguments, "--source", PARTNER_NAME]) == 0
    actions = json.loads(capsys.readouterr().out)["actions"]
    assert [(a["kind"], a["source"], a["tag"], a["digest"]) for a in actions] == [
        ("start", PARTNER_NAME, tag, partner.digest)
    ]


def test_a_refused_forward_lands_in_the_sources_dead_letter_queue(sources: E2E) -> None:
    """Given the home bus policy gone (a failed or missing deploy of the source stack's policy)
    When the partner account pushes Then no execution starts and its event waits in its forwarding dead-letter
    queue (NO_PERMISSIONS); the home account's other Region still forwards (one account needs no bus policy)."""
    runtime = sources.runtime
    tag = sources.new_tag()
    runtime.forwarding.revoke()
    try:
        runtime.push("app", tag, image(f"refused {tag}"), source=PARTNER_NAME)
        assert runtime.run_events() == []
        (dead,) = runtime.forwarding.dead_letters(PARTNER["account"], PARTNER["region"])
        assert dead["error"] == "NO_PERMISSIONS"
        assert (dead["event"]["account"], dead["event"]["region"]) == (PARTNER["account"], PARTNER["region"])
        assert dead["event"]["detail"]["image-tag"] == tag
        runtime.push("web", tag, image(f"west {tag}"), source=WEST_NAME)
        assert [summary_of(e)["source"] for e in runtime.run_events()] == [WEST_NAME]
    finally:
        runtime.forwarding.grant()
