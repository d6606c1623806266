"""Execute a project notebook headless (nbclient) in a chosen Kedro environment."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def run_notebook(path: str | Path, env: str = "test", timeout: int = 600, **extra_env: str):
    """Run every cell of ``path`` from the project root; raise on the first failing cell.

    Returns:
        The executed notebook (nbformat.NotebookNode) so tests can inspect outputs.
    """
    nb_path = Path(path)
    if not nb_path.is_absolute():
        nb_path = PROJECT_ROOT / nb_path
    nb = nbformat.read(nb_path, as_version=4)
    old = dict(os.environ)
    os.environ.update({"KEDRO_ENV": env, "AIETL_PROJECT_ROOT": str(PROJECT_ROOT), **extra_env})
    try:
        client = NotebookClient(
            nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(PROJECT_ROOT)}}
        )
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    return nb
