"""The Gate Lambda (promotion gates, issue 12) and the permissions gates need, granted only when a rule has gates.

What the gates read, on the source repositories of the gated rules only:
- `ecr:DescribeImageScanFindings` (rules with a scan gate), with `inspector2:ListFindings` (Resource "*"), which
  ECR needs to return enhanced (Amazon Inspector) findings (ECR user guide, "IAM permissions required for
  enhanced scanning": https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-scanning-enhanced-iam.html);
- `ecr:DescribeImageSigningStatus` (rules whose signature gate names an ECR managed signing profile; the
  signature it made is read as the others are, below: ECR API reference, DescribeImageSigningStatus; Service
  Authorization Reference, Amazon Elastic Container Registry, which authorizes it on the repository);
- `ecr:BatchGetImage` (the tag's manifest, signature manifests, and the OCI referrers API, which ECR
  authorizes as BatchGetImage: API reference, ListImageReferrers) and `ecr:GetDownloadUrlForLayer` (the
  signature payloads and envelopes are blobs), with `ecr:GetAuthorizationToken` (Resource "*") for the
  registry token;
- `ecr:DescribeImages`: a tag the registry answers 404 for is asked after, since ECR answers a pull of an
  image in its archive storage class with 404 too (ECR user guide, "Archiving an image"): ImageArchived, not
  ImageNotFound.
Without gated rules the Gate function exists (the state machine names it) but its role only writes logs:
the state machine never invokes it, as the Plan marks no plan gated.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra import naming
from infra.constructs.functions import HandlerCode
from workflow.models.config import ReplicationConfig
from workflow.pipeline.timeouts import FUNCTION_TIMEOUTS

GATE_READ_ACTIONS = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:DescribeImages"]
POLL_SECONDS = "30"


def source_access(config: ReplicationConfig) -> iam.PolicyStatement | None:
    """AssumeRole on the source-access roles of the other source accounts (None when every source is in the home
    account): how the home roles read the images there."""
    roles = naming.source_access_role_arns(config)
    if not roles:
        return None
    return iam.PolicyStatement(sid="AssumeSourceAccessRoles", actions=["sts:AssumeRole"], resources=roles)


def gate_statements(
    config: ReplicationConfig, account: str | None = None, *, token: bool = True
) -> list[iam.PolicyStatement]:
    """What reading the gates of the sources in `account` (default: the home one) needs; none when no rule of
    theirs has gates (`token=False`: without the registry token, for a role granted one already). The home roles
    reading another account's sources assume its source-access role."""
    gated = naming.gated_repository_arns(config, account=account)
    if not gated:
        return []
    statements = [iam.PolicyStatement(sid="ReadGatedImages", actions=GATE_READ_ACTIONS, resources=gated)]
    if token:
        statements.append(
            iam.PolicyStatement(sid="GateEcrToken", actions=["ecr:GetAuthorizationToken"], resources=["*"])
        )
    scanned = naming.gated_repository_arns(config, scan=True, account=account)
    if scanned:
        statements += [
            iam.PolicyStatement(
                sid="ReadScanFindings", actions=["ecr:DescribeImageScanFindings"], resources=scanned
            ),
            iam.PolicyStatement(
                sid="ReadEnhancedFindings", actions=["inspector2:ListFindings"], resources=["*"]
            ),
        ]
    signed = naming.gated_repository_arns(config, managed_signing=True, account=account)
    if signed:
        statements.append(
            iam.PolicyStatement(
                sid="ReadSigningStatus", actions=["ecr:DescribeImageSigningStatus"], resources=signed
            )
        )
    return statements


class GateFunction(Construct):
    """The Gate Lambda with its own role: the gate statements of the config, nothing else."""

    def __init__(
        self, scope: Construct, construct_id: str, *, code: HandlerCode, config: ReplicationConfig
    ) -> None:
        super().__init__(scope, construct_id)
        self.function: lambda_.Function = code.function(
            self,
            "Gate",
            handler="lambdas.gate.handler",
            description="Promotion gates: scan findings and signatures decide which targets may replicate",
            timeout=cdk.Duration.seconds(FUNCTION_TIMEOUTS["gate"]),
            memory_size=512,
            role_name=naming.gate_role_name(config),
            environment={"GATE_POLL_SECONDS": POLL_SECONDS},
        )
        role = self.function.role
        assert role is not None
        for statement in gate_statements(config):
            role.add_to_principal_policy(statement)
        access = source_access(config)
        if access and any(rule.gates is not None for rule in config.rules):
            role.add_to_principal_policy(access)
