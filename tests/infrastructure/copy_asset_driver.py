"""Runs `ecr-replicate copy` from the copy-job asset alone, then fails if anything came from elsewhere.

Started by test_copy_asset.py as `python3 -S copy_asset_driver.py ARGS...` with PYTHONPATH set to the
asset only. Standard library only, until the asset's own modules are imported. The one thing it changes:
connections to the ECR host in ECR_ROUTE (`host=127.0.0.1:port`) go to a loopback registry, the way
DNS would send them to ECR (TLS is still verified against that host name).
Exit codes: the command's own, or 3 when a module was imported from outside the asset and the stdlib.
"""

from __future__ import annotations

import os
import sys
import sysconfig

ASSET = os.path.realpath(os.environ["PYTHONPATH"])
ROOTS = (ASSET, *{os.path.realpath(sysconfig.get_paths()[k]) for k in ("stdlib", "platstdlib")})


def outside_modules() -> list[str]:
    """Imported modules whose files lie outside the asset and the standard library."""
    found = []
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if not path:
            continue
        real = os.path.realpath(path)
        if real == os.path.realpath(__file__):  # this driver, as __main__ (and __mp_main__)
            continue
        if not any(real.startswith(root + os.sep) for root in ROOTS):
            found.append(f"{name} ({real})")
    return sorted(found)


def route_ecr_host() -> None:
    """Send connections for the ECR host to the loopback registry standing for it."""
    host, _, target = os.environ["ECR_ROUTE"].partition("=")
    address = (target.rsplit(":", 1)[0], int(target.rsplit(":", 1)[1]))
    from urllib3.util import connection

    original = connection.create_connection

    def create_connection(where: tuple[str, int], *args: object, **kwargs: object) -> object:
        return original(address if where[0] == host else where, *args, **kwargs)  # type: ignore[arg-type]

    connection.create_connection = create_connection  # type: ignore[assignment]


def main() -> int:
    """Run the command the buildspec runs (`python3 -m workflow.engine`); report any import from outside the
    asset."""
    if not sys.flags.no_site or any("-packages" in p for p in sys.path):
        print(f"driver: not isolated: no_site={sys.flags.no_site} path={sys.path}", file=sys.stderr)
        return 3
    route_ecr_host()
    from workflow.engine.__main__ import main as cli

    code = cli(sys.argv[1:])
    outside = outside_modules()
    if outside:
        print("driver: imported from outside the asset: " + ", ".join(outside), file=sys.stderr)
        return 3
    return code


if __name__ == "__main__":
    sys.exit(main())
