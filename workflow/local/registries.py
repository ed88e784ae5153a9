"""CNCF distribution registries (Debian's `docker-registry`) on free loopback ports, with temporary storage."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

REGISTRY_BINARY = "/usr/bin/docker-registry"
START_TIMEOUT_SECONDS = 15.0
STOP_TIMEOUT_SECONDS = 5.0


class RuntimeSetupError(RuntimeError):
    """The local runtime could not start one of its parts (a registry, moto, the AWS resources)."""


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


def _config(storage: Path, port: int, readonly: bool) -> str:
    config = {
        "version": 0.1,
        "log": {"level": "error", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(storage)},
            "maintenance": {"readonly": {"enabled": readonly}, "uploadpurging": {"enabled": False}},
        },
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    return json.dumps(config)  # JSON is YAML


def _wait_ready(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeSetupError(f"docker-registry exited with {process.returncode}: {_tail(log)}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/v2/", timeout=1.0).status_code == 200:
                return
        time.sleep(0.05)
    raise RuntimeSetupError(
        f"docker-registry at {url} did not answer /v2/ within {START_TIMEOUT_SECONDS:.0f}s"
    )


def _tail(log: Path) -> str:
    lines = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
    return lines[-1] if lines else "no output"


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


@contextlib.contextmanager
def running_registry(name: str, root: Path, *, readonly: bool = False) -> Iterator[LocalRegistry]:
    """Start one registry with storage under `root/name`; stopped when the context exits.

    A read-only registry answers pulls but refuses pushes (used for the failing-destination tests).
    """
    if not Path(REGISTRY_BINARY).exists():
        raise RuntimeSetupError(
            f"{REGISTRY_BINARY} is missing: install Debian's docker-registry (make setup)"
        )
    storage = root / name
    storage.mkdir(parents=True)
    port = free_port()
    config_file = root / f"{name}.yml"
    config_file.write_text(_config(storage, port, readonly))
    log = root / f"{name}.log"
    with log.open("wb") as log_stream:
        process = subprocess.Popen(
            [REGISTRY_BINARY, "serve", str(config_file)],
            stdin=subprocess.DEVNULL,
            stdout=log_stream,
            stderr=subprocess.STDOUT,
        )
    try:
        registry = LocalRegistry(name=name, host=f"127.0.0.1:{port}", storage=storage)
        _wait_ready(process, registry.url, log)
        yield registry
    finally:
        stop_process(process)
