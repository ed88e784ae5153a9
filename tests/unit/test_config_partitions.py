"""Config rules for destinations in another partition: partition, Region and account validated together."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from workflow.core.exceptions import InvalidConfig
from workflow.models.config import parse_config

SOURCE = {"account": "111111111111", "region": "us-east-1"}
CN_PRINCIPAL = "arn:aws-cn:iam::333333333333:user/ecr-replication"
GOV_PRINCIPAL = "arn:aws-us-gov:iam::444444444444:user/ecr-replication"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:111111111111:secret:ecr-replication/cn-AbCdEf"
CN = {
    "account": "333333333333",
    "regions": ["cn-north-1", "cn-northwest-1"],
    "credentials": {"secret": "ecr-replication/cn", "principal": CN_PRINCIPAL},
}


def config(*destinations: dict[str, Any]) -> dict[str, Any]:
    """A one-rule config with these destinations."""
    return {
        "source": dict(SOURCE),
        "rules": [{"name": "r", "tags": {"include": ["release-*"]}, "destinations": list(destinations)}],
    }


def cn(**credentials: Any) -> dict[str, Any]:
    """The aws-cn destination with its credentials changed (a None value removes the key)."""
    destination = copy.deepcopy(CN)
    destination["credentials"].update(credentials)
    destination["credentials"] = {k: v for k, v in destination["credentials"].items() if v is not None}
    return destination


def problems_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(InvalidConfig) as caught:
        parse_config(data)
    return caught.value.problems


@pytest.mark.parametrize(
    ("account", "region", "partition"),
    [("333333333333", "cn-north-1", "aws-cn"), ("333333333333", "cn-northwest-1", "aws-cn"),
     ("444444444444", "us-gov-west-1", "aws-us-gov"), ("444444444444", "us-gov-east-1", "aws-us-gov")],
)  # fmt: skip
def test_a_destination_in_another_partition_without_credentials_is_refused(
    account: str, region: str, partition: str
) -> None:
    """Given an aws source and a cn-*/us-gov-* destination without credentials
    When the config is validated
    Then one problem at the destination's path names its partition and what it needs."""
    assert problems_of(config({"account": account, "regions": [region]})) == [
        f"rules[0].destinations[0]: {account}/{region} is in partition {partition}, the source in aws; no IAM "
        "role can be assumed across partitions, so it needs credentials (secret and principal, see docs/deploy.md)"
    ]


def test_a_source_in_aws_cn_needs_credentials_for_an_aws_destination() -> None:
    """Given a source in cn-north-1 and a destination in eu-west-1 without credentials
    When validated Then it is refused the same way: the rule is "another partition", whichever way."""
    data = config({"account": "222222222222", "regions": ["eu-west-1"]})
    data["source"] = {"account": "333333333333", "region": "cn-north-1"}
    assert problems_of(data) == [
        "rules[0].destinations[0]: 222222222222/eu-west-1 is in partition aws, the source in aws-cn; no IAM "
        "role can be assumed across partitions, so it needs credentials (secret and principal, see docs/deploy.md)"
    ]


def test_destinations_with_credentials_are_valid_and_keep_their_partition() -> None:
    """Given an aws-cn destination (secret by name) and an aws-us-gov one (secret by ARN, with a key)
    When validated
    Then both are kept, each in its partition, the secret ARN IAM names and the key ARN derived."""
    gov = {
        "account": "444444444444",
        "regions": ["us-gov-west-1"],
        "credentials": {"secret": SECRET_ARN, "principal": GOV_PRINCIPAL, "kms_key": "1234abcd-12ab-34cd-56ef-1234567890ab"},
    }  # fmt: skip
    parsed = parse_config(config(CN, gov))
    china, govcloud = parsed.rules[0].destinations
    assert (china.partition, govcloud.partition) == ("aws-cn", "aws-us-gov")
    assert china.credentials is not None
    assert govcloud.credentials is not None
    assert china.credentials.secret_arn(parsed.source) == (
        "arn:aws:secretsmanager:us-east-1:111111111111:secret:ecr-replication/cn-??????"
    )
    assert govcloud.credentials.secret_arn(parsed.source) == SECRET_ARN
    assert govcloud.credentials.key_arn(parsed.source) == (
        "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    )


def test_regions_of_two_partitions_in_one_destination_are_refused() -> None:
    """Given one destination listing cn-north-1 and us-west-2 When validated Then its regions are refused."""
    assert problems_of(config({**cn(), "regions": ["cn-north-1", "us-west-2"]})) == [
        "rules[0].destinations[0].regions: Regions of aws and aws-cn in one destination; an account belongs "
        "to one partition"
    ]


def test_one_account_in_two_partitions_is_refused() -> None:
    """Given account 333333333333 in us-west-2 in one destination and in cn-north-1 in another
    When validated Then the second names the first: an account belongs to one partition."""
    assert problems_of(config({"account": "333333333333", "regions": ["us-west-2"]}, cn())) == [
        "rules[0].destinations[1].regions: account 333333333333 in aws-cn here but in aws in "
        "rules[0].destinations[0]; an account belongs to one partition"
    ]


def test_credentials_for_a_destination_in_the_source_partition_are_refused() -> None:
    """Given credentials on an aws destination of an aws source When validated Then they are refused."""
    destination = {**cn(principal="arn:aws:iam::222222222222:user/x"), "account": "222222222222", "regions": ["eu-west-1"]}  # fmt: skip
    assert problems_of(config(destination)) == [
        "rules[0].destinations[0].credentials: 222222222222 is in the source's partition (aws), where the "
        "source roles assume the destination role; a stored access key would only add risk"
    ]


@pytest.mark.parametrize(
    ("credentials", "problem"),
    [
        ({"principal": "arn:aws:iam::333333333333:user/ecr"},
         "rules[0].destinations[0].credentials.principal: 'arn:aws:iam::333333333333:user/ecr' is in partition "
         "aws, the destination in aws-cn"),
        ({"principal": "arn:aws-cn:iam::333333333333:role/ecr"},
         "rules[0].destinations[0].credentials.principal: 'arn:aws-cn:iam::333333333333:role/ecr' is not an IAM "
         "user ARN (arn:<partition>:iam::<account>:user/<name>): the secret holds that user's access key pair"),
        ({"secret": "arn:aws:secretsmanager:us-east-1:999999999999:secret:x-AbCdEf"},
         "rules[0].destinations[0].credentials.secret: 'arn:aws:secretsmanager:us-east-1:999999999999:secret:"
         "x-AbCdEf' is not a secret of the source account (aws, 111111111111, a Region of aws)"),
        ({"secret": "arn:aws-cn:secretsmanager:cn-north-1:111111111111:secret:x-AbCdEf"},
         "rules[0].destinations[0].credentials.secret: 'arn:aws-cn:secretsmanager:cn-north-1:111111111111:"
         "secret:x-AbCdEf' is not a secret of the source account (aws, 111111111111, a Region of aws)"),
        ({"secret": "arn:aws:secretsmanager:cn-north-1:111111111111:secret:x-AbCdEf"},
         "rules[0].destinations[0].credentials.secret: Region cn-north-1 is not in aws"),
        ({"secret": "arn:aws:s3:::bucket"},
         "rules[0].destinations[0].credentials.secret: 'arn:aws:s3:::bucket' is not a Secrets Manager secret ARN "
         "(arn:<partition>:secretsmanager:<region>:<account>:secret:<name>-<6 characters>)"),
        ({"secret": "no spaces"},
         "rules[0].destinations[0].credentials.secret: 'no spaces' is not a secret ARN or name (1-512 of "
         "letters, digits and /_+=.@-)"),
        ({"kms_key": "alias/secrets"},
         "rules[0].destinations[0].credentials.kms_key: 'alias/secrets' is not a KMS key ARN or key id (IAM "
         "cannot name a key by alias)"),
        ({"kms_key": "arn:aws:kms:us-west-2:111111111111:key/abcd"},
         "rules[0].destinations[0].credentials.kms_key: 'arn:aws:kms:us-west-2:111111111111:key/abcd' is not a "
         "key of the source account in the secret's Region (aws, 111111111111, us-east-1)"),
        ({"principal": None}, "rules[0].destinations[0].credentials.principal: required field is missing"),
        ({"token": "x"}, "rules[0].destinations[0].credentials.token: unknown field"),
    ],
)  # fmt: skip
def test_each_credentials_field_is_checked_against_the_partitions(
    credentials: dict[str, Any], problem: str
) -> None:
    """Given an aws-cn destination whose credentials break one rule
    When validated Then exactly that rule's problem is reported, at its path."""
    assert problems_of(config(cn(**credentials))) == [problem]


def test_a_region_outside_the_supported_partitions_is_refused() -> None:
    """Given a destination in an ISO Region (ECR has one; this product supports three partitions)
    When validated Then the Region is refused by name."""
    assert problems_of(config({"account": "333333333333", "regions": ["us-iso-east-1"]})) == [
        "rules[0].destinations[0].regions: 'us-iso-east-1' is not a Region of a supported partition "
        "(aws, aws-cn, aws-us-gov)"
    ]


def test_validate_refuses_an_aws_cn_destination_without_credentials_in_one_line(tmp_path: Path) -> None:
    """Given a config file with an aws-cn destination without credentials
    When `ecr-replicate validate` runs on it
    Then it exits 2 with one line on stderr naming the destination's path and nothing on stdout."""
    path = tmp_path / "replication.yaml"
    path.write_text(yaml.safe_dump(config({"account": "333333333333", "regions": ["cn-north-1"]})))
    result = subprocess.run(
        [sys.executable, "-m", "workflow.cli", "validate", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "rules[0].destinations[0]: 333333333333/cn-north-1 is in partition aws-cn" in result.stderr


def test_validate_refuses_a_partial_secret_arn_in_one_line(tmp_path: Path) -> None:
    """Given an aws-cn destination whose credentials secret is an ARN without Secrets Manager's 6-character
    suffix (IAM evaluates GetSecretValue against the complete ARN, so a policy naming the partial one never
    matches)
    When `ecr-replicate validate` runs on it
    Then it exits 2 with one line naming the secret's path and asking for the complete ARN."""
    partial = "arn:aws:secretsmanager:us-east-1:111111111111:secret:ecr-replication/cn"
    path = tmp_path / "replication.yaml"
    path.write_text(yaml.safe_dump(config(cn(secret=partial))))
    result = subprocess.run(
        [sys.executable, "-m", "workflow.cli", "validate", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2, result.stdout
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert f"rules[0].destinations[0].credentials.secret: '{partial}' is a partial ARN" in result.stderr
    assert "use the complete ARN (with the 6-character suffix" in result.stderr


@pytest.mark.parametrize(
    "secret",
    [
        "arn:aws:secretsmanager:us-east-1:111111111111:secret:ecr-replication/cn-AbCdEf",
        "arn:aws:secretsmanager:us-east-1:111111111111:secret:cn-credentials-a1B2c3",
    ],
)
def test_a_complete_secret_arn_is_kept(secret: str) -> None:
    """Given a secret ARN ending in `-` and 6 letters or digits When validated Then it is kept verbatim."""
    parsed = parse_config(config(cn(secret=secret)))
    credentials = parsed.rules[0].destinations[0].credentials
    assert credentials is not None
    assert credentials.secret_arn(parsed.source) == secret
