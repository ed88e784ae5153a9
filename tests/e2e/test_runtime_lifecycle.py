"""The local runtime as a context manager: whatever it started is stopped, its temporary directory removed and
the environment restored on exit, whether it failed to start, the body raised, or the run was interrupted."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from tests.e2e.conftest import EU, SOURCE, destination
from workflow.local.registries import RuntimeSetupError
from workflow.local.runtime import STATE_MACHINE, LocalRuntime

pytestmark = [pytest.mark.e2e, pytest.mark.own_runtime]
CONFIG = {
    "source": SOURCE,
    "rules": [
        {
            "name": "releases",
            "repositories": ["app"],
            "tags": {"include": ["release-*"]},
            "destinations": [destination(EU)],
        }
    ],
}


def listening(host: str) -> bool:
    """Whether something accepts connections on `127.0.0.1:PORT`."""
    address, port = host.rsplit(":", 1)
    with socket.socket() as probe:
        probe.settimeout(1.0)
        return probe.connect_ex((address, int(port))) == 0


def hosts(runtime: LocalRuntime) -> list[str]:
    """Every loopback host the runtime served on: its fronts, the registries behind them, and moto."""
    fronts = [front.registry.host for front in runtime.fronts.values()]
    upstreams = [front.upstream.host for front in runtime.fronts.values()]
    return [*fronts, *upstreams, runtime.endpoint_url.removeprefix("http://")]


def test_a_runtime_failing_to_start_leaves_nothing_behind(tmp_path: Path) -> None:
    # Given a state machine with a substitution the runtime does not know
    broken = tmp_path / "statemachine.asl.json"
    broken.write_text(STATE_MACHINE.read_text(encoding="utf-8").replace("${PlanFunctionArn}", "${Unknown}"))
    environment = dict(os.environ)
    runtime = LocalRuntime(CONFIG, state_machine=broken)
    # When it starts, after its registries and moto are up / Then it says what is wrong
    with pytest.raises(
        RuntimeSetupError, match=r"substitutions the local runtime does not know: \['Unknown'\]"
    ):
        runtime.__enter__()
    # And everything it started is stopped, its directory gone, the environment as it was
    assert len(runtime.fronts) == 2
    assert runtime.endpoint_url
    assert not [host for host in hosts(runtime) if listening(host)]
    assert not runtime.workdir.exists()
    assert dict(os.environ) == environment


def run_ended_by(raised: type[BaseException], started: list[LocalRuntime]) -> None:
    """Start a runtime (appended to `started`), check that it serves, then end the run with `raised`."""
    with LocalRuntime(CONFIG) as runtime:
        started.append(runtime)
        assert all(listening(host) for host in hosts(runtime))
        assert runtime.workdir.is_dir()
        raise raised("ended")


@pytest.mark.parametrize("raised", [RuntimeError, KeyboardInterrupt])
def test_a_run_ended_by_an_error_or_ctrl_c_leaves_nothing_behind(raised: type[BaseException]) -> None:
    # Given a running runtime, serving on its registries and moto
    environment = dict(os.environ)
    started: list[LocalRuntime] = []
    # When the run ends with an error, or Ctrl-C
    with pytest.raises(raised, match="ended"):
        run_ended_by(raised, started)
    # Then everything it started is stopped, its directory gone, the environment as it was
    [runtime] = started
    assert not [host for host in hosts(runtime) if listening(host)]
    assert not runtime.workdir.exists()
    assert dict(os.environ) == environment
