"""The registry client factory: ECR token auth for ECR hosts (and endpoints standing for them), else basic,
bearer or anonymous.

Every reader and writer of a registry (the copy engine, the Gate step, deletes, the inventory, status and
sync) gets its client here, so none of them imports the copy engine for one.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from workflow.registry.auth import EcrTokenProvider, credentials_from_env, ecr_endpoint_parts, ecr_host_parts
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
    ecr_token: bool = True,
) -> RegistryClient:
    """A client for `registry`: ECR token auth for ECR hosts (manifest PUTs paced to ECR's PutImage
    quota unless `put_rate` says otherwise) and for endpoints standing for an ECR registry
    (`ECR_REPLICATE_ECR_ENDPOINTS`, the local runtime's), else basic/bearer/anonymous.

    The token comes through `session` (default: the process's own credentials), so the requests are made as
    its principal. `ecr_token=False`: an endpoint read in place of the ECR API (the local runtime's
    listings), which needs no registry token on AWS.
    """
    parts = ecr_host_parts(registry)
    stands_for = ecr_endpoint_parts(registry) if ecr_token and not parts else None
    if parts or stands_for:
        if session is None:
            import boto3

            session = boto3.Session()
        region = (parts or stands_for or ("", ""))[1]
        return RegistryClient(
            registry,
            insecure=registry in insecure_registries and not parts,
            push=push,
            ecr=EcrTokenProvider(session, region),
            retry=retry,
            pool_size=pool_size,
            bounds=bounds,
            put_rate=put_rate or (ECR_PUT_IMAGE_RATE if parts else None),
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
