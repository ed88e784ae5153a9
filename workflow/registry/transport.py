"""One registry host's HTTP exchanges: auth, redirects, bounded bodies, throttling and error answers.

GET follows redirects (ECR sends blob downloads to S3) and sends Authorization only to the registry's own
origin. Every exchange runs under a deadline (`Bounds`); a body is read up to a limit, an error body to a
few KiB, and what it says is cut before it becomes part of a message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import TypeVar
from urllib.parse import urljoin, urlsplit

import urllib3
from urllib3.response import BaseHTTPResponse

from workflow.core.documents import load_json
from workflow.core.exceptions import RegistryAuthError, RegistryProtocolError
from workflow.core.grammar import shown
from workflow.registry import paths
from workflow.registry.auth import Authenticator, Credentials, EcrTokenProvider
from workflow.registry.deadline import Bounds, Watch, watched_pool_manager, watching
from workflow.registry.retry import RetryPolicy, TransientError, parse_retry_after, transport_fault

MAX_REDIRECTS = 5
MAX_ERROR_BODY = 4096
MAX_DRAIN = 64 << 10
TRANSPORT_ERRORS = (urllib3.exceptions.HTTPError, OSError)
# ECR's throttling answers (Amazon ECR troubleshooting, "HTTP 429: Too Many Requests or ThrottleException":
# https://docs.aws.amazon.com/AmazonECR/latest/userguide/common-errors.html).
THROTTLING_CODES = ("TOOMANYREQUESTS", "ThrottlingException", "ThrottleException")
MAX_DETAIL = 300
EXCHANGE_SECONDS = 120.0  # one exchange (request, headers, a bounded body), unless `timeout` says otherwise
T = TypeVar("T")


def discard(response: BaseHTTPResponse) -> None:
    """Release a response whose body is not wanted: drained when short, else the connection is dropped."""
    remaining = getattr(response, "length_remaining", None)  # 0 for a HEAD, None when unknown
    if remaining is not None and remaining <= MAX_DRAIN:
        response.drain_conn()
    else:
        response.close()
    response.release_conn()


class Transport:
    """Sends requests to one registry with its credentials; thread-safe."""

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
        timeout: float | None = None,
        bounds: Bounds | None = None,
    ) -> None:
        self.registry = registry
        self.base = f"{'http' if insecure else 'https'}://{registry}"
        self.push = push
        self.retry = retry or RetryPolicy()
        timeout = EXCHANGE_SECONDS if timeout is None else timeout
        self.bounds = bounds or Bounds(exchange=timeout)
        self.pool = watched_pool_manager(
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

    def exchange(self, what: str) -> AbstractContextManager[Watch]:
        """Bound one exchange (request, headers, bounded body) by `Bounds.exchange` and the copy's deadline."""
        return watching(self.bounds.exchange, f"{self.registry}: {what}", self.bounds.deadline)

    def run(self, operation: Callable[[], T], what: str) -> T:
        """`retry.run` within the copy's deadline."""
        return self.retry.run(operation, what, deadline=self.bounds.deadline)

    def _same_origin(self, url: str) -> bool:
        return paths.origin(url) == paths.origin(self.base)

    def request(
        self,
        method: str,
        url: str,
        repository: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | Iterable[bytes] | None = None,
        follow_redirects: bool = False,
    ) -> BaseHTTPResponse:
        """Send one request with auth (answering one 401 challenge); the body is left unread.

        TransientError for 429, 5xx, ECR's throttling answers and transport faults.
        """
        if url.startswith("/"):
            url = self.base + url
        scope = self.scope(repository)
        replayable = body is None or isinstance(body, bytes)
        for _ in range(2):
            response, answered = self._send(method, url, scope, headers, body, follow_redirects)
            if response.status != 401:
                break
            challenge = response.headers.get("WWW-Authenticate")
            discard(response)
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
            detail = self.error_detail(response)
            raise TransientError(
                f"{self.registry}: {method} {urlsplit(url).path} answered HTTP {response.status}"
                + (f" ({detail})" if detail else ""),
                retry_after,
            )
        return response

    def _send(
        self,
        method: str,
        url: str,
        scope: str,
        headers: dict[str, str] | None,
        body: bytes | Iterable[bytes] | None,
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
                    method, url, headers=send, body=body, preload_content=False, redirect=False, retries=False
                )
            except TRANSPORT_ERRORS as exc:
                raise transport_fault(exc, f"{self.registry}: {method} {urlsplit(url).path}") from exc
            if not (follow_redirects and response.status in (301, 302, 303, 307, 308)):
                return response, url
            location = response.headers.get("Location")
            discard(response)
            if not location:
                raise RegistryProtocolError(
                    f"{self.registry}: redirect without Location for {urlsplit(url).path}"
                )
            target = urljoin(url, location)
            scheme = urlsplit(target).scheme.lower()
            if scheme not in ("http", "https") or (scheme == "http" and self.base.startswith("https:")):
                raise RegistryProtocolError(
                    f"{self.registry}: refusing redirect to {shown(location)} for {urlsplit(url).path}"
                )
            url = target
        raise RegistryProtocolError(f"{self.registry}: too many redirects for {method} {urlsplit(url).path}")

    def read(self, response: BaseHTTPResponse, limit: int, what: str) -> bytes:
        """The whole body, at most `limit` bytes (RegistryProtocolError beyond); the connection is released."""
        try:
            raw = response.read(limit + 1)
            if len(raw) > limit:
                response.close()  # the rest is never read: the connection cannot be reused
                raise RegistryProtocolError(f"{self.registry}: {what} exceeds {limit} bytes")
        except TRANSPORT_ERRORS as exc:
            raise transport_fault(exc, f"{self.registry}: reading {what}") from exc
        finally:
            response.release_conn()
        return bytes(raw)

    def error_detail(self, response: BaseHTTPResponse) -> str:
        """`CODE: message` from at most MAX_ERROR_BODY bytes of a distribution error body, cut; or ""."""
        try:
            raw = response.read(MAX_ERROR_BODY)
        except TRANSPORT_ERRORS:
            raw = b""
        response.close()
        response.release_conn()
        try:
            errors = load_json(raw or b"{}").get("errors") or []
            text = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors if isinstance(e, dict))
        except (ValueError, AttributeError):
            text = raw.decode("utf-8", "replace").strip() if raw else ""
        return text if len(text) <= MAX_DETAIL else f"{text[: MAX_DETAIL - 15]}... (cut)"

    def fail(
        self, response: BaseHTTPResponse, what: str, detail: str | None = None
    ) -> RegistryProtocolError | RegistryAuthError | TransientError:
        """The error for an unexpected answer (its body read, cut, and released)."""
        detail = self.error_detail(response) if detail is None else detail
        message = f"{self.registry}: {what}: HTTP {response.status}" + (f" ({detail})" if detail else "")
        if any(code in detail for code in THROTTLING_CODES):
            return TransientError(message, parse_retry_after(response.headers.get("Retry-After")))
        if response.status == 403:
            return RegistryAuthError(message)
        return RegistryProtocolError(message)
