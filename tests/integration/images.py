"""Build test images in a registry with httpx (independent of the engine under test).

Random layers, OCI or Docker media types, multi-arch indexes, cosign-style signature tags and OCI
referrers. Every builder returns what it pushed, so tests can compare digests byte for byte.
"""

from __future__ import annotations

import json
import os
import re
import ssl
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import httpx

from workflow.local.images import OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST
from workflow.local.images import sha256 as digest_of

OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


class TokenAuth(httpx.Auth):
    """httpx auth answering Basic and Bearer (token) challenges with one username/password."""

    def __init__(self, username: str, password: str) -> None:
        self.basic = httpx.BasicAuth(username, password)
        self.username, self.password = username, password

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        response = yield request
        challenge = response.headers.get("WWW-Authenticate", "")
        if response.status_code != 401:
            return
        if challenge.lower().startswith("basic"):
            yield from self.basic.auth_flow(request)
            return
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        path = request.url.path.split("/v2/", 1)[1]
        repository = path.split("/blobs/")[0].split("/manifests/")[0].split("/tags/")[0]
        scope = params.get("scope") or f"repository:{repository}:pull,push"
        token = httpx.get(
            params["realm"],
            params={"service": params["service"], "scope": scope},
            auth=(self.username, self.password),
        ).json()["token"]
        request.headers["Authorization"] = f"Bearer {token}"
        yield request


@dataclass
class Pushed:
    """A manifest pushed to a registry."""

    digest: str
    raw: bytes
    media_type: str
    blobs: list[str] = field(default_factory=list)
    children: list[Pushed] = field(default_factory=list)

    def descriptor(self, platform: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
        """A descriptor of this manifest."""
        data: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": len(self.raw)}
        if platform:
            data["platform"] = platform
        data.update(extra)
        return data


class ImageBuilder:
    """Pushes blobs and manifests to one registry (`url` like http://127.0.0.1:5000)."""

    def __init__(
        self, url: str, auth: httpx.Auth | None = None, verify: ssl.SSLContext | bool = True
    ) -> None:
        # A plain-HTTP `url` needs no TLS context (httpx would load its CA bundle for each builder, 30 ms).
        https = url.startswith("https://")
        self.client = httpx.Client(base_url=url, auth=auth, timeout=60, verify=verify if https else False)

    def close(self) -> None:
        """Close the HTTP client."""
        self.client.close()

    def push_blob(self, repository: str, data: bytes) -> str:
        """Upload one blob (POST + PUT); returns its digest."""
        digest = digest_of(data)
        if self.client.head(f"/v2/{repository}/blobs/{digest}").status_code == 200:
            return digest
        started = self.client.post(f"/v2/{repository}/blobs/uploads/")
        assert started.status_code == 202, started.text
        location = started.headers["Location"]
        separator = "&" if "?" in location else "?"
        done = self.client.put(
            f"{location}{separator}digest={digest}",
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert done.status_code == 201, done.text
        return digest

    def push_manifest(self, repository: str, reference: str, raw: bytes, media_type: str) -> str:
        """Put a manifest; returns its digest."""
        response = self.client.put(
            f"/v2/{repository}/manifests/{reference}", content=raw, headers={"Content-Type": media_type}
        )
        assert response.status_code == 201, response.text
        return digest_of(raw)

    def image(
        self,
        repository: str,
        reference: str | None,
        *,
        layer_sizes: tuple[int, ...] = (1024, 200_000),
        docker: bool = False,
        platform: tuple[str, str] = ("linux", "amd64"),
    ) -> Pushed:
        """An image of random layers; `reference` None pushes by digest only."""
        layers = [(self.push_blob(repository, os.urandom(size)), size) for size in layer_sizes]
        config = json.dumps(
            {
                "architecture": platform[1],
                "os": platform[0],
                "rootfs": {"type": "layers", "diff_ids": [d for d, _ in layers]},
            }
        ).encode()
        config_digest = self.push_blob(repository, config)
        media_type = DOCKER_MANIFEST if docker else OCI_MANIFEST
        manifest = {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {
                "mediaType": DOCKER_CONFIG if docker else OCI_CONFIG,
                "digest": config_digest,
                "size": len(config),
            },
            "layers": [
                {"mediaType": DOCKER_LAYER if docker else OCI_LAYER, "digest": d, "size": s}
                for d, s in layers
            ],
        }
        raw = json.dumps(manifest, indent=3).encode()
        digest = self.push_manifest(repository, reference or digest_of(raw), raw, media_type)
        return Pushed(digest, raw, media_type, [config_digest, *(d for d, _ in layers)])

    def index(
        self,
        repository: str,
        tag: str,
        *,
        platforms: tuple[tuple[str, str], ...] = (("linux", "amd64"), ("linux", "arm64")),
        docker: bool = False,
        layer_sizes: tuple[int, ...] = (1024, 200_000),
    ) -> Pushed:
        """A multi-arch index (or Docker manifest list) over one image per platform."""
        children = [
            self.image(repository, None, layer_sizes=layer_sizes, docker=docker, platform=p)
            for p in platforms
        ]
        media_type = DOCKER_LIST if docker else OCI_INDEX
        index = {
            "schemaVersion": 2,
            "mediaType": media_type,
            "manifests": [
                c.descriptor({"os": p[0], "architecture": p[1]})
                for c, p in zip(children, platforms, strict=True)
            ],
        }
        raw = json.dumps(index, indent=2).encode()
        digest = self.push_manifest(repository, tag, raw, media_type)
        return Pushed(digest, raw, media_type, [b for c in children for b in c.blobs], children)

    def signature_tag(self, repository: str, subject: str) -> Pushed:
        """A cosign-style signature under the tag `sha256-<hex>.sig`."""
        payload = json.dumps({"critical": {"image": {"docker-manifest-digest": subject}}}).encode()
        layer = self.push_blob(repository, payload)
        config = b"{}"
        config_digest = self.push_blob(repository, config)
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": [
                {
                    "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
                    "digest": layer,
                    "size": len(payload),
                    "annotations": {"dev.cosignproject.cosign/signature": "MEUC"},
                }
            ],
        }
        raw = json.dumps(manifest).encode()
        tag = subject.replace(":", "-") + ".sig"
        return Pushed(
            self.push_manifest(repository, tag, raw, OCI_MANIFEST), raw, OCI_MANIFEST, [config_digest, layer]
        )

    def referrer(
        self, repository: str, subject: Pushed, artifact_type: str = "application/spdx+json"
    ) -> Pushed:
        """An OCI 1.1 artifact (e.g. an SBOM) whose `subject` is `subject`, pushed by digest."""
        empty = self.push_blob(repository, b"{}")
        sbom = json.dumps({"spdxVersion": "SPDX-2.3", "name": os.urandom(4).hex()}).encode()
        layer = self.push_blob(repository, sbom)
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": {"mediaType": OCI_EMPTY, "digest": empty, "size": 2},
            "layers": [{"mediaType": artifact_type, "digest": layer, "size": len(sbom)}],
            "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": len(subject.raw)},
        }
        raw = json.dumps(manifest).encode()
        return Pushed(
            self.push_manifest(repository, digest_of(raw), raw, OCI_MANIFEST),
            raw,
            OCI_MANIFEST,
            [empty, layer],
        )
