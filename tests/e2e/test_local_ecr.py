"""The local ECR as the product meets it: its own writes in the source account and Region are events, a loop
is stopped by the Plan, and tag immutability refuses moves but not deletes.

Every registry of the runtime sits behind a front (workflow/local/ecr_front.py); the source's emits ECR's
PUSH and DELETE events for every tag put or removed there, whoever writes, through the rule with the
synthesized pattern.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest

from tests.e2e.conftest import E2E, EU, SOURCE, US, destination, skopeo_digest, statuses
from workflow.local.images import build_image, push_image
from workflow.local.runtime import LocalRuntime
from workflow.models import config_checks
from workflow.pipeline import plan

pytestmark = pytest.mark.e2e


def image(label: str) -> Any:
    """A small one-platform image of its own."""
    return build_image(label, ("linux/amd64",), layer_sizes=(1024,))


def ecr_events(runtime: LocalRuntime, name: str) -> str:
    """A rule for every ECR image action on the default bus, delivering to a new queue; returns its URL."""
    events, sqs = runtime.client("events"), runtime.client("sqs")
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name=name, EventPattern=json.dumps({"source": ["aws.ecr"], "detail-type": ["ECR Image Action"]})
    )
    events.put_targets(Rule=name, Targets=[{"Id": "queue", "Arn": arn}])
    return str(queue)


def details(runtime: LocalRuntime, queue: str) -> list[tuple[str, str, str]]:
    """(action, repository, tag) of every event the queue holds, taken off it."""
    sqs, found = runtime.client("sqs"), []
    while messages := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages"):
        for message in messages:
            detail = json.loads(message["Body"])["detail"]
            found.append((detail["action-type"], detail["repository-name"], detail["image-tag"]))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    return sorted(found)


def source_place(template: str) -> dict[str, Any]:
    """A destination in the source's own account and Region, through `template`."""
    return {**destination(SOURCE), "repository": template}


@pytest.fixture
def mirror_runtime() -> Iterator[LocalRuntime]:
    """app's release-* tags copied to mirror/app in the source's own place and to eu-west-1, deletes too."""
    config = {
        "source": SOURCE,
        "rules": [
            {
                "name": "mirrors",
                "repositories": ["app"],
                "tags": {"include": ["release-*"]},
                "destinations": [source_place("mirror/{repository}"), destination(EU)],
                "propagate_deletes": True,
            }
        ],
    }
    with LocalRuntime(config) as runtime:
        yield runtime


@pytest.mark.own_runtime
def test_the_products_own_writes_in_the_source_place_are_ecr_events(mirror_runtime: LocalRuntime) -> None:
    # Given a rule copying app to mirror/app in the source account and Region (no rule selects mirror/app)
    runtime = mirror_runtime
    queue = ecr_events(runtime, "every-ecr-action")
    e2e = E2E(runtime)
    tag = e2e.new_tag()
    pushed = e2e.push(tag)
    # When the push replicates, and then the tag is deleted at the source
    [replicated] = runtime.run_events()
    assert replicated.status == "SUCCEEDED", replicated.cause
    assert runtime.untag("app", tag)
    [deleted] = runtime.run_events()
    # Then each ran once: the copy's own PUSH of mirror/app and the propagated DELETE of it were emitted on the
    # source bus like the test's own push and delete, and matched no rule (nothing else ran)
    assert deleted.status == "SUCCEEDED", deleted.cause
    assert set(statuses(deleted).values()) == {"deleted"}
    assert details(runtime, queue) == sorted(
        [
            ("PUSH", "app", tag),
            ("PUSH", "mirror/app", tag),
            ("DELETE", "app", tag),
            ("DELETE", "mirror/app", tag),
        ]
    )
    assert skopeo_digest(runtime.registry("source").host, "mirror/app", tag) is None
    assert pushed.digest


@pytest.mark.own_runtime
def test_a_looping_config_is_stopped_by_the_plan_at_the_first_generation() -> None:
    # Given rule `all` copying every repository's release-* tags to mirror/... in the source's own account and
    # Region, deployed without the loop check (validation bypassed), so every copy is selected again
    config = {
        "source": SOURCE,
        "rules": [
            {
                "name": "all",
                "repositories": ["*"],
                "tags": {"include": ["release-*"]},
                "destinations": [source_place("mirror/{repository}")],
            }
        ],
    }
    no_loop_check = mock.patch.object(config_checks, "_loops", return_value=[])
    with no_loop_check, LocalRuntime(config) as runtime:
        e2e = E2E(runtime)
        host = runtime.registry("source").host
        # When the Plan's guard is off, a push runs generation after generation (three shown here)
        unguarded = e2e.new_tag()
        e2e.push(unguarded, image(unguarded))
        with mock.patch.object(plan, "_refuse_loop", return_value=None):
            chain = runtime.run_events(generations=3)
        runtime.drop_events()
        assert [execution.status for execution in chain] == ["SUCCEEDED"] * 3
        assert skopeo_digest(host, "mirror/mirror/mirror/app", unguarded) is not None
        # And with the guard, a push of app:release-* starts one execution, which fails at Plan by name
        tag = e2e.new_tag()
        e2e.push(tag, image(tag))
        executions = runtime.run_events(generations=5)
    assert [(execution.status, execution.error) for execution in executions] == [
        ("FAILED", "ReplicationLoop")
    ]
    assert "app:" + tag + " -> mirror/app:" + tag in (executions[0].cause or "")
    # And nothing was copied: neither mirror/app nor mirror/mirror/app ever had the tag
    assert "Replicate" not in executions[0].states_entered()


def test_a_delete_reaches_an_immutable_destination(e2e: E2E) -> None:
    # Given web:<tag> at the source and both destinations, eu-west-1's web repository IMMUTABLE
    tag = e2e.new_tag()
    withdrawn = image(f"withdrawn {tag}")
    e2e.seed(tag, withdrawn, [EU, US])
    e2e.runtime.set_tag_mutability(EU["account"], EU["region"], "web", "IMMUTABLE")
    try:
        # When the tag is deleted at the source
        (execution,) = e2e.run_delete_event(tag, withdrawn.digest)
        # Then it is deleted at both: immutability refuses moving a tag, not deleting it
        assert execution.status == "SUCCEEDED", execution.errors()
        assert set(statuses(execution).values()) == {"deleted"}
        assert e2e.digest_at(EU, tag, "web") is None
        assert e2e.digest_at(US, tag, "web") is None
    finally:
        e2e.runtime.set_tag_mutability(EU["account"], EU["region"], "web", "MUTABLE")


def test_an_immutable_destination_tag_is_not_moved(e2e: E2E) -> None:
    # Given app:<tag> at eu-west-1 as one image, its app repository IMMUTABLE, and the source pushing another
    tag = e2e.new_tag()
    older, newer = image(f"older {tag}"), image(f"newer {tag}")
    eu = e2e.runtime.registry_of(EU["account"], EU["region"])
    push_image(eu.url, "app", tag, older)
    e2e.runtime.set_tag_mutability(EU["account"], EU["region"], "app", "IMMUTABLE")
    try:
        # Then the local ECR refuses a move of the tag as ECR does
        with pytest.raises(
            RuntimeError, match=r"HTTP 400 .*TAG_INVALID.*cannot be overwritten because the tag is immutable"
        ):
            push_image(eu.url, "app", tag, newer)
        # And when the newer image replicates, eu-west-1 fails by name and keeps the older; us-west-2 gets it
        e2e.push(tag, newer)
        [execution] = e2e.run_event(tag, newer)
        lines = {
            f"{line['account']}/{line['region']}": line
            for line in execution.state_outputs("Summarize")[-1]["summary"]["lines"]
        }
        assert lines["222222222222/eu-west-1"]["error"] == "DestinationTagImmutable"
        assert e2e.digest_at(EU, tag) == older.digest
        assert e2e.digest_at(US, tag) == newer.digest
    finally:
        e2e.runtime.set_tag_mutability(EU["account"], EU["region"], "app", "MUTABLE")
