"""When one blob fails, the blobs still in flight stop at their next chunk instead of running to the end."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

import pytest

from workflow.core.exceptions import RegistryProtocolError
from workflow.engine.copier import _Copier
from workflow.registry.blobs import UploadMode
from workflow.registry.client import RegistryClient
from workflow.registry.media import Descriptor
from workflow.registry.reference import parse_reference
from workflow.registry.retry import RetryPolicy

CHUNKS = 200
CHUNK = b"x" * 10


class _SlowBody:
    """A blob body that yields one chunk every 10 ms and counts what was read."""

    def __init__(self) -> None:
        self.read = 0

    def stream(self, amount: int, decode_content: bool) -> Iterator[bytes]:
        for _ in range(CHUNKS):
            time.sleep(0.01)
            self.read += 1
            yield CHUNK

    def close(self) -> None:
        return

    def release_conn(self) -> None:
        return


class _Registry(RegistryClient):
    """Source and destination in one: `broken` cannot be fetched, the others stream slowly."""

    def __init__(self, broken: str) -> None:
        super().__init__("reg.example.com", retry=RetryPolicy(attempts=1))
        self.broken = broken
        self.bodies: dict[str, _SlowBody] = {}

    def blob_exists(self, repository: str, digest: str) -> bool:
        return False

    def open_blob(self, repository: str, digest: str) -> _SlowBody:  # type: ignore[override]
        if digest == self.broken:
            time.sleep(0.05)  # the others are under way by now
            raise RegistryProtocolError(f"blob {digest} not found")
        return self.bodies.setdefault(digest, _SlowBody())

    def upload_blob(
        self, repository: str, digest: str, size: int, body: Iterable[bytes], mode: UploadMode = "put"
    ) -> None:
        for _ in body:
            pass


def _blob(n: int) -> Descriptor:
    return Descriptor("application/octet-stream", f"sha256:{n:064x}", len(CHUNK) * CHUNKS)


def test_a_failed_blob_stops_the_others_at_their_next_chunk() -> None:
    # Given three slow blobs and one that cannot be fetched, copied four at a time
    blobs = [_blob(0), _blob(1), _blob(2), _blob(3)]
    registry = _Registry(broken=blobs[3].digest)
    ref = parse_reference("reg.example.com/app:v1")
    copier = _Copier(registry, registry, ref, ref, None, 4, "put")
    # When they are copied, Then the failure is raised
    with pytest.raises(RegistryProtocolError, match="not found"):
        copier.blobs.copy_blobs(blobs)
    copier.close()
    # And the slow transfers were stopped early rather than read to their end
    assert registry.bodies, "the slow transfers had started"
    assert all(body.read < CHUNKS // 2 for body in registry.bodies.values())
