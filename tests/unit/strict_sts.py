"""moto's STS made as strict as AWS about one thing: AssumeRole of a role that does not exist is refused.

moto mints credentials for any role ARN ("the role does not need to exist", moto's STSBackend.assume_role). STS
answers a role that does not exist with 403 AccessDenied, exactly as it answers a trust policy that refuses
(AWS re:Post knowledge center, "Troubleshoot AccessDenied errors when I assume a cross-account IAM role",
https://repost.aws/knowledge-center/iam-assume-role-error), which is what workflow.engine.roles relies on.
`refuse_missing_roles(monkeypatch)` installs that refusal for one test.
"""

from __future__ import annotations

from typing import Any

import pytest
from moto.iam.models import iam_backends
from moto.sts.exceptions import STSClientError
from moto.sts.models import STSBackend


class AccessDenied(STSClientError):
    """STS's refusal, as its Query API serializes it."""

    code = "AccessDenied"

    def __init__(self, message: str) -> None:
        super().__init__("AccessDenied", message)


def role_exists(role_arn: str) -> bool:
    """True when moto's IAM holds the role `role_arn` names (in its account and partition)."""
    _, partition, _, _, account, resource = role_arn.split(":", 5)
    name = resource.rsplit("/", 1)[-1]
    return any(role.name == name for role in iam_backends[account][partition].get_roles())


def refuse_missing_roles(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on (this test), moto's AssumeRole of a role absent from the role's account is AccessDenied."""
    original = STSBackend.assume_role

    def assume_role(self: STSBackend, **kwargs: Any) -> Any:
        role_arn = kwargs["role_arn"]
        if not role_exists(role_arn):
            raise AccessDenied(f"User is not authorized to perform: sts:AssumeRole on resource: {role_arn}")
        return original(self, **kwargs)

    monkeypatch.setattr(STSBackend, "assume_role", assume_role)
