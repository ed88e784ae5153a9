"""The registry client factory: ECR token auth for ECR hosts, else basic, bearer or anonymous.

Every reader and writer of a registry (the copy engine, the Gate step, deletes, the inventory, status and
sync) gets its client here, so none of them imports the copy engine for one.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from workflow.registry.auth import EcrTokenProvider, credentials_from_env, ecr_host_parts
from workflow.registry.client import RegistryClient
from workflow.registry.deadline import Bounds
from workflow.registry.pacing import ECR_PUT_IMAGE_RATE
from workflow.registry.retry import RetryPolicy


def make_client(
    registry: str,
    *,
    session: Any = None,
    insecure_registries: Collection[str] = (),
    push: bool = False,
    retry: RetryPolicy | None = None,
    pool_size: int = 16,
    bounds: Bounds | None = None,
    put_rate: float | None = None,
) -> RegistryClient:
    """A client for `registry`: ECR token auth for ECR hosts (manifest PUTs paced to ECR's PutImage
    quota unless `put_rate` says otherwise), else basic/bearer/anonymous."""
    parts = ecr_host_parts(registry)
    if parts:
        if session is None:
            import boto3

            session = boto3.Session()
        return RegistryClient(
            registry,
            push=push,
            ecr=EcrTokenProvider(session, parts[1]),
            retry=retry,
            pool_size=pool_size,
            bounds=bounds,
            put_rate=put_rate or ECR_PUT_IMAGE_RATE,
        )
    return RegistryClient(
        registry,
        insecure=registry in insecure_registries,
        push=push,
        credentials=credentials_from_env(registry),
        retry=retry,
        pool_size=pool_size,
        bounds=bounds,
        put_rate=put_rate,
    )
