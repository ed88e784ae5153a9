"""The blob half of a copy: a bounded pool of workers streaming each blob from source to destination.

A blob the destination has is skipped (HEAD). Each transfer is verified on the way (the last chunk is
held back until the digest checks out), retried in a fresh upload session, and bounded: it may take
`Bounds.blob_seconds(size)` (a grace period plus its size at a minimum rate), within the copy's deadline.
concurrent.futures is imported on first use: a warm copy or a retag moves no blob, and starts ~8 ms
sooner without it (and the logging module it loads).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import urllib3

from workflow.core.exceptions import DigestMismatch
from workflow.registry.blobs import CHUNK_SIZE, UploadMode
from workflow.registry.client import RegistryClient
from workflow.registry.deadline import overrun, watching
from workflow.registry.media import Descriptor, new_hasher
from workflow.registry.retry import TransientError, transport_fault

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

ProgressKind = Literal["blob-start", "blob-bytes", "blob-done", "blob-skipped", "manifest"]


@dataclass(frozen=True)
class ProgressEvent:
    """One step of a copy: `nbytes` is the delta for blob-bytes, the blob size otherwise."""

    kind: ProgressKind
    digest: str
    nbytes: int


ProgressCallback = Callable[[ProgressEvent], None]


class Cancelled(Exception):
    """A blob transfer stopped because the copy already failed or was interrupted."""


class BlobCopier:
    """Makes blobs present at the destination repository; counts what it moved. Thread-safe."""

    def __init__(
        self,
        src: RegistryClient,
        dst: RegistryClient,
        src_repository: str,
        dst_repository: str,
        progress: ProgressCallback | None,
        max_parallel_blobs: int,
        upload_mode: UploadMode,
    ) -> None:
        self.src, self.dst = src, dst
        self.src_repository, self.dst_repository = src_repository, dst_repository
        self.progress = progress
        self.max_parallel_blobs = max_parallel_blobs
        self.upload_mode = upload_mode
        self.executor: ThreadPoolExecutor | None = None
        self.lock = threading.Lock()
        self.copied = self.skipped = self.bytes_copied = 0
        self.inflight: dict[str, Future[None]] = {}
        self.cancelled = threading.Event()

    def emit(self, kind: ProgressKind, digest: str, nbytes: int) -> None:
        """Report one step to the progress callback, if any."""
        if self.progress:
            self.progress(ProgressEvent(kind, digest, nbytes))

    def verified_chunks(self, response: Any, blob: Descriptor, counted: list[int]) -> Iterator[bytes]:
        """The blob's bytes, hashed on the way; the last chunk is held back until the digest checks out."""
        hasher = new_hasher(blob.digest)
        seen = 0
        pending: bytes | None = None
        where = f"{self.src.registry}/{self.src_repository}"
        try:
            for chunk in response.stream(CHUNK_SIZE, decode_content=False):
                if self.cancelled.is_set():
                    raise Cancelled(blob.digest)
                if not chunk:
                    continue
                hasher.update(chunk)
                seen += len(chunk)
                if seen > blob.size:
                    raise DigestMismatch(
                        f"blob {blob.digest} from {where} is longer than its {blob.size} bytes"
                    )
                if pending is not None:
                    yield pending
                    counted[0] += len(pending)
                    self.emit("blob-bytes", blob.digest, len(pending))
                pending = chunk
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise transport_fault(exc, f"reading blob {blob.digest} from {where}") from exc
        if seen < blob.size:
            raise overrun() or TransientError(
                f"blob {blob.digest} from {where} ended after {seen} of {blob.size} bytes"
            )
        actual = f"{hasher.name}:{hasher.hexdigest()}"
        if actual != blob.digest:
            raise DigestMismatch(f"blob {blob.digest} from {where} hashes to {actual}")
        if pending is not None:
            yield pending
            counted[0] += len(pending)
            self.emit("blob-bytes", blob.digest, len(pending))

    def _copy_blob(self, blob: Descriptor) -> None:
        if self.cancelled.is_set():
            raise Cancelled(blob.digest)
        if self.dst.blob_exists(self.dst_repository, blob.digest):
            with self.lock:
                self.skipped += 1
            self.emit("blob-skipped", blob.digest, blob.size)
            return
        self.emit("blob-start", blob.digest, blob.size)
        bounds = self.dst.bounds
        what = (
            f"blob {blob.digest} ({blob.size} bytes) from {self.src.registry}/{self.src_repository} "
            f"to {self.dst.registry}/{self.dst_repository}"
        )

        def attempt() -> int:
            counted = [0]
            with watching(bounds.blob_seconds(blob.size), what, bounds.deadline):
                response = self.src.open_blob(self.src_repository, blob.digest)
                try:
                    self.dst.upload_blob(
                        self.dst_repository,
                        blob.digest,
                        blob.size,
                        self.verified_chunks(response, blob, counted),
                        self.upload_mode,
                    )
                except BaseException:
                    self.emit("blob-bytes", blob.digest, -counted[0])
                    response.close()
                    raise
                finally:
                    response.release_conn()
            return counted[0]

        moved = self.src.run(attempt, what)
        with self.lock:
            self.copied += 1
            self.bytes_copied += moved
        self.emit("blob-done", blob.digest, blob.size)

    def copy_blobs(self, blobs: list[Descriptor]) -> None:
        """Make every blob present at the destination; several at once, each digest once."""
        from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

        futures = []
        with self.lock:
            if self.executor is None:
                self.executor = ThreadPoolExecutor(self.max_parallel_blobs, thread_name_prefix="blob")
            for blob in blobs:
                future = self.inflight.get(blob.digest)
                if future is None:
                    future = self.executor.submit(self._copy_blob, blob)
                    self.inflight[blob.digest] = future
                futures.append(future)
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for future in done:
            error = future.exception()
            if error is not None:
                self.cancelled.set()  # the other transfers stop at their next chunk
                raise error

    def close(self) -> None:
        """Stop the blob workers: queued ones never start, running ones stop at their next chunk."""
        self.cancelled.set()
        if self.executor is not None:
            self.executor.shutdown(cancel_futures=True)
