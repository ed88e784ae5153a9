"""The wheel runs what it lists: built from this checkout, installed into a fresh venv outside it, it runs
`--version`, `validate`, `plan` and the whole `demo` (the ASL, buildspec and demo config are package data)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]
# What setuptools and pip print when the project's metadata is out of date or names a missing extra.
PROJECT_WARNINGS = ("deprecat", "does not provide the extra", "license-file", "SetuptoolsWarning")


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

    # And a fresh venv outside the checkout holding it with the `demo` extra (dependencies from the package index)
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path, env, 120)
    python = venv / "bin" / "python"
    installed = run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--no-compile",
            f"{wheel}[demo]",
        ],
        tmp_path,
        env,
        600,
    )
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
            [cli, "plan", str(config), "--repository", "app", "--tag", "release-1", "--json"], work, env, 60
        ).stdout
    )
    assert len(planned["targets"]) == 3

    # When it runs the demo Then the whole workflow passes from the wheel alone
    demo = run([cli, "demo"], work, env, 600)
    assert "DEMO PASSED" in demo.stdout
