"""The coverage test's evaluator refuses what IAM refuses: no matching Allow, a Deny, a contradicted condition."""

from __future__ import annotations

from tests.iam.evaluate import is_allowed, trusts

MACHINE = "arn:aws:states:us-east-1:111111111111:stateMachine:replication"
CALLER = "arn:aws:iam::111111111111:role/ecr-replication-reconcile-us-east-1"


def test_an_action_is_allowed_only_on_the_resources_named() -> None:
    # Given a statement allowing StartExecution on one state machine
    statements = [{"Effect": "Allow", "Action": "states:StartExecution", "Resource": MACHINE}]
    # Then that call is allowed, another action or another machine is not
    assert is_allowed(statements, "states:StartExecution", MACHINE, {})
    assert not is_allowed(statements, "states:ListExecutions", MACHINE, {})
    assert not is_allowed(statements, "states:StartExecution", MACHINE + "-other", {})


def test_a_deny_wins_and_wildcards_match() -> None:
    # Given ecr:* on every repository, and a Deny on PutImage
    statements = [
        {"Effect": "Allow", "Action": "ecr:*", "Resource": "arn:aws:ecr:eu-west-1:222222222222:repository/*"},
        {"Effect": "Deny", "Action": "ecr:PutImage", "Resource": "*"},
    ]
    repository = "arn:aws:ecr:eu-west-1:222222222222:repository/mirror/app"
    # Then reads are allowed, the denied write is not, nor is another Region
    assert is_allowed(statements, "ecr:BatchGetImage", repository, {})
    assert not is_allowed(statements, "ecr:PutImage", repository, {})
    assert not is_allowed(statements, "ecr:BatchGetImage", repository.replace("eu-west-1", "us-east-1"), {})


def test_a_condition_on_a_known_key_must_hold_and_an_unknown_one_cannot_contradict() -> None:
    # Given statements conditioned on the caller and on a key the call context does not model
    on_caller = {
        "Effect": "Allow",
        "Action": "sts:AssumeRole",
        "Resource": "*",
        "Condition": {"ArnEquals": {"aws:PrincipalArn": [CALLER]}},
    }
    on_unknown = {
        **on_caller,
        "Condition": {"StringEquals": {"aws:SourceVpc": "vpc-0123456789abcdef0"}},
    }
    # Then the caller's own ARN passes, another does not, and the unmodeled key does not refuse
    assert is_allowed([on_caller], "sts:AssumeRole", "*", {"aws:PrincipalArn": CALLER})
    assert not is_allowed([on_caller], "sts:AssumeRole", "*", {"aws:PrincipalArn": CALLER + "-x"})
    assert not is_allowed([on_caller], "sts:AssumeRole", "*", {})
    assert is_allowed([on_unknown], "sts:AssumeRole", "*", {})


def test_a_key_used_through_s3_must_be_used_through_s3() -> None:
    # Given the fan-out bucket's key, usable through S3 only (kms:ViaService)
    key = "arn:aws:kms:us-east-1:111111111111:key/1234"
    through_s3 = {
        "Effect": "Allow",
        "Action": "kms:GenerateDataKey",
        "Resource": key,
        "Condition": {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}},
    }
    # Then S3's request for a PutObject passes, a direct call or another service's does not
    assert is_allowed(
        [through_s3], "kms:GenerateDataKey", key, {"kms:ViaService": "s3.us-east-1.amazonaws.com"}
    )
    assert not is_allowed([through_s3], "kms:GenerateDataKey", key, {})
    assert not is_allowed(
        [through_s3], "kms:GenerateDataKey", key, {"kms:ViaService": "sqs.us-east-1.amazonaws.com"}
    )


def test_a_trust_policy_names_the_account_the_caller_and_the_external_id() -> None:
    # Given a destination role trusting account 111111111111's reconcile role with an ExternalId
    trust = [
        {
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
            "Condition": {
                "ArnEquals": {"aws:PrincipalArn": [CALLER]},
                "StringEquals": {"sts:ExternalId": ["dr-replication"]},
            },
        }
    ]
    context = {"aws:PrincipalArn": CALLER, "sts:ExternalId": "dr-replication"}
    # Then that caller with that ExternalId is trusted; another account, id or none is not
    assert trusts(trust, "111111111111", context)
    assert not trusts(trust, "999999999999", context)
    assert not trusts(trust, "111111111111", {**context, "sts:ExternalId": "other"})
    assert not trusts(trust, "111111111111", {"aws:PrincipalArn": CALLER})


def test_a_question_mark_matches_exactly_one_character() -> None:
    """Given a secret named by name (IAM's `name-??????`, the six characters Secrets Manager appends)
    Then its ARN matches, and a longer suffix or another name does not."""
    secret = "arn:aws:secretsmanager:us-east-1:111111111111:secret:ecr-replication/cn"
    statements = [
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": f"{secret}-??????"}
    ]
    assert is_allowed(statements, "secretsmanager:GetSecretValue", f"{secret}-AbCdEf", {})
    assert not is_allowed(statements, "secretsmanager:GetSecretValue", f"{secret}-AbCdEfG", {})
    assert not is_allowed(statements, "secretsmanager:GetSecretValue", f"{secret}X-AbCdEf", {})
