"""Destinations in another partition at run time: the key pair is read from Secrets Manager by the
component that needs it and assumes the destination role with STS in that partition (moto)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from workflow.cli import main
from workflow.core.exceptions import RegistryAuthError
from workflow.core.partitions import partition_of
from workflow.engine import copier as copy
from workflow.engine import copy as copy_command
from workflow.engine.copier import PrecheckResult
from workflow.engine.roles import assume_role_in_partition
from workflow.models.payloads import CredentialsSecret, RepositorySettings, Target
from workflow.ops.inventory import AwsClients
from workflow.pipeline.precheck import check_target

SECRET = "ecr-replication/cn"
KEYS = {"AccessKeyId": "AKIACHINAEXAMPLE0001", "SecretAccessKey": "cn-secret-value-do-not-leak"}
DESTINATIONS = [
    ("cn-north-1", "777777777777", "aws-cn"),
    ("cn-northwest-1", "777777777777", "aws-cn"),
    ("us-gov-west-1", "888888888888", "aws-us-gov"),
    ("us-gov-east-1", "888888888888", "aws-us-gov"),
]


@pytest.fixture
def secrets(aws: None) -> Any:
    """The credentials secret in the source Region, over moto (`aws`); its Secrets Manager client."""
    client = boto3.client("secretsmanager", region_name="us-east-1")
    client.create_secret(Name=SECRET, SecretString=json.dumps(KEYS))
    return client


class Sessions:
    """session_factory recording each session's arguments and the URL and key of each AssumeRole it signs."""

    def __init__(self) -> None:
        self.kwargs: list[dict[str, Any]] = []
        self.assume_role_urls: list[str] = []

    def __call__(self, **kwargs: Any) -> boto3.Session:
        session = boto3.Session(**kwargs)
        self.kwargs.append(kwargs)
        session.events.register(
            "before-sign.sts.AssumeRole", lambda request, **_: self.assume_role_urls.append(request.url)
        )
        return session

    def key_pair_sessions(self) -> list[dict[str, Any]]:
        """The sessions built from a key pair (the STS sessions), not from assumed-role credentials."""
        return [k for k in self.kwargs if "aws_access_key_id" in k]


def role(region: str, account: str) -> str:
    return partition_of(region).role_arn(account, "ecr-replication-target")


@pytest.mark.parametrize(("region", "account", "partition"), DESTINATIONS)
def test_the_secret_key_pair_assumes_the_role_with_sts_in_the_destination_partition(
    secrets: Any, region: str, account: str, partition: str
) -> None:
    """Given the secret holding a key pair of that partition
    When the destination role is assumed in a cn-* or us-gov-* Region
    Then STS of that Region (its partition's host) is called, signed with the secret's key pair,
    and the session is the role's in that partition."""
    sessions = Sessions()
    session = assume_role_in_partition(
        role(region, account), "test", secret_id=SECRET, secret_region="us-east-1", region=region,
        session_factory=sessions,
    )  # fmt: skip
    (built,) = sessions.key_pair_sessions()
    assert (built["aws_access_key_id"], built["aws_secret_access_key"]) == (
        KEYS["AccessKeyId"],
        KEYS["SecretAccessKey"],
    )
    assert sessions.assume_role_urls == [f"{partition_of(region).sts_endpoint(region)}/"]
    identity = session.client("sts").get_caller_identity()
    assert identity["Arn"].startswith(f"arn:{partition}:sts::{account}:assumed-role/ecr-replication-target/")
    assert session.region_name == region
    assert session.get_credentials().access_key != KEYS["AccessKeyId"]


def test_a_rotated_key_is_read_at_the_next_renewal(secrets: Any) -> None:
    """Given a session assumed with the first key pair
    When the secret is rotated to a second pair and the session nears its end (13 of 60 minutes left:
    botocore renews from 15 minutes before expiry)
    Then the renewal reads the secret again and signs AssumeRole with the second pair."""
    now = [datetime.now(UTC)]
    sessions = Sessions()
    session = assume_role_in_partition(
        role("cn-north-1", "777777777777"), "test", secret_id=SECRET, secret_region="us-east-1",
        region="cn-north-1", session_factory=sessions, clock=lambda: now[0],
    )  # fmt: skip
    ecr = session.client("ecr")
    ecr.describe_repositories()
    rotated = {"AccessKeyId": "AKIACHINAEXAMPLE0002", "SecretAccessKey": "rotated-secret"}
    secrets.put_secret_value(SecretId=SECRET, SecretString=json.dumps(rotated))
    now[0] += timedelta(minutes=47)
    ecr.describe_repositories()
    used = [k["aws_access_key_id"] for k in sessions.key_pair_sessions()]
    assert used[0] == KEYS["AccessKeyId"]
    assert set(used[1:]) == {rotated["AccessKeyId"]}


@pytest.mark.parametrize(
    "value", ["not json", json.dumps({"AccessKeyId": "AKIAONLYHALF"}), json.dumps(["AKIA", "s3cr3t-in-list"])]
)
def test_a_secret_without_a_key_pair_is_refused_naming_the_secret_not_its_value(
    secrets: Any, value: str
) -> None:
    """Given a secret whose value is not {"AccessKeyId", "SecretAccessKey"}
    When the role is assumed Then RegistryAuthError names the secret and echoes none of the value."""
    secrets.put_secret_value(SecretId=SECRET, SecretString=value)
    with pytest.raises(RegistryAuthError) as raised:
        assume_role_in_partition(
            role("cn-north-1", "777777777777"), "test", secret_id=SECRET, secret_region="us-east-1",
            region="cn-north-1",
        )  # fmt: skip
    message = str(raised.value)
    assert message == (
        f"the credentials secret {SECRET} does not hold a JSON object with string AccessKeyId and "
        "SecretAccessKey (see docs/deploy.md)"
    )
    assert raised.value.__cause__ is None


def test_a_secret_that_cannot_be_read_is_an_auth_error_naming_it(secrets: Any) -> None:
    """Given no secret by that name When the role is assumed Then RegistryAuthError names it and the code."""
    with pytest.raises(
        RegistryAuthError,
        match=r"^cannot read the credentials secret missing/secret: ResourceNotFoundException$",
    ):
        assume_role_in_partition(
            role("cn-north-1", "777777777777"), "test", secret_id="missing/secret", secret_region="us-east-1",
            region="cn-north-1",
        )  # fmt: skip


def cn_target(**fields: Any) -> Target:
    base: dict[str, Any] = {
        "account": "777777777777",
        "region": "cn-north-1",
        "repository": "mirror/app",
        "tag": "release-1.2.0",
        "rule": "china",
        "source_registry": "111111111111.dkr.ecr.us-east-1.amazonaws.com",
        "source_repository": "app",
        "source_reference": "release-1.2.0",
        "registry": "777777777777.dkr.ecr.cn-north-1.amazonaws.com.cn",
        "role_arn": role("cn-north-1", "777777777777"),
        "credentials": CredentialsSecret(secret_id=SECRET, region="us-east-1"),
        "create_repository": RepositorySettings(tag_mutability="IMMUTABLE"),
    }
    return Target.model_validate({**base, **fields})


def test_precheck_creates_the_repository_in_the_other_partition_and_hands_the_job_only_the_secret_name(
    secrets: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given an aws-cn target with its credentials secret
    When prechecked
    Then the repository is created in cn-north-1 through the role assumed there, the engine gets that
    session, and the copy job gets the secret's name and Region, never its value."""
    recorded: list[Any] = []

    def engine(*args: Any, **kwargs: Any) -> PrecheckResult:
        recorded.append(kwargs["destination_session"])
        return PrecheckResult(action="copy-needed", digest="sha256:" + "1" * 64)

    monkeypatch.setattr(copy, "probe_destination", engine)
    outcome = check_target(cn_target())
    (session,) = recorded
    repository = session.client("ecr").describe_repositories(repositoryNames=["mirror/app"])["repositories"][
        0
    ]
    assert repository["repositoryArn"].startswith("arn:aws-cn:ecr:cn-north-1:")
    assert outcome.job.credentials_secret == SECRET
    assert outcome.job.credentials_region == "us-east-1"
    assert outcome.job.destination_region == "cn-north-1"
    dumped = outcome.model_dump_json()
    assert KEYS["SecretAccessKey"] not in dumped
    assert KEYS["AccessKeyId"] not in dumped


def test_the_sync_clients_read_the_secret_once_and_reach_the_other_partition(secrets: Any) -> None:
    """Given the sync's clients When two ECR clients are asked for the same aws-us-gov target
    Then the role is assumed once in us-gov-west-1 with the key pair, and both reach that partition."""
    target = cn_target(
        account="888888888888", region="us-gov-west-1", role_arn=role("us-gov-west-1", "888888888888")
    )
    made: list[Any] = []
    clients = AwsClients(on_client=made.append)
    first = clients.client("ecr", target.region, target.role_arn, None, target.credentials)
    second = clients.client("ecr", target.region, target.role_arn, None, target.credentials)
    assert first is second
    assert first.meta.endpoint_url == "https://api.ecr.us-gov-west-1.amazonaws.com"
    assert [c.meta.service_model.service_name for c in made] == ["secretsmanager", "ecr"]
    first.create_repository(repositoryName="app")
    assert first.describe_repositories()["repositories"][0]["repositoryArn"].startswith("arn:aws-us-gov:ecr:")


def test_the_copy_command_reads_the_secret_named_on_its_command_line(
    secrets: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given `ecr-replicate copy` with --dst-credentials-secret, its Region and the destination's
    When it runs Then the destination session is the cn role's, assumed with the secret's key pair."""
    sessions: list[Any] = []

    def copy_image(*args: Any, **kwargs: Any) -> None:
        sessions.append(kwargs["destination_session"])
        raise RuntimeError("stop here")

    monkeypatch.setattr(copy_command, "copy_image", copy_image)
    code = main([
        "copy", "111111111111.dkr.ecr.us-east-1.amazonaws.com/app:1",
        "777777777777.dkr.ecr.cn-north-1.amazonaws.com.cn/app:1",
        "--dst-role-arn", role("cn-north-1", "777777777777"), "--dst-credentials-secret", SECRET,
        "--dst-credentials-region", "us-east-1", "--dst-region", "cn-north-1", "--json",
    ])  # fmt: skip
    assert code == 1
    (session,) = sessions
    assert (
        session.client("sts")
        .get_caller_identity()["Arn"]
        .startswith("arn:aws-cn:sts::777777777777:assumed-role/ecr-replication-target/")
    )
    assert KEYS["SecretAccessKey"] not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "--dst-credentials-secret needs --dst-credentials-region, --dst-region"),
        (["--dst-credentials-region", "us-east-1", "--dst-region", "eu-west-1"],
         "--dst-region eu-west-1 is not in the partition of --dst-role-arn (aws-cn)"),
        (["--dst-credentials-region", "nowhere-1", "--dst-region", "cn-north-1"],
         "--dst-credentials-region: 'nowhere-1' is not an AWS Region where ECR is available"),
    ],
)  # fmt: skip
def test_the_copy_command_refuses_incomplete_credentials_options_in_one_line(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given --dst-credentials-secret without its Regions, or a Region outside the role's partition
    When the copy command runs Then it exits 2 before any AWS call, with one line naming the problem."""
    code = main([
        "copy", "src.example/app:1", "777777777777.dkr.ecr.cn-north-1.amazonaws.com.cn/app:1",
        "--dst-role-arn", role("cn-north-1", "777777777777"), "--dst-credentials-secret", SECRET, *extra,
    ])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert err.strip().count("\n") == 0
