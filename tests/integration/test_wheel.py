"""The wheel runs what it lists: built from this checkout, installed into a venv outside it, it runs
`--version`, `validate`, `plan` and the whole `demo` (the ASL, buildspec and demo config are package data).

The venv holds only the wheel and its dependencies. Installing those from the package index is most of the
test's time and changes only with them, so the venv is kept between runs under a key of what it depends on
(this Python, the project's dependencies and extras; ~/.cache/ecr-filtered-replication, or
$ECR_REPLICATION_TEST_CACHE), locked while a run uses it; the wheel itself is built and installed anew every run.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]
# What setuptools and pip print when the project's metadata is out of date or names a missing extra.
PROJECT_WARNINGS = ("deprecat", "does not provide the extra", "license-file", "SetuptoolsWarning")
CACHE_ENV = "ECR_REPLICATION_TEST_CACHE"
READY = ".dependencies-installed"


def venv_key() -> str:
    """A hash of what the venv holds besides the wheel: this Python and the project's dependencies and extras."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    inputs = [sys.version, project["dependencies"], project["optional-dependencies"]]
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


@contextmanager
def dependency_venv() -> Iterator[Path]:
    """The venv (outside the checkout) for the current key, held under an exclusive lock while in use."""
    root = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "ecr-filtered-replication")
    root.mkdir(parents=True, exist_ok=True)
    venv = root / f"wheel-venv-{venv_key()}"
    with open(root / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield venv


def run(
    command: list[str], cwd: Path, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run `command`; fail the test with its output if it exits non-zero."""
    completed = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert completed.returncode == 0, (
        f"{command[:3]} exited {completed.returncode}:\n{completed.stdout}\n{completed.stderr}"
    )
    return completed


@pytest.mark.timeout(1200)
def test_the_wheel_installed_outside_the_checkout_runs_validate_plan_and_the_demo(tmp_path: Path) -> None:
    # Given a wheel built from this checkout, with no warning the project causes
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    built = run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path / "dist"), str(ROOT)],
        tmp_path,
        env,
        300,
    )
    output = (built.stdout + built.stderr).lower()
    assert not [w for w in PROJECT_WARNINGS if w.lower() in output], output
    (wheel,) = (tmp_path / "dist").glob("*.whl")

    # And a venv outside the checkout holding it with the `demo` extra (dependencies from the package index, once
    # per key: a venv another run left half made is made again)
    with dependency_venv() as venv:
        if not (venv / READY).exists():
            shutil.rmtree(venv, ignore_errors=True)
            run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path, env, 120)
        python = venv / "bin" / "python"
        pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-compile"]
        run([*pip, "--force-reinstall", "--no-deps", str(wheel)], tmp_path, env, 300)
        installed = run([*pip, f"{wheel}[demo]"], tmp_path, env, 600)
        (venv / READY).touch()
        assert "does not provide the extra" not in installed.stderr
        cli = str(venv / "bin" / "ecr-replicate")
        work = tmp_path / "elsewhere"
        work.mkdir()
        config = shutil.copy(ROOT / "examples" / "replication.yaml", work / "replication.yaml")
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"

        # When its package is imported Then it comes from the venv, with the ASL and buildspec as regular files
        located = run([str(python), "-c", "import workflow; print(workflow.__file__)"], work, env, 60)
        package = Path(located.stdout.strip()).parent
        assert package.is_relative_to(venv)
        for name, original in (
            ("statemachine.asl.json", "statemachine.asl.json"),
            ("buildspec.yml", "infra/buildspec.yml"),
        ):
            shipped = package / "_data" / name
            assert not shipped.is_symlink()
            assert shipped.read_bytes() == (ROOT / original).read_bytes()

        # When it runs --version, validate and plan Then they answer as from the checkout
        version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
        assert run([cli, "--version"], work, env, 60).stdout == f"ecr-replicate {version}\n"
        assert "valid: 2 rule(s)" in run([cli, "validate", str(config)], work, env, 60).stdout
        planned = json.loads(
            run(
                [cli, "plan", str(config), "--repository", "app", "--tag", "release-1", "--json"],
                work,
                env,
                60,
            ).stdout
        )
        assert len(planned["targets"]) == 3

        # When it runs the demo Then the whole workflow passes from the wheel alone
        demo = run([cli, "demo"], work, env, 600)
        assert "DEMO PASSED" in demo.stdout
