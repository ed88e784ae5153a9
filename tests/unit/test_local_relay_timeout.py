"""The local runtime deploys each relay function with the relay stack's timeout.

The local Lambda bridge ends a function at its Timeout as Lambda does (Sandbox.Timedout); moto's default is 3 s, so
a relay deployed without one timed out on any image that took longer to copy, and the seeded destinations fell
back to the source (bench/seeds.py read the source 4.94 x, not 3 x).
"""

from __future__ import annotations

import boto3
from moto import mock_aws

from infra.stacks.relay_stack import RELAY_TIMEOUT_SECONDS
from workflow.local.deployment import Deployment
from workflow.pipeline.seeds import RELAY_FUNCTION_NAME

CONFIG = {
    "source": {"account": "111111111111", "region": "us-east-1"},
    "regional_seeds": True,
    "rules": [
        {
            "name": "fleet",
            "repositories": ["app"],
            "tags": {"include": ["release-*"]},
            "destinations": [
                {"account": "222222222222", "regions": ["eu-west-1"]},
                {"account": "333333333333", "regions": ["eu-west-1"]},
            ],
        }
    ],
}


def test_a_relay_is_deployed_with_the_relay_stacks_timeout(aws: None) -> None:
    # Given a config seeding eu-west-1 / When the local deployment creates its relays
    with mock_aws():
        role = boto3.client("iam").create_role(RoleName="relay", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        Deployment(
            lambda service, region=None: boto3.client(service, region_name=region or "us-east-1")
        )._create_relays(CONFIG, role)
        configuration = boto3.client("lambda", region_name="eu-west-1").get_function_configuration(
            FunctionName=RELAY_FUNCTION_NAME
        )
    # Then its timeout is the deployed one (900 s), not moto's default
    assert configuration["Timeout"] == RELAY_TIMEOUT_SECONDS == 900
