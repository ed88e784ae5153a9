"""Progress of `copy`: a rich bar with bytes, total, rate and time left on a terminal; plain lines elsewhere,
without importing rich (the copy job's start-up path)."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap

from workflow.engine.copier import ProgressEvent
from workflow.engine.progress import CopyDisplay, CopyLines, copy_progress

A, B = "sha256:" + "a" * 64, "sha256:" + "b" * 64
EVENTS = [
    ProgressEvent("blob-start", A, 1024),
    ProgressEvent("blob-start", B, 3072),
    ProgressEvent("blob-bytes", A, 1024),
    ProgressEvent("blob-done", A, 1024),
    ProgressEvent("blob-bytes", B, 3072),
    ProgressEvent("blob-done", B, 3072),
    ProgressEvent("blob-skipped", "sha256:" + "c" * 64, 10),
    ProgressEvent("manifest", "sha256:" + "d" * 64, 500),
]


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_on_a_terminal_copy_shows_a_rich_bar_with_bytes_total_and_blobs() -> None:
    # Given a terminal When a copy reports its events
    terminal = Terminal()
    progress = copy_progress(terminal)
    assert isinstance(progress, CopyDisplay)
    for event in EVENTS:
        progress(event)
    progress.close()
    # Then the last frame shows blobs done, bytes copied of the total, and rich's bar
    shown = terminal.getvalue()
    assert "blobs 2/2, 1 present" in shown
    assert "4.0/4.0 KiB" in shown
    assert "\u2501" in shown


def test_elsewhere_copy_prints_plain_lines_with_the_total() -> None:
    # Given a pipe When a copy reports its events
    pipe = io.StringIO()
    progress = copy_progress(pipe)
    assert isinstance(progress, CopyLines)
    for event in EVENTS:
        progress(event)
    progress.close()
    # Then plain lines, no escape codes, with bytes of the total known so far
    lines = pipe.getvalue().splitlines()
    assert lines[0] == "  1.0 KiB of 4.0 KiB copied, " + lines[0].split("copied, ")[1]
    assert f"blob {B[:19]} 3.0 KiB copied" in lines
    assert f"blob sha256:{'c' * 12} 10 B already present" in lines
    assert "\x1b" not in pipe.getvalue()


def test_the_copy_path_does_not_import_rich_without_a_terminal() -> None:
    # Given `ecr-replicate copy` in a fresh interpreter with stderr a pipe (as in CodeBuild), and an engine
    # that reports progress and fails
    script = textwrap.dedent(
        """
        import sys
        import workflow.engine.copy as command
        from workflow.engine.copier import ProgressEvent
        from workflow.core.exceptions import ImageNotFound

        def engine(*args, progress, **kwargs):
            progress(ProgressEvent("blob-start", "sha256:" + "a" * 64, 10))
            progress(ProgressEvent("blob-done", "sha256:" + "a" * 64, 10))
            raise ImageNotFound("no such tag")

        command.copy_image = engine
        from workflow.cli import main
        code = main(["copy", "reg.example.com/app:v1", "reg.example.com/app:v1"])
        loaded = sorted({name.split(".")[0] for name in sys.modules} & {"rich", "pydantic", "yaml"})
        print(code, loaded)
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=60
    )
    # Then it reports in plain lines, and neither rich nor the config's libraries were imported
    assert completed.stdout == "1 []\n", completed.stderr
    assert completed.stderr.splitlines() == [
        f"blob sha256:{'a' * 12} 10 B copied",
        "failed: ImageNotFound: no such tag",
    ]
