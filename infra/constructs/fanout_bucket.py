"""The fan-out bucket: a run past the inline Map's limit keeps its targets, results and events here.

Encrypted with the stack's customer-managed key (SSE-KMS, with an S3 Bucket Key so that a Map Run's thousands
of objects do not each call KMS), TLS enforced, public access blocked, server access logs to a log bucket, and
every object under `runs/` expired after RUN_RETENTION (a run's objects serve its Summarize step, its retry and
an operator's look at its results). Who may do what, on `runs/*` only:
- the Plan function writes a run's targets; the Gate function reads and rewrites them (and the blocked records);
  the Summarize function reads the results and writes the events and the retry input;
- the state machine reads targets and events (ItemReader: s3:GetObject) and writes results (ResultWriter:
  s3:PutObject, s3:GetObject, s3:ListMultipartUploadParts, s3:AbortMultipartUpload) (developer guide, "IAM
  policies for using Distributed Map states": https://docs.aws.amazon.com/step-functions/latest/dg/iam-policies-eg-dist-map.html).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.constructs.functions import acknowledge
from workflow.pipeline.fanout import RUNS_PREFIX

RUN_RETENTION = cdk.Duration.days(30)
LOG_RETENTION = cdk.Duration.days(90)
# ResultWriter's permissions, besides kms:GenerateDataKey and kms:Decrypt for the bucket's key.
RESULT_WRITER_ACTIONS = [
    "s3:PutObject",
    "s3:GetObject",
    "s3:ListMultipartUploadParts",
    "s3:AbortMultipartUpload",
]
KEY_ACTIONS = ["kms:GenerateDataKey", "kms:Decrypt"]


class FanOutBucket(Construct):
    """The bucket (`bucket`) and its server-access-log bucket; `grant(...)` scopes a role to `runs/*`."""

    def __init__(self, scope: Construct, construct_id: str, *, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        # The log bucket lets S3's logging service write by bucket policy, not by ACL (S3 user guide, "Enabling
        # Amazon S3 server access logging": the bucket policy is the recommended way); CDK does so with this flag.
        self.node.set_context("@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy", True)
        self.key = key
        self.logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,  # server access logs can only be delivered to SSE-S3
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(expiration=LOG_RETENTION)],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        acknowledge(
            self.logs,
            {
                "AwsSolutions-S1": (
                    "This is the server access log bucket of the fan-out bucket; logging its own accesses "
                    "into another bucket would only move the finding."
                )
            },
        )
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.logs,
            server_access_logs_prefix="fanout/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    prefix=RUNS_PREFIX,
                    expiration=RUN_RETENTION,
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
                )
            ],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )

    @property
    def runs_arn(self) -> str:
        """The ARN pattern of every run's objects."""
        return self.bucket.arn_for_objects(f"{RUNS_PREFIX}*")

    def statements(self, actions: list[str], sid: str) -> list[iam.PolicyStatement]:
        """`actions` on `runs/*`, and the key's encrypt/decrypt (through S3 only)."""
        via_s3 = {"StringEquals": {"kms:ViaService": f"s3.{cdk.Aws.REGION}.{cdk.Aws.URL_SUFFIX}"}}
        return [
            iam.PolicyStatement(sid=sid, actions=actions, resources=[self.runs_arn]),
            iam.PolicyStatement(
                sid=f"{sid}Key", actions=KEY_ACTIONS, resources=[self.key.key_arn], conditions=via_s3
            ),
        ]

    def grant(self, role: iam.IRole, actions: list[str], sid: str) -> None:
        """Give `role` `actions` on the runs' objects, with a written reason for cdk-nag's wildcard finding."""
        for statement in self.statements(actions, sid):
            role.add_to_principal_policy(statement)
        stack = cdk.Stack.of(self)
        bucket = stack.resolve(stack.get_logical_id(self.bucket.node.default_child))  # type: ignore[arg-type]
        acknowledge(
            role,
            {
                f"AwsSolutions-IAM5[Resource::<{bucket}.Arn>/{RUNS_PREFIX}*]": (
                    "Every run writes its own objects under runs/<execution name>/, named at run time: the grant "
                    "is the runs/ prefix of this one bucket."
                )
            },
        )
