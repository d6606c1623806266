"""Where the project's folders are, whatever the working directory.

The API and the services are often started from another directory (a systemd unit, a notebook in
``notebooks/``, ``uvicorn --app-dir``): relative defaults such as ``feast_repo`` or ``data/08_reporting`` would
then point into the wrong folder (and Feast would create a stray ``feast_repo/`` there). Every default path is
resolved against `project_root()` instead:

1. ``AIETL_PROJECT_ROOT`` when set;
2. else the checkout the package is installed from (``pip install -e .``: ``src/aietl_pipelines`` → two levels
   up, recognised by its ``pyproject.toml`` and ``conf/``);
3. else the current directory (a wheel install run from a project folder).
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE_CHECKOUT = Path(__file__).resolve().parents[2]


def project_root() -> Path:
    """The project folder (see the module docstring for the order)."""
    env = os.environ.get("AIETL_PROJECT_ROOT")
    if env:
        return Path(env).expanduser().resolve()
    if (_PACKAGE_CHECKOUT / "pyproject.toml").is_file() and (_PACKAGE_CHECKOUT / "conf").is_dir():
        return _PACKAGE_CHECKOUT
    return Path.cwd().resolve()


def project_path(*parts: str | os.PathLike[str]) -> Path:
    """A path under the project root; an absolute part is returned as it is."""
    path = Path(*parts).expanduser() if parts else Path()
    return path if path.is_absolute() else project_root() / path
