"""`make setup` anywhere: with no apt-get it says in one line what to install and exits non-zero; where the
registry and skopeo were installed another way (on PATH, not as Debian packages) it finds them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
MAKE = shutil.which("make")
# What the Makefile's own shell lines use, found where this machine has them; nothing else is on PATH.
BASICS = ("bash", "sh", "id")

pytestmark = pytest.mark.skipif(MAKE is None, reason="make is not installed")


def checkout(tmp_path: Path) -> Path:
    """A directory holding the Makefile, as a fresh checkout would."""
    work = tmp_path / "checkout"
    work.mkdir()
    shutil.copy(ROOT / "Makefile", work / "Makefile")
    return work


def bare_path(tmp_path: Path, *extra: str) -> str:
    """A PATH with the basics and `extra` (fake executables), and no apt-get, dpkg, skopeo or registry."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in BASICS:
        found = shutil.which(name)
        assert found, name
        (bin_dir / name).symlink_to(found)
    for name in extra:
        fake = bin_dir / name
        fake.write_text("#!/bin/sh\nexit 0\n")
        fake.chmod(0o755)
    return str(bin_dir)


def make(work: Path, path: str, target: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {"PATH": path, "HOME": str(work), **env}
    assert MAKE is not None
    return subprocess.run(
        [MAKE, "--no-print-directory", target],
        cwd=work,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )


def test_without_apt_get_make_setup_says_what_to_install_in_one_line(tmp_path: Path) -> None:
    # Given a machine without apt-get or dpkg, and neither the registry nor skopeo
    work = checkout(tmp_path)
    path = bare_path(tmp_path)
    assert not any(
        shutil.which(n, path=path) for n in ("apt-get", "dpkg", "skopeo", "docker-registry", "registry")
    )
    # When `make setup` runs
    result = make(work, path, "setup")
    # Then it fails, in one line naming what to install, with no traceback and nothing installed
    assert result.returncode != 0
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "make setup needs docker-registry skopeo" in lines[0]
    assert "no apt-get" in lines[0]
    assert "Traceback" not in lines[0]
    assert not (work / ".venv").exists()


@pytest.mark.parametrize("registry", ["registry", "docker-registry"])
def test_tools_installed_another_way_are_found_on_path(tmp_path: Path, registry: str) -> None:
    # Given skopeo and the registry on PATH, installed without Debian's packages (no apt-get, no dpkg)
    work = checkout(tmp_path)
    path = bare_path(tmp_path, "skopeo", registry)
    # When the set-up's tool check runs / Then it is satisfied and installs nothing
    result = make(work, path, "tools")
    assert result.returncode == 0, result.stderr
    assert "installing" not in result.stdout + result.stderr
    assert result.stderr == ""


def test_a_registry_named_by_the_environment_is_enough(tmp_path: Path) -> None:
    # Given skopeo on PATH and the registry only where $ECR_REPLICATE_REGISTRY says
    work = checkout(tmp_path)
    path = bare_path(tmp_path, "skopeo")
    elsewhere = tmp_path / "opt" / "distribution-registry"
    elsewhere.parent.mkdir()
    elsewhere.write_text("#!/bin/sh\n")
    elsewhere.chmod(0o755)
    assert make(work, path, "tools", ECR_REPLICATE_REGISTRY=str(elsewhere)).returncode == 0
    # and without it the check names the registry only
    result = make(work, path, "tools")
    assert result.returncode != 0
    assert "make setup needs docker-registry and" in result.stderr


def test_the_local_runtime_finds_the_registry_the_same_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workflow.local.registries import RuntimeSetupError, registry_binary

    path = bare_path(tmp_path, "registry")
    monkeypatch.setenv("PATH", path)
    monkeypatch.delenv("ECR_REPLICATE_REGISTRY", raising=False)
    assert registry_binary() == os.path.join(path, "registry")
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    with pytest.raises(RuntimeSetupError, match="neither docker-registry nor registry is on PATH"):
        registry_binary()
