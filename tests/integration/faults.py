"""An HTTP proxy in front of a registry that injects faults, fakes the referrers API and S3 redirects, and
refuses OCI 1.1 referrer manifests as ECR does."""

from __future__ import annotations

import http.client
import json
import re
import socket
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from workflow.local.ecr_front import SHUTDOWN_POLL_SECONDS

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"}
REFERRERS_RE = re.compile(r"^/v2/(?P<name>.+)/referrers/(?P<digest>[a-z0-9]+:[a-f0-9]+)$")
SLOW_BYTES_PER_SECOND = 64 * 1024
BLOB_GET_RE = re.compile(r"^/v2/(?P<name>.+)/blobs/(?P<digest>sha256:[a-f0-9]{64})$")
MANIFEST_RE = re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<reference>[^/]+)$")
# ECR answers the PUT of some OCI 1.1 referrer manifests (those with both `subject` and `artifactType`)
# "405 Method Not Allowed" (aws/containers-roadmap#2783, pushing with `oras copy -r`), with the "Invalid JSON"
# error ECR gives manifests it does not accept (docker/compose#11239: "405 Method Not Supported with cryptic
# Invalid JSON errors").
REFERRER_REFUSAL = (
    b'{"errors":[{"code":"UNSUPPORTED","message":"Invalid parameter at \'ImageManifest\' failed to satisfy '
    b"constraint: 'Invalid JSON syntax'\"}]}"
)


def is_oci_referrer(body: bytes) -> bool:
    """True for a manifest that names a `subject` and an `artifactType` (an OCI 1.1 referrer artifact)."""
    try:
        document = json.loads(body)
    except ValueError:
        return False
    return isinstance(document, dict) and "subject" in document and "artifactType" in document


@dataclass
class Fault:
    """Answer up to `times` requests matching `method` and the `path` regex with a fault.

    kind: "status" (answer `status` with `headers`/`body`), "reset" (send half the body, then RST),
    "truncate" (send half the body, then close), "corrupt" (flip one byte of the body), "slow"
    (send the whole body at about SLOW_BYTES_PER_SECOND), "stall" (read the request, then answer nothing
    for `seconds`, or until the proxy stops, and drop the connection) or "forwarded-status" (forward the
    request, then answer `status` with `headers`/`body` instead of the registry's answer: a write that
    happened but was reported failed, as when another writer races it).
    """

    method: str
    path: str
    kind: str
    times: int = 1
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    hits: int = 0
    seconds: float = 600.0


@dataclass
class Throttle:
    """ECR-style throttling: requests matching `method` and `path` beyond a token bucket of `rate` a second
    (`burst` at once) are answered `status` with `body` and `Retry-After: retry_after`."""

    method: str
    path: str
    rate: float
    burst: int
    status: int = 429
    body: bytes = b'{"errors":[{"code":"TOOMANYREQUESTS","message":"Rate exceeded"}]}'
    retry_after: str = "1"
    throttled: int = 0
    _tokens: float = -1.0
    _at: float = 0.0

    def admit(self, method: str, path: str) -> bool:
        """True when the request may pass (a token is taken); False when it is throttled."""
        if method != self.method or not re.search(self.path, path):
            return True
        now = time.monotonic()
        if self._tokens < 0:
            self._tokens, self._at = float(self.burst), now
        self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        self.throttled += 1
        return False


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        return


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        parts = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                handler.rfile.readline()
                return b"".join(parts)
            parts.append(handler.rfile.read(size))
            handler.rfile.readline()
    return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))


class FaultProxy:
    """Forwards to `upstream` (`host:port`); see `faults`, `referrers`, `redirect_blobs`, `storage_challenge`."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.faults: list[Fault] = []
        self.referrers: dict[str, list[dict[str, Any]]] | None = None
        self.redirect_blobs = False
        self.storage_challenge: str | None = None  # when set, storage answers 401 with this challenge
        self.refuse_referrers = False  # when set, PUTs of OCI 1.1 referrer manifests are answered 405, as ECR
        self.throttle: Throttle | None = None
        self.log: list[tuple[str, str, int]] = []
        self.stopped = threading.Event()
        self.s3_log: list[tuple[str, bool]] = []
        self._presigned: dict[str, tuple[str, str | None]] = {}
        self._lock = threading.Lock()
        self.server = _Server(("127.0.0.1", 0), self._handler())
        self.s3 = _Server(("127.0.0.1", 0), self._s3_handler())
        for server in (self.server, self.s3):
            threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL_SECONDS}, daemon=True
            ).start()

    @property
    def host(self) -> str:
        """`127.0.0.1:<port>` of the proxy."""
        return f"127.0.0.1:{self.server.server_address[1]}"

    def add(self, fault: Fault) -> Fault:
        """Arm a fault."""
        with self._lock:
            self.faults.append(fault)
        return fault

    def requests(self, method: str, pattern: str) -> list[tuple[str, str, int]]:
        """Logged requests with `method` whose path matches `pattern`."""
        return [entry for entry in self.log if entry[0] == method and re.search(pattern, entry[1])]

    def stop(self) -> None:
        """Stop both servers (stalled requests end)."""
        self.stopped.set()
        for server in (self.server, self.s3):
            server.shutdown()
            server.server_close()

    def _match(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.method == method and re.search(fault.path, path) and fault.hits < fault.times:
                    fault.hits += 1
                    return fault
        return None

    def _forward(
        self, method: str, path: str, headers: Any, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection(self.upstream, timeout=60)
        try:
            sent = {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP}
            if body or method in ("PUT", "POST", "PATCH"):
                sent["Content-Length"] = str(len(body))
            connection.request(method, path, body=body or None, headers=sent)
            response = connection.getresponse()
            data = response.read()
            return (
                response.status,
                [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP],
                data,
            )
        finally:
            connection.close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def _reply(
                self, status: int, headers: list[tuple[str, str]], body: bytes, send: int | None = None
            ) -> None:
                self.send_response(status)
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body[:send] if send is not None else body)

            def handle_any(self) -> None:
                body = _read_body(self)
                path = self.path.split("?")[0]
                match = REFERRERS_RE.match(path)
                if match and proxy.referrers is not None and self.command == "GET":
                    index = json.dumps(
                        {
                            "schemaVersion": 2,
                            "mediaType": OCI_INDEX,
                            "manifests": proxy.referrers.get(match["digest"], []),
                        }
                    ).encode()
                    proxy.log.append((self.command, self.path, 200))
                    self._reply(200, [("Content-Type", OCI_INDEX)], index)
                    return
                with proxy._lock:
                    admitted = proxy.throttle is None or proxy.throttle.admit(self.command, self.path)
                if not admitted and proxy.throttle is not None:
                    proxy.log.append((self.command, self.path, proxy.throttle.status))
                    headers = [
                        ("Retry-After", proxy.throttle.retry_after),
                        ("Content-Type", "application/json"),
                    ]
                    self._reply(proxy.throttle.status, headers, proxy.throttle.body)
                    return
                if (
                    self.command == "PUT"
                    and proxy.refuse_referrers
                    and MANIFEST_RE.match(path)
                    and is_oci_referrer(body)
                ):
                    proxy.log.append((self.command, self.path, 405))
                    self._reply(405, [("Content-Type", "application/json")], REFERRER_REFUSAL)
                    return
                fault = proxy._match(self.command, self.path)
                if fault and fault.kind == "stall":
                    proxy.log.append((self.command, self.path, 0))
                    proxy.stopped.wait(fault.seconds)
                    self.close_connection = True
                    return
                if fault and fault.kind == "forwarded-status":
                    proxy._forward(self.command, self.path, self.headers, body)
                    proxy.log.append((self.command, self.path, fault.status))
                    self._reply(fault.status, list(fault.headers.items()), fault.body)
                    return
                if fault and fault.kind == "status":
                    proxy.log.append((self.command, self.path, fault.status))
                    self._reply(fault.status, list(fault.headers.items()), fault.body)
                    return
                blob = BLOB_GET_RE.match(path)
                if blob and proxy.redirect_blobs and self.command == "GET" and not fault:
                    key = uuid.uuid4().hex
                    proxy._presigned[key] = (self.path, self.headers.get("Authorization"))
                    location = (
                        f"http://127.0.0.1:{proxy.s3.server_address[1]}/bucket/{key}?X-Amz-Signature={key}"
                    )
                    proxy.log.append((self.command, self.path, 307))
                    self._reply(307, [("Location", location)], b"")
                    return
                status, headers, data = proxy._forward(self.command, self.path, self.headers, body)
                proxy.log.append((self.command, self.path, status))
                if fault is None or not data:
                    self._reply(status, headers, data)
                elif fault.kind == "slow":
                    self._reply_slowly(status, headers, data)
                elif fault.kind == "corrupt":
                    middle = len(data) // 2
                    self._reply(
                        status, headers, data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]
                    )
                else:
                    self._reply(status, headers, data, send=len(data) // 2)
                    self.wfile.flush()
                    if fault.kind == "reset":
                        self.connection.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
                    self.connection.close()
                    self.close_connection = True

            def _reply_slowly(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
                self._reply(status, headers, body, send=0)
                chunk = SLOW_BYTES_PER_SECOND // 10
                for start in range(0, len(body) if self.command != "HEAD" else 0, chunk):
                    time.sleep(0.1)
                    self.wfile.write(body[start : start + chunk])
                    self.wfile.flush()

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = handle_any

        return Handler

    def _s3_handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                key = self.path.split("?")[0].rsplit("/", 1)[-1]
                has_auth = "Authorization" in self.headers
                proxy.s3_log.append((self.path, has_auth))
                if proxy.storage_challenge:
                    body = b""
                    status, headers = 401, [("WWW-Authenticate", proxy.storage_challenge)]
                elif has_auth or key not in proxy._presigned:
                    body = b"<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed</Message></Error>"
                    status, headers = 400, [("Content-Type", "application/xml")]
                else:
                    path, authorization = proxy._presigned[key]
                    upstream_headers = {"Authorization": authorization} if authorization else {}
                    status, headers, body = proxy._forward("GET", path, upstream_headers, b"")
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler
