"""`ecr-replicate copy`: role assumption for ECR sources and destinations."""

from __future__ import annotations

import boto3
from botocore.stub import Stubber

from workflow.commands.copy import ROLE_SESSION_NAME, assume_role

CREDENTIALS = {
    "Credentials": {
        "AccessKeyId": "ASIAEXAMPLEEXAMPLE01",
        "SecretAccessKey": "secret",
        "SessionToken": "token",
        "Expiration": "2030-01-01T00:00:00Z",
    }
}
ROLE = "arn:aws:iam::333333333333:role/ecr-replication-target"


def test_external_id_is_sent_when_given() -> None:
    # Given STS expecting exactly the role, session name and ExternalId
    sts = boto3.client("sts", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    stubber = Stubber(sts)
    stubber.add_response(
        "assume_role",
        CREDENTIALS,
        {"RoleArn": ROLE, "RoleSessionName": ROLE_SESSION_NAME, "ExternalId": "dr"},
    )
    # When the role is assumed
    with stubber:
        session = assume_role(ROLE, "dr", sts_client=sts)
    # Then the session carries the role's credentials
    stubber.assert_no_pending_responses()
    assert session.get_credentials().access_key == "ASIAEXAMPLEEXAMPLE01"


def test_no_external_id_and_no_role() -> None:
    sts = boto3.client("sts", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    stubber = Stubber(sts)
    stubber.add_response("assume_role", CREDENTIALS, {"RoleArn": ROLE, "RoleSessionName": ROLE_SESSION_NAME})
    with stubber:
        assert assume_role(ROLE, "", sts_client=sts) is not None
    stubber.assert_no_pending_responses()
    assert assume_role(None, "ignored") is None
