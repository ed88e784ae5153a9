"""The coverage test's evaluator (tests/iam/simulate.py) refuses what IAM refuses.

No matching Allow, a Deny, an ARN that differs where moto's matcher would accept it, a condition whose key is
missing or has another value, a trust or key policy that does not let the caller in.
"""

from __future__ import annotations

from typing import Any

from tests.iam.simulate import Request, evaluate

ACCOUNT = "111111111111"
MACHINE = f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:replication"
CALLER = f"arn:aws:iam::{ACCOUNT}:role/ecr-replication-reconcile-us-east-1"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
ROOT_KEY_POLICY = (
    {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": "kms:*",
        "Resource": "*",
    },
)


def allowed(statements: list[dict[str, Any]], action: str, resource: str, **options: Any) -> bool:
    """One request by CALLER (unless `principal` is given), evaluated alone."""
    context = options.pop("context", {})
    request = Request(
        options.pop("principal", CALLER),
        action,
        resource,
        options.pop("account", resource.split(":")[4] or ACCOUNT),
        tuple(statements),
        options.pop("resource_policy", None),
        tuple(context.items()),
    )
    assert not options
    (decision,) = evaluate([request])
    assert decision.error is None, decision.error
    return decision.allowed


def test_an_action_is_allowed_only_on_the_resources_named() -> None:
    # Given a statement allowing StartExecution on one state machine
    statements = [{"Effect": "Allow", "Action": "states:StartExecution", "Resource": MACHINE}]
    # Then that call is allowed, another action or another machine is not
    assert allowed(statements, "states:StartExecution", MACHINE)
    assert not allowed(statements, "states:ListExecutions", MACHINE)
    assert not allowed(statements, "states:StartExecution", MACHINE + "-other")


def test_a_dot_in_a_policy_arn_is_a_dot() -> None:
    """Given a policy naming the repository `team.app` (moto's matcher reads the `.` as any character)
    Then `team.app` is allowed and `teamxapp` is not."""
    statements = [
        {
            "Effect": "Allow",
            "Action": "ecr:BatchGetImage",
            "Resource": f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/team.app",
        }
    ]
    assert allowed(statements, "ecr:BatchGetImage", f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/team.app")
    assert not allowed(
        statements, "ecr:BatchGetImage", f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/teamxapp"
    )


def test_a_deny_wins_and_wildcards_match() -> None:
    # Given ecr:* on every repository of one account and Region, and a Deny on PutImage
    statements = [
        {"Effect": "Allow", "Action": "ecr:*", "Resource": f"arn:aws:ecr:eu-west-1:{ACCOUNT}:repository/*"},
        {"Effect": "Deny", "Action": "ecr:PutImage", "Resource": "*"},
    ]
    repository = f"arn:aws:ecr:eu-west-1:{ACCOUNT}:repository/mirror/app"
    # Then reads are allowed, the denied write is not, nor is another Region
    assert allowed(statements, "ecr:BatchGetImage", repository)
    assert not allowed(statements, "ecr:PutImage", repository)
    assert not allowed(statements, "ecr:BatchGetImage", repository.replace("eu-west-1", "us-east-1"))


def test_a_via_service_condition_is_evaluated_against_the_request() -> None:
    """Given Decrypt allowed only through Secrets Manager in us-east-1, and a key policy delegating to IAM
    Then a Decrypt through it is allowed; through another Region, another service or none is not."""
    statements = [
        {
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": KEY,
            "Condition": {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}},
        }
    ]

    def decrypt(via: str | None) -> bool:
        context = {"kms:ViaService": via} if via else {}
        return allowed(statements, "kms:Decrypt", KEY, resource_policy=ROOT_KEY_POLICY, context=context)

    assert decrypt("secretsmanager.us-east-1.amazonaws.com")
    assert not decrypt("secretsmanager.us-east-2.amazonaws.com")
    assert not decrypt("ecr.us-east-1.amazonaws.com")
    assert not decrypt(None)


def test_a_key_needs_its_key_policy_too() -> None:
    """Given an identity policy allowing Decrypt on a key
    Then with a key policy delegating to the account it is allowed; with one naming only another account not."""
    statements = [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": KEY}]
    other = ({**ROOT_KEY_POLICY[0], "Principal": {"AWS": "arn:aws:iam::999999999999:root"}},)
    assert allowed(statements, "kms:Decrypt", KEY, resource_policy=ROOT_KEY_POLICY)
    assert not allowed(statements, "kms:Decrypt", KEY, resource_policy=other)


def test_a_trust_policy_names_the_account_the_caller_and_the_external_id() -> None:
    # Given a destination role trusting account 111111111111's reconcile role with an ExternalId
    role = "arn:aws:iam::222222222222:role/ecr-replication-target"
    trust = (
        {
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Condition": {
                "ArnEquals": {"aws:PrincipalArn": [CALLER]},
                "StringEquals": {"sts:ExternalId": ["dr-replication"]},
            },
        },
    )
    identity = [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role}]

    def assume(statements: list[dict[str, Any]], principal: str, external_id: str | None) -> bool:
        context = {"aws:PrincipalArn": principal, **({"sts:ExternalId": external_id} if external_id else {})}
        return allowed(
            statements, "sts:AssumeRole", role, principal=principal, resource_policy=trust, context=context
        )

    # Then that caller with that ExternalId is trusted; another caller, id or none is not, nor without its own grant
    assert assume(identity, CALLER, "dr-replication")
    assert not assume(identity, CALLER.replace("reconcile", "copy"), "dr-replication")
    assert not assume(identity, CALLER, "other")
    assert not assume(identity, CALLER, None)
    assert not assume([], CALLER, "dr-replication")


def test_a_service_trust_is_held_to_its_source_account() -> None:
    """Given a role trusting CodeBuild for one account only
    Then CodeBuild acting for that account may assume it, for another account it may not."""
    trust = (
        {
            "Effect": "Allow",
            "Principal": {"Service": "codebuild.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
        },
    )
    role = f"arn:aws:iam::{ACCOUNT}:role/copy"

    def assume(source_account: str) -> bool:
        return allowed(
            [],
            "sts:AssumeRole",
            role,
            principal="codebuild.amazonaws.com",
            resource_policy=trust,
            context={"aws:SourceAccount": source_account},
        )

    assert assume(ACCOUNT)
    assert not assume("999999999999")


def test_a_question_mark_matches_exactly_one_character() -> None:
    """Given a secret named by name (IAM's `name-??????`, the six characters Secrets Manager appends)
    Then its ARN matches, and a longer suffix or another name does not."""
    secret = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:ecr-replication/cn"
    statements = [
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": f"{secret}-??????"}
    ]
    assert allowed(statements, "secretsmanager:GetSecretValue", f"{secret}-AbCdEf")
    assert not allowed(statements, "secretsmanager:GetSecretValue", f"{secret}-AbCdEfG")
    assert not allowed(statements, "secretsmanager:GetSecretValue", f"{secret}X-AbCdEf")
