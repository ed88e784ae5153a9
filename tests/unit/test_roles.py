"""workflow.roles.assume_role: the one AssumeRole of the copy CLI, the precheck and the sync."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from workflow.exceptions import RegistryAuthError
from workflow.roles import assume_role

ROLE = "arn:aws:iam::222222222222:role/ecr-replication-target"
EXPIRATION = datetime(2030, 1, 1, tzinfo=UTC)


def sts_client() -> Any:
    return boto3.client("sts", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")


def test_assumed_session_carries_the_credentials_region_and_expiry() -> None:
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
        assumed = assume_role(ROLE, "test", external_id="dr", region="eu-west-1", sts_client=sts)
    # Then the session holds its credentials in that Region, and the expiry is known
    stubber.assert_no_pending_responses()
    assert assumed.session.get_credentials().access_key == "ASIAEXAMPLEEXAMPLE01"
    assert assumed.session.region_name == "eu-west-1"
    assert assumed.expiration == EXPIRATION


def test_a_refusal_is_an_auth_error_naming_the_role_and_the_purpose() -> None:
    sts = sts_client()
    stubber = Stubber(sts)
    stubber.add_client_error("assume_role", "AccessDenied", "not authorized to perform sts:AssumeRole")
    with stubber, pytest.raises(RegistryAuthError) as raised:
        assume_role(ROLE, "test", sts_client=sts, purpose="222222222222/eu-west-1")
    assert str(raised.value) == (
        f"cannot assume {ROLE} for 222222222222/eu-west-1: AccessDenied: not authorized to perform sts:AssumeRole"
    )
