"""OCI distribution client for one registry host, on urllib3 (one connection pool per host).

Manifests are fetched and put byte-exact and verified by digest. Blobs are streamed: GET follows
redirects (ECR sends blob downloads to S3) and sends Authorization only to the registry's own origin;
uploads are POST then one streaming PUT, or POST, one streaming PATCH, then PUT.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Literal
from urllib.parse import quote, urljoin, urlsplit

import urllib3
from urllib3.response import BaseHTTPResponse

from workflow.exceptions import (
    DestinationTagImmutable,
    DigestMismatch,
    RegistryAuthError,
    RegistryProtocolError,
)
from workflow.registry.auth import Authenticator, Credentials, EcrTokenProvider
from workflow.registry.media import (
    ACCEPT,
    OCI_INDEX,
    Descriptor,
    Manifest,
    compute_digest,
    parse_manifest,
)
from workflow.registry.retry import RetryPolicy, TransientError, parse_retry_after, transport_fault

CHUNK_SIZE = 1 << 20
MAX_MANIFEST_BYTES = 4 << 20
MAX_REDIRECTS = 5
UploadMode = Literal["put", "patch"]
_TRANSPORT_ERRORS = (urllib3.exceptions.HTTPError, OSError)


def _error_detail(response: BaseHTTPResponse) -> str:
    """`CODE: message` from a distribution error body, or an empty string."""
    try:
        errors = json.loads(response.data or b"{}").get("errors") or []
        return "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors if isinstance(e, dict))
    except (ValueError, AttributeError):
        return ""


class RegistryClient:
    """Talks the distribution API to one registry; thread-safe, safe to share between copies."""

    def __init__(
        self,
        registry: str,
        *,
        insecure: bool = False,
        push: bool = False,
        credentials: Credentials | None = None,
        ecr: EcrTokenProvider | None = None,
        retry: RetryPolicy | None = None,
        pool_size: int = 16,
        timeout: float = 120.0,
    ) -> None:
        self.registry = registry
        self.base = f"{'http' if insecure else 'https'}://{registry}"
        self.push = push
        self.retry = retry or RetryPolicy()
        self.pool = urllib3.PoolManager(
            num_pools=8,
            maxsize=pool_size,
            retries=False,
            timeout=urllib3.Timeout(connect=min(timeout, 15.0), read=timeout),
            headers={"User-Agent": "ecr-replicate"},
        )
        self.auth = Authenticator(registry, self.pool, credentials=credentials, ecr=ecr, insecure=insecure)

    def scope(self, repository: str) -> str:
        """The token scope this client needs for `repository`."""
        return f"repository:{repository}:{'pull,push' if self.push else 'pull'}"

    def _same_origin(self, url: str) -> bool:
        parts, base = urlsplit(url), urlsplit(self.base)
        return (parts.scheme, parts.netloc) == (base.scheme, base.netloc)

    def request(
        self,
        method: str,
        url: str,
        repository: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | Iterable[bytes] | None = None,
        stream: bool = False,
        follow_redirects: bool = False,
    ) -> BaseHTTPResponse:
        """Send one request with auth (answering one 401 challenge); raise TransientError for 429/5xx/IO."""
        if url.startswith("/"):
            url = self.base + url
        scope = self.scope(repository)
        replayable = body is None or isinstance(body, bytes)
        for _ in range(2):
            response, answered = self._send(method, url, scope, headers, body, stream, follow_redirects)
            if response.status != 401:
                break
            challenge = response.headers.get("WWW-Authenticate")
            response.drain_conn()
            response.release_conn()
            if not self._same_origin(answered):
                # A redirect target (S3, a CDN) asking for credentials: never hand it the registry's.
                raise RegistryAuthError(
                    f"{self.registry}: {method} {urlsplit(url).path} was redirected to "
                    f"{urlsplit(answered).netloc}, which refused it (HTTP 401)"
                )
            if not self.auth.challenge(challenge, scope):
                raise RegistryAuthError(f"{self.registry}: {method} {urlsplit(url).path} refused (HTTP 401)")
            if not replayable:
                raise TransientError(f"{self.registry}: credentials renewed during {method}; starting again")
        if response.status == 401:
            raise RegistryAuthError(f"{self.registry}: {method} {urlsplit(url).path} refused (HTTP 401)")
        if response.status == 429 or response.status >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            response.drain_conn()
            response.release_conn()
            raise TransientError(
                f"{self.registry}: {method} {urlsplit(url).path} answered HTTP {response.status}", retry_after
            )
        return response

    def _send(
        self,
        method: str,
        url: str,
        scope: str,
        headers: dict[str, str] | None,
        body: bytes | Iterable[bytes] | None,
        stream: bool,
        follow_redirects: bool,
    ) -> tuple[BaseHTTPResponse, str]:
        """The response and the URL that gave it (after any redirects)."""
        all_headers = dict(headers or {})
        authorization = self.auth.header(scope)
        for _ in range(MAX_REDIRECTS + 1):
            send = dict(all_headers)
            if authorization and self._same_origin(url):
                send["Authorization"] = authorization
            try:
                response = self.pool.request(
                    method,
                    url,
                    headers=send,
                    body=body,
                    preload_content=not stream,
                    redirect=False,
                    retries=False,
                )
            except _TRANSPORT_ERRORS as exc:
                raise transport_fault(exc, f"{self.registry}: {method} {urlsplit(url).path}") from exc
            if not (follow_redirects and response.status in (301, 302, 303, 307, 308)):
                return response, url
            location = response.headers.get("Location")
            response.drain_conn()
            response.release_conn()
            if not location:
                raise RegistryProtocolError(
                    f"{self.registry}: redirect without Location for {urlsplit(url).path}"
                )
            url = urljoin(url, location)
        raise RegistryProtocolError(f"{self.registry}: too many redirects for {method} {urlsplit(url).path}")

    def _fail(self, response: BaseHTTPResponse, what: str) -> RegistryProtocolError | RegistryAuthError:
        detail = _error_detail(response)
        message = f"{self.registry}: {what}: HTTP {response.status}" + (f" ({detail})" if detail else "")
        if response.status == 403:
            return RegistryAuthError(message)
        return RegistryProtocolError(message)

    # Manifests

    def get_manifest(self, repository: str, reference: str) -> Manifest | None:
        """The manifest by tag or digest, verified; None when it does not exist."""
        return self.retry.run(
            lambda: self._get_manifest(repository, reference),
            f"manifest {repository}:{reference} at {self.registry}",
        )

    def _get_manifest(self, repository: str, reference: str) -> Manifest | None:
        path = f"/v2/{repository}/manifests/{reference}"
        response = self.request("GET", path, repository, headers={"Accept": ACCEPT}, stream=True)
        try:
            if response.status == 404:
                response.drain_conn()
                return None
            if response.status != 200:
                response.read()
                raise self._fail(response, f"GET manifest {repository}:{reference}")
            raw = response.read(MAX_MANIFEST_BYTES + 1)
            if len(raw) > MAX_MANIFEST_BYTES:
                response.close()  # the rest is never read: the connection cannot be reused
                raise RegistryProtocolError(
                    f"{self.registry}: manifest {repository}:{reference} exceeds 4 MiB"
                )
        except _TRANSPORT_ERRORS as exc:
            raise transport_fault(exc, f"{self.registry}: reading manifest {repository}:{reference}") from exc
        finally:
            response.release_conn()
        expected = reference if reference.startswith(("sha256:", "sha512:")) else None
        header = response.headers.get("Docker-Content-Digest")
        digest = compute_digest(raw, expected or header or "sha256:")
        where = f"{self.registry}/{repository}"
        if expected and digest != expected:
            raise DigestMismatch(f"manifest {expected} from {where} hashes to {digest}")
        if header and header.split(":")[0] == digest.split(":")[0] and header != digest:
            raise DigestMismatch(
                f"manifest {repository}:{reference} from {self.registry}: "
                f"Docker-Content-Digest {header} but the bytes hash to {digest}"
            )
        return parse_manifest(raw, response.headers.get("Content-Type"), digest, where)

    def head_manifest(self, repository: str, reference: str) -> str | None:
        """The digest of the manifest under `reference`, or None when it does not exist."""

        def attempt() -> tuple[bool, str | None]:
            response = self.request(
                "HEAD", f"/v2/{repository}/manifests/{reference}", repository, headers={"Accept": ACCEPT}
            )
            if response.status == 404:
                return False, None
            if response.status != 200:
                raise self._fail(response, f"HEAD manifest {repository}:{reference}")
            return True, response.headers.get("Docker-Content-Digest")

        exists, digest = self.retry.run(attempt, f"manifest {repository}:{reference} at {self.registry}")
        if exists and digest is None:
            manifest = self.get_manifest(repository, reference)
            return manifest.digest if manifest else None
        return digest

    def put_manifest(self, repository: str, reference: str, manifest: Manifest) -> bool:
        """Put `manifest` byte-exact under a tag or its digest; True when the registry reports OCI-Subject."""

        def attempt() -> bool:
            response = self.request(
                "PUT",
                f"/v2/{repository}/manifests/{reference}",
                repository,
                headers={"Content-Type": manifest.media_type},
                body=manifest.raw,
            )
            if response.status in (200, 201, 202, 204):
                returned = response.headers.get("Docker-Content-Digest")
                if (
                    returned
                    and returned.split(":")[0] == manifest.digest.split(":")[0]
                    and returned != manifest.digest
                ):
                    raise DigestMismatch(
                        f"{self.registry}/{repository}: manifest {manifest.digest} was stored as {returned}"
                    )
                return bool(response.headers.get("OCI-Subject"))
            detail = _error_detail(response)
            if response.status == 400 and "TAG_INVALID" in detail and "immutable" in detail.lower():
                # ECR refuses even the same manifest again under an immutable tag: that is not a failure
                # (a duplicate event, or two runs racing).
                current = self.head_manifest(repository, reference)
                if current == manifest.digest:
                    return False
                raise DestinationTagImmutable(
                    f"{self.registry}/{repository}:{reference} is immutable and points at "
                    f"{current or 'another digest'}, not {manifest.digest}"
                )
            raise self._fail(response, f"PUT manifest {repository}:{reference}")

        return self.retry.run(
            attempt, f"manifest {manifest.digest} to {self.registry}/{repository}:{reference}"
        )

    # Blobs

    def blob_exists(self, repository: str, digest: str) -> bool:
        """True when the registry has the blob in `repository`."""

        def attempt() -> bool:
            response = self.request(
                "HEAD", f"/v2/{repository}/blobs/{digest}", repository, follow_redirects=True
            )
            if response.status == 200:
                return True
            if response.status == 404:
                return False
            raise self._fail(response, f"HEAD blob {digest} in {repository}")

        return self.retry.run(attempt, f"blob {digest} at {self.registry}/{repository}")

    def open_blob(self, repository: str, digest: str) -> BaseHTTPResponse:
        """A streaming response for the blob (the caller closes it); no retry here."""
        response = self.request(
            "GET", f"/v2/{repository}/blobs/{digest}", repository, stream=True, follow_redirects=True
        )
        if response.status == 200:
            return response
        response.read()
        response.release_conn()
        if response.status == 404:
            raise RegistryProtocolError(f"{self.registry}/{repository}: blob {digest} not found")
        raise self._fail(response, f"GET blob {digest} in {repository}")

    def read_blob(self, repository: str, digest: str) -> bytes:
        """A small blob (an image config) whole, retried like any read; the caller checks what it needs."""

        def attempt() -> bytes:
            response = self.open_blob(repository, digest)
            try:
                return bytes(response.read())
            except _TRANSPORT_ERRORS as exc:
                response.close()
                raise transport_fault(exc, f"{self.registry}: reading blob {digest} in {repository}") from exc
            finally:
                response.release_conn()

        return self.retry.run(attempt, f"blob {digest} at {self.registry}/{repository}")

    def upload_blob(
        self, repository: str, digest: str, size: int, body: Iterable[bytes], mode: UploadMode = "put"
    ) -> None:
        """Upload one blob in a fresh session; raises TransientError on retryable faults (no retry here)."""
        response = self.request(
            "POST", f"/v2/{repository}/blobs/uploads/", repository, headers={"Content-Length": "0"}
        )
        location = response.headers.get("Location")
        if response.status != 202 or not location:
            raise self._fail(response, f"POST upload of blob {digest} to {repository}")
        location = urljoin(self.base + "/", location)
        if mode == "patch":
            response = self.request(
                "PATCH",
                location,
                repository,
                body=body,
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            )
            if response.status not in (201, 202, 204) or not response.headers.get("Location"):
                raise self._fail(response, f"PATCH blob {digest} to {repository}")
            location = urljoin(location, response.headers["Location"])
            body, size = (), 0
        separator = "&" if "?" in location else "?"
        response = self.request(
            "PUT",
            f"{location}{separator}digest={quote(digest)}",
            repository,
            body=body,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
        )
        if response.status not in (201, 204):
            raise self._upload_error(response, digest, repository)
        returned = response.headers.get("Docker-Content-Digest")
        if returned and returned.split(":")[0] == digest.split(":")[0] and returned != digest:
            raise DigestMismatch(f"{self.registry}/{repository}: blob {digest} was stored as {returned}")

    def _upload_error(self, response: BaseHTTPResponse, digest: str, repository: str) -> Exception:
        detail = _error_detail(response)
        if "DIGEST_INVALID" in detail:
            return DigestMismatch(f"{self.registry}/{repository} rejected blob {digest}: {detail}")
        return self._fail(response, f"PUT blob {digest} to {repository}")

    # Referrers and tags

    def referrers(self, repository: str, digest: str) -> list[Descriptor] | None:
        """Referrers of `digest` through the OCI 1.1 referrers API; None when the registry lacks it."""

        def attempt() -> list[Descriptor] | None:
            found: list[Descriptor] = []
            url = f"/v2/{repository}/referrers/{digest}"
            while url:
                response = self.request("GET", url, repository, headers={"Accept": OCI_INDEX})
                content_type = (response.headers.get("Content-Type") or "").split(";")[0].strip()
                if response.status in (404, 405) or (response.status == 200 and content_type != OCI_INDEX):
                    return None
                if response.status != 200:
                    raise self._fail(response, f"GET referrers of {digest} in {repository}")
                index = parse_manifest(response.data, OCI_INDEX, "", f"{self.registry}/{repository}")
                found.extend(index.children)
                url = self._next_link(response, url)
            return found

        return self.retry.run(attempt, f"referrers of {digest} at {self.registry}/{repository}")

    def list_tags(self, repository: str) -> list[str]:
        """All tags of `repository` (following pagination); empty when the repository does not exist."""

        def attempt() -> list[str]:
            tags: list[str] = []
            url = f"/v2/{repository}/tags/list?n=1000"
            while url:
                response = self.request("GET", url, repository)
                if response.status == 404:
                    return tags
                if response.status != 200:
                    raise self._fail(response, f"GET tags of {repository}")
                try:
                    tags.extend(json.loads(response.data).get("tags") or [])
                except (ValueError, AttributeError) as exc:
                    raise RegistryProtocolError(
                        f"{self.registry}: tag list of {repository} is not JSON"
                    ) from exc
                url = self._next_link(response, url)
            return tags

        return self.retry.run(attempt, f"tags of {self.registry}/{repository}")

    def _next_link(self, response: BaseHTTPResponse, current: str) -> str:
        link = response.headers.get("Link") or ""
        if 'rel="next"' not in link or "<" not in link:
            return ""
        target = link[link.index("<") + 1 : link.index(">")]
        return urljoin(self.base + current if current.startswith("/") else current, target)
