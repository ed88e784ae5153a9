"""A malicious registry of the project's own, on loopback: it serves a small real image, then lies.

Each test arms `rules`: for a method and a path pattern, what to answer instead (crafted tag lists,
descriptors, `Location`/`Link`/`WWW-Authenticate` headers, huge error bodies, one byte a second).
Everything it is asked is in `log` (method, path, headers), so a test can show what never reached it.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from workflow.local.ecr_front import SHUTDOWN_POLL_SECONDS

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"

Reply = Callable[[BaseHTTPRequestHandler], None]


def digest_of(data: bytes) -> str:
    """The sha256 digest of `data`."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical(document: dict[str, Any]) -> bytes:
    """Compact JSON bytes."""
    return json.dumps(document, separators=(",", ":")).encode()


def image_manifest(config: bytes, layers: list[bytes], *, layer_digests: list[str] | None = None) -> bytes:
    """An OCI image manifest for `config` and `layers` (digests may be overridden to lie)."""
    digests = layer_digests or [digest_of(layer) for layer in layers]
    return canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": digest_of(config), "size": len(config)},
            "layers": [
                {"mediaType": OCI_LAYER, "digest": d, "size": len(layer)}
                for d, layer in zip(digests, layers, strict=True)
            ],
        }
    )


def nested(depth: int) -> bytes:
    """A JSON document nested `depth` levels deep (CPython's decoder gives up past about 1,000)."""
    return b'{"manifests":' * depth + b"[]" + b"}" * depth


def index_of(children: list[bytes], media_type: str = OCI_MANIFEST) -> bytes:
    """An OCI index listing `children` (manifest bytes)."""
    return canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {"mediaType": media_type, "digest": digest_of(c), "size": len(c)} for c in children
            ],
        }
    )


@dataclass
class Rule:
    """Answer requests with `method` whose path (with query) matches `path` by `reply`, `times` times."""

    method: str
    path: str
    reply: Reply
    times: int = 1_000_000
    hits: int = 0


@dataclass
class Logged:
    """One request the registry received."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        return


class HostileRegistry:
    """A distribution registry in memory (GET/HEAD of manifests and blobs, tag lists, uploads), plus rules."""

    def __init__(self) -> None:
        self.manifests: dict[str, tuple[bytes, str]] = {}  # "repo@ref" -> (raw, media type)
        self.blobs: dict[str, bytes] = {}
        self.tags: dict[str, list[str]] = {}
        self.rules: list[Rule] = []
        self.log: list[Logged] = []
        self._lock = threading.Lock()
        self.server = _Server(("127.0.0.1", 0), self._handler())
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL_SECONDS}, daemon=True
        ).start()

    @property
    def host(self) -> str:
        """`127.0.0.1:<port>`."""
        return f"127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()

    def add_manifest(
        self, repo: str, raw: bytes, tag: str | None = None, media_type: str = OCI_MANIFEST
    ) -> str:
        """Serve `raw` by its digest (and `tag`); returns the digest."""
        digest = digest_of(raw)
        self.manifests[f"{repo}@{digest}"] = (raw, media_type)
        if tag:
            self.manifests[f"{repo}@{tag}"] = (raw, media_type)
            self.tags.setdefault(repo, []).append(tag)
        return digest

    def add_image(self, repo: str, tag: str, layers: int = 1) -> str:
        """A small real image (config plus random layers) under `tag`; returns its digest."""
        config = canonical({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}})
        blobs = [uuid.uuid4().bytes * 64 for _ in range(layers)]
        for blob in (config, *blobs):
            self.blobs[digest_of(blob)] = blob
        return self.add_manifest(repo, image_manifest(config, blobs), tag)

    def add_blob(self, data: bytes) -> dict[str, Any]:
        """Serve `data` as a blob; returns its descriptor's digest and size."""
        self.blobs[digest_of(data)] = data
        return {"digest": digest_of(data), "size": len(data)}

    def on(self, method: str, path: str, reply: Reply, times: int = 1_000_000) -> Rule:
        """Arm a rule."""
        rule = Rule(method, path, reply, times)
        with self._lock:
            self.rules.append(rule)
        return rule

    def requests(self, method: str, pattern: str = "") -> list[Logged]:
        """Logged requests with `method` whose path matches `pattern`."""
        return [r for r in self.log if r.method == method and re.search(pattern, r.path)]

    def _rule(self, method: str, path: str) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.method == method and re.search(rule.path, path) and rule.hits < rule.times:
                    rule.hits += 1
                    return rule
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        registry = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def handle_any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.body = self.rfile.read(length) if length else b""
                registry.log.append(Logged(self.command, self.path, dict(self.headers.items())))
                rule = registry._rule(self.command, self.path)
                if rule:
                    rule.reply(self)
                else:
                    registry._serve(self)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = handle_any

        return Handler

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path.split("?")[0]
        if path == "/v2/":
            reply(handler, 200, b"{}")
            return
        match = re.match(r"^/v2/(?P<repo>.+)/(?P<kind>manifests|blobs)/(?P<ref>[^/]+)$", path)
        if match and handler.command in ("GET", "HEAD"):
            if match["kind"] == "manifests":
                found = self.manifests.get(f"{match['repo']}@{match['ref']}")
                if found:
                    headers = {"Content-Type": found[1], "Docker-Content-Digest": digest_of(found[0])}
                    reply(handler, 200, found[0], headers)
                    return
            elif match["ref"] in self.blobs:
                reply(handler, 200, self.blobs[match["ref"]], {"Docker-Content-Digest": match["ref"]})
                return
            reply(handler, 404, canonical({"errors": [{"code": "UNKNOWN", "message": "not here"}]}))
            return
        tags = re.match(r"^/v2/(?P<repo>.+)/tags/list$", path)
        if tags and handler.command == "GET":
            reply(handler, 200, canonical({"name": tags["repo"], "tags": self.tags.get(tags["repo"], [])}))
            return
        if handler.command == "POST" and path.endswith("/blobs/uploads/"):
            reply(handler, 202, b"", {"Location": f"{path}{uuid.uuid4().hex}"})
            return
        if handler.command in ("PUT", "PATCH") and "/blobs/uploads/" in path:
            reply(handler, 201 if handler.command == "PUT" else 202, b"", {"Location": path})
            return
        if handler.command == "PUT" and "/manifests/" in path:
            reply(handler, 201, b"", {"Docker-Content-Digest": digest_of(handler.body)})  # type: ignore[attr-defined]
            return
        reply(handler, 404, canonical({"errors": [{"code": "NAME_UNKNOWN", "message": "no such route"}]}))


def reply(
    handler: BaseHTTPRequestHandler, status: int, body: bytes = b"", headers: dict[str, str] | None = None
) -> None:
    """Answer at once."""
    handler.send_response(status)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)


def answer(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Reply:
    """A rule reply: `status`, `headers`, `body`."""
    return lambda handler: reply(handler, status, body, headers)


def trickle(head: bytes, body: bytes, *, interval: float = 1.0, stop: threading.Event | None = None) -> Reply:
    """A rule reply sending `head` (status line and headers) then `body`, one byte every `interval` s;
    pass an empty `head` to trickle the status line and headers themselves."""

    def send(handler: BaseHTTPRequestHandler) -> None:
        try:
            handler.wfile.write(head)
            handler.wfile.flush()
            for byte in body:
                if stop is not None and stop.is_set():
                    return
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
                time.sleep(interval)
        except OSError:
            return
        finally:
            handler.close_connection = True

    return send


def head_for(status: int, headers: dict[str, str], length: int) -> bytes:
    """The raw status line and headers of an HTTP/1.1 answer."""
    lines = [f"HTTP/1.1 {status} X", *(f"{k}: {v}" for k, v in headers.items()), f"Content-Length: {length}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()
