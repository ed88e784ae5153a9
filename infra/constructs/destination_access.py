"""What the source roles that reach destinations (precheck, copy, reconcile) may do to get there.

In the source's partition they assume the destination roles. A destination in another partition is
reached with the key pair its credentials secret holds, so those roles may read exactly those secrets
(`secretsmanager:GetSecretValue`) and, for a secret under a customer-managed key, decrypt with that key only
through Secrets Manager in the secret's Region (`kms:ViaService`; Secrets Manager user guide, "Secret
encryption and decryption": https://docs.aws.amazon.com/secretsmanager/latest/userguide/security-encryption.html).
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from constructs import IConstruct

from infra import naming
from infra.constructs.functions import acknowledge
from workflow.core.partitions import partition_of
from workflow.models.config import ReplicationConfig


def destination_access(config: ReplicationConfig) -> list[iam.PolicyStatement]:
    """AssumeRole on the destination roles of the source's partition, GetSecretValue on the credentials
    secrets of the others and Decrypt on their keys; each statement only when the config needs it."""
    statements = []
    roles = naming.destination_role_arns(config)
    if roles:
        statements.append(
            iam.PolicyStatement(sid="AssumeDestinationRoles", actions=["sts:AssumeRole"], resources=roles)
        )
    secrets = naming.credentials_secret_arns(config)
    if secrets:
        statements.append(
            iam.PolicyStatement(
                sid="ReadPartitionCredentials", actions=["secretsmanager:GetSecretValue"], resources=secrets
            )
        )
    for region, keys in naming.credentials_key_arns(config).items():
        statements.append(
            iam.PolicyStatement(
                sid="DecryptPartitionCredentials" + "".join(part.capitalize() for part in region.split("-")),
                actions=["kms:Decrypt"],
                resources=keys,
                conditions={
                    "StringEquals": {"kms:ViaService": partition_of(region).host("secretsmanager", region)}
                },
            )
        )
    return statements


def acknowledge_secret_names(role: IConstruct, config: ReplicationConfig) -> None:
    """cdk-nag acknowledgments for secrets named by name: IAM matches them by `name-??????`."""
    acknowledge(
        role,
        {
            f"AwsSolutions-IAM5[Resource::{arn}]": (
                "A credentials secret named by name in the config: Secrets Manager appends six random "
                "characters to its ARN, which '-??????' matches (and nothing longer); read-only."
            )
            for arn in naming.credentials_secret_arns(config)
            if arn.endswith("-??????")
        },
    )
