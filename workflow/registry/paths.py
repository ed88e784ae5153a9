"""Request URLs from validated values, and checks on what a registry sends back: the one place both are done.

Every value a registry returns is untrusted: a tag from a tag list, a digest, media type or size in a
manifest or referrers list, a `Location` or `Link` header. Each is checked against the OCI distribution
grammar before use (RegistryProtocolError naming the value, cut), and a request path is only ever
built here, from segments that passed those checks and are percent-encoded.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote, urljoin, urlsplit

from workflow.core.exceptions import RegistryProtocolError
from workflow.core.grammar import shown
from workflow.registry.reference import DIGEST_RE, MAX_REPOSITORY_LENGTH, REPOSITORY_RE, TAG_RE

# RFC 6838 type/subtype, which the OCI image spec requires of a descriptor's mediaType.
_RESTRICTED_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
MEDIA_TYPE_RE = re.compile(rf"^{_RESTRICTED_NAME}/{_RESTRICTED_NAME}$")
MAX_SIZE = (1 << 53) - 1  # the largest integer JSON carries exactly


def tag(value: object, where: str) -> str:
    """`value` if it is a valid tag, else RegistryProtocolError."""
    if not isinstance(value, str) or not TAG_RE.match(value):
        raise RegistryProtocolError(f"{where}: refusing tag {shown(value)}: not a valid OCI tag")
    return value


def digest(value: object, where: str) -> str:
    """`value` if it is a sha256/sha512 digest, else RegistryProtocolError."""
    if not isinstance(value, str) or not DIGEST_RE.match(value):
        raise RegistryProtocolError(
            f"{where}: refusing digest {shown(value)}: expected sha256:<64 hex> or sha512:<128 hex>"
        )
    return value


def repository(value: object, where: str) -> str:
    """`value` if it is a valid repository name, else RegistryProtocolError."""
    if not isinstance(value, str) or not REPOSITORY_RE.match(value) or len(value) > MAX_REPOSITORY_LENGTH:
        raise RegistryProtocolError(f"{where}: refusing repository name {shown(value)}")
    return value


def reference(value: str, where: str) -> str:
    """A tag or a digest, checked."""
    return digest(value, where) if ":" in value else tag(value, where)


def media_type(value: object, where: str) -> str:
    """`value` if it is an RFC 6838 media type (or empty: absent), else RegistryProtocolError."""
    if value == "":
        return ""
    if not isinstance(value, str) or not MEDIA_TYPE_RE.match(value):
        raise RegistryProtocolError(f"{where}: refusing media type {shown(value)}")
    return value


def size(value: object, where: str) -> int:
    """`value` if it is a size in bytes (an integer, not a bool, 0 to 2**53-1), else RegistryProtocolError."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SIZE:
        raise RegistryProtocolError(f"{where}: refusing size {shown(value)}: not a byte count")
    return value


def _segment(value: str) -> str:
    return quote(value, safe="/:")


def manifest(repo: str, ref: str, where: str) -> str:
    """`/v2/<repo>/manifests/<tag or digest>`."""
    return f"/v2/{_segment(repository(repo, where))}/manifests/{_segment(reference(ref, where))}"


def blob(repo: str, value: str, where: str) -> str:
    """`/v2/<repo>/blobs/<digest>`."""
    return f"/v2/{_segment(repository(repo, where))}/blobs/{_segment(digest(value, where))}"


def uploads(repo: str, where: str) -> str:
    """`/v2/<repo>/blobs/uploads/`, where an upload session starts and every one of its URLs lies."""
    return f"/v2/{_segment(repository(repo, where))}/blobs/uploads/"


def referrers(repo: str, value: str, where: str) -> str:
    """`/v2/<repo>/referrers/<digest>`."""
    return f"/v2/{_segment(repository(repo, where))}/referrers/{_segment(digest(value, where))}"


def tags(repo: str, where: str) -> str:
    """`/v2/<repo>/tags/list`."""
    return f"/v2/{_segment(repository(repo, where))}/tags/list"


CATALOG = "/v2/_catalog"


def origin(url: str) -> tuple[str, str]:
    """(scheme, host[:port]) of `url`, lower case."""
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def same_endpoint(base: str, current: str, target: str | None, path: str, what: str) -> str:
    """`target` (a `Location` or `Link` URL, maybe relative to `current`) made absolute, if it stays on
    `base`'s origin at `path` (or under it, when `path` ends in '/'); else RegistryProtocolError.
    Credentials and upload bodies go only there."""
    if not target:
        raise RegistryProtocolError(f"{what}: no URL given")
    url = urljoin(current, target)
    at = urlsplit(url).path
    decoded = unquote(at)
    inside = at.startswith(path) if path.endswith("/") else at == path
    if (
        origin(url) != origin(base)
        or not inside
        or decoded.count("/") != at.count("/")
        or any(part in (".", "..") for part in decoded.split("/"))
    ):
        raise RegistryProtocolError(f"{what}: refusing URL {shown(target)}: it leaves {base}{path}")
    return url
