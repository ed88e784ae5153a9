"""Real CNCF distribution registries (Debian's docker-registry) and a token issuer, on loopback.

Usable from any test tier: `RegistryServer.start(tmp_path, auth="none" | "htpasswd" | "token")`.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import json
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from workflow.local.ecr_front import SHUTDOWN_POLL_SECONDS
from workflow.local.registries import (
    HtpasswdAuth,
    RegistryAuth,
    RegistryTls,
    TokenServiceAuth,
    free_port,
    start_registry,
    stop_process,
)

USERNAME = "replicator"
PASSWORD = "s3cret-test-password"
# bcrypt of PASSWORD (docker-registry only accepts bcrypt htpasswd entries).
PASSWORD_BCRYPT = "$2b$05$oCem.457ghm/8AKxqtCLGO8eQ.wArijgNsWaI0pnn4wwgl9djT.iW"


def make_tls(directory: Path, dns_names: tuple[str, ...] = ()) -> RegistryTls:
    """A throwaway CA (`ca.pem`) and a certificate for 127.0.0.1 (and `dns_names`) it signed
    (`server.pem`, `server.key`)."""
    now = datetime.datetime.now(datetime.UTC)
    valid = (now - datetime.timedelta(days=1), now + datetime.timedelta(days=2))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ecr-replicate test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), *(x509.DNSName(n) for n in dns_names)]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    tls = RegistryTls(directory / "server.pem", directory / "server.key", directory / "ca.pem")
    tls.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    tls.certificate.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    tls.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return tls


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenIssuer:
    """A Docker token-auth issuer: checks basic credentials, signs RS256 JWTs with an x5c chain."""

    def __init__(self, directory: Path, service: str = "test-registry", issuer: str = "test-issuer") -> None:
        self.service, self.issuer = service, issuer
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test token issuer")])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.bundle = directory / "token-root.pem"
        self.bundle.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.requests: list[str] = []
        issuer_self = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                issuer_self.requests.append(self.path)
                expected = "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps(
                    {"token": issuer_self.token(query.get("scope", [])), "expires_in": 300}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.realm = f"http://127.0.0.1:{self.server.server_address[1]}/token"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL_SECONDS}, daemon=True
        ).start()

    def token(self, scopes: list[str]) -> str:
        """A signed token granting every action asked for in `scopes`."""
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {
            "alg": "RS256",
            "typ": "JWT",
            "x5c": [base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()],
        }
        claims = {
            "iss": self.issuer,
            "sub": USERNAME,
            "aud": self.service,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"

    def stop(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


@dataclass
class RegistryServer:
    """One docker-registry process on 127.0.0.1 with its storage in a temporary folder."""

    root: Path
    port: int
    auth: str
    process: subprocess.Popen[bytes]
    issuer: TokenIssuer | None = None
    tls: RegistryTls | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def host(self) -> str:
        """`127.0.0.1:<port>`, as used in image references."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The base URL."""
        return f"{'https' if self.tls else 'http'}://{self.host}"

    @property
    def storage(self) -> Path:
        """The filesystem storage root."""
        return self.root / "storage"

    @classmethod
    def start(
        cls, directory: Path, auth: str = "none", *, tls: bool = False, tls_names: tuple[str, ...] = ()
    ) -> RegistryServer:
        """Start a registry with `auth` none, htpasswd or token (HTTPS with `tls`, its certificate also
        valid for `tls_names`); wait until it answers."""
        directory.mkdir(parents=True, exist_ok=True)
        https = make_tls(directory, tls_names) if tls else None
        issuer = None
        config: RegistryAuth | None = None
        if auth == "htpasswd":
            (directory / "htpasswd").write_text(f"{USERNAME}:{PASSWORD_BCRYPT}\n")
            config = HtpasswdAuth(directory / "htpasswd", "test-realm")
        elif auth == "token":
            issuer = TokenIssuer(directory)
            config = TokenServiceAuth(issuer.realm, issuer.service, issuer.issuer, issuer.bundle)
        elif auth != "none":
            raise ValueError(auth)
        port = free_port()
        try:
            process = start_registry(
                port,
                directory / "storage",
                directory / "config.yml",
                directory / "registry.log",
                delete=True,
                auth=config,
                tls=https,
            )
        except BaseException:
            if issuer:
                issuer.stop()
            raise
        return cls(directory, port, auth, process, issuer, https)

    def stop(self) -> None:
        """Stop the registry (and its token issuer)."""
        stop_process(self.process)
        if self.issuer:
            self.issuer.stop()


def skopeo_raw(reference: str, server: RegistryServer | None = None) -> bytes | None:
    """`skopeo inspect --raw` of `reference` (host/repo:tag), or None when it does not exist."""
    command = ["skopeo", "inspect", "--raw", "--tls-verify=false"]
    if server is not None and server.auth != "none":
        command += ["--creds", f"{USERNAME}:{PASSWORD}"]
    result = subprocess.run([*command, f"docker://{reference}"], capture_output=True, timeout=60, check=False)
    if result.returncode != 0:
        if b"manifest unknown" in result.stderr or b"not found" in result.stderr.lower():
            return None
        raise AssertionError(f"skopeo failed: {result.stderr.decode()}")
    return result.stdout


def skopeo_digest(reference: str, server: RegistryServer | None = None) -> str | None:
    """The digest of the manifest skopeo reads for `reference`, or None."""
    raw = skopeo_raw(reference, server)
    return None if raw is None else "sha256:" + hashlib.sha256(raw).hexdigest()


def blob_files(server: RegistryServer) -> set[str]:
    """Digests of the blobs stored on disk by `server`."""
    root = Path(server.storage) / "docker/registry/v2/blobs/sha256"
    return {f"sha256:{p.parent.name}" for p in root.glob("*/*/data")} if root.exists() else set()


def blob_size(server: RegistryServer, digest: str) -> int:
    """Size in bytes of a blob stored on disk by `server`."""
    hexdigest = digest.split(":", 1)[1]
    return (
        (Path(server.storage) / "docker/registry/v2/blobs/sha256" / hexdigest[:2] / hexdigest / "data")
        .stat()
        .st_size
    )
