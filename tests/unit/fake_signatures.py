"""A registry's signature-related read methods over dicts, and signature manifests as cosign and notation push them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workflow.core.exceptions import RegistryProtocolError
from workflow.gates.cosign import ARTIFACT_TYPE as COSIGN_ARTIFACT
from workflow.gates.cosign import SIGNATURE_ANNOTATION, SIMPLE_SIGNING
from workflow.registry.media import OCI_INDEX, OCI_MANIFEST, Descriptor, parse_manifest, sha256_digest

DATA = Path(__file__).parent / "data" / "gates"
PAYLOAD = (DATA / "cosign-valid.payload").read_bytes()
SIGNATURE = (DATA / "cosign-valid.sig").read_text()


def index_of(children: list[dict[str, Any]]) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}).encode()


def signature_manifest(
    layer_type: str, blob: bytes, annotations: dict[str, str], artifact_type: str
) -> bytes:
    config = {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256_digest(b"{}"), "size": 2}
    layer = {
        "mediaType": layer_type,
        "digest": sha256_digest(blob),
        "size": len(blob),
        "annotations": annotations,
    }
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": config,
            "layers": [layer],
        }
    ).encode()


class FakeRegistry:
    """Manifests and blobs of one repository, served through RegistryClient's read methods."""

    registry = "registry.test"

    def __init__(self, referrers_api: bool) -> None:
        self.referrers_api = referrers_api
        self.manifests: dict[str, bytes] = {}
        self.blobs: dict[str, bytes] = {}
        self.referrer_list: list[Descriptor] = []

    def add(self, raw: bytes, *, tag: str = "", blob: bytes = b"", referrer: bool = False) -> str:
        digest = sha256_digest(raw)
        self.manifests[digest] = raw
        if tag:
            self.manifests[tag] = raw
        if blob:
            self.blobs[sha256_digest(blob)] = blob
        if referrer:
            artifact = json.loads(raw)["artifactType"]
            self.referrer_list.append(Descriptor(OCI_MANIFEST, digest, len(raw), artifact_type=artifact))
        return digest

    def referrers(self, repository: str, digest: str) -> list[Descriptor] | None:
        return list(self.referrer_list) if self.referrers_api else None

    def get_manifest(self, repository: str, reference: str) -> Any:
        raw = self.manifests.get(reference)
        return None if raw is None else parse_manifest(raw, None, sha256_digest(raw), "test")

    def read_blob(self, repository: str, digest: str, limit: int = 1 << 20) -> bytes:
        data = self.blobs[digest]
        if len(data) > limit:
            raise RegistryProtocolError(f"{self.registry}: blob {digest} exceeds {limit} bytes")
        return data


def cosign_manifest() -> bytes:
    return signature_manifest(SIMPLE_SIGNING, PAYLOAD, {SIGNATURE_ANNOTATION: SIGNATURE}, COSIGN_ARTIFACT)
