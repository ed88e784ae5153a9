"""Deadlines for registry exchanges: a watchdog thread shuts the sockets of an exchange that overruns.

A socket's read timeout bounds one read only: a server sending a byte a second never trips it. A
`watching()` block covers a whole exchange (headers and body), a whole blob transfer or a whole copy;
every socket a request uses inside it is attached to it, when the connection is made or reused (the
socket itself: http.client lets go of a connection's socket once an answer says `Connection: close`,
while the answer is still being read from it). When its time is up the watchdog shuts those sockets
down and the blocked read or write fails at once.

A watch that expired always raises: whatever the block then does, `RegistryTimeout` naming what stalled
is what leaves it (not a fault worth retrying). A cut read can look like a short answer that ends early
(headers cut mid-way, a body without Content-Length), so nothing read under an expired watch is used.
`overrun()` gives the same error to code that turns a transport fault into an error inside the block.
"""

from __future__ import annotations

import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from typing import Any

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from workflow.core.exceptions import RegistryTimeout


@dataclass(frozen=True)
class Bounds:
    """How long registry work may take.

    `exchange`: seconds for one request with a bounded body (headers, a manifest, a tag page, an upload's
    answer). A blob transfer gets `blob_grace` seconds plus its size at `blob_rate` bytes a second.
    `deadline`: the `time.monotonic()` instant by which the whole copy ends, or None.
    """

    exchange: float = 120.0
    blob_grace: float = 120.0
    blob_rate: float = 256 * 1024
    deadline: float | None = None

    def blob_seconds(self, size: int) -> float:
        """The time one transfer of a blob of `size` bytes may take."""
        return self.blob_grace + max(size, 0) / self.blob_rate


# Registry work inside a Lambda invocation: one exchange (or one small blob: a config, a signature) may take
# LAMBDA_EXCHANGE seconds, and all of it ends with RESERVE of the invocation's time still left, so that a
# stall ends as RegistryTimeout, which the state machine retries, never as Lambda's Sandbox.Timedout, which
# no Retry for the product's errors matches (Lambda developer guide, "Configure Lambda function timeout":
# https://docs.aws.amazon.com/lambda/latest/dg/configuration-timeout.html).
LAMBDA_EXCHANGE = 30.0
RESERVE = 0.1


def invocation_bounds(remaining_ms: int, exchange: float = LAMBDA_EXCHANGE) -> Bounds:
    """Bounds for the registry work of a Lambda invocation with `remaining_ms` left
    (`context.get_remaining_time_in_millis()`): its deadline keeps RESERVE of that time for the error."""
    seconds = max(remaining_ms, 0) / 1000
    return replace(
        Bounds(exchange=exchange, blob_grace=exchange), deadline=time.monotonic() + seconds * (1 - RESERVE)
    )


class Watch:
    """One bounded piece of work: its end, what it is (for the error), the connections it used."""

    def __init__(self, until: float, what: str, reason: str) -> None:
        self.until, self.what, self.reason = until, what, reason
        self.expired = self.done = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def attach(self, sock: socket.socket | None) -> None:
        """Shut `sock` down too when this watch expires (at once if it already has)."""
        if sock is None:
            return
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shutdown(sock)

    def expire(self) -> None:
        """Mark the watch expired and shut every attached socket down (unless the work already ended)."""
        with self._lock:
            if self.done:
                return
            self.expired = True
            for sock in self._sockets:
                _shutdown(sock)

    def finish(self) -> bool:
        """Mark the work done (the watchdog leaves it alone from now on); True when it had expired."""
        with self._lock:
            self.done = True
            self._sockets.clear()
            return self.expired

    def error(self) -> RegistryTimeout:
        """The error naming what stalled."""
        return RegistryTimeout(f"{self.what}: {self.reason}")


def _shutdown(sock: socket.socket) -> None:
    # socket.socket's own shutdown: on a TLS socket, SSLSocket.shutdown would also drop its SSL
    # object under the thread blocked in it. A socket closed since has no descriptor: OSError, ignored.
    with suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Watchdog:
    """One daemon thread per process expiring watches in deadline order."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Watch]] = []
        self._counter = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, watch: Watch) -> None:
        with self._wake:
            heapq.heappush(self._heap, (watch.until, next(self._counter), watch))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="registry-watchdog", daemon=True)
                self._thread.start()
            elif self._heap[0][2] is watch:
                self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._wake.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                watch = heapq.heappop(self._heap)[2]
            watch.expire()


_WATCHDOG = _Watchdog()
_local = threading.local()


def _active() -> list[Watch]:
    stack: list[Watch] | None = getattr(_local, "watches", None)
    if stack is None:
        stack = _local.watches = []
    return stack


@contextmanager
def watching(seconds: float, what: str, deadline: float | None = None) -> Iterator[Watch]:
    """Bound the block to `seconds` and to `deadline` (a monotonic instant): RegistryTimeout once past it,
    whether the block then fails or returns."""
    now = time.monotonic()
    until, reason = now + seconds, f"not done within {seconds:.1f} s"
    if deadline is not None and deadline <= until:
        until, reason = deadline, "the deadline passed"
    watch = Watch(until, what, reason)
    if until <= now:
        raise watch.error()
    stack = _active()
    stack.append(watch)
    _WATCHDOG.add(watch)
    try:
        yield watch
    except Exception as error:
        if watch.finish() and not isinstance(error, RegistryTimeout):
            raise watch.error() from error
        raise
    finally:
        watch.finish()
        stack.remove(watch)
    if watch.expired:
        raise watch.error()


def overrun() -> RegistryTimeout | None:
    """The RegistryTimeout of the innermost expired watch of this thread, or None."""
    for watch in reversed(_active()):
        if watch.expired:
            return watch.error()
    return None


def check(what: str, deadline: float | None) -> None:
    """Raise RegistryTimeout when `deadline` (a monotonic instant) has passed."""
    if deadline is not None and time.monotonic() >= deadline:
        raise RegistryTimeout(f"{what}: the deadline passed")


class _Watched:
    """Attaches the socket of every connection a request uses (made now, or reused) to this thread's
    active watches."""

    sock: socket.socket | None

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        for watch in _active():
            watch.attach(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        for watch in _active():
            watch.attach(self.sock)
        super().request(*args, **kwargs)  # type: ignore[misc]


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


def watched_pool_manager(**kwargs: Any) -> urllib3.PoolManager:
    """A PoolManager whose connections can be shut down by the watches active when they are used."""
    manager = urllib3.PoolManager(**kwargs)
    manager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}
    return manager
