"""workflow.engine.roles.assume_role: the one AssumeRole of the copy CLI, the precheck and the sync, whose
credentials renew themselves; and the ECR token that outlives neither."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
import urllib3
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from workflow.core.exceptions import DestinationRoleMissing, RegistryAuthError
from workflow.engine.roles import assume_role
from workflow.registry.auth import Authenticator, EcrTokenProvider

ROLE = "arn:aws:iam::222222222222:role/ecr-replication-target"
EXPIRATION = datetime(2030, 1, 1, tzinfo=UTC)


def sts_client() -> Any:
    return boto3.client("sts", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")


class OneHourSts:
    """moto's STS, its sessions lasting one hour by a clock the test moves; counts what it issued."""

    def __init__(self, now: list[datetime], refuse_after: int | None = None) -> None:
        self.sts = boto3.client("sts", region_name="us-east-1")
        self.now = now
        self.issued: list[tuple[str, datetime]] = []
        self.refuse_after = refuse_after

    def assume_role(self, **request: Any) -> Any:
        if self.refuse_after is not None and len(self.issued) >= self.refuse_after:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "trust removed"}}, "AssumeRole")
        response = self.sts.assume_role(**request)
        response["Credentials"]["Expiration"] = self.now[0] + timedelta(hours=1)
        self.issued.append((response["Credentials"]["AccessKeyId"], self.now[0] + timedelta(hours=1)))
        return response


def signing_keys(client: Any) -> list[str]:
    """The access key each request of `client` is signed with, in order."""
    keys: list[str] = []

    def sent(request: Any, **_: Any) -> None:
        authorization = request.headers["Authorization"]
        text = authorization.decode() if isinstance(authorization, bytes) else authorization
        keys.append(re.search(r"Credential=([^/]+)/", text)[1])

    client.meta.events.register("before-send", sent)
    return keys


def test_assumed_session_carries_the_credentials_and_region() -> None:
    # Given STS expecting the role, the session name and the ExternalId
    sts = sts_client()
    stubber = Stubber(sts)
    stubber.add_response(
        "assume_role",
        {
            "Credentials": {
                "AccessKeyId": "ASIAEXAMPLEEXAMPLE01",
                "SecretAccessKey": "secret",
                "SessionToken": "token",
                "Expiration": EXPIRATION,
            }
        },
        {"RoleArn": ROLE, "RoleSessionName": "test", "ExternalId": "dr"},
    )
    # When the role is assumed
    with stubber:
        session = assume_role(ROLE, "test", external_id="dr", region="eu-west-1", sts_client=sts)
    # Then the session holds its credentials in that Region, and STS was asked once, at once
    stubber.assert_no_pending_responses()
    assert session.get_credentials().access_key == "ASIAEXAMPLEEXAMPLE01"
    assert session.region_name == "eu-west-1"


def test_an_access_denied_is_destination_role_missing_naming_the_role_the_purpose_and_both_causes() -> None:
    # Given STS answers AccessDenied, as it does for a role that does not exist and for one that refuses
    sts = sts_client()
    stubber = Stubber(sts)
    stubber.add_client_error("assume_role", "AccessDenied", "not authorized to perform sts:AssumeRole")
    # When the role is assumed / Then DestinationRoleMissing (a RegistryAuthError) says both causes
    with stubber, pytest.raises(DestinationRoleMissing) as raised:
        assume_role(ROLE, "test", sts_client=sts, purpose="222222222222/eu-west-1")
    assert isinstance(raised.value, RegistryAuthError)
    assert str(raised.value) == (
        f"cannot assume {ROLE} for 222222222222/eu-west-1: AccessDenied: not authorized to perform sts:AssumeRole; "
        "the role does not exist in that account yet (the fleet StackSet or destination stack has not reached "
        "it) or does not trust this caller: STS answers both alike"
    )


def test_another_refusal_stays_a_plain_auth_error() -> None:
    # Given STS refuses with another code (an ExternalId or a session name it rejects)
    sts = sts_client()
    stubber = Stubber(sts)
    stubber.add_client_error("assume_role", "ValidationError", "1 validation error detected")
    with stubber, pytest.raises(RegistryAuthError) as raised:
        assume_role(ROLE, "test", sts_client=sts)
    # Then it is not called a missing role
    assert type(raised.value) is RegistryAuthError
    assert str(raised.value) == f"cannot assume {ROLE}: ValidationError: 1 validation error detected"


def test_a_session_used_for_two_hours_renews_its_credentials_before_they_expire(aws: None) -> None:
    # Given one-hour role sessions, and one ECR client made from the assumed session
    now = [datetime.now(UTC)]
    sts = OneHourSts(now)
    session = assume_role(ROLE, "test", region="eu-west-1", sts_client=sts, clock=lambda: now[0])
    ecr = session.client("ecr")
    ecr.create_repository(repositoryName="app")
    keys = signing_keys(ecr)
    # When the client is used every five minutes for two hours (the length of the longest EC2 copy)
    seen: list[tuple[datetime, int]] = []
    for _ in range(24):
        now[0] += timedelta(minutes=5)
        assert ecr.describe_repositories()["repositories"][0]["repositoryName"] == "app"
        seen.append((now[0], len(keys) - 1))
    # Then the role was assumed again before each session ran out (15 minutes before: botocore's
    # advisory window), and no request was signed with credentials less than 10 minutes from expiry
    expiry = dict(sts.issued)
    assert len(sts.issued) == 3
    for when, index in seen:
        assert expiry[keys[index]] - when >= timedelta(minutes=10)
    assert len(set(keys)) == 3


def test_a_renewal_the_role_refuses_fails_the_call_naming_the_role(aws: None) -> None:
    # Given a role whose trust was removed after the first session was issued
    now = [datetime.now(UTC)]
    sts = OneHourSts(now, refuse_after=1)
    session = assume_role(ROLE, "test", region="eu-west-1", sts_client=sts, clock=lambda: now[0])
    ecr = session.client("ecr")
    ecr.describe_repositories()
    # When the session has run out, Then the next call fails with the named error, not with stale keys
    now[0] += timedelta(minutes=61)
    with pytest.raises(RegistryAuthError, match=f"cannot assume {ROLE}: AccessDenied: trust removed"):
        ecr.describe_repositories()


def test_an_ecr_token_refused_before_its_expiry_is_replaced(aws: None) -> None:
    # Given an ECR token cached for 12 hours, which the registry refuses (its role session has ended)
    tokens = EcrTokenProvider(boto3.Session(region_name="eu-west-1"), "eu-west-1")
    auth = Authenticator("222222222222.dkr.ecr.eu-west-1.amazonaws.com", urllib3.PoolManager(), ecr=tokens)
    assert auth.header("repository:app:pull") is not None
    # When the registry answers 401 with ECR's Basic challenge
    retry = auth.challenge('Basic realm="https://222222222222.dkr.ecr.eu-west-1.amazonaws.com/"', "scope")
    # Then a retry is worth it, with a new token; with none cached, a 401 is final
    assert retry is True
    assert auth.header("repository:app:pull") is not None
    assert tokens.calls == 2
    tokens.invalidate()
    assert auth.challenge('Basic realm="x"', "scope") is False
