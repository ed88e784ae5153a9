"""The copy job runs every path of `ecr-replicate copy` from its asset alone, on each Python it meets.

CodeBuild's EC2 image (`standard:5.0`) has Python 3.11 and the Lambda-compute image 3.12; neither has
this project's dependencies. So the synthesized asset is the only thing on PYTHONPATH, under
`python3 -S` (no site-packages at all), and the driver fails on any module imported from elsewhere.
The destination is an ECR host name: its registry API is a real docker-registry over TLS, its control
plane (STS, GetAuthorizationToken, DescribeRepositories for tag mutability) is a moto server.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.moto_api import _internal as moto_api
from moto.server import ThreadedMotoServer

from tests.infrastructure.conftest import Synthesized, resources
from tests.integration.images import ImageBuilder
from tests.integration.registries import RegistryServer, skopeo_digest
from workflow.local.registries import free_port

pytestmark = pytest.mark.infrastructure

ACCOUNT = "123456789012"  # moto's account: its ECR answers for this registry id
REGION = "us-east-1"
ECR_HOST = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/ecr-replication-target"
DRIVER = Path(__file__).with_name("copy_asset_driver.py")


def _interpreter(version: str) -> str | None:
    """A python`version` on this machine that runs, or None."""
    candidates = [sys.executable] if f"{sys.version_info.major}.{sys.version_info.minor}" == version else []
    candidates += [shutil.which(f"python{version}") or ""]
    candidates += sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}*/bin/python{version}")))
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-S", "-c", "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return candidate
    return None


@dataclass
class World:
    """The asset, a source registry, the ECR stand-in (registry + moto) and a scratch folder."""

    asset: Path
    source: RegistryServer
    ecr: RegistryServer
    moto_url: str
    scratch: Path

    def run(self, python: str, source: str, destination: str) -> tuple[int, dict[str, Any], str]:
        """`ecr-replicate copy` from the asset; (exit code, result file, stderr)."""
        result = self.scratch / "result.json"
        result.unlink(missing_ok=True)
        driver = self.scratch / "driver.py"
        shutil.copy(DRIVER, driver)
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(self.scratch),
            "PYTHONPATH": str(self.asset),
            "AWS_ENDPOINT_URL": self.moto_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
            "SSL_CERT_FILE": str(self.ecr.tls.ca if self.ecr.tls else ""),
            "ECR_ROUTE": f"{ECR_HOST}={self.ecr.host}",
        }
        command = [
            python,
            "-S",
            str(driver),
            "copy",
            f"{self.source.host}/{source}",
            f"{ECR_HOST}/{destination}",
        ]
        command += [
            "--dst-role-arn",
            ROLE,
            "--insecure-registry",
            self.source.host,
            "--result-file",
            str(result),
        ]
        completed = subprocess.run(
            command, env=env, cwd=self.scratch, capture_output=True, text=True, timeout=120, check=False
        )
        return completed.returncode, json.loads(result.read_text()), completed.stderr


def copy_job_asset(synthesized: Synthesized) -> Path:
    """The staged asset of the copy project's source."""
    _, project = next(iter(resources(synthesized.source_template, "AWS::CodeBuild::Project").items()))
    return synthesized.asset_path(
        "EcrReplicationSource", project["Properties"]["Source"]["Location"].split("/", 1)[1]
    )


def test_the_asset_holds_only_the_copy_jobs_packages(synthesized: Synthesized) -> None:
    # Given the synthesized copy-job asset, When its `workflow` folder is listed
    shipped = sorted(path.name for path in (copy_job_asset(synthesized) / "workflow").iterdir())
    # Then it holds core/, registry/ and engine/ (no models, gates, pipeline, ops, commands or local runtime)
    assert shipped == ["__init__.py", "core", "engine", "registry"]


@pytest.fixture(scope="module")
def world(synthesized: Synthesized, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Everything the copy job meets, on loopback."""
    asset = copy_job_asset(synthesized)
    port = free_port()
    moto_api.moto_api_backend.reset()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    source = RegistryServer.start(tmp_path_factory.mktemp("asset-source"))
    ecr = RegistryServer.start(tmp_path_factory.mktemp("asset-ecr"), tls=True, tls_names=(ECR_HOST,))
    try:
        yield World(asset, source, ecr, f"http://127.0.0.1:{port}", tmp_path_factory.mktemp("asset-run"))
    finally:
        ecr.stop()
        source.stop()
        moto.stop()
        moto_api.moto_api_backend.reset()


@pytest.mark.parametrize("version", ["3.11", "3.12"])
def test_every_path_of_the_copy_command_runs_from_the_asset_alone(
    world: World, version: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    python = _interpreter(version)
    if python is None:
        pytest.skip(f"no Python {version} interpreter on this machine")
    # Given ECR repositories, one with mutable tags and one with immutable ones (moto), and two source images,
    # the first signed (a cosign signature tag, copied as its referrer)
    for name in ("AWS_PROFILE", "MOTO_ACCOUNT_ID"):
        monkeypatch.delenv(name, raising=False)
    ecr = boto3.client(
        "ecr",
        region_name=REGION,
        endpoint_url=world.moto_url,
        aws_access_key_id="t",
        aws_secret_access_key="t",
    )
    app, locked = f"app{version.replace('.', '')}", f"locked{version.replace('.', '')}"
    ecr.create_repository(repositoryName=app, imageTagMutability="MUTABLE")
    ecr.create_repository(repositoryName=locked, imageTagMutability="IMMUTABLE")
    builder = ImageBuilder(world.source.url)
    first, second = builder.image("src", f"one{version}"), builder.image("src", f"two{version}")
    builder.signature_tag("src", first.digest)
    builder.close()

    def dest(reference: str) -> str | None:
        return skopeo_digest(f"{world.ecr.host}/{reference}")

    # When each path of the command runs, Then each reports its own result, digest kept
    # a cold copy, with its signature
    code, result, stderr = world.run(python, f"src:one{version}", f"{app}:v1")
    assert (code, result.get("action"), result.get("referrers_copied")) == (0, "copied", 1), (result, stderr)
    assert dest(f"{app}:v1") == first.digest
    # the same copy again: present
    code, result, stderr = world.run(python, f"src:one{version}", f"{app}:v1")
    assert (code, result.get("action")) == (0, "present"), (result, stderr)
    # the digest under a new tag: tagged, no blob moved
    code, result, stderr = world.run(python, f"src:one{version}", f"{app}:stable")
    assert (code, result.get("action"), result.get("blobs_copied")) == (0, "tagged", 0), (result, stderr)
    # a tag moved to another image in a mutable repository (ECR is asked whether the tag is immutable)
    code, result, stderr = world.run(python, f"src:two{version}", f"{app}:stable")
    assert (code, result.get("action")) == (0, "copied"), (result, stderr)
    assert dest(f"{app}:stable") == second.digest
    # and moved back: retagged
    code, result, stderr = world.run(python, f"src:one{version}", f"{app}:stable")
    assert (code, result.get("action")) == (0, "tagged"), (result, stderr)
    assert dest(f"{app}:stable") == first.digest
    # an immutable tag that points elsewhere: refused before anything is written
    code, result, stderr = world.run(python, f"src:one{version}", f"{locked}:v1")
    assert (code, result.get("action")) == (0, "copied"), (result, stderr)
    code, result, stderr = world.run(python, f"src:two{version}", f"{locked}:v1")
    assert (code, result.get("error")) == (1, "DestinationTagImmutable"), (result, stderr)
    assert f"{locked}:v1" in result["message"]
    assert dest(f"{locked}:v1") == first.digest
    # a failing copy writes its error
    code, result, stderr = world.run(python, "src:missing", f"{app}:missing")
    assert (code, result.get("error")) == (1, "ImageNotFound"), (result, stderr)
