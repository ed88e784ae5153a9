"""HTTP/1.1 keep-alive connection pools on the standard library's http.client.

Just what the registry client needs: one idle-connection pool per scheme and host, TLS verified with
the system's trust store, a connect and a read timeout, bodies as bytes or an iterable of chunks, and
streaming or preloaded responses. No redirects or retries here (the client does both). It is the
standard library rather than urllib3 because each copy is a fresh process: this starts ~60 ms sooner.
"""

from __future__ import annotations

import http.client
import select
import ssl
import threading
from collections.abc import Iterable, Iterator
from urllib.parse import urlsplit

TRANSPORT_ERRORS = (http.client.HTTPException, OSError)
Body = bytes | Iterable[bytes] | None


class Response:
    """One response; a streaming one holds its connection until `release_conn()` or `close()`."""

    def __init__(self, pool: ConnectionPool, key: tuple[str, str], conn: http.client.HTTPConnection) -> None:
        self._pool, self._key = pool, key
        self._conn: http.client.HTTPConnection | None = conn
        self._raw = conn.getresponse()
        self.status = self._raw.status
        self.headers = self._raw.headers
        self._body: bytes | None = None

    @property
    def data(self) -> bytes:
        """The whole body (read now unless already read)."""
        if self._body is None:
            self.read()
        return self._body or b""

    def read(self, amount: int | None = None) -> bytes:
        """Up to `amount` bytes of the body, or all the rest (kept for `data`)."""
        if amount is not None:
            return self._raw.read(amount)
        self._body = self._raw.read()
        return self._body

    def stream(self, amount: int) -> Iterator[bytes]:
        """The rest of the body in chunks of at most `amount` bytes."""
        while chunk := self._raw.read(amount):
            yield chunk

    def drain_conn(self) -> None:
        """Read and discard the rest of the body, so the connection can be reused."""
        try:
            while self._raw.read(1 << 16):
                pass
        except TRANSPORT_ERRORS:
            self.close()

    def release_conn(self) -> None:
        """Give the connection back to the pool when the body was read to its end, else close it."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if not self._raw.isclosed() and self._raw.length == 0:
            self._raw.read()
        if self._raw.isclosed() and not self._raw.will_close:
            self._pool.put(self._key, conn)
        else:
            conn.close()

    def close(self) -> None:
        """Close the connection (the rest of the body is lost)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


class ConnectionPool:
    """Idle keep-alive connections per (scheme, host:port); thread-safe; at most `maxsize` idle per host."""

    def __init__(
        self,
        *,
        maxsize: int = 16,
        connect_timeout: float = 15.0,
        read_timeout: float = 120.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.maxsize = maxsize
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self.headers = dict(headers or {})
        self._idle: dict[tuple[str, str], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._tls: ssl.SSLContext | None = None

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        body: Body = None,
        preload_content: bool = True,
    ) -> Response:
        """Send one request; raises an error of TRANSPORT_ERRORS when the exchange fails."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn = self._get(key)
        try:
            conn.request(method, target, body=body, headers={**self.headers, **(headers or {})})
            response = Response(self, key, conn)
        except BaseException:
            conn.close()
            raise
        if preload_content:
            try:
                response.read()
            finally:
                response.release_conn()
        return response

    def put(self, key: tuple[str, str], conn: http.client.HTTPConnection) -> None:
        """Keep an idle connection for reuse (or close it when the pool for its host is full)."""
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < self.maxsize:
                idle.append(conn)
                return
        conn.close()

    def _get(self, key: tuple[str, str]) -> http.client.HTTPConnection:
        while True:
            with self._lock:
                idle = self._idle.get(key)
                conn = idle.pop() if idle else None
            if conn is None:
                return self._connect(key)
            if not _dropped(conn):
                return conn
            conn.close()

    def _connect(self, key: tuple[str, str]) -> http.client.HTTPConnection:
        scheme, netloc = key
        conn: http.client.HTTPConnection
        if scheme == "https":
            if self._tls is None:
                self._tls = ssl.create_default_context()
            conn = http.client.HTTPSConnection(netloc, timeout=self.connect_timeout, context=self._tls)
        elif scheme == "http":
            conn = http.client.HTTPConnection(netloc, timeout=self.connect_timeout)
        else:
            raise http.client.InvalidURL(f"unsupported URL scheme {scheme!r}")
        try:
            conn.connect()
            if conn.sock is not None:
                conn.sock.settimeout(self.read_timeout)
        except BaseException:
            conn.close()
            raise
        return conn


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """True when an idle connection was closed by the server (readable while idle means EOF or junk)."""
    if conn.sock is None:
        return True
    try:
        readable, _, _ = select.select([conn.sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)
