"""A registry several accounts share in the local runtime: its requests are attributed to the role's account."""

from __future__ import annotations

import json
from pathlib import Path

from tests.iam import recorder
from tests.iam.calls import attributed
from workflow.local import moto_server

ROLE = "arn:aws:iam::500000000003:role/ecr-replication-target"


def test_the_runtime_names_the_registries_several_accounts_share() -> None:
    # Given two accounts mapped onto one registry and a third with its own
    endpoints = [
        {"account": "500000000001", "region": "eu-west-1", "registry": "127.0.0.1:5001"},
        {"account": "500000000003", "region": "eu-west-1", "registry": "127.0.0.1:5001"},
        {"account": "600000000000", "region": "eu-west-1", "registry": "127.0.0.1:5002"},
    ]
    # When the runtime's environment is made
    environment = moto_server.aws_environment(5000, "111111111111", "us-east-1", Path("c.json"), endpoints)
    # Then the shared one is named with both accounts, under the name the recorder reads
    assert recorder.SHARED_REGISTRIES_ENV == moto_server.SHARED_REGISTRIES_ENV
    shared = json.loads(environment[moto_server.SHARED_REGISTRIES_ENV])
    assert shared == {"127.0.0.1:5001": ["500000000001", "500000000003"]}


def test_a_request_on_a_shared_registry_is_the_roles_accounts() -> None:
    # Given a push recorded on a registry standing for 500000000001 and shared with 500000000003, made with a
    # token of 500000000003's destination role; and one on an unshared registry
    records = [
        {"kind": "assumed", "access_key": "AKIA3", "role_arn": ROLE},
        *(
            {
                "kind": "registry",
                "account": "500000000001",
                "shared_by": shared,
                "region": "eu-west-1",
                "method": "PUT",
                "path": "/v2/fleet/app/manifests/v1",
                "body": True,
                "access_key": "AKIA3",
                "component": "Copy",
            }
            for shared in (["500000000001", "500000000003"], None)
        ),
    ]
    # When attributed / Then the shared one is on the role's account, the other on the registry's
    shared, own = attributed(records)
    assert shared.resources == ("arn:aws:ecr:eu-west-1:500000000003:repository/fleet/app",)
    assert own.resources == ("arn:aws:ecr:eu-west-1:500000000001:repository/fleet/app",)
