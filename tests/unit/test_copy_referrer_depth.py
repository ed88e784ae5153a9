"""Referrers of referrers are followed to a bounded depth, and a cycle ends."""

from __future__ import annotations

from workflow.engine.copier import MAX_REFERRER_DEPTH, _Copier
from workflow.registry.client import RegistryClient
from workflow.registry.media import Descriptor
from workflow.registry.reference import parse_reference


def _digest(n: int) -> str:
    return f"sha256:{n:064x}"


class _ChainRegistry(RegistryClient):
    """A source and destination in one: `links[d]` refers to `d`; everything is already present, no tags."""

    def __init__(self, links: dict[str, list[str]]) -> None:
        super().__init__("reg.example.com")
        self.links = links
        self.asked: list[str] = []

    def referrers(self, repository: str, digest: str) -> list[Descriptor] | None:
        self.asked.append(digest)
        return [
            Descriptor("application/vnd.oci.image.manifest.v1+json", d, 2) for d in self.links.get(digest, [])
        ]

    def head_manifest(self, repository: str, reference: str) -> str | None:
        return reference

    def list_tags(self, repository: str) -> list[str]:
        return []


def _copier(registry: _ChainRegistry) -> _Copier:
    ref = parse_reference("reg.example.com/app:v1")
    return _Copier(registry, registry, ref, ref, None, 1, "put")


def test_a_long_chain_of_referrers_is_followed_only_to_the_depth_bound() -> None:
    # Given a chain of 10 referrers, each referring to the one before, all present at the destination
    registry = _ChainRegistry({_digest(n): [_digest(n + 1)] for n in range(10)})
    # When the referrers of the first are copied
    copied = _copier(registry).copy_referrers([_digest(0)])
    # Then nothing is put, and the chain is walked down MAX_REFERRER_DEPTH levels, no further
    assert copied == 0
    assert registry.asked == [_digest(n) for n in range(MAX_REFERRER_DEPTH)]


def test_a_referrer_cycle_is_walked_once() -> None:
    # Given two manifests that list each other as referrers
    registry = _ChainRegistry({_digest(1): [_digest(2)], _digest(2): [_digest(1)]})
    # When the referrers of the first are copied
    _copier(registry).copy_referrers([_digest(1)])
    # Then each is asked about once
    assert registry.asked == [_digest(1), _digest(2)]
