"""Pacing of manifest PUTs per destination registry: a token bucket shared by every thread of a process.

ECR allows 10 PutImage requests a second in an account and Region by default ("Rate of PutImage requests",
Amazon ECR service quotas: https://docs.aws.amazon.com/AmazonECR/latest/userguide/service-quotas.html), and
every index, child manifest and referrer is one PutImage. The quota is the account's, shared by every copy
build writing there at once, so a build paces at its share (`put_image_share`, computed by the plan), not at
the whole quota. A throttled answer (`hold`) pauses every thread's next PUT.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from workflow.core.exceptions import RegistryTimeout

ECR_PUT_IMAGE_RATE = 10.0


def put_image_share(builds: int, max_concurrency: int, quota: float = ECR_PUT_IMAGE_RATE) -> float:
    """The PutImage rate each of `builds` copies into one account and Region may use when at most
    `max_concurrency` builds run at once, so that together they stay within `quota` (rounded down to
    a thousandth, so the sum never rounds above it)."""
    running = max(1, min(builds, max_concurrency))
    return int(quota * 1000 / running) / 1000


class TokenBucket:
    """At most `rate` acquisitions a second on average, `burst` at once (a generic cell rate algorithm)."""

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / rate
        self.tolerance = (max(burst, 1) - 1) * self.interval
        self._clock, self._sleep = clock, sleep
        self._next = 0.0  # the theoretical arrival time of the next acquisition
        self._lock = threading.Lock()

    def acquire(self, what: str, deadline: float | None = None) -> float:
        """Wait for a slot; returns the seconds waited. RegistryTimeout if the slot lies past `deadline`."""
        with self._lock:
            now = self._clock()
            due = max(self._next, now)
            wait = due - self.tolerance - now
            if deadline is not None and now + max(wait, 0.0) >= deadline:
                raise RegistryTimeout(f"{what}: the deadline passed waiting for the PUT rate")
            self._next = due + self.interval
        if wait > 0:
            self._sleep(wait)
        return max(wait, 0.0)

    def hold(self, seconds: float) -> None:
        """No acquisition before `seconds` from now (the registry said it is throttling)."""
        with self._lock:
            self._next = max(self._next, self._clock() + seconds + self.tolerance)


_buckets: dict[tuple[str, float], TokenBucket] = {}
_buckets_lock = threading.Lock()


def bucket_for(registry: str, rate: float) -> TokenBucket:
    """The process-wide bucket of `registry` at `rate` PUTs a second (burst: one second's worth)."""
    with _buckets_lock:
        bucket = _buckets.get((registry, rate))
        if bucket is None:
            bucket = _buckets[(registry, rate)] = TokenBucket(rate, burst=max(int(rate), 1))
        return bucket
