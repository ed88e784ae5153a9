"""Backfill against moto: listing, filtering, deciding, idempotent execution naming, tagging, reconcile."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from hypothesis import given
from hypothesis import strategies as st
from moto import mock_aws

from tests.unit.fake_ecr import digest, push, use_moto_environment
from workflow.core.exceptions import InvalidRequest, RegistryAuthError
from workflow.engine import roles
from workflow.engine.roles import assume_role
from workflow.models.config import ReplicationConfig, parse_config
from workflow.ops.inventory import AwsClients
from workflow.ops.sync.executions import execution_name, execution_stem
from workflow.ops.sync.options import SyncOptions
from workflow.ops.sync.syncer import SyncReport, reconcile, sync

SOURCE = "123456789012"
DESTINATION = "222222222222"
ROLE = f"arn:aws:iam::{DESTINATION}:role/ecr-replication-target"
CONFIG: dict[str, Any] = {
    "source": {"account": SOURCE, "region": "us-east-1"},
    "rules": [
        {
            "name": "production",
            "repositories": ["app", "services/*"],
            "tags": {"include": ["release-*"], "exclude": ["*-rc*"]},
            "destinations": [{"account": DESTINATION, "regions": ["eu-west-1", "us-west-2"]}],
        }
    ],
}
# Set by a local runtime left running elsewhere in the session; they would redirect or re-account moto.
# moto starts executions without running them: they stay RUNNING.
IDLE: Any = {"stepfunctions": {"execute_state_machine": False}}
NOON = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
DAY = NOON.date()
PASS_MACHINE = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})
FAIL_MACHINE = json.dumps(
    {"StartAt": "Boom", "States": {"Boom": {"Type": "Fail", "Error": "X", "Cause": "y"}}}
)


def tags_of(client: Any, repository: str) -> dict[str, str]:
    """tag -> digest of a repository."""
    details = client.describe_images(repositoryName=repository)["imageDetails"]
    return {tag: d["imageDigest"] for d in details for tag in d.get("imageTags", [])}


@pytest.fixture
def config() -> ReplicationConfig:
    """Release tags of app and services/* to 222222222222 in two Regions."""
    return parse_config(CONFIG)


def build_world(aws: AwsClients) -> AwsClients:
    """Source: app {release-1, release-2, release-3-rc1, dev-1}, services/api {release-1}, other {release-1}.

    Destination eu-west-1 holds app:release-1 and release-2's digest under "old"; us-west-2 is empty.
    """
    source = aws.client("ecr", "us-east-1")
    for name in ("app", "services/api", "other"):
        source.create_repository(repositoryName=name)
    push(source, "app", "release-1", 10)
    push(source, "app", "release-2", 20)
    push(source, "app", "release-3-rc1", 30)
    push(source, "app", "dev-1", 40)
    push(source, "services/api", "release-1", 50)
    push(source, "other", "release-1", 60)
    destination = aws.client("ecr", "eu-west-1", ROLE)
    destination.create_repository(repositoryName="app")
    push(destination, "app", "release-1", 10)
    push(destination, "app", "old", 20)
    return aws


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    """The world above in moto, whose Step Functions runs executions to their end."""
    use_moto_environment(monkeypatch)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield build_world(AwsClients(boto3.Session()))


@pytest.fixture
def idle_world(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    """The world above in moto, whose executions stay RUNNING (said explicitly: moto's config is global)."""
    use_moto_environment(monkeypatch)
    with mock_aws(config=IDLE):
        yield build_world(AwsClients(boto3.Session()))


def state_machine(aws: AwsClients, definition: str = PASS_MACHINE) -> str:
    """A state machine in the source account; its ARN."""
    client = aws.client("stepfunctions", "us-east-1")
    return str(
        client.create_state_machine(
            name=f"m{abs(hash(definition)) % 1000}",
            definition=definition,
            roleArn=f"arn:aws:iam::{SOURCE}:role/sfn",
        )["stateMachineArn"]
    )


def executions(aws: AwsClients, arn: str) -> list[dict[str, Any]]:
    """Every execution of a state machine, with its input."""
    client = aws.client("stepfunctions", "us-east-1")
    listed = client.list_executions(stateMachineArn=arn)["executions"]
    return [client.describe_execution(executionArn=e["executionArn"]) for e in listed]


def test_execution_names_are_valid_stable_and_specific() -> None:
    # Given the same work described twice (destinations in another order), and variations of it
    both = ["2/eu-west-1", "2/us-west-2"]
    name = execution_name("services/api", digest(1), "release-1", both, day=DAY)
    same = execution_name("services/api", digest(1), "release-1", list(reversed(both)), day=DAY)
    others = {
        execution_name("services/api", digest(2), "release-1", both, day=DAY),
        execution_name("services/api", digest(1), "release-2", both, day=DAY),
        execution_name("services/api", digest(1), "release-1", ["2/eu-west-1"], day=DAY),
        execution_name("services/api", digest(1), "release-1", both, attempt=2, day=DAY),
    }
    tomorrow = execution_name("services/api", digest(1), "release-1", both, day=DAY + timedelta(days=1))

    # Then the name is stable, readable, and differs whenever the work or the day differs
    assert name == same
    assert re.fullmatch(r"sync-services-api-[0-9a-f]{16}-20260115", name)
    assert name not in others
    assert len(others) == 4
    # and the day and attempt do not change the stem, which names the work
    assert tomorrow != name
    assert {execution_stem(n) for n in (name, tomorrow, f"{name}-3")} == {name.removesuffix("-20260115")}


@given(
    repository=st.from_regex(r"[a-z0-9]{1,30}(/[a-z0-9._-]{1,60}){0,4}", fullmatch=True),
    attempt=st.integers(1, 3),
)
def test_execution_names_fit_step_functions_limits(repository: str, attempt: int) -> None:
    # Given any repository name When naming its execution Then <= 80 characters of [A-Za-z0-9-_]
    name = execution_name(repository, digest(7), "v1", ["1/eu-west-1"], attempt, day=DAY)
    assert len(name) <= 80
    assert re.fullmatch(r"[A-Za-z0-9_-]+", name)
    assert execution_stem(name) == execution_stem(
        execution_name(repository, digest(7), "v1", ["1/eu-west-1"], day=DAY)
    )


def test_dry_run_lists_filters_decides_and_changes_nothing(
    world: AwsClients, config: ReplicationConfig
) -> None:
    # Given the world above and a state machine
    arn = state_machine(world)
    calls: list[str] = []
    world.on_client = lambda client: client.meta.events.register(
        "before-call.*.*", lambda model, **_: calls.append(model.name)
    )

    # When syncing with --dry-run
    report = sync(config, SyncOptions(state_machine_arn=arn, dry_run=True), clients=world)

    # Then the counts follow the rules, and the planned actions name exactly the missing destinations
    assert (report.repositories, report.examined, report.not_matching, report.present) == (2, 5, 2, 1)
    assert (report.tagged, report.started, report.failed) == (1, 3, 0)
    planned = {(a.kind, a.repository, a.tag, tuple(a.destinations)) for a in report.actions}
    assert planned == {
        ("tag", "app", "release-2", (f"{DESTINATION}/eu-west-1",)),
        ("start", "app", "release-1", (f"{DESTINATION}/us-west-2",)),
        ("start", "app", "release-2", (f"{DESTINATION}/us-west-2",)),
        ("start", "services/api", "release-1", (f"{DESTINATION}/eu-west-1", f"{DESTINATION}/us-west-2")),
    }
    # and nothing changed: no execution, no tag, only read calls
    assert executions(world, arn) == []
    assert tags_of(world.client("ecr", "eu-west-1", ROLE), "app") == {
        "release-1": digest(10),
        "old": digest(20),
    }
    assert set(calls) <= {"AssumeRole", "DescribeRepositories", "DescribeImages"}


def test_sync_starts_missing_work_once_and_tags_in_place(
    world: AwsClients, config: ReplicationConfig
) -> None:
    # Given the world above and a state machine that succeeds
    arn = state_machine(world)

    # When syncing (waiting for executions, no real sleeping)
    report = sync(
        config, SyncOptions(state_machine_arn=arn, poll_initial=0.01), clients=world, sleep=lambda _s: None
    )

    # Then one execution per image with missing destinations, whose input names exactly those
    started = {
        json.loads(e["input"])["repository"] + ":" + json.loads(e["input"])["tag"]: e
        for e in executions(world, arn)
    }
    assert set(started) == {"app:release-1", "app:release-2", "services/api:release-1"}
    assert json.loads(started["services/api:release-1"]["input"]) == {
        "repository": "services/api",
        "tag": "release-1",
        "destinations": [
            {"account": DESTINATION, "region": "eu-west-1"},
            {"account": DESTINATION, "region": "us-west-2"},
        ],
    }
    assert started["app:release-1"]["name"] == execution_name(
        "app", digest(10), "release-1", [f"{DESTINATION}/us-west-2"], day=datetime.now(UTC).date()
    )
    assert all(e["status"] == "SUCCEEDED" for e in started.values())
    # and the digest already in eu-west-1 got its tag through PutImage
    assert tags_of(world.client("ecr", "eu-west-1", ROLE), "app")["release-2"] == digest(20)
    assert (report.tagged, report.started, report.failed) == (1, 3, 0)


def test_a_rerun_never_starts_the_same_work_twice(idle_world: AwsClients, config: ReplicationConfig) -> None:
    # Given a first run that started executions which are still running
    arn = state_machine(idle_world)
    first = sync(config, SyncOptions(state_machine_arn=arn, wait=False), clients=idle_world)

    # When the same sync runs again while the images are still missing
    second = sync(config, SyncOptions(state_machine_arn=arn, wait=False), clients=idle_world)

    # Then Step Functions rejected the same names, counted as already started, not failed
    assert (first.started, first.already_started) == (3, 0)
    assert (second.started, second.already_started, second.failed) == (0, 3, 0)
    assert len(executions(idle_world, arn)) == 3


def test_a_run_longer_than_the_role_session_signs_with_renewed_credentials(
    idle_world: AwsClients, config: ReplicationConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given STS issuing one-hour role sessions, and a clock that moves two hours between inventory and repair
    arn = state_machine(idle_world)
    now = [datetime.now(UTC)]
    issued: list[str] = []

    def one_hour_sessions(role_arn: str, session_name: str, **kwargs: Any) -> Any:
        sts = kwargs.pop("sts_client")

        class OneHourSts:
            def assume_role(self, **request: Any) -> Any:
                response = sts.assume_role(**request)
                response["Credentials"]["Expiration"] = now[0] + timedelta(hours=1)
                issued.append(response["Credentials"]["AccessKeyId"])
                return response

        return assume_role(role_arn, session_name, sts_client=OneHourSts(), clock=lambda: now[0], **kwargs)

    monkeypatch.setattr(roles, "assume_role", one_hour_sessions)
    clients = AwsClients(idle_world.session)  # the world's own role session is already cached
    signed: list[tuple[str, str]] = []

    def record(client: Any) -> None:
        def sent(request: Any, **_: Any) -> None:
            target = request.headers["X-Amz-Target"]
            operation = (target.decode() if isinstance(target, bytes) else target).rsplit(".", 1)[1]
            authorization = request.headers["Authorization"]
            authorization = authorization.decode() if isinstance(authorization, bytes) else authorization
            signed.append((operation, re.search(r"Credential=([^/]+)/", authorization)[1]))

        client.meta.events.register("before-send.ecr", sent)

    clients.on_client = record

    def later(phase: str, done: int, total: int) -> None:
        if phase == "inventory" and done == total:
            now[0] += timedelta(hours=2)

    # When syncing
    report = sync(config, SyncOptions(state_machine_arn=arn, wait=False), clients=clients, progress=later)

    # Then the role was assumed again when its session ran out, and the tag was put with the new credentials
    # by the same client that listed with the first ones
    assert report.tagged == 1
    assert len(issued) == 2
    listing = {key for operation, key in signed if operation == "DescribeImages"}
    tagging = {key for operation, key in signed if operation in ("BatchGetImage", "PutImage")}
    assert issued[0] in listing
    assert tagging == {issued[1]}


def test_ended_executions_are_retried_up_to_a_limit_a_day_then_again_the_next_day(
    world: AwsClients, config: ReplicationConfig
) -> None:
    # Given a state machine whose executions fail
    arn = state_machine(world, FAIL_MACHINE)
    options = SyncOptions(state_machine_arn=arn, poll_initial=0.01)

    def run(day: datetime) -> SyncReport:
        return sync(config, options, clients=world, sleep=lambda _s: None, now=lambda: day)

    # When syncing four times on one day
    reports = [run(NOON) for _ in range(4)]

    # Then each of the first three runs starts one attempt per image and reports it failed
    names = {e["name"] for e in executions(world, arn)}
    assert len(names) == 9
    base = execution_name("app", digest(10), "release-1", [f"{DESTINATION}/us-west-2"], day=DAY)
    assert {base, f"{base}-2", f"{base}-3"} <= names
    assert [r.failed for r in reports] == [3, 3, 3, 3]
    # and the fourth starts nothing, saying why
    last = [a for a in reports[3].actions if a.kind == "start"]
    assert all(a.error and a.error.startswith("3 executions ended on 2026-01-15") for a in last)

    # When syncing on the next day
    next_day = run(NOON + timedelta(days=1))

    # Then it tries again, under the next day's names (and those executions fail too)
    assert next_day.failed == 3
    assert not any(a.error and a.error.startswith("3 executions") for a in next_day.actions)
    assert len(executions(world, arn)) == 12
    assert execution_name(
        "app", digest(10), "release-1", [f"{DESTINATION}/us-west-2"], day=DAY + timedelta(days=1)
    ) in {e["name"] for e in executions(world, arn)}


def test_a_run_on_the_next_day_does_not_restart_work_still_running(
    idle_world: AwsClients, config: ReplicationConfig
) -> None:
    # Given a run just before midnight that started executions which are still running
    arn = state_machine(idle_world)
    options = SyncOptions(state_machine_arn=arn, wait=False)
    first = sync(config, options, clients=idle_world, now=lambda: NOON.replace(hour=23, minute=59))

    # When the next run comes after midnight
    second = sync(config, options, clients=idle_world, now=lambda: NOON + timedelta(hours=12))

    # Then it finds the running executions by their stem and starts nothing
    assert (first.started, second.started, second.already_started, second.failed) == (3, 0, 3, 0)
    assert len(executions(idle_world, arn)) == 3


def test_without_waiting_a_run_tops_running_executions_up_to_max_in_flight(
    idle_world: AwsClients, config: ReplicationConfig
) -> None:
    # Given a state machine with one execution already running (live replication)
    arn = state_machine(idle_world)
    sfn = idle_world.client("stepfunctions", "us-east-1")
    sfn.start_execution(stateMachineArn=arn, name="live", input="{}")
    lines: list[str] = []

    # When syncing without waiting, at most 3 in flight
    first = sync(
        config,
        SyncOptions(state_machine_arn=arn, wait=False, max_in_flight=3),
        clients=idle_world,
        log=lines.append,
    )

    # Then it starts 2 of the 3 missing images, defers the third (not a failure), and tags in place
    assert (first.started, first.deferred, first.failed, first.tagged) == (2, 1, 0, 1)
    assert len(sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"]) == 3
    assert "1 executions running; starting at most 2" in lines
    assert any(line.endswith("deferred, left for the next run") for line in lines)
    assert first.to_dict()["counts"]["deferred to the next run"] == 1

    # When the next run finds 3 running
    second = sync(config, SyncOptions(state_machine_arn=arn, wait=False, max_in_flight=3), clients=idle_world)

    # Then it starts nothing and defers the same image again
    assert (second.started, second.already_started, second.deferred) == (0, 2, 1)

    # When a run has room
    third = sync(config, SyncOptions(state_machine_arn=arn, wait=False, max_in_flight=4), clients=idle_world)

    # Then it starts the deferred image
    assert (third.started, third.already_started, third.deferred) == (1, 2, 0)
    assert len(executions(idle_world, arn)) == 4


def refuse_role_of(account: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """AssumeRole into `account` fails as it does before its destination stack is deployed."""

    def assume(role_arn: str, *args: Any, **kwargs: Any) -> Any:
        if f":{account}:" in role_arn:
            raise RegistryAuthError(f"cannot assume {role_arn}: AccessDenied: not authorized")
        return assume_role(role_arn, *args, **kwargs)

    monkeypatch.setattr(roles, "assume_role", assume)


def test_a_destination_that_cannot_be_listed_fails_alone(
    idle_world: AwsClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a third destination whose role is not deployed yet
    raw = json.loads(json.dumps(CONFIG))
    raw["rules"][0]["destinations"].append({"account": "333333333333", "regions": ["eu-west-1"]})
    refuse_role_of("333333333333", monkeypatch)
    arn = state_machine(idle_world)

    # When syncing
    report = sync(parse_config(raw), SyncOptions(state_machine_arn=arn, wait=False), clients=idle_world)

    # Then its listing fails once per repository, naming the error
    failed = [a for a in report.actions if a.status == "failed"]
    assert {(a.kind, a.repository, tuple(a.destinations)) for a in failed} == {
        ("inventory", "app", ("333333333333/eu-west-1",)),
        ("inventory", "services/api", ("333333333333/eu-west-1",)),
    }
    assert all(a.error and a.error.startswith("RegistryAuthError: cannot assume") for a in failed)
    assert report.failed == 2
    # and the other destinations are repaired as without it
    assert (report.started, report.tagged) == (3, 1)
    assert all("333333333333/eu-west-1" not in a.destinations for a in report.actions if a.kind == "start")


def test_since_and_repository_narrow_the_sync(world: AwsClients, config: ReplicationConfig) -> None:
    # Given a state machine
    arn = state_machine(world)

    # When syncing only services/* and only images pushed from tomorrow on
    narrowed = sync(
        config, SyncOptions(state_machine_arn=arn, dry_run=True, repository_glob="services/*"), clients=world
    )
    future = sync(
        config,
        SyncOptions(state_machine_arn=arn, dry_run=True, since=datetime.now(UTC) + timedelta(days=1)),
        clients=world,
    )

    # Then the first sees only services/api, and the second skips every accepted image
    assert (narrowed.repositories, narrowed.examined) == (1, 1)
    assert {a.repository for a in narrowed.actions} == {"services/api"}
    assert (future.before_since, future.actions) == (3, [])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (SyncOptions(), "exactly one of"),
        (
            SyncOptions(state_machine_arn="arn:aws:states:us-east-1:1:stateMachine:m", local=True),
            "exactly one of",
        ),
        (SyncOptions(state_machine_arn="not-an-arn"), "not a state machine ARN"),
        (SyncOptions(local=True, repository_glob="app[0]"), "--repository"),
        (SyncOptions(local=True, max_in_flight=0), "at least 1"),
    ],
)
def test_bad_options_are_named(config: ReplicationConfig, options: SyncOptions, message: str) -> None:
    # Given bad options When syncing Then InvalidRequest says what is wrong, before any call
    with pytest.raises(InvalidRequest, match=re.escape(message)):
        sync(config, options, clients=AwsClients(boto3.Session(region_name="us-east-1")))


def subscribe(aws: AwsClients) -> tuple[str, str]:
    """An SNS topic with an SQS queue subscribed; (topic ARN, queue URL)."""
    sns, sqs = aws.client("sns", "us-east-1"), aws.client("sqs", "us-east-1")
    topic = sns.create_topic(Name="notifications")["TopicArn"]
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    return topic, queue


def messages(aws: AwsClients, queue: str) -> list[dict[str, Any]]:
    """The SNS notifications that reached the queue."""
    received = aws.client("sqs", "us-east-1").receive_message(QueueUrl=queue, MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in received.get("Messages", [])]


def test_reconcile_notifies_only_when_it_repaired_something(
    idle_world: AwsClients, config: ReplicationConfig
) -> None:
    # Given a topic with a queue subscribed, and a state machine
    topic, queue = subscribe(idle_world)
    arn = state_machine(idle_world)

    # When reconciling twice (the second time the work is already started)
    first = reconcile(config, state_machine_arn=arn, topic_arn=topic, clients=idle_world)
    second = reconcile(config, state_machine_arn=arn, topic_arn=topic, clients=idle_world)

    # Then only the first published, naming what it repaired
    assert (first["notified"], second["notified"]) == (True, False)
    published = messages(idle_world, queue)
    assert len(published) == 1
    assert published[0]["Subject"] == "ecr-replicate reconciliation repaired"
    assert "start execution sync-services-api-" in published[0]["Message"]
    assert "tag app:release-2" in published[0]["Message"]


def test_reconcile_notifies_failures(idle_world: AwsClients, config: ReplicationConfig) -> None:
    # Given a topic, and a state machine ARN that does not exist
    topic, queue = subscribe(idle_world)
    missing = f"arn:aws:states:us-east-1:{SOURCE}:stateMachine:gone"

    # When reconciling
    result = reconcile(config, state_machine_arn=missing, topic_arn=topic, clients=idle_world)

    # Then the failures are reported and published
    assert result["notified"] is True
    assert result["counts"]["failed"] == 3
    published = messages(idle_world, queue)
    assert published[0]["Subject"] == "ecr-replicate reconciliation FAILED"
    assert "StateMachineDoesNotExist" in published[0]["Message"]


def test_reconcile_publishes_then_raises_when_listing_fails(
    idle_world: AwsClients, config: ReplicationConfig
) -> None:
    # Given a topic, and an ECR API that refuses DescribeRepositories
    topic, queue = subscribe(idle_world)
    arn = state_machine(idle_world)

    def refuse(**_: Any) -> None:
        raise RuntimeError("ECR is down")

    idle_world.client("ecr", "us-east-1").meta.events.register("before-call.ecr.DescribeRepositories", refuse)

    # When reconciling Then the error propagates, after a FAILED notification
    with pytest.raises(RuntimeError, match="ECR is down"):
        reconcile(config, state_machine_arn=arn, topic_arn=topic, clients=idle_world)
    published = messages(idle_world, queue)
    assert published[0]["Subject"] == "ecr-replicate reconciliation FAILED"
    assert "ECR is down" in published[0]["Message"]
