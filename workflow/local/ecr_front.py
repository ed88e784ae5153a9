"""A local ECR: a small HTTP front before one CNCF distribution registry that does what ECR does and it does not.

Every request of the registry protocol goes through it (the endpoints the config gets are the fronts), so
every write path is seen, whoever writes: a test, the demo, the Precheck Lambda, the copy job's subprocess.
- **Events.** A front standing for the source account and Region emits the "ECR Image Action" event ECR
  emits for each tag it puts (PUSH) or removes (DELETE), with `result`, `repository-name`, `image-digest`,
  `action-type` and `image-tag` (ECR user guide, "Amazon ECR events and EventBridge"), through `emit`:
  the runtime sends it with PutEvents to the rule with the synthesized pattern, as ECR does to the bus.
  A put by digest only (a platform manifest of an index, a referrer) carries no tag, and such an event
  matches no rule (the pattern asks for `image-tag`), so none is emitted.
- **Tag deletes.** A DELETE of a manifest by tag removes the tag alone, as BatchDeleteImage by `imageTag`
  does in ECR (and the distribution spec's DELETE by tag in distribution 3): distribution 2.8 answers it
  400 DIGEST_INVALID, so the front removes the tag's link in the registry's storage itself.
- **Tag immutability.** For a repository set immutable (`tag_mutability`), a PUT of a manifest under a tag
  the repository already has is refused as ECR refuses it: 400 TAG_INVALID, "...cannot be overwritten because
  the tag is immutable" ("Preventing image tags from being overwritten"). Deleting such a tag works, as
  BatchDeleteImage has no immutability failure (ECR API reference, BatchDeleteImage).
"""

from __future__ import annotations

import http.client
import json
import re
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from workflow.engine.ecr import TagMutability
from workflow.local.registries import LocalRegistry, remove_tag_link

MANIFEST_PATH = re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<reference>[^/]+)$")
DIGEST_REFERENCE = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "upgrade"}
CHUNK = 64 * 1024
UPSTREAM_TIMEOUT_SECONDS = 60
# How often the serving loop looks for `stop()` (socketserver's default, 0.5 s, made every runtime's stop wait
# up to half a second per front).
SHUTDOWN_POLL_SECONDS = 0.05

Emit = Callable[[dict[str, str]], None]


def tag_link(storage: Path, repository: str, tag: str) -> Path:
    """Where distribution's filesystem storage keeps the digest a tag points at."""
    return storage / "docker/registry/v2/repositories" / repository / "_manifests/tags" / tag / "current/link"


def ecr_event_detail(action: str, repository: str, tag: str, digest: str) -> dict[str, str]:
    """The `detail` of ECR's "ECR Image Action" event for one tag."""
    return {
        "result": "SUCCESS",
        "repository-name": repository,
        "image-digest": digest,
        "action-type": action,
        "image-tag": tag,
    }


class _Server(ThreadingHTTPServer):
    """The front's server: a client that drops its connection (a copier giving up on a refusing registry) is not an
    error of the front's, and is not printed."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class EcrFront:
    """The front before `upstream` (a running registry), on a free loopback port; `stop()` ends it."""

    def __init__(self, upstream: LocalRegistry, *, emit: Emit | None = None) -> None:
        self.upstream = upstream
        self.emit = emit
        self._mutability: dict[str, TagMutability] = {}
        self._lock = threading.Lock()
        self.server = _Server(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL_SECONDS}, daemon=True
        ).start()

    @property
    def registry(self) -> LocalRegistry:
        """The registry as its clients see it: the front's host, the upstream's storage."""
        host = f"127.0.0.1:{self.server.server_address[1]}"
        return LocalRegistry(self.upstream.name, host, self.upstream.storage)

    def stop(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()

    def set_tag_mutability(self, repository: str, mutability: TagMutability) -> None:
        """Make `repository`'s tags (im)mutable, as PutImageTagMutability does in ECR."""
        with self._lock:
            self._mutability[repository] = mutability

    def immutable(self, repository: str, tag: str) -> bool:
        """Whether a put of `repository:tag` over an existing tag is refused."""
        with self._lock:
            mutability = self._mutability.get(repository)
        return mutability is not None and mutability.immutable(tag)

    def current_digest(self, repository: str, tag: str) -> str | None:
        """The digest `repository:tag` points at, read from storage; None when there is no such tag."""
        link = tag_link(self.upstream.storage, repository, tag)
        return link.read_text().strip() if link.is_file() else None

    def delete_tag(self, repository: str, tag: str) -> bool:
        """Remove the tag alone (and emit DELETE); False when there was no such tag."""
        digest = self.current_digest(repository, tag)
        if digest is None or not remove_tag_link(self.upstream.storage, repository, tag):
            return False
        self._emit("DELETE", repository, tag, digest)
        return True

    def pushed(self, repository: str, tag: str, digest: str) -> None:
        """A tag was put: emit PUSH."""
        self._emit("PUSH", repository, tag, digest)

    def _emit(self, action: str, repository: str, tag: str, digest: str) -> None:
        if self.emit is not None:
            self.emit(ecr_event_detail(action, repository, tag, digest))


def _request_body(handler: BaseHTTPRequestHandler) -> Iterator[bytes] | bytes | None:
    """The request body as it arrives: a chunk iterator (chunked, streamed on), bytes, or None."""
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        return _chunks(handler)
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else None


def _chunks(handler: BaseHTTPRequestHandler) -> Iterator[bytes]:
    while True:
        size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
        if size == 0:
            handler.rfile.readline()
            return
        yield handler.rfile.read(size)
        handler.rfile.readline()


def _error(code: str, message: str) -> bytes:
    return json.dumps({"errors": [{"code": code, "message": message}]}).encode()


def _handler(front: EcrFront) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            return

        def _reply(self, status: int, body: bytes, headers: list[tuple[str, str]] = ()) -> None:  # type: ignore[assignment]
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def handle_any(self) -> None:
            manifest = MANIFEST_PATH.match(self.path.split("?", 1)[0])
            tag = None
            if manifest and not DIGEST_REFERENCE.match(manifest["reference"]):
                tag = manifest["reference"]
            if manifest and tag and self.command == "DELETE":
                _request_body(self)
                if front.delete_tag(manifest["name"], tag):
                    self._reply(202, b"")
                else:
                    self._reply(404, _error("MANIFEST_UNKNOWN", "manifest unknown"))
                return
            if manifest and tag and self.command == "PUT" and self._refused(manifest["name"], tag):
                return
            pushed = manifest["name"] if manifest and tag and self.command == "PUT" else None
            self._forward(lambda digest: front.pushed(pushed, tag, digest) if pushed and tag else None)

        def _refused(self, repository: str, tag: str) -> bool:
            if not front.immutable(repository, tag) or front.current_digest(repository, tag) is None:
                return False
            _drain(self)
            message = (
                f"The image tag '{tag}' already exists in the '{repository}' repository and cannot be "
                "overwritten because the tag is immutable."
            )
            self._reply(400, _error("TAG_INVALID", message), [("Content-Type", "application/json")])
            return True

        def _forward(self, on_put: Callable[[str], None]) -> None:
            """Forward the request; for a put manifest the upstream stored, call `on_put(digest)` before
            answering (the event is on the bus by the time the pusher hears back)."""
            body = _request_body(self)
            # A header sent on several lines (skopeo's Accept) goes on as one, its values joined (RFC 9110, 5.3).
            names = dict.fromkeys(k for k in self.headers if k.lower() not in HOP_BY_HOP)
            headers = {name: ", ".join(self.headers.get_all(name) or []) for name in names}
            connection = http.client.HTTPConnection(front.upstream.host, timeout=UPSTREAM_TIMEOUT_SECONDS)
            try:
                if isinstance(body, Iterator):
                    headers.pop("Content-Length", None)
                    connection.request(
                        self.command, self.path, body=body, headers=headers, encode_chunked=True
                    )
                else:
                    connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                digest = response.getheader("Docker-Content-Digest")
                if response.status in (200, 201) and digest:
                    on_put(digest)
                self._relay(response)
            finally:
                connection.close()

        def _relay(self, response: http.client.HTTPResponse) -> None:
            length = response.getheader("Content-Length")
            data = b"" if length is not None or self.command == "HEAD" else response.read()
            self.send_response(response.status)
            for name, value in response.getheaders():
                if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", length if length is not None else str(len(data)))
            self.end_headers()
            if self.command == "HEAD":
                return
            if length is None:
                self.wfile.write(data)
                return
            while chunk := response.read(CHUNK):
                self.wfile.write(chunk)

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = handle_any

    return Handler


def _drain(handler: BaseHTTPRequestHandler) -> None:
    """Read and drop the request body, so that the connection can carry the next request."""
    body = _request_body(handler)
    if isinstance(body, Iterator):
        for _ in body:
            pass
