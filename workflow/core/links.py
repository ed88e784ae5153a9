"""Console links built from ARNs: an execution's Step Functions page and a build's CodeBuild log."""

from __future__ import annotations

from workflow.core.partitions import SUPPORTED, partition_named


def console_url(execution_arn: str) -> str:
    """The Step Functions console page of an execution, from its ARN."""
    parts = execution_arn.split(":")
    if len(parts) < 8 or parts[0] != "arn" or parts[5] != "execution":
        raise ValueError(f"{execution_arn!r} is not a Step Functions execution ARN")
    partition, region = parts[1], parts[3]
    return partition_named(partition).console_url(
        region, f"states/home?region={region}#/v2/executions/details/{execution_arn}"
    )


def build_log_url(build_arn: str) -> str | None:
    """The CodeBuild console page of a build's log, from its ARN; None for anything else."""
    parts = build_arn.split(":")
    if (
        len(parts) != 7
        or parts[:3] != ["arn", parts[1], "codebuild"]
        or parts[1] not in SUPPORTED
        or not parts[5].startswith("build/")
    ):
        return None
    partition, region, account = parts[1], parts[3], parts[4]
    project, build = parts[5].removeprefix("build/"), parts[6]
    return partition_named(partition).console_url(
        region,
        f"codesuite/codebuild/{account}/projects/{project}/build/{project}%3A{build}/log?region={region}",
    )


def state_machine_arn_of(execution_arn: str) -> str:
    """`arn:...:stateMachine:NAME` from `arn:...:execution:NAME:EXECUTION`."""
    parts = execution_arn.split(":")
    return ":".join([*parts[:5], "stateMachine", parts[6]])
