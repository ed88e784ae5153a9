"""Pinned runtimes: the copy job's Python on either compute, and the boto3/botocore the Lambdas run with."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
import yaml
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Template

from infra.bundling import lambda_requirements
from infra.constructs.copy_project import CopyProject, load_buildspec
from infra.settings import CopyCompute

pytestmark = pytest.mark.infrastructure

COPY_JOB_PYTHON = "3.12"  # the Lambda compute image's runtime, selected on EC2 too

# What the code asks of ECR's API that older botocore releases do not know (each shape, and its member):
# tag mutability exclusions (July 2025), the archive storage class (November 2025), scan severity counts.
ECR_MEMBERS = {
    "CreateRepositoryRequest": "imageTagMutabilityExclusionFilters",
    "Repository": "imageTagMutabilityExclusionFilters",
    "DescribeImagesFilter": "imageStatus",
    "ImageDetail": "imageStatus",
    "ImageScanFindings": "findingSeverityCounts",
}


def _project(compute: CopyCompute) -> dict[str, Any]:
    app = cdk.App()
    stack = cdk.Stack(app, "Probe", env=cdk.Environment(account="111111111111", region="us-east-1"))
    CopyProject(
        stack,
        "Copy",
        compute=compute,
        role_name="probe",
        key=kms.Key(stack, "Key"),
        source_read=[],
        destination_access=[
            iam.PolicyStatement(actions=["sts:AssumeRole"], resources=["arn:aws:iam::1:role/x"])
        ],
    )
    (project,) = Template.from_stack(stack).find_resources("AWS::CodeBuild::Project").values()
    return dict(project["Properties"])


def test_the_ec2_copy_job_selects_python_3_12_with_runtime_versions() -> None:
    """Given the EC2 copy project (its image's python3 is whatever pyenv version it defaults to)
    When synthesized
    Then its buildspec selects Python 3.12 with runtime-versions (the image's pyenv has 3.9 to 3.14)."""
    properties = _project("ec2")
    assert properties["Environment"]["Image"] == "aws/codebuild/amazonlinux-x86_64-standard:5.0"
    spec = yaml.safe_load(properties["Source"]["BuildSpec"])
    assert spec["phases"]["install"]["runtime-versions"] == {"python": COPY_JOB_PYTHON}


def test_the_lambda_copy_job_runs_the_python_3_12_image() -> None:
    """Given the Lambda-compute copy project When synthesized
    Then its image is the python3.12 one (one runtime per image: no runtime-versions to select)."""
    properties = _project("lambda")
    assert properties["Environment"]["Image"].endswith(f":python{COPY_JOB_PYTHON}")
    spec = yaml.safe_load(properties["Source"]["BuildSpec"])
    assert "runtime-versions" not in spec["phases"]["install"]


def _install_check(python: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The install phase's first command, run with `python` as the image's python3."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(python)
    check = load_buildspec()["phases"]["install"]["commands"][0]
    environment = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    return subprocess.run(["bash", "-c", check], env=environment, capture_output=True, text=True, check=False)


@pytest.mark.skipif(sys.version_info[:2] == (3, 12), reason="needs an interpreter other than 3.12")
def test_the_install_phase_refuses_any_python_but_the_pinned_one(tmp_path: Path) -> None:
    """Given an image whose python3 is not 3.12 (this machine's)
    When the copy job's install phase checks it
    Then the build fails there, naming the pinned version and the one found."""
    completed = _install_check(sys.executable, tmp_path)
    assert completed.returncode != 0
    assert f"pinned to Python {COPY_JOB_PYTHON}" in completed.stderr
    assert f"{sys.version_info[0]}.{sys.version_info[1]}" in completed.stderr


def test_the_lambda_asset_pins_the_boto3_and_botocore_of_this_environment() -> None:
    """Given the Lambda asset's requirements
    When read
    Then boto3, botocore and s3transfer are pinned to the versions the tests ran with, and none is left to
    the runtime (whose boto3 may predate the 2025 ECR fields the functions send and read)."""
    requirements = lambda_requirements()
    for name in ("boto3", "botocore", "s3transfer"):
        assert f"{name}=={importlib.metadata.version(name)}" in requirements


def test_the_pinned_botocore_knows_every_ecr_field_the_code_uses() -> None:
    """Given the botocore the Lambdas are bundled with (this environment's)
    When its ECR model is read
    Then every member the code relies on is there."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("ecr")
    missing = [
        f"{shape}.{member}"
        for shape, member in ECR_MEMBERS.items()
        if member not in model.shape_for(shape).members
    ]
    assert missing == []
