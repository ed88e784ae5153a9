"""The streaming verifier holds back the last chunk until the digest checks out."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from workflow.core.exceptions import DigestMismatch
from workflow.engine.blobs import BlobCopier
from workflow.registry.client import RegistryClient
from workflow.registry.media import Descriptor
from workflow.registry.retry import TransientError


class _Body:
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def stream(self, amount: int, decode_content: bool) -> Iterator[bytes]:
        yield from self.chunks


def _copier() -> BlobCopier:
    client = RegistryClient("reg.example.com")
    return BlobCopier(client, client, "app", "app", None, 1, "put")


def _blob(data: bytes) -> Descriptor:
    return Descriptor("application/octet-stream", "sha256:" + hashlib.sha256(data).hexdigest(), len(data))


def test_matching_bytes_stream_through_in_order() -> None:
    # Given a body whose bytes match the descriptor, When streamed, Then all chunks come out
    chunks = [b"a" * 10, b"b" * 10, b"c"]
    counted = [0]
    assert list(_copier().verified_chunks(_Body(chunks), _blob(b"".join(chunks)), counted)) == chunks
    assert counted == [21]


def test_corrupted_bytes_never_release_the_last_chunk() -> None:
    # Given a body with one flipped byte
    chunks = [b"a" * 10, b"b" * 10, b"c"]
    blob = _blob(b"".join(chunks))
    corrupted = [b"a" * 10, b"b" * 9 + b"X", b"c"]
    # When streamed, Then DigestMismatch is raised before the final chunk is handed to the upload
    stream = _copier().verified_chunks(_Body(corrupted), blob, [0])
    received = [next(stream), next(stream)]
    with pytest.raises(DigestMismatch, match=blob.digest):
        next(stream)
    assert received == corrupted[:2]


def test_short_body_is_transient_and_long_body_a_mismatch() -> None:
    # Given bodies shorter and longer than the descriptor, Then short retries and long is a mismatch
    blob = _blob(b"abcd")
    with pytest.raises(TransientError, match="ended after 3 of 4 bytes"):
        list(_copier().verified_chunks(_Body([b"abc"]), blob, [0]))
    with pytest.raises(DigestMismatch, match="longer"):
        list(_copier().verified_chunks(_Body([b"abcde"]), blob, [0]))
