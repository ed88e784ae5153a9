"""The blob half of the distribution API for one registry host: HEAD, streaming GET and upload.

Uploads are POST then one streaming PUT, or POST, one streaming PATCH, then PUT: one request body per blob,
always (ECR discards the data of every PATCH after the first). Every URL the registry sends back is
checked (`workflow.registry.paths`) before a body goes there.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Literal
from urllib.parse import quote

from urllib3.response import BaseHTTPResponse

from workflow.core.exceptions import DigestMismatch, RegistryProtocolError
from workflow.registry import paths
from workflow.registry.transport import Transport, discard

CHUNK_SIZE = 1 << 20
CONFIRM_DELAYS = (0.0, 0.5, 1.5)
UploadMode = Literal["put", "patch"]


class Blobs(Transport):
    """Blob reads and uploads, on top of one registry's transport."""

    def blob_exists(self, repository: str, digest: str) -> bool:
        """True when the registry has the blob in `repository`."""
        path = paths.blob(repository, digest, f"{self.registry}/{repository}")

        def attempt() -> bool:
            with self.exchange(f"HEAD blob {digest} in {repository}"):
                response = self.request("HEAD", path, repository, follow_redirects=True)
                if response.status not in (200, 404):
                    raise self.fail(response, f"HEAD blob {digest} in {repository}")
                discard(response)
            return response.status == 200

        return self.run(attempt, f"blob {digest} at {self.registry}/{repository}")

    def open_blob(self, repository: str, digest: str) -> BaseHTTPResponse:
        """A streaming response for the blob (the caller closes it); no retry here."""
        path = paths.blob(repository, digest, f"{self.registry}/{repository}")
        response = self.request("GET", path, repository, follow_redirects=True)
        if response.status == 200:
            return response
        if response.status == 404:
            discard(response)
            raise RegistryProtocolError(f"{self.registry}/{repository}: blob {digest} not found")
        raise self.fail(response, f"GET blob {digest} in {repository}")

    def read_blob(self, repository: str, digest: str, limit: int = 1 << 20) -> bytes:
        """A small blob (an image config) whole, retried like any read; the caller checks what it needs."""

        def attempt() -> bytes:
            with self.exchange(f"GET blob {digest} in {repository}"):
                return self.read(self.open_blob(repository, digest), limit, f"blob {digest} in {repository}")

        return self.run(attempt, f"blob {digest} at {self.registry}/{repository}")

    def upload_blob(
        self, repository: str, digest: str, size: int, body: Iterable[bytes], mode: UploadMode = "put"
    ) -> None:
        """Upload one blob in a fresh session; raises TransientError on retryable faults (no retry here).

        The caller bounds the whole upload; the session's URLs must stay under `/v2/<repository>/blobs/uploads/`.
        """
        where = f"{self.registry}/{repository}"
        start = paths.uploads(repository, where)
        response = self.request("POST", start, repository, headers={"Content-Length": "0"})
        if response.status != 202:
            raise self.fail(response, f"POST upload of blob {digest} to {repository}")
        discard(response)
        location = paths.same_endpoint(
            self.base, self.base + start, response.headers.get("Location"), start, f"{where}: upload Location"
        )
        if mode == "patch":
            response = self.request(
                "PATCH",
                location,
                repository,
                body=body,
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            )
            if response.status not in (201, 202, 204):
                raise self.fail(response, f"PATCH blob {digest} to {repository}")
            discard(response)
            location = paths.same_endpoint(
                self.base, location, response.headers.get("Location"), start, f"{where}: PATCH Location"
            )
            body, size = (), 0
        separator = "&" if "?" in location else "?"
        response = self.request(
            "PUT",
            f"{location}{separator}digest={quote(paths.digest(digest, where))}",
            repository,
            body=body,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
        )
        if response.status not in (201, 204):
            detail = self.error_detail(response)
            if "DIGEST_INVALID" in detail and self._confirm_blob(repository, digest):
                return  # another writer stored the same blob meanwhile; these bytes hashed right
            if "DIGEST_INVALID" in detail:
                raise DigestMismatch(f"{where} rejected blob {digest}: {detail}")
            raise self.fail(response, f"PUT blob {digest} to {repository}", detail)
        discard(response)
        returned = response.headers.get("Docker-Content-Digest")
        if returned and returned.split(":")[0] == digest.split(":")[0] and returned != digest:
            raise DigestMismatch(f"{where}: blob {digest} was stored as {returned}")

    def _confirm_blob(self, repository: str, digest: str) -> bool:
        """True once a HEAD finds the blob (a few tries, the last ~2 s after the first)."""
        for delay in CONFIRM_DELAYS:
            time.sleep(delay)
            if self.blob_exists(repository, digest):
                return True
        return False
