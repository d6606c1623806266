"""Execute a project notebook headless (nbclient) the way Jupyter does: kernel in notebooks/, a Kedro env."""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = PROJECT_ROOT / "notebooks"
FIGURE_TYPES = ("image/png", "image/svg+xml", "application/vnd.plotly.v1+json")
#: a library warning as Python or a logger prints it (``FooWarning: ...``, ``WARNING  ...``)
WARNING_LINE = re.compile(r"\b\w*Warning\b|\bWARNING\b")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]|\x1b\]8;[^\x1b]*\x1b\\")


def run_notebook(path: str | Path, timeout: int = 600, allow_errors: bool = False, **env: str) -> nbformat.NotebookNode:
    """Run every cell of ``path`` in a fresh kernel whose working directory is the notebook's folder.

    Returns:
        The executed notebook, so tests can inspect its outputs. Raises nbclient's CellExecutionError at the
        first failing cell unless ``allow_errors``.
    """
    nb_path = Path(path) if Path(path).is_absolute() else PROJECT_ROOT / path
    nb = nbformat.read(nb_path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=allow_errors,
                            resources={"metadata": {"path": str(nb_path.parent)}})
    try:
        client.execute(env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1", **env})
    except CellExecutionError as exc:
        exc.notebook = nb  # the cells run so far, for tests that check where it stopped
        raise
    return nb


def outputs(nb: nbformat.NotebookNode) -> list[dict]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def output_text(output: dict) -> str:
    """The text a reader sees in one output (streams, text/plain of rich outputs, tracebacks), ANSI removed."""
    text = output.get("text") or output.get("data", {}).get("text/plain", "") or "\n".join(output.get("traceback", []))
    return _ANSI.sub("", text if isinstance(text, str) else "".join(text))


def figures(nb: nbformat.NotebookNode) -> list[dict]:
    return [o for o in outputs(nb) if any(t in o.get("data", {}) for t in FIGURE_TYPES)]


def warning_lines(nb: nbformat.NotebookNode) -> list[str]:
    return [line for o in outputs(nb) for line in output_text(o).splitlines() if WARNING_LINE.search(line)]
