"""Image references: `host[:port]/repo[/sub][:tag][@sha256:hex]`, validated against the OCI and ECR grammar."""

from __future__ import annotations

import re
from dataclasses import dataclass

from workflow.core.exceptions import InvalidReference

DEFAULT_REGISTRY = "registry-1.docker.io"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
REPOSITORY_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
DIGEST_RE = re.compile(r"^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")
_HOST_RE = re.compile(
    r"^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)"
    r"(?::(?P<port>[0-9]{1,5}))?$"
)
MAX_REPOSITORY_LENGTH = 256


@dataclass(frozen=True)
class ImageReference:
    """A parsed image reference. At least one of `tag` and `digest` is set."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def reference(self) -> str:
        """What addresses the manifest: the digest when there is one, else the tag."""
        return self.digest or self.tag or "latest"

    def with_tag(self, tag: str) -> ImageReference:
        """The same repository under another tag (and no digest)."""
        return ImageReference(self.registry, self.repository, tag, None)

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def validate_repository(name: str) -> str:
    """Return `name` if it is a valid OCI/ECR repository name, else raise InvalidReference."""
    if not REPOSITORY_RE.match(name) or len(name) > MAX_REPOSITORY_LENGTH:
        raise InvalidReference(
            f"invalid repository name {name!r}: lowercase letters, digits and separators (. _ __ - /), "
            f"at most {MAX_REPOSITORY_LENGTH} characters"
        )
    return name


def validate_tag(tag: str) -> str:
    """Return `tag` if it is a valid OCI/ECR tag, else raise InvalidReference."""
    if not TAG_RE.match(tag):
        raise InvalidReference(
            f"invalid tag {tag!r}: up to 128 of [A-Za-z0-9_.-], not starting with '.' or '-'"
        )
    return tag


def validate_digest(digest: str) -> str:
    """Return `digest` if it is a well-formed sha256/sha512 digest, else raise InvalidReference."""
    if not DIGEST_RE.match(digest):
        raise InvalidReference(f"invalid digest {digest!r}: expected sha256:<64 hex> or sha512:<128 hex>")
    return digest


def parse_reference(text: str) -> ImageReference:
    """Parse `host[:port]/repo[:tag][@digest]`; without a host (no '.' or ':' and not localhost), Docker Hub."""
    if not text or text != text.strip() or any(c.isspace() for c in text):
        raise InvalidReference(f"invalid image reference {text!r}: empty or contains whitespace")
    remainder, digest = text, None
    if "@" in text:
        remainder, digest = text.split("@", 1)
        validate_digest(digest)
    first, sep, rest = remainder.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        registry = first
        host = _HOST_RE.match(registry)
        if not host:
            raise InvalidReference(f"invalid registry host {registry!r} in {text!r}")
        if host["port"] is not None and not 1 <= int(host["port"]) <= 65535:
            raise InvalidReference(f"invalid registry port {host['port']} in {text!r}: ports are 1-65535")
        path = rest
    else:
        registry, path = DEFAULT_REGISTRY, remainder
        if "/" not in path:
            path = f"library/{path}"
    tag = None
    last_slash = path.rfind("/")
    colon = path.rfind(":")
    if colon > last_slash:
        path, tag = path[:colon], path[colon + 1 :]
        validate_tag(tag)
    if not path:
        raise InvalidReference(f"invalid image reference {text!r}: no repository")
    validate_repository(path)
    if tag is None and digest is None:
        tag = "latest"
    return ImageReference(registry=registry, repository=path, tag=tag, digest=digest)
