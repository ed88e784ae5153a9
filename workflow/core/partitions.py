"""AWS partitions (`aws`, `aws-cn`, `aws-us-gov`): which one a Region is in, and its ARNs, service hosts,
STS endpoints and console links. Every ARN, host and console URL the product builds is built here.

- Which Regions a partition holds and its DNS suffix come from botocore's partition data
  (botocore/data/partitions.json: `regionRegex`, `regions`, `outputs.dnsSuffix`), so new Regions need no
  change here. `aws` and `aws-us-gov` hosts end in `amazonaws.com`, `aws-cn` hosts in `amazonaws.com.cn`
  ("Endpoints and ARNs for Amazon Web Services in China",
  https://docs.amazonaws.cn/en_us/general/latest/gr/endpoints-arns.html).
- ARNs begin `arn:<partition>:` ("ARNs for Amazon Web Services in China",
  https://docs.amazonaws.cn/en_us/general/latest/gr/ARNs.html; "Amazon Resource Names (ARNs) in GovCloud
  (US) Regions", https://docs.aws.amazon.com/govcloud-us/latest/UserGuide/using-govcloud-arns.html).
- Console hosts are per Region: `<region>.console.aws.amazon.com` ("AWS Management Console endpoints and
  quotas", https://docs.aws.amazon.com/general/latest/gr/mgmt-console.html), `<region>.console.amazonaws.cn`
  (the China Regions' domain is amazonaws.cn: https://docs.amazonaws.cn/en_us/aws/latest/userguide/general-info.html)
  and `<region>.console.amazonaws-us-gov.com` (as the ECS developer guide links GovCloud's console pages,
  https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs-optimized_AMI.html).
- No IAM role can be assumed from another partition: a destination there needs credentials of its own
  partition (see workflow.engine.roles).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

SUPPORTED = ("aws", "aws-cn", "aws-us-gov")
CONSOLE_DOMAINS = {
    "aws": "console.aws.amazon.com",
    "aws-cn": "console.amazonaws.cn",
    "aws-us-gov": "console.amazonaws-us-gov.com",
}


class UnsupportedPartition(ValueError):
    """A Region or ARN outside the partitions this product supports."""


@dataclass(frozen=True)
class Partition:
    """One AWS partition and the names built in it."""

    name: str
    dns_suffix: str
    console_domain: str
    region_pattern: str
    regions: frozenset[str]

    def holds(self, region: str) -> bool:
        """Whether `region` belongs to this partition."""
        return region in self.regions or re.fullmatch(self.region_pattern, region) is not None

    def arn(self, service: str, region: str, account: str, resource: str) -> str:
        """`arn:<partition>:<service>:<region>:<account>:<resource>` (Region and account may be empty)."""
        return f"arn:{self.name}:{service}:{region}:{account}:{resource}"

    def role_arn(self, account: str, role_name: str) -> str:
        """The ARN of an IAM role."""
        return self.arn("iam", "", account, f"role/{role_name}")

    def host(self, service: str, region: str) -> str:
        """A service's Regional host name, e.g. `ecr.cn-north-1.amazonaws.com.cn` (also kms:ViaService's value)."""
        return f"{service}.{region}.{self.dns_suffix}"

    def ecr_registry(self, account: str, region: str) -> str:
        """The ECR registry host of an account in a Region."""
        return f"{account}.dkr.ecr.{region}.{self.dns_suffix}"

    def sts_endpoint(self, region: str) -> str:
        """STS's Regional endpoint URL in this partition."""
        return f"https://{self.host('sts', region)}"

    def console_url(self, region: str, path: str) -> str:
        """A console page in `region`: `path` is what follows the host (e.g. `states/home?region=...`)."""
        return f"https://{region}.{self.console_domain}/{path.lstrip('/')}"


@cache
def _partitions() -> dict[str, Partition]:
    from botocore.loaders import create_loader  # deferred: botocore's data is read once, when first needed

    data: dict[str, Any] = create_loader().load_data("partitions")
    return {
        entry["id"]: Partition(
            name=entry["id"],
            dns_suffix=entry["outputs"]["dnsSuffix"],
            console_domain=CONSOLE_DOMAINS[entry["id"]],
            region_pattern=entry["regionRegex"],
            regions=frozenset(entry.get("regions", {})),
        )
        for entry in data["partitions"]
        if entry["id"] in SUPPORTED
    }


def partition_named(name: str) -> Partition:
    """The partition called `name`; raises UnsupportedPartition for any other name."""
    try:
        return _partitions()[name]
    except KeyError:
        raise UnsupportedPartition(
            f"{name[:40]!r} is not a supported partition ({', '.join(SUPPORTED)})"
        ) from None


def partition_of(region: str) -> Partition:
    """The partition a Region belongs to; raises UnsupportedPartition for a Region in none of them."""
    for partition in _partitions().values():
        if partition.holds(region):
            return partition
    raise UnsupportedPartition(
        f"{region[:40]!r} is not a Region of a supported partition ({', '.join(SUPPORTED)})"
    )


def parse_arn(arn: str) -> dict[str, str]:
    """An ARN's parts (partition, service, region, account, resource); raises ValueError naming it."""
    from botocore.utils import ArnParser, InvalidArnException  # deferred, as botocore's data above

    try:
        parts: dict[str, str] = ArnParser().parse_arn(arn)
    except InvalidArnException:
        raise ValueError(
            f"{arn[:140]!r} is not an ARN (arn:partition:service:region:account:resource)"
        ) from None
    return parts


def console_url_of_arn(arn: str, path: str) -> str:
    """A console page in the partition and Region of `arn`."""
    parts = parse_arn(arn)
    return partition_named(parts["partition"]).console_url(parts["region"], path)
