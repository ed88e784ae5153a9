"""Benchmark: this copy engine against `skopeo copy --all --preserve-digests`, registry to registry.

Two docker-registry instances on loopback; an image of two platforms with 8 layers of random
(incompressible) data each, at two layer sizes. For each size, alternating runs of both engines in three
cases: cold (fresh destination storage), warm (everything present), retag (digest present, new tag).
Reports medians and the ratio ours/skopeo of wall time, bytes the destination registry read, and the
copier's peak RSS. Usage: `python bench/copy_vs_skopeo.py [--runs 3] [--sizes-mb 4 16]`.

Ours runs as a process, `python -m workflow.cli copy` (as the copy job runs it), from a throwaway venv holding a regular
(non-editable) install of this checkout, as CodeBuild installs it (`pip install "$CODEBUILD_SRC_DIR"`),
with the one dependency the copy path to a registry that is not ECR imports (urllib3, the version of this
venv); the editable install of the development venv would add its import hook to each start. The same copies are
also timed in-process (`copy_image()` in this process, as the precheck Lambda calls the engine), shown
apart: the headline ratios compare process with process.

Two reference points are measured in the same alternating runs, so the ratios can be read against what
bounds them on the machine at hand: `curl` = a plain parallel GET-then-PUT of the same blobs (one
`curl | curl` pipe per blob, all at once, no verification, no manifests) into a fresh destination, the
yardstick the cold target was derived from; and start-up = our interpreter importing the copy command
and exiting, no request made, the floor under every process copy.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urljoin

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.integration.images import ImageBuilder  # noqa: E402
from tests.integration.registries import RegistryServer  # noqa: E402
from workflow.engine.copier import copy_image  # noqa: E402

CASES = ("cold", "warm", "retag")
ENGINES = ("ours", "skopeo", "in-process", "curl")
REFERENCE_ENGINES = ("curl",)  # cold only: a floor for copying the bytes, not a copier


def io_bytes(pid: int, field: str) -> int:
    """A counter (rchar, wchar) from /proc/<pid>/io."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == field:
            return int(value)
    raise KeyError(field)


def install_ours(workdir: Path) -> Path:
    """A fresh venv with this checkout pip-installed (not editable) and urllib3; returns its python."""
    venv = workdir / "ours-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    installed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--no-deps",
            str(ROOT),
            f"urllib3=={importlib.metadata.version('urllib3')}",
        ],
        capture_output=True,
        text=True,
        cwd=workdir,
    )
    if installed.returncode != 0:
        raise RuntimeError(f"pip install of {ROOT} failed: {installed.stderr[-2000:]}")
    return python


def run_engine(
    engine: str, source: str, destination: str, insecure: list[str], python: Path
) -> tuple[float, int]:
    """Run one copy (a child process, or `copy_image()` in-process); returns (wall seconds, peak RSS)."""
    if engine == "in-process":
        started = time.monotonic()
        copy_image(source, destination, insecure_registries=insecure)
        return time.monotonic() - started, 0
    if engine == "ours":
        command = [str(python), "-m", "workflow.cli", "copy", source, destination]
        for host in insecure:
            command += ["--insecure-registry", host]
    else:
        command = [
            "skopeo",
            "--insecure-policy",
            "copy",
            "--all",
            "--preserve-digests",
            "--quiet",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            f"docker://{source}",
            f"docker://{destination}",
        ]
    started = time.monotonic()
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=python.parent.parent.parent
    )
    peak = [0]
    sampler = threading.Thread(target=_sample_hwm, args=(process, peak), daemon=True)
    sampler.start()
    _, err = process.communicate()
    wall = time.monotonic() - started
    sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"{engine} failed: {err.decode()[-2000:]}")
    return wall, peak[0]


def _sample_hwm(process: subprocess.Popen[bytes], peak: list[int]) -> None:
    """Track VmHWM (the peak resident set of the process's own memory map) until it exits."""
    status = Path(f"/proc/{process.pid}/status")
    while process.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak[0] = max(peak[0], int(line.split()[1]) * 1024)
        except (OSError, ValueError):
            pass
        time.sleep(0.005)


def curl_blobs(source_host: str, destination_host: str, blobs: list[str]) -> float:
    """The reference floor: every blob piped `curl GET | curl PUT` at once, unverified; returns wall seconds."""

    def one(digest: str) -> None:
        uploads = f"http://{destination_host}/v2/bench/image/blobs/uploads/"
        started = subprocess.run(
            ["curl", "-sSf", "-X", "POST", "-o", "/dev/null", "-w", "%header{location}", uploads],
            check=True,
            capture_output=True,
            text=True,
        )
        location = urljoin(uploads, started.stdout.strip())
        separator = "&" if "?" in location else "?"
        get = ["curl", "-sSf", f"http://{source_host}/v2/bench/image/blobs/{digest}"]
        put = ["curl", "-sSf", "-X", "PUT", "-H", "Content-Type: application/octet-stream", "-T", "-"]
        put.append(f"{location}{separator}digest={digest}")
        pipe = f"{shlex.join(get)} | {shlex.join(put)}"
        subprocess.run(["bash", "-o", "pipefail", "-c", pipe], check=True, capture_output=True)

    began = time.monotonic()
    with ThreadPoolExecutor(len(blobs)) as pool:
        list(pool.map(one, blobs))
    return time.monotonic() - began


def startup_seconds(python: Path) -> float:
    """Wall time of our interpreter importing the copy command and exiting (no request made)."""
    began = time.monotonic()
    subprocess.run(
        [str(python), "-c", "import workflow.cli, workflow.engine.copy"],
        check=True,
        cwd=python.parent.parent.parent,
    )
    return time.monotonic() - began


def build_source(workdir: Path, layer_mb: int) -> tuple[RegistryServer, str, list[str]]:
    """A source registry holding bench/image:v1 (2 platforms x 8 layers of `layer_mb` MiB); also its blobs."""
    source = RegistryServer.start(workdir / f"source-{layer_mb}", "none")
    builder = ImageBuilder(source.url)
    pushed = builder.index("bench/image", "v1", layer_sizes=(layer_mb << 20,) * 8)
    builder.close()
    return source, f"{source.host}/bench/image:v1", sorted(set(pushed.blobs))


def measure(
    workdir: Path, layer_mb: int, runs: int, python: Path
) -> dict[tuple[str, str], list[tuple[float, int, int]]]:
    """Alternating runs; results[(engine, case)] = [(wall, bytes read by destination, peak rss)]."""
    source, image, blobs = build_source(workdir, layer_mb)
    results: dict[tuple[str, str], list[tuple[float, int, int]]] = {}
    try:
        for run in range(runs):
            order = ENGINES[run % len(ENGINES) :] + ENGINES[: run % len(ENGINES)]
            for engine in order:
                dest = RegistryServer.start(workdir / f"dest-{layer_mb}-{engine}-{run}", "none")
                try:
                    if engine in REFERENCE_ENGINES:
                        before = io_bytes(dest.process.pid, "rchar")
                        wall = curl_blobs(source.host, dest.host, blobs)
                        moved = io_bytes(dest.process.pid, "rchar") - before
                        results.setdefault((engine, "cold"), []).append((wall, moved, 0))
                        print(
                            f"{layer_mb:>3} MiB layers  run {run}  {engine:<10} cold  {wall:6.2f} s",
                            file=sys.stderr,
                        )
                        continue
                    for case in CASES:
                        if (engine, case) == ("ours", "warm"):  # the floor, next to the copy it bounds
                            results.setdefault(("start-up", case), []).append((startup_seconds(python), 0, 0))
                        tag = "v1" if case != "retag" else "retag"
                        before = io_bytes(dest.process.pid, "rchar")
                        wall, rss = run_engine(
                            engine, image, f"{dest.host}/bench/image:{tag}", [source.host, dest.host], python
                        )
                        moved = io_bytes(dest.process.pid, "rchar") - before
                        results.setdefault((engine, case), []).append((wall, moved, rss))
                        print(
                            f"{layer_mb:>3} MiB layers  run {run}  {engine:<10} {case:<5} "
                            f"{wall:6.2f} s  {moved / 2**20:8.1f} MiB  {rss / 2**20:6.1f} MiB RSS",
                            file=sys.stderr,
                        )
                finally:
                    dest.stop()
    finally:
        source.stop()
    return results


def report(all_results: dict[int, dict[tuple[str, str], list[tuple[float, int, int]]]], runs: int) -> str:
    """A Markdown table of medians and ratios."""
    lines = [
        f"Medians of {runs} alternating runs each. Image: 2 platforms x 8 layers of random data.",
        "Bytes = bytes the destination registry read (`rchar` of its process: uploads plus its own reads).",
        "Peak RSS = VmHWM of the copier process, sampled every 5 ms. Ours runs as `python -m workflow.cli copy`",
        "from a non-editable install; in-process = `copy_image()` called in the benchmark process (no interpreter start).",
        "",
        "| layers | case | wall ours (s) | wall skopeo (s) | ratio | bytes ours (MiB) | bytes skopeo (MiB) "
        "| ratio | peak RSS ours (MiB) | peak RSS skopeo (MiB) | ratio | in-process wall (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for layer_mb, results in all_results.items():
        for case in CASES:
            ours = [statistics.median(v[i] for v in results[("ours", case)]) for i in range(3)]
            theirs = [statistics.median(v[i] for v in results[("skopeo", case)]) for i in range(3)]
            ratios = [f"{o / t:.2f}" if t else "-" for o, t in zip(ours, theirs, strict=True)]
            inprocess = statistics.median(v[0] for v in results[("in-process", case)])
            lines.append(
                f"| 8 x {layer_mb} MiB | {case} | {ours[0]:.3f} | {theirs[0]:.3f} | {ratios[0]} "
                f"| {ours[1] / 2**20:.1f} | {theirs[1] / 2**20:.1f} | {ratios[1]} "
                f"| {ours[2] / 2**20:.1f} | {theirs[2] / 2**20:.1f} | {ratios[2]} | {inprocess:.3f} |"
            )
    lines += [
        "",
        "Reference points from the same runs: `curl` = plain parallel `curl GET | curl PUT` of every blob at once",
        "(no verification, no manifests; the cold target's yardstick); start-up = our interpreter importing the",
        "copy command and exiting (no request made).",
        "",
        "| layers | cold: ours / skopeo | cold: in-process / skopeo | cold: curl / skopeo | cold: curl (s) "
        "| start-up alone (s) | warm: skopeo (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for layer_mb, results in all_results.items():
        cold = {engine: statistics.median(v[0] for v in results[(engine, "cold")]) for engine in ENGINES}
        startup = statistics.median(v[0] for v in results[("start-up", "warm")])
        skopeo_warm = statistics.median(v[0] for v in results[("skopeo", "warm")])
        lines.append(
            f"| 8 x {layer_mb} MiB | {cold['ours'] / cold['skopeo']:.2f} | {cold['in-process'] / cold['skopeo']:.2f} "
            f"| {cold['curl'] / cold['skopeo']:.2f} | {cold['curl']:.3f} | {startup:.3f} | {skopeo_warm:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes-mb", type=int, nargs="+", default=[4, 16])
    args = parser.parse_args()
    missing = [tool for tool in ("skopeo", "curl") if shutil.which(tool) is None]
    if missing:
        parser.error(f"needs {' and '.join(missing)} on PATH (make setup installs skopeo)")
    with tempfile.TemporaryDirectory(prefix="copy-bench-") as tmp:
        python = install_ours(Path(tmp))
        all_results = {size: measure(Path(tmp), size, args.runs, python) for size in args.sizes_mb}
    print(report(all_results, args.runs))


if __name__ == "__main__":
    main()
