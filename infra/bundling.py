"""Asset bundling without Docker: `cdk.ILocalBundling` implementations.

- The Lambda asset: the `workflow` and `lambdas` packages, their runtime dependencies installed by
  pip for the Lambda platform (manylinux aarch64 wheels), and the config as `replication.yaml` at
  the root. Dependencies are cached by a hash of the requirements, so repeated synths are fast.
- The copy-job asset: the copy job's part of the `workflow` package (core/, registry/ and engine/, which
  never import pydantic: tests/unit/test_layering.py) and the pure-Python packages `python3 -m
  workflow.engine copy` imports, pinned to the versions of this environment. The build runs it from the
  asset with PYTHONPATH: nothing is downloaded while a copy job holds push credentials.

Both assets carry a custom hash computed from the files they contain, so CDK skips bundling when
the staged asset already exists.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii

from infra.settings import REPOSITORY_ROOT

LAMBDA_PYTHON_VERSION = "3.14"
# The python3.14 runtime runs Amazon Linux 2023 (glibc 2.34; Lambda runtimes page,
# https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html): manylinux 2.28 wheels run there,
# and some dependencies (google-re2) publish no manylinux2014 wheel for it.
LAMBDA_PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64")
CONFIG_FILE_NAME = "replication.yaml"
# Provided by the Lambda runtime; a bundled copy would shadow the runtime's matching boto3.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")
# What `ecr-replicate copy` imports beyond the standard library (boto3 for roles and ECR tokens), with
# their dependencies. All pure Python (pip is asked for platform "any"), so one bundle runs on any
# CodeBuild image's Python 3.11 or newer.
COPY_JOB_DISTRIBUTIONS = ("urllib3", "boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six")
COPY_JOB_PYTHON_VERSION = "3.11"
# The packages of `workflow` the copy job runs (beside workflow/__init__.py).
COPY_JOB_PACKAGES = ("core", "registry", "engine")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", ".pytest_cache")
CACHE_ENV = "ECR_REPLICATION_BUNDLE_CACHE"
# Docker is never used: every bundler here succeeds locally or raises.
UNUSED_IMAGE = cdk.DockerImage.from_registry("local-bundling-only")


class BundlingError(RuntimeError):
    """Local bundling failed; the message says which step and why."""


def lambda_requirements(pyproject: Path = REPOSITORY_ROOT / "pyproject.toml") -> list[str]:
    """The Lambda runtime requirements: the package's dependencies minus boto3, plus the `lambda` extra."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    base = [r for r in project["dependencies"] if not r.replace(" ", "").lower().startswith("boto3")]
    return [*base, *project["optional-dependencies"]["lambda"]]


def default_cache_dir() -> Path:
    """Where installed dependencies are cached (env ECR_REPLICATION_BUNDLE_CACHE overrides)."""
    return Path(os.environ.get(CACHE_ENV) or REPOSITORY_ROOT / "cdk.out" / ".bundle-cache")


def _files(paths: Iterable[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
            )
    return found


def content_hash(parts: Sequence[str], copies: Sequence[tuple[Path, str]] = ()) -> str:
    """A sha256 over some strings and what `copies` puts in the asset: each file's name there and bytes.

    Names are those inside the asset, so a config kept outside this checkout hashes like one inside it.
    """
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() + b"\0")
    for source, name in copies:
        for path in _files([source]):
            inside = name if path == source else f"{name}/{path.relative_to(source).as_posix()}"
            digest.update(inside.encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _copy_into(output: Path, copies: Sequence[tuple[Path, str]]) -> None:
    for source, name in copies:
        target = output / name
        if source.is_dir():
            shutil.copytree(source, target, ignore=IGNORED, dirs_exist_ok=True)
        elif source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        else:
            raise BundlingError(f"cannot bundle {source}: no such file or directory")


@dataclass
class PipDependencies:
    """Dependencies installed by pip for a target platform, cached by a hash of the inputs."""

    requirements: Sequence[str]
    python_version: str = LAMBDA_PYTHON_VERSION
    platforms: Sequence[str] = LAMBDA_PLATFORMS
    cache_dir: Path = field(default_factory=default_cache_dir)
    runtime_provided: Sequence[str] = RUNTIME_PROVIDED

    @property
    def key(self) -> str:
        """The cache key: requirements, Python version, platforms and what the runtime provides."""
        parts = [*sorted(self.requirements), self.python_version, *self.platforms, *self.runtime_provided]
        return content_hash(parts)[:24]

    def install(self) -> Path:
        """The directory holding the installed dependencies (installing them on a cache miss)."""
        cached = self.cache_dir / f"deps-{self.key}"
        if cached.is_dir():
            return cached
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="deps-", dir=self.cache_dir))
        command = [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--no-compile", *(f"--platform={platform}" for platform in self.platforms), "--implementation", "cp",
            "--python-version", self.python_version, "--only-binary=:all:",
            "--target", str(staging), *self.requirements,
        ]  # fmt: skip
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise BundlingError(
                f"pip could not install the dependencies {', '.join(self.requirements)} for {', '.join(self.platforms)} "
                f"Python {self.python_version}:\n{completed.stderr.strip()}"
            )
        for entry in staging.iterdir():
            if entry.name.split("-")[0].lower() in self.runtime_provided and entry.is_dir():
                shutil.rmtree(entry)
        try:
            staging.rename(cached)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)  # another synth filled the cache first
        return cached


@jsii.implements(cdk.ILocalBundling)
class LocalBundling:
    """Bundles an asset on this machine: optional pip dependencies, then copied files and packages."""

    def __init__(
        self, copies: Sequence[tuple[Path, str]], dependencies: PipDependencies | None = None
    ) -> None:
        self.copies = list(copies)
        self.dependencies = dependencies

    def try_bundle(self, output_dir: str, *_args: Any, **_kwargs: Any) -> bool:
        """Fill `output_dir`; never falls back to Docker."""
        output = Path(output_dir)
        if self.dependencies is not None:
            shutil.copytree(self.dependencies.install(), output, dirs_exist_ok=True)
        _copy_into(output, self.copies)
        return True

    def bundling_options(self, asset_hash: str) -> dict[str, Any]:
        """Keyword arguments for `from_asset`/`Asset` that bundle with this bundler."""
        return {
            "asset_hash": asset_hash,
            "asset_hash_type": cdk.AssetHashType.CUSTOM,
            "bundling": cdk.BundlingOptions(image=UNUSED_IMAGE, local=self),
        }


def lambda_asset_options(config_path: Path, cache_dir: Path | None = None) -> dict[str, Any]:
    """Asset options for the Lambda code: packages, dependencies and the config file."""
    packages = [REPOSITORY_ROOT / "workflow", REPOSITORY_ROOT / "lambdas"]
    dependencies = PipDependencies(lambda_requirements(), cache_dir=cache_dir or default_cache_dir())
    copies = [*((p, p.name) for p in packages), (config_path, CONFIG_FILE_NAME)]
    bundler = LocalBundling(copies, dependencies)
    return bundler.bundling_options(content_hash(["lambda", dependencies.key], copies))


def copy_job_requirements() -> list[str]:
    """The copy job's dependencies, pinned to this environment's versions (the ones the tests ran with)."""
    return [f"{name}=={importlib.metadata.version(name)}" for name in COPY_JOB_DISTRIBUTIONS]


def copy_job_options(cache_dir: Path | None = None) -> dict[str, Any]:
    """Asset options for the copy job: the copy job's packages of `workflow` beside its pinned pure-Python
    dependencies."""
    dependencies = PipDependencies(
        copy_job_requirements(),
        python_version=COPY_JOB_PYTHON_VERSION,
        platforms=("any",),
        cache_dir=cache_dir or default_cache_dir(),
        runtime_provided=(),
    )
    workflow = REPOSITORY_ROOT / "workflow"
    copies = [
        (workflow / "__init__.py", "workflow/__init__.py"),
        *((workflow / package, f"workflow/{package}") for package in COPY_JOB_PACKAGES),
    ]
    bundler = LocalBundling(copies, dependencies)
    return bundler.bundling_options(content_hash(["copy-job", dependencies.key], copies))
