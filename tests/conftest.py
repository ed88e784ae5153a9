"""Session-wide: record every AWS call the components make, for the IAM coverage test (tests/iam), say which
tests share a process under pytest-xdist, and parse botocore's models and the state machine's definition once per
process (tests/botocore_models.py, tests/asl_programs.py); the `aws` fixture (moto) for every suite.

The recorder is installed before any test runs, in this process and (through PYTHONPATH and
`tests/iam/site/sitecustomize.py`) in every Python subprocess the tests start. Each pytest process (the
only one, or each xdist worker) writes its own file in one folder, ECR_REPLICATE_IAM_RECORDS (made here
unless given: `make test` gives the parallel run and the coverage test's own run the same one). The
coverage test reads every file there, so it runs after the suites whose calls it checks: last in a run
without xdist, in a run of its own after a parallel one (`make test`).

Under xdist (`--dist loadgroup --no-loadscope-reorder`, with the scheduler below) a module's tests stay in one
process (module fixtures start once); every module using the synthesized app shares one process, so the app is
synthesized once per run. Each e2e module is a group of its own, with its own shared runtime
(tests/e2e/conftest.py: starting one takes about a second), so that the e2e suite spreads over every worker. The
longest groups come first, so that none starts last and ends the run late. `-n auto` starts two workers per
CPU: the suite spends about half its time waiting (on subprocesses, registries, the state machine's Wait
states), and a second worker per CPU runs while the first waits.
"""

from __future__ import annotations

import ast
import functools
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from tests import asl_programs, botocore_models
from tests.iam.recorder import RECORD_ENV, RECORDS_ENV, install
from tests.unit.fake_ecr import use_moto_environment

SITE = Path(__file__).resolve().parent / "iam" / "site"
RAM_TEMPORARY = Path("/dev/shm") / "ecr-replicate-tests"
COVERAGE_TEST = "tests/iam/test_iam_coverage.py"
SYNTHESIZED = "synthesized"  # the session fixture of tests/infrastructure/conftest.py
# xdist groups by length, longest first (measured with `pytest --durations`); the others follow.
LONGEST = (
    "tests/integration/test_wheel.py",
    SYNTHESIZED,
    "tests/e2e/test_workflow_paths.py",
    "tests/integration/test_hostile_registries.py",
    "tests/e2e/test_gates.py",
    "tests/e2e/test_broken_build_results.py",
    "tests/e2e/test_gates_arrivals.py",
    "tests/integration/test_copy_faults.py",
    "tests/infrastructure/test_make_synth.py",
    "tests/e2e/test_local_ecr.py",
    "tests/integration/test_put_pacing.py",
    "tests/e2e/test_custom_demo.py",
    "tests/e2e/test_registry_stalls.py",
    "tests/unit/test_plan.py",
    "tests/unit/test_sync_deletes.py",
    "tests/integration/test_copy_against_registries.py",
    "tests/unit/test_sync.py",
    "tests/iam/test_operator_access.py",
    "tests/e2e/test_event_patterns.py",
)
WORKERS_PER_CPU = 2


def pytest_configure(config: pytest.Config) -> None:
    """Start recording to this process's file in the run's folder, here and in subprocesses."""
    _temporary_files_in_memory()
    directory = os.environ.get(RECORDS_ENV) or tempfile.mkdtemp(prefix="iam-calls-")
    os.environ[RECORDS_ENV] = directory
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    path = os.path.join(directory, f"calls-{worker}-{os.getpid()}.jsonl")
    os.environ[RECORD_ENV] = path
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SITE), os.environ.get("PYTHONPATH")]))
    install(path)
    botocore_models.share()
    asl_programs.share()


def _temporary_files_in_memory() -> None:
    """The run's temporary files (tmp_path, the local runtimes' registries and work folders, the copy jobs' build
    folders) in a tmpfs, when the machine has one at /dev/shm and TMPDIR does not say otherwise: for this process,
    the xdist workers it starts and every subprocess. The tests write and delete thousands of small files, and on a
    disk mounted with `discard` (this project's machines) each delete takes over a millisecond: a runtime's
    cleanup took seconds, 2.2 s for 1,600 entries against 0.03 s in the tmpfs."""
    if os.environ.get("TMPDIR") or not os.access(RAM_TEMPORARY.parent, os.W_OK):
        return
    RAM_TEMPORARY.mkdir(mode=0o700, exist_ok=True)
    os.environ["TMPDIR"] = str(RAM_TEMPORARY)
    tempfile.tempdir = None  # read TMPDIR again


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto for every AWS call: test credentials and Region, nothing inherited that could redirect a call."""
    use_moto_environment(monkeypatch)
    with mock_aws():
        yield


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Order the xdist groups longest first, and run the IAM coverage test last, after every suite that records
    calls. Within a group, the tests that start a local runtime of their own come last (starting one stops the
    e2e suite's shared runtime, which then starts again)."""
    items.sort(
        key=lambda item: (
            item.nodeid.startswith(COVERAGE_TEST),
            LONGEST.index(group_of(item.nodeid)) if group_of(item.nodeid) in LONGEST else len(LONGEST),
            item.get_closest_marker("own_runtime") is not None,
        )
    )


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """`-n auto`: WORKERS_PER_CPU workers per CPU (PYTEST_XDIST_AUTO_NUM_WORKERS, when set, is xdist's)."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return WORKERS_PER_CPU * cpus


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadgroup` with the groups of `group_of`. xdist's own loadgroup reads `xdist_group` marks by
    appending the group to each test's node id, which pytest 9 no longer lets a plugin change (`Node.nodeid` is
    computed from the node's parts), so it would schedule every test on its own; this scheduler takes the
    group from the node id instead. Other --dist modes are xdist's."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class Groups(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid)

    return Groups(config, log)


def group_of(nodeid: str) -> str:
    """A test's xdist group: the modules using the synthesized app; else its module."""
    module = nodeid.split("::", 1)[0]
    return SYNTHESIZED if module in _synthesizing() else module


@functools.cache
def _synthesizing() -> frozenset[str]:
    """The infrastructure test modules with a function (a test or a fixture) taking the `synthesized` fixture."""
    root = Path(__file__).resolve().parent.parent
    return frozenset(
        path.relative_to(root).as_posix()
        for path in sorted((root / "tests" / "infrastructure").glob("test_*.py"))
        if any(
            isinstance(node, ast.FunctionDef) and any(arg.arg == SYNTHESIZED for arg in node.args.args)
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        )
    )
