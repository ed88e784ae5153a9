"""CNCF distribution registries (Debian's `docker-registry`) on free loopback ports, with temporary storage."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

# The CNCF distribution registry: Debian's package installs it as `docker-registry`, the project's own
# releases (and most other packagings) as `registry`; $ECR_REPLICATE_REGISTRY names one anywhere else.
REGISTRY_ENV = "ECR_REPLICATE_REGISTRY"
REGISTRY_NAMES = ("docker-registry", "registry")
START_TIMEOUT_SECONDS = 15.0
STOP_TIMEOUT_SECONDS = 5.0


class RuntimeSetupError(RuntimeError):
    """The local runtime could not start one of its parts (a registry, moto, the AWS resources)."""


def registry_binary() -> str:
    """The distribution registry to run: $ECR_REPLICATE_REGISTRY, else `docker-registry` or `registry` on PATH."""
    named = os.environ.get(REGISTRY_ENV)
    if named:
        if not os.access(named, os.X_OK):
            raise RuntimeSetupError(f"${REGISTRY_ENV}={named} is not an executable file")
        return named
    found = next((path for name in REGISTRY_NAMES if (path := shutil.which(name))), None)
    if found is None:
        raise RuntimeSetupError(
            "the CNCF distribution registry is missing: neither docker-registry nor registry is on PATH "
            f"(make setup installs Debian's; elsewhere install it and put it on PATH, or set ${REGISTRY_ENV})"
        )
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class LocalRegistry:
    """One running registry: its name (e.g. "source"), `127.0.0.1:PORT` host and storage directory."""

    name: str
    host: str
    storage: Path

    @property
    def url(self) -> str:
        """The plain-HTTP base URL."""
        return f"http://{self.host}"


@dataclass(frozen=True)
class HtpasswdAuth:
    """Basic auth against an htpasswd file (docker-registry accepts only bcrypt entries)."""

    path: Path
    realm: str

    def config(self) -> dict[str, object]:
        """The `auth` section of the registry configuration."""
        return {"htpasswd": {"realm": self.realm, "path": str(self.path)}}


@dataclass(frozen=True)
class TokenServiceAuth:
    """Bearer tokens from a token service; `rootcertbundle` holds the certificates that sign them."""

    realm: str
    service: str
    issuer: str
    rootcertbundle: Path

    def config(self) -> dict[str, object]:
        """The `auth` section of the registry configuration."""
        return {
            "token": {
                "realm": self.realm,
                "service": self.service,
                "issuer": self.issuer,
                "rootcertbundle": str(self.rootcertbundle),
            }
        }


RegistryAuth = HtpasswdAuth | TokenServiceAuth


@dataclass(frozen=True)
class RegistryTls:
    """Serve HTTPS with `certificate` and `key`; `ca` is what a client must trust to verify it."""

    certificate: Path
    key: Path
    ca: Path

    def config(self) -> dict[str, object]:
        """The `http.tls` section of the registry configuration."""
        return {"certificate": str(self.certificate), "key": str(self.key)}


def _config(
    storage: Path, port: int, readonly: bool, delete: bool, auth: RegistryAuth | None, tls: RegistryTls | None
) -> str:
    http: dict[str, object] = {"addr": f"127.0.0.1:{port}", "secret": uuid.uuid4().hex}
    if tls is not None:
        http["tls"] = tls.config()
    config: dict[str, object] = {
        "version": 0.1,
        "log": {"level": "error", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(storage)},
            "delete": {"enabled": delete},
            "maintenance": {"readonly": {"enabled": readonly}, "uploadpurging": {"enabled": False}},
        },
        "http": http,
        # Accept manifests naming foreign (Windows base) layers by URL, as ECR does; distribution 2.7+
        # refuses every such URL unless an allow list is set (its configuration docs, `validation`).
        "validation": {"manifests": {"urls": {"allow": ["^https?://"]}}},
    }
    if auth is not None:
        config["auth"] = auth.config()
    return json.dumps(config)  # JSON is YAML


def remove_tag_link(storage: Path, repository: str, tag: str) -> bool:
    """Untag in a registry's filesystem storage, as distribution 3 does for a DELETE by tag; False if absent.

    The tag's link goes; the manifest, its other tags and its blobs stay (distribution 2.8 has no such API).
    """
    link = storage / "docker/registry/v2/repositories" / repository / "_manifests/tags" / tag
    if not link.is_dir():
        return False
    shutil.rmtree(link)
    return True


def _wait_ready(
    process: subprocess.Popen[bytes], url: str, log: Path, verify: ssl.SSLContext | bool = False
) -> None:
    """Poll `/v2/` until the registry answers; `verify`: the TLS context of an HTTPS registry (False, for plain
    HTTP, builds none: httpx would load its CA bundle for every poll, 30 ms each)."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeSetupError(f"docker-registry exited with {process.returncode}: {_tail(log)}")
        with contextlib.suppress(httpx.TransportError):
            # 401: the registry is up and asks for credentials.
            if httpx.get(f"{url}/v2/", timeout=1.0, verify=verify).status_code in (200, 401):
                return
        time.sleep(0.05)
    raise RuntimeSetupError(
        f"docker-registry at {url} did not answer /v2/ within {START_TIMEOUT_SECONDS:.0f}s: {_tail(log)}"
    )


def _tail(log: Path) -> str:
    """The log's last line (its panic line, if it panicked), and where the whole log is."""
    lines = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
    panics = [line for line in lines if line.startswith("panic:")]
    last = (panics or lines or ["no output"])[-1]
    return f"{last} (log: {log})"


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Terminate a child process, then kill it if it does not exit in time."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_SECONDS)


def start_registry(
    port: int,
    storage: Path,
    config_file: Path,
    log: Path,
    *,
    readonly: bool = False,
    delete: bool = False,
    auth: RegistryAuth | None = None,
    tls: RegistryTls | None = None,
) -> subprocess.Popen[bytes]:
    """Start `docker-registry serve` on 127.0.0.1:`port` (HTTPS with `tls`) and wait until `/v2/` answers.

    Writes `config_file`, sends the output to `log`; the caller stops the process with `stop_process`.
    """
    binary = registry_binary()
    config_file.write_text(_config(storage, port, readonly, delete, auth, tls))
    with log.open("wb") as log_stream:
        process = subprocess.Popen(
            [binary, "serve", str(config_file)],
            stdin=subprocess.DEVNULL,
            stdout=log_stream,
            stderr=subprocess.STDOUT,
            env={**os.environ, "OTEL_TRACES_EXPORTER": "none"},
        )
    try:
        if tls is None:
            _wait_ready(process, f"http://127.0.0.1:{port}", log)
        else:
            _wait_ready(
                process, f"https://127.0.0.1:{port}", log, verify=ssl.create_default_context(cafile=tls.ca)
            )
    except BaseException:
        stop_process(process)
        raise
    return process


class RegistryProcess:
    """One registry with storage under `root/name` on a port that stays its own across restarts.

    A read-only registry answers pulls but refuses pushes (the failing-destination tests and the demo);
    `restart(readonly=False)` is the repair: the same host and storage, accepting pushes again.
    """

    def __init__(self, name: str, root: Path, *, readonly: bool = False) -> None:
        storage = root / name
        storage.mkdir(parents=True)
        self.root = root
        self.port = free_port()
        self.registry = LocalRegistry(name=name, host=f"127.0.0.1:{self.port}", storage=storage)
        self.readonly = readonly
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the process and wait until `/v2/` answers."""
        name = self.registry.name
        self.process = start_registry(
            self.port,
            self.registry.storage,
            self.root / f"{name}.yml",
            self.root / f"{name}.log",
            readonly=self.readonly,
        )

    def stop(self) -> None:
        """Stop the process (if running)."""
        if self.process is not None:
            stop_process(self.process)
            self.process = None

    def restart(self, *, readonly: bool) -> None:
        """Stop, then start again read-only or accepting pushes, on the same port and storage."""
        self.stop()
        self.readonly = readonly
        self.start()


@contextlib.contextmanager
def running_registry(name: str, root: Path, *, readonly: bool = False) -> Iterator[RegistryProcess]:
    """Start one registry with storage under `root/name`; stopped when the context exits."""
    registry = RegistryProcess(name, root, readonly=readonly)
    registry.start()
    try:
        yield registry
    finally:
        registry.stop()
