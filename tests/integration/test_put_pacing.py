"""PutImage pacing across copy builds: ECR's quota is per account and Region, shared by every build there.

Each `ecr-replicate copy` here is its own process, as each CodeBuild build is, with its own token bucket;
the destination stands for one ECR account and Region behind ECR's PutImage quota (10 a second).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.faults import FaultProxy, Throttle
from tests.integration.images import ImageBuilder
from tests.integration.registries import RegistryServer, skopeo_digest
from workflow.models.config import parse_config
from workflow.models.payloads import ReplicationRequest, Target
from workflow.pipeline.plan import plan
from workflow.registry.pacing import ECR_PUT_IMAGE_RATE

pytestmark = pytest.mark.integration

BUILDS = 4
PLATFORMS = tuple(("linux", f"arch{n}") for n in range(16))  # an index of 16 images: 17 PutImage per copy


def _config(repository: str, source: str, destination: str) -> dict[str, Any]:
    """BUILDS rules sending `repository` to 222222222222/eu-west-1 under their own prefixes, all at once."""
    return {
        "source": {"account": "111111111111", "region": "us-east-1"},
        "max_concurrency": BUILDS,
        "rules": [
            {
                "name": f"r{n}",
                "repositories": [repository],
                "tags": {"include": ["release-*"]},
                "destinations": [
                    {
                        "account": "222222222222",
                        "regions": ["eu-west-1"],
                        "repository": f"m{n}/{{repository}}",
                    }
                ],
            }
            for n in range(BUILDS)
        ],
        "endpoints": [
            {"account": "111111111111", "region": "us-east-1", "registry": source, "insecure": True},
            {"account": "222222222222", "region": "eu-west-1", "registry": destination, "insecure": True},
        ],
    }


def _build(target: Target, put_rate: float) -> subprocess.Popen[str]:
    """One copy build, as the buildspec runs it, pacing at `put_rate`."""
    return subprocess.Popen(
        [
            sys.executable, "-m", "workflow.cli", "copy", target.source_image, target.destination_reference,
            "--insecure-registry", target.source_registry, "--insecure-registry", target.registry,
            "--put-rate", str(put_rate), "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )  # fmt: skip


@pytest.mark.parametrize("pace", ["share", "whole quota"])
def test_concurrent_builds_into_one_account_and_region_stay_within_its_put_image_quota(
    builder: ImageBuilder,
    source_registry: RegistryServer,
    dest_registry: RegistryServer,
    proxy_for: Callable[[RegistryServer], FaultProxy],
    repo: str,
    pace: str,
) -> None:
    # Given a destination account and Region that allows 10 PutImage a second (a burst of 10) and answers
    # 429 TOOMANYREQUESTS beyond, and an image of 17 manifests that 4 rules send there at once
    proxy = proxy_for(dest_registry)
    proxy.throttle = Throttle("PUT", r"/manifests/", rate=ECR_PUT_IMAGE_RATE, burst=int(ECR_PUT_IMAGE_RATE))
    pushed = builder.index(repo, "release-1", layer_sizes=(256,), platforms=PLATFORMS)
    config = parse_config(_config(repo, source_registry.host, proxy.host))
    targets = plan(ReplicationRequest(repository=repo, tag="release-1"), config).targets
    assert len(targets) == BUILDS
    # When the 4 copy builds run at once, each pacing at the share the plan gave it (2.5 a second), or
    # each at the whole quota (as every build did before)
    builds = [_build(t, t.put_rate if pace == "share" else ECR_PUT_IMAGE_RATE) for t in targets]
    outcomes = [build.communicate(timeout=240) for build in builds]
    # Then every copy succeeds (a 429 is waited out and retried)
    assert [build.returncode for build in builds] == [0] * BUILDS, [err for _, err in outcomes]
    for target in targets:
        assert skopeo_digest(f"{dest_registry.host}/{target.repository}:release-1") == pushed.digest
    assert len(proxy.requests("PUT", r"/manifests/")) >= BUILDS * (len(PLATFORMS) + 1)
    # And at their shares the builds together never exceed the quota; at the whole quota each, they do
    if pace == "share":
        assert {t.put_rate for t in targets} == {ECR_PUT_IMAGE_RATE / BUILDS}
        assert proxy.throttle.throttled == 0
    else:
        assert proxy.throttle.throttled > 0
