"""The partition helper: ARNs, ECR hosts, STS endpoints and console links for aws, aws-cn and aws-us-gov."""

from __future__ import annotations

import pytest

from workflow.core.links import build_log_url, console_url
from workflow.core.partitions import UnsupportedPartition, parse_arn, partition_named, partition_of

# (Region, partition, DNS suffix, console domain)
PARTITIONS = [
    ("eu-west-1", "aws", "amazonaws.com", "console.aws.amazon.com"),
    ("cn-north-1", "aws-cn", "amazonaws.com.cn", "console.amazonaws.cn"),
    ("cn-northwest-1", "aws-cn", "amazonaws.com.cn", "console.amazonaws.cn"),
    ("us-gov-west-1", "aws-us-gov", "amazonaws.com", "console.amazonaws-us-gov.com"),
    ("us-gov-east-1", "aws-us-gov", "amazonaws.com", "console.amazonaws-us-gov.com"),
]


@pytest.mark.parametrize(("region", "name", "suffix", "console"), PARTITIONS)
def test_each_region_maps_to_its_partition_names(region: str, name: str, suffix: str, console: str) -> None:
    """Given a Region of each partition
    When the helper builds its names
    Then ARNs begin arn:<partition>:, hosts end in the partition's suffix, and console links use its host."""
    partition = partition_of(region)
    assert partition.name == name
    assert partition.role_arn("333333333333", "target") == f"arn:{name}:iam::333333333333:role/target"
    assert partition.arn("ecr", region, "333333333333", "repository/app") == (
        f"arn:{name}:ecr:{region}:333333333333:repository/app"
    )
    assert partition.ecr_registry("333333333333", region) == f"333333333333.dkr.ecr.{region}.{suffix}"
    assert partition.host("ecr", region) == f"ecr.{region}.{suffix}"
    assert partition.sts_endpoint(region) == f"https://sts.{region}.{suffix}"
    assert partition.console_url(region, "/ecr/home") == f"https://{region}.{console}/ecr/home"
    assert partition_named(name) == partition


@pytest.mark.parametrize(("region", "name", "_suffix", "console"), PARTITIONS)
def test_summary_links_are_in_the_partition_of_the_arn(
    region: str, name: str, _suffix: str, console: str
) -> None:
    """Given an execution ARN and a build ARN in each partition
    When the summary links them
    Then each link is on that partition's console host, in the ARN's Region."""
    execution = f"arn:{name}:states:{region}:111111111111:execution:machine:run-1"
    build = f"arn:{name}:codebuild:{region}:111111111111:build/copy:abc"
    assert console_url(execution).startswith(f"https://{region}.{console}/states/home?region={region}#")
    assert build_log_url(build) == (
        f"https://{region}.{console}/codesuite/codebuild/111111111111/projects/copy/build/copy%3Aabc/log"
        f"?region={region}"
    )


def test_unsupported_regions_and_partitions_are_refused_by_name() -> None:
    """Given a Region and a partition outside aws, aws-cn and aws-us-gov
    When the helper is asked for them
    Then UnsupportedPartition names what was asked; a build ARN of such a partition gets no link."""
    with pytest.raises(
        UnsupportedPartition, match="'us-iso-east-1' is not a Region of a supported partition"
    ):
        partition_of("us-iso-east-1")
    with pytest.raises(UnsupportedPartition, match="'aws-iso' is not a supported partition"):
        partition_named("aws-iso")
    assert build_log_url("arn:aws-iso:codebuild:us-iso-east-1:111111111111:build/copy:abc") is None


def test_a_region_botocore_does_not_list_yet_follows_the_partition_pattern() -> None:
    """Given a Region name botocore's list does not have yet, in each partition's naming scheme
    When its partition is asked
    Then the partition's Region pattern decides, as botocore's partition data says."""
    assert partition_of("cn-south-9").name == "aws-cn"
    assert partition_of("us-gov-central-9").name == "aws-us-gov"
    assert partition_of("eu-central-9").name == "aws"


def test_parse_arn_names_a_malformed_arn() -> None:
    """Given an ARN and a malformed one When parsed Then the parts come back, or ValueError names the text."""
    assert parse_arn("arn:aws-cn:iam::333333333333:user/ecr")["partition"] == "aws-cn"
    with pytest.raises(ValueError, match="'arn:aws' is not an ARN"):
        parse_arn("arn:aws")
