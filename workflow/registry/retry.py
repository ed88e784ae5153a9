"""Retry with exponential backoff and full jitter for transient registry faults."""

from __future__ import annotations

import random
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from workflow.core.exceptions import RegistryProtocolError, RegistryTimeout, RegistryUnavailable
from workflow.registry.deadline import overrun

T = TypeVar("T")


class TransientError(Exception):
    """A fault worth retrying: 429, 5xx, dropped connection, truncated body."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry. `attempts` counts the first try."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 20.0
    max_retry_after: float = 60.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `attempt` (1-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 (jitter, not cryptography)

    def run(
        self,
        operation: Callable[[], T],
        what: str,
        sleep: Callable[[float], None] = time.sleep,
        deadline: float | None = None,
    ) -> T:
        """Run `operation`, retrying TransientError; then raise RegistryUnavailable naming `what`.

        With a `deadline` (a monotonic instant), a retry that would start after it is RegistryTimeout.
        """
        for attempt in range(1, self.attempts + 1):
            try:
                return operation()
            except TransientError as exc:
                if attempt == self.attempts:
                    raise RegistryUnavailable(f"{what}: {exc} (gave up after {attempt} attempts)") from exc
                delay = self.delay(attempt, exc.retry_after)
                if deadline is not None and time.monotonic() + delay >= deadline:
                    raise RegistryTimeout(f"{what}: {exc}; the deadline leaves no time to retry") from exc
                sleep(delay)
        raise AssertionError("unreachable")


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header given in seconds; None when absent or a date."""
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def transport_fault(
    error: BaseException, what: str
) -> RegistryProtocolError | RegistryTimeout | TransientError:
    """The error for an exchange that failed below HTTP: an exchange cut by its deadline is RegistryTimeout;
    an untrusted TLS certificate, or a plain-HTTP answer to TLS, is final (retrying cannot fix either);
    anything else (refused, reset, timed out) is transient."""
    timeout = overrun()
    if timeout is not None:
        return timeout
    reason = ""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ssl.SSLCertVerificationError):
            return RegistryProtocolError(
                f"{what}: TLS certificate not trusted ({cause.verify_message}); "
                "add the registry's CA to the trust store or point SSL_CERT_FILE at it"
            )
        if isinstance(cause, ssl.SSLError) and cause.reason == "WRONG_VERSION_NUMBER":
            return RegistryProtocolError(
                f"{what}: the registry answered the TLS handshake in plain HTTP; if it serves plain HTTP, "
                "name it with --insecure-registry HOST:PORT (or insecure: true on its config endpoint)"
            )
        if not reason and isinstance(cause, OSError) and cause.strerror:
            reason = f" ({cause.strerror})"
        wrapped = [a for a in cause.args if isinstance(a, BaseException)]
        cause = wrapped[0] if wrapped else cause.__cause__ or cause.__context__
    return TransientError(f"{what} failed: {type(error).__name__}{reason}")
