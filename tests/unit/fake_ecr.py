"""moto helpers shared by the inventory, sync and reconcile tests: a clean environment, tiny images."""

from __future__ import annotations

import json
from typing import Any

import pytest

# Variables a developer shell may set that would point boto3 or moto elsewhere.
LEAKY_ENVIRONMENT = ("MOTO_ACCOUNT_ID", "AWS_ENDPOINT_URL", "AWS_PROFILE")


def use_moto_environment(monkeypatch: pytest.MonkeyPatch, **extra: str) -> None:
    """Test credentials and Region for moto, nothing inherited that could redirect the calls."""
    for name in LEAKY_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    environment = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        **extra,
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)


def digest(n: int) -> str:
    """A fake sha256 digest derived from n."""
    return "sha256:" + f"{n:064x}"


def push(client: Any, repository: str, tag: str, n: int) -> str:
    """Put a tiny manifest under `tag` with the digest `digest(n)`."""
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": digest(n),
                "size": 2,
            },
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(n + 1), "size": 3}
            ],
        }
    )
    client.put_image(repositoryName=repository, imageManifest=manifest, imageTag=tag, imageDigest=digest(n))
    return digest(n)


NOTATION_SIGNATURE = "application/vnd.cncf.notary.signature"


def managed_signature(client: Any, repository: str, subject: str, n: int) -> str:
    """What ECR managed signing adds to a destination on each push its signing rules match (ECR user guide,
    "Managed signing"): a Notation signature of `subject`, an untagged OCI 1.1 referrer, digest `digest(n)`."""
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": NOTATION_SIGNATURE,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest(n + 1), "size": 2},
            "layers": [{"mediaType": "application/jose+json", "digest": digest(n + 2), "size": 5}],
            "subject": {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": subject,
                "size": 3,
            },
        }
    )
    client.put_image(repositoryName=repository, imageManifest=manifest, imageDigest=digest(n))
    return digest(n)
