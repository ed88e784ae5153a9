"""workflow.pipeline.precheck: assume the destination role, ensure the repository, precheck (read-only in dry run)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from workflow.core.exceptions import DestinationRoleMissing, ImageNotFound
from workflow.engine import copier as copy
from workflow.engine.copier import PrecheckResult
from workflow.models.payloads import RepositorySettings, Target
from workflow.pipeline.precheck import check_target, insecure_registries, is_ecr_destination

SOURCE_DIGEST = "sha256:" + "1" * 64
OTHER_DIGEST = "sha256:" + "2" * 64
ECR_DESTINATION = "222222222222.dkr.ecr.eu-west-1.amazonaws.com"
SOURCE_REGISTRY = "111111111111.dkr.ecr.us-east-1.amazonaws.com"


def make_target(**fields: Any) -> Target:
    base: dict[str, Any] = {
        "account": "222222222222",
        "region": "eu-west-1",
        "repository": "mirror/app",
        "tag": "release-1.2.0",
        "rule": "releases",
        "source_registry": SOURCE_REGISTRY,
        "source_repository": "app",
        "source_reference": "release-1.2.0",
        "registry": ECR_DESTINATION,
        "role_arn": "arn:aws:iam::222222222222:role/ecr-replication-target",
        "create_repository": RepositorySettings(tag_mutability="IMMUTABLE", scan_on_push=True),
    }
    return Target.model_validate({**base, **fields})


class SessionRecorder:
    """session_factory that remembers the sessions it built."""

    def __init__(self) -> None:
        self.sessions: list[boto3.Session] = []
        self.kwargs: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> boto3.Session:
        session = boto3.Session(**kwargs)
        self.sessions.append(session)
        self.kwargs.append(kwargs)
        return session


class PrecheckRecorder:
    """Stands in for the copy engine's precheck at its seam; records what it was asked."""

    def __init__(self, result: PrecheckResult) -> None:
        self.result = result
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> PrecheckResult:
        self.calls.append((args, kwargs))
        return self.result


class ReadOnlyRegistry:
    """A registry client offering only HEAD; any write would raise AttributeError."""

    def __init__(self, manifests: dict[tuple[str, str], str]) -> None:
        self.manifests = manifests
        self.heads: list[tuple[str, str]] = []

    def head_manifest(self, repository: str, reference: str) -> str | None:
        self.heads.append((repository, reference))
        return self.manifests.get((repository, reference))


def repository_of(session: boto3.Session, name: str) -> dict[str, Any] | None:
    ecr = session.client("ecr", region_name="eu-west-1")
    try:
        return ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
    except ecr.exceptions.RepositoryNotFoundException:
        return None


def test_copy_needed_ensures_the_repository_and_pins_the_source_digest(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an ECR destination whose repository does not exist, and an image the destination lacks
    engine = PrecheckRecorder(PrecheckResult(action="copy-needed", digest=SOURCE_DIGEST))
    monkeypatch.setattr(copy, "probe_destination", engine)
    sessions = SessionRecorder()
    target = make_target()
    # When prechecked
    outcome = check_target(target, session_factory=sessions)
    # Then the repository exists in the destination account, created with the rule's settings
    destination = sessions.sessions[0]
    created = repository_of(destination, "mirror/app")
    assert created is not None
    assert created["registryId"] == "222222222222"
    assert created["imageTagMutability"] == "IMMUTABLE"
    assert created["imageScanningConfiguration"] == {"scanOnPush": True}
    # And the engine was asked with the assumed-role session, in the target's Region
    (args, kwargs) = engine.calls[0]
    assert args == (f"{SOURCE_REGISTRY}/app:release-1.2.0", f"{ECR_DESTINATION}/mirror/app:release-1.2.0")
    assert kwargs["destination_session"] is destination
    assert kwargs["insecure_registries"] == []
    assert sessions.kwargs[0]["region_name"] == "eu-west-1"
    assert destination.get_credentials().access_key != "testing"
    # And the copy job copies exactly the digest the precheck saw
    assert outcome.copy_needed is True
    assert outcome.job.model_dump() == {
        "source_image": f"{SOURCE_REGISTRY}/app:release-1.2.0@{SOURCE_DIGEST}",
        "destination_image": f"{ECR_DESTINATION}/mirror/app:release-1.2.0",
        "role_arn": "arn:aws:iam::222222222222:role/ecr-replication-target",
        "external_id": "",
        "destination_region": "eu-west-1",
        "credentials_secret": "",
        "credentials_region": "",
        "insecure_registries": "",
        "put_rate": "",
        "on_tag_conflict": "replace",
        "seed_image": "",
        "seed_role_arn": "",
        "seed_external_id": "",
        "relay_function": "",
        "source_role_arn": "",
    }
    assert outcome.record.status == "planned"
    assert outcome.record.digest == SOURCE_DIGEST


def test_the_copy_job_paces_at_the_share_of_the_put_image_quota_the_plan_gave_its_target(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a target the plan gave 2.5 PutImage a second (4 builds into its account and Region at once)
    monkeypatch.setattr(
        copy,
        "probe_destination",
        PrecheckRecorder(PrecheckResult(action="copy-needed", digest=SOURCE_DIGEST)),
    )
    # When prechecked
    outcome = check_target(make_target(put_rate=2.5), session_factory=SessionRecorder())
    # Then the copy job gets that rate (a build's environment variables are strings)
    assert outcome.job.put_rate == "2.5"


def test_a_source_in_another_account_is_read_through_its_role_and_named_in_the_record(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a target whose image is in another source account (its read-only role on the target)
    When prechecked Then the engine reads the source with that role's session, in the source's Region, the copy
    job is told the role, and the record names the source."""
    engine = PrecheckRecorder(PrecheckResult(action="copy-needed", digest=SOURCE_DIGEST))
    monkeypatch.setattr(copy, "probe_destination", engine)
    sessions = SessionRecorder()
    role = "arn:aws:iam::333333333333:role/ecr-replication-source-access"
    target = make_target(
        source="333333333333/us-west-2",
        source_role_arn=role,
        source_registry="333333333333.dkr.ecr.us-west-2.amazonaws.com",
    )
    outcome = check_target(target, session_factory=sessions)
    (_, kwargs) = engine.calls[0]
    source_session = kwargs["source_session"]
    assert source_session is sessions.sessions[1]
    assert source_session is not kwargs["destination_session"]
    assert sessions.kwargs[1]["region_name"] == "us-west-2"
    assert source_session.get_credentials().access_key != "testing"
    assert outcome.job.source_role_arn == role
    assert outcome.record.source == "333333333333/us-west-2"


def test_an_event_for_an_earlier_push_replicates_what_the_tag_points_at_now(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a target planned from a late event whose digest the tag no longer points at
    now = "sha256:" + "cd" * 32
    engine = PrecheckRecorder(PrecheckResult(action="copy-needed", digest=now))
    monkeypatch.setattr(copy, "probe_destination", engine)
    target = make_target(source_reference="sha256:" + "ab" * 32)
    # When prechecked
    outcome = check_target(target, session_factory=SessionRecorder())
    # Then the source is resolved by its tag, and the copy is pinned to the tag's digest now
    (args, _) = engine.calls[0]
    assert args[0] == f"{SOURCE_REGISTRY}/app:release-1.2.0"
    assert outcome.job.source_image == f"{SOURCE_REGISTRY}/app:release-1.2.0@{now}"
    assert outcome.record.digest == now


@pytest.mark.parametrize(
    ("action", "status"), [("present", "present"), ("tagged", "tagged"), ("superseded", "superseded")]
)
def test_present_tagged_and_superseded_finish_the_target_without_a_copy(
    aws: None, monkeypatch: pytest.MonkeyPatch, action: str, status: str
) -> None:
    # Given the destination already has the digest
    monkeypatch.setattr(
        copy, "probe_destination", PrecheckRecorder(PrecheckResult(action=action, digest=SOURCE_DIGEST))
    )
    # When prechecked
    outcome = check_target(make_target())
    # Then no copy is needed and the record is final
    assert outcome.copy_needed is False
    assert outcome.record.model_dump(
        include={"status", "digest", "account", "region", "repository", "tag"}
    ) == {
        "account": "222222222222",
        "region": "eu-west-1",
        "repository": "mirror/app",
        "tag": "release-1.2.0",
        "status": status,
        "digest": SOURCE_DIGEST,
    }
    # and a tag put (or left to a newer push) ends the target now; a present one measures no lag
    if status in ("tagged", "superseded"):
        assert outcome.record.finished_at is not None
        assert abs((datetime.now(UTC) - outcome.record.finished_at).total_seconds()) < 60
    else:
        assert outcome.record.finished_at is None


def test_external_id_is_sent_when_assuming_the_role(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a destination with an ExternalId, and an STS client that expects exactly that request
    monkeypatch.setattr(
        copy, "probe_destination", PrecheckRecorder(PrecheckResult(action="present", digest=SOURCE_DIGEST))
    )
    sts = boto3.client("sts", region_name="us-east-1")
    stubber = Stubber(sts)
    stubber.add_response(
        "assume_role",
        {
            "Credentials": {
                "AccessKeyId": "ASIAEXAMPLEEXAMPLE01",
                "SecretAccessKey": "secret",
                "SessionToken": "token",
                "Expiration": "2030-01-01T00:00:00Z",
            }
        },
        {
            "RoleArn": "arn:aws:iam::222222222222:role/ecr-replication-target",
            "RoleSessionName": "ecr-replication-precheck",
            "ExternalId": "dr-replication",
        },
    )
    target = make_target(external_id="dr-replication", create_repository=None)
    # When prechecked
    with stubber:
        outcome = check_target(target, sts_client=sts)
    # Then the request matched (the Stubber checks the parameters) and the job carries the ExternalId
    stubber.assert_no_pending_responses()
    assert outcome.job.external_id == "dr-replication"


def test_a_role_that_cannot_be_assumed_is_destination_role_missing_naming_the_role(aws: None) -> None:
    # Given STS refuses the role
    sts = boto3.client("sts", region_name="us-east-1")
    stubber = Stubber(sts)
    stubber.add_client_error("assume_role", "AccessDenied", "not authorized to perform sts:AssumeRole")
    # When prechecked / Then DestinationRoleMissing names the role, the destination and STS's message
    with stubber, pytest.raises(DestinationRoleMissing) as raised:
        check_target(make_target(), sts_client=sts)
    assert str(raised.value) == (
        "cannot assume arn:aws:iam::222222222222:role/ecr-replication-target for 222222222222/eu-west-1: "
        "AccessDenied: not authorized to perform sts:AssumeRole; the role does not exist in that account yet (the "
        "fleet StackSet or destination stack has not reached it) or does not trust this caller: STS answers both alike"
    )


def test_dry_run_writes_nothing_and_reports_what_it_would_do(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the destination has the digest but not the tag, and its repository does not exist in ECR
    registries = {
        SOURCE_REGISTRY: ReadOnlyRegistry({("app", "release-1.2.0"): SOURCE_DIGEST}),
        ECR_DESTINATION: ReadOnlyRegistry({("mirror/app", SOURCE_DIGEST): SOURCE_DIGEST}),
    }
    monkeypatch.setattr(copy, "make_client", lambda registry, **_: registries[registry])
    sessions = SessionRecorder()
    # When prechecked in a dry run
    outcome = check_target(make_target(), dry_run=True, session_factory=sessions)
    # Then it only read (HEADs: the read-only clients have no write method), never created the repository
    assert registries[ECR_DESTINATION].heads == [
        ("mirror/app", "release-1.2.0"),
        ("mirror/app", SOURCE_DIGEST),
    ]
    assert repository_of(sessions.sessions[0], "mirror/app") is None
    # And it reports that a real run would only tag, with no copy
    assert outcome.action == "tagged"
    assert outcome.dry_run is True
    assert outcome.copy_needed is False
    assert outcome.record.status == "planned"
    assert outcome.record.planned_action == "tag"


@pytest.mark.parametrize(
    ("destination", "expected"),
    [({}, "copy-needed"), ({("mirror/app", "release-1.2.0"): SOURCE_DIGEST}, "present")],
)
def test_dry_run_never_copies(
    aws: None, monkeypatch: pytest.MonkeyPatch, destination: dict[tuple[str, str], str], expected: str
) -> None:
    # Given a destination without the image, or with it under the tag
    registries = {
        SOURCE_REGISTRY: ReadOnlyRegistry({("app", "release-1.2.0"): SOURCE_DIGEST}),
        ECR_DESTINATION: ReadOnlyRegistry(destination),
    }
    monkeypatch.setattr(copy, "make_client", lambda registry, **_: registries[registry])
    # When prechecked in a dry run
    outcome = check_target(make_target(), dry_run=True)
    # Then the answer is read-only and the Copy state is never asked to run
    assert outcome.action == expected
    assert outcome.copy_needed is False
    assert outcome.record.status == ("present" if expected == "present" else "planned")
    assert outcome.record.planned_action == (None if expected == "present" else "copy")


def test_dry_run_of_a_missing_source_image_fails_with_image_not_found(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the source registry does not have the tag
    registries = {SOURCE_REGISTRY: ReadOnlyRegistry({}), ECR_DESTINATION: ReadOnlyRegistry({})}
    monkeypatch.setattr(copy, "make_client", lambda registry, **_: registries[registry])
    # When prechecked in a dry run / Then ImageNotFound names the source image
    with pytest.raises(ImageNotFound, match=f"{SOURCE_REGISTRY}/app:release-1.2.0 not found"):
        check_target(make_target(), dry_run=True)


def test_non_ecr_endpoints_get_no_repository_and_are_passed_as_insecure(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a destination on a plain-HTTP registry endpoint (local runtime), from a plain-HTTP source
    engine = PrecheckRecorder(PrecheckResult(action="copy-needed", digest=SOURCE_DIGEST))
    monkeypatch.setattr(copy, "probe_destination", engine)
    target = make_target(
        registry="127.0.0.1:5001", insecure=True, source_registry="127.0.0.1:5000", source_insecure=True
    )
    sessions = SessionRecorder()
    # When prechecked
    outcome = check_target(target, session_factory=sessions)
    # Then no ECR repository was created, and both registries are insecure for the engine and the job
    assert is_ecr_destination(target) is False
    assert repository_of(sessions.sessions[0], "mirror/app") is None
    assert engine.calls[0][1]["insecure_registries"] == ["127.0.0.1:5001", "127.0.0.1:5000"]
    assert outcome.job.insecure_registries == "127.0.0.1:5001 127.0.0.1:5000"
    assert insecure_registries(make_target()) == []
