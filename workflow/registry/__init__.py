"""OCI distribution client: references, auth (anonymous, basic, bearer, ECR), manifests and blobs."""

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
