"""The CodeBuild copy project: runs `ecr-replicate copy` from this package, never privileged."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import yaml
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from infra.bundling import copy_job_options
from infra.constructs.functions import LOG_RETENTION, acknowledge
from infra.settings import REPOSITORY_ROOT, CopyCompute

BUILDSPEC = Path(__file__).resolve().parent.parent / "buildspec.yml"
EC2_TIMEOUT = cdk.Duration.hours(2)
# Lambda compute has no build timeout setting and ends a build at 15 minutes (CodeBuild user guide,
# "Limitations of AWS Lambda compute": https://docs.aws.amazon.com/codebuild/latest/userguide/lambda.html).
LAMBDA_TIMEOUT = cdk.Duration.minutes(15)
# The copy job's Python on either compute (the install phase of buildspec.yml refuses any other).
COPY_JOB_PYTHON = "3.12"
RESULT_MARGIN = cdk.Duration.minutes(
    2
)  # install, then writing result.json after a copy stopped at its deadline


def copy_deadline_seconds(compute: CopyCompute) -> int:
    """How long one copy may take: the build's timeout less time to start and to write the result."""
    timeout = EC2_TIMEOUT if compute == "ec2" else LAMBDA_TIMEOUT
    return int(timeout.to_seconds() - RESULT_MARGIN.to_seconds())


def load_buildspec(path: Path = BUILDSPEC) -> dict[str, Any]:
    """The buildspec as a mapping."""
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(spec, dict) or "phases" not in spec:
        raise ValueError(f"{path}: not a CodeBuild buildspec (no 'phases')")
    return spec


def buildspec_for(compute: CopyCompute) -> dict[str, Any]:
    """The buildspec a project of `compute` runs: on EC2 it selects Python COPY_JOB_PYTHON with
    `runtime-versions` (the image's default Python may change: CodeBuild user guide, "Available runtimes"; the
    standard:5.0 image selects 3.9 to 3.14 with pyenv, aws-codebuild-docker-images al/x86_64/standard/5.0/
    runtimes.yml); the Lambda compute image is one runtime, python3.12, pinned by its tag."""
    spec = load_buildspec()
    if compute == "ec2":
        spec["phases"]["install"] = {
            "runtime-versions": {"python": COPY_JOB_PYTHON},
            **spec["phases"]["install"],
        }
    return spec


def _environment(compute: CopyCompute) -> codebuild.BuildEnvironment:
    if compute == "lambda":
        return codebuild.BuildEnvironment(
            build_image=codebuild.LinuxLambdaBuildImage.AMAZON_LINUX_2023_PYTHON_3_12,
            compute_type=codebuild.ComputeType.LAMBDA_2GB,
            privileged=False,
        )
    return codebuild.BuildEnvironment(
        build_image=codebuild.LinuxBuildImage.AMAZON_LINUX_2023_5,
        compute_type=codebuild.ComputeType.SMALL,
        privileged=False,
    )


class CopyProject(Construct):
    """The copy job; its role reads the source repositories and assumes the destination roles."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        compute: CopyCompute,
        role_name: str,
        key: kms.IKey,
        source_read: Sequence[iam.PolicyStatement],
        destination_access: Sequence[iam.PolicyStatement],
    ) -> None:
        super().__init__(scope, construct_id)
        self.package = s3_assets.Asset(self, "PackageSource", path=str(REPOSITORY_ROOT), **copy_job_options())
        self.role = iam.Role(
            self,
            "Role",
            role_name=role_name,
            assumed_by=iam.ServicePrincipal(
                "codebuild.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": cdk.Stack.of(self).account}},
            ),
            description="ECR replication copy job: reads source images, assumes destination roles",
        )
        for statement in [*source_read, *destination_access]:
            self.role.add_to_policy(statement)
        self.log_group = logs.LogGroup(
            self, "Logs", retention=LOG_RETENTION, removal_policy=cdk.RemovalPolicy.DESTROY
        )
        self.project = codebuild.Project(
            self,
            "Project",
            description="Copies one image (all platforms, digest-preserving) with ecr-replicate copy",
            source=codebuild.Source.s3(bucket=self.package.bucket, path=self.package.s3_object_key),
            build_spec=codebuild.BuildSpec.from_object_to_yaml(buildspec_for(compute)),
            environment=_environment(compute),
            environment_variables={
                "ECR_REPLICATE_COPY_DEADLINE": codebuild.BuildEnvironmentVariable(
                    value=str(copy_deadline_seconds(compute))
                )
            },
            role=self.role,
            encryption_key=key,
            timeout=EC2_TIMEOUT if compute == "ec2" else None,
            logging=codebuild.LoggingOptions(
                cloud_watch=codebuild.CloudWatchLoggingOptions(log_group=self.log_group)
            ),
        )
        stack = cdk.Stack.of(self)
        project_id = stack.resolve(stack.get_logical_id(self.project.node.default_child))  # type: ignore[arg-type]
        where = f"arn:<AWS::Partition>:{{}}:{stack.region}:{stack.account}:{{}}"
        acknowledge(
            self.role,
            {
                f"AwsSolutions-IAM5[Resource::{where.format('logs', f'log-group:/aws/codebuild/<{project_id}>:*')}]": (
                    "Added by CDK for CodeBuild's default log group of this project only (its log streams); "
                    "the build logs go to the project's own log group with retention."
                ),
                f"AwsSolutions-IAM5[Resource::{where.format('codebuild', f'report-group/<{project_id}>-*')}]": (
                    "Added by CDK for test report groups named after this project only; the buildspec "
                    "defines no reports, so nothing is created."
                ),
                "AwsSolutions-IAM5[Action::kms:ReEncrypt*]": (
                    "Added by CDK's encryption_key grant and scoped to this stack's own customer-managed "
                    "key, which encrypts the build's artifacts and logs."
                ),
                "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]": (
                    "Added by CDK's encryption_key grant and scoped to this stack's own customer-managed "
                    "key, which encrypts the build's artifacts and logs."
                ),
                "AwsSolutions-IAM5[Action::s3:GetObject*]": (
                    "Granted by CDK's Source.s3 binding: read-only access to the CDK asset object "
                    "holding this package's source, nothing else."
                ),
                "AwsSolutions-IAM5[Action::s3:GetBucket*]": (
                    "Granted by CDK's Source.s3 binding on the CDK assets bucket only: read-only "
                    "bucket metadata CodeBuild needs to download the source."
                ),
                "AwsSolutions-IAM5[Action::s3:List*]": (
                    "Granted by CDK's Source.s3 binding on the CDK assets bucket only: read-only "
                    "listing CodeBuild needs to download the source."
                ),
            },
        )
