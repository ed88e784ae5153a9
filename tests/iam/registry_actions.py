"""Registry-protocol requests -> the ECR IAM actions they are authorized as: one table, with the pages.

ECR authorizes each registry request (made with a token from GetAuthorizationToken) as an IAM action of
the principal that got the token, on the repository's ARN ("An authorization token's permission scope
matches that of the IAM principal used to retrieve the authentication token": Amazon ECR user guide,
"Private registry authentication", https://docs.aws.amazon.com/AmazonECR/latest/userguide/registry_auth.html).
A request this table does not know fails the coverage test, naming it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PULL = (
    'ECR API reference, BatchGetImage and GetDownloadUrlForLayer ("When an image is pulled, the '
    'GetDownloadUrlForLayer API is called once per image layer that is not already cached"): '
    "https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_GetDownloadUrlForLayer.html"
)
PUSH = (
    'ECR user guide, "IAM permissions for pushing an image to an Amazon ECR private repository" '
    "(BatchCheckLayerAvailability, InitiateLayerUpload, UploadLayerPart, CompleteLayerUpload, PutImage): "
    "https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-push-iam.html"
)
REFERRERS = (
    'ECR API reference, ListImageReferrers ("The IAM principal invoking this operation must have the '
    'ecr:BatchGetImage permission"): https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_ListImageReferrers.html'
)
TAGS = (
    "Not documented: ECR's pages name no action for the registry API's tag list. Checked as ecr:ListImages, "
    "the API that lists a repository's tags (API reference, ListImages), the stricter reading."
)
DELETE = "ECR API reference, BatchDeleteImage: https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_BatchDeleteImage.html"

ROUTE = re.compile(
    r"^/v2/(?P<name>.+?)/(?P<kind>manifests|blobs/uploads|blobs|tags|referrers)(?:/(?P<rest>.*))?$"
)


@dataclass(frozen=True)
class RegistryAction:
    """The IAM actions one kind of registry request is authorized as."""

    method: str
    kind: str  # manifests, blobs, blobs/uploads, tags, referrers
    actions: tuple[str, ...]
    page: str


TABLE = (
    RegistryAction("GET", "manifests", ("ecr:BatchGetImage",), PULL),
    RegistryAction("HEAD", "manifests", ("ecr:BatchGetImage",), PULL),
    RegistryAction("PUT", "manifests", ("ecr:PutImage",), PUSH),
    RegistryAction("DELETE", "manifests", ("ecr:BatchDeleteImage",), DELETE),
    RegistryAction("GET", "blobs", ("ecr:GetDownloadUrlForLayer",), PULL),
    # "each image layer is checked to verify if it has been uploaded before" (the push page).
    RegistryAction("HEAD", "blobs", ("ecr:BatchCheckLayerAvailability",), PUSH),
    RegistryAction("POST", "blobs/uploads", ("ecr:InitiateLayerUpload",), PUSH),
    RegistryAction("PATCH", "blobs/uploads", ("ecr:UploadLayerPart",), PUSH),
    RegistryAction("PUT", "blobs/uploads", ("ecr:CompleteLayerUpload",), PUSH),
    RegistryAction("GET", "tags", ("ecr:ListImages",), TAGS),
    RegistryAction("GET", "referrers", ("ecr:BatchGetImage",), REFERRERS),
)


class UnknownRequest(LookupError):
    """A registry request the table has no IAM action for."""


def actions_of(method: str, path: str, body: bool) -> tuple[str, tuple[str, ...]]:
    """(repository, IAM actions) of one registry request; a blob upload's closing PUT that carries the data
    (the monolithic upload) is an UploadLayerPart too."""
    route = ROUTE.match(path)
    if route is None:
        raise UnknownRequest(f"{method} {path}: not a repository request this test maps to an IAM action")
    for entry in TABLE:
        if (entry.method, entry.kind) == (method, route["kind"]):
            extra = (
                ("ecr:UploadLayerPart",) if entry.kind == "blobs/uploads" and method == "PUT" and body else ()
            )
            return route["name"], entry.actions + extra
    raise UnknownRequest(f"{method} {path}: no IAM action known for {method} on {route['kind']}")
