"""OCI distribution client: references, auth (anonymous, basic, bearer, ECR), manifests and blobs, and the
client factory (`factory.make_client`: ECR token auth for ECR hosts, else basic, bearer or anonymous).

May import: core/. No pydantic: the copy job's asset ships registry/.
"""

from __future__ import annotations

from workflow.registry.auth import (
    AUTH_ENV,
    Credentials,
    EcrTokenProvider,
    credentials_from_env,
    ecr_host_parts,
)
from workflow.registry.client import RegistryClient
from workflow.registry.media import Descriptor, Manifest
from workflow.registry.reference import ImageReference, parse_reference
from workflow.registry.retry import RetryPolicy

__all__ = [
    "AUTH_ENV",
    "Credentials",
    "Descriptor",
    "EcrTokenProvider",
    "ImageReference",
    "Manifest",
    "RegistryClient",
    "RetryPolicy",
    "credentials_from_env",
    "ecr_host_parts",
    "parse_reference",
]
