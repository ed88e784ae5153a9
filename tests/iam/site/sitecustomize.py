"""Test-only: start the IAM call recorder in subprocesses (the local runtime's copy job) when asked.

The top-level tests/conftest.py puts this directory on PYTHONPATH and sets ECR_REPLICATE_IAM_RECORD. The
recorder hooks botocore's sessions and the registry transport, so it starts when the subprocess first imports
either: one that never does (a build's `python3 -c` check) makes no call to record and does not pay the
recorder's imports (a third of a second per process). That subprocess also parses botocore's models once
(tests/botocore_models.py).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
from collections.abc import Sequence
from types import ModuleType

HOOKED = ("botocore.session", "workflow.registry.transport")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _install() -> None:
    sys.path.append(ROOT)
    from tests import botocore_models
    from tests.iam.recorder import RECORD_ENV, install

    install(os.environ[RECORD_ENV])
    botocore_models.share()


class _InstallOnImport(importlib.abc.MetaPathFinder):
    """Installs the recorder right after the first of HOOKED is imported, then steps aside."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in HOOKED:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        exec_module = loader.exec_module

        def exec_then_install(module: ModuleType) -> None:
            exec_module(module)
            if self in sys.meta_path:
                sys.meta_path.remove(self)
                # What the import system does once this returns: the recorder reads `botocore.session`.
                parent, _, name = fullname.rpartition(".")
                setattr(sys.modules[parent], name, module)
                _install()

        loader.exec_module = exec_then_install  # type: ignore[method-assign]
        return spec


if os.environ.get("ECR_REPLICATE_IAM_RECORD"):
    sys.meta_path.insert(0, _InstallOnImport())
