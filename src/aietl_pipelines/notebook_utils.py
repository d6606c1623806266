"""Helpers for notebooks: load the project's Kedro catalog and parameters outside `kedro jupyter`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def load_context(env: str | None = None, project_path: str | Path | None = None) -> Any:
    """Bootstrap the project and return a loaded KedroContext.

    Args:
        env: Kedro environment; defaults to $KEDRO_ENV, then "local".
        project_path: Project root; defaults to the checkout this package lives in.
    """
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    root = Path(project_path or os.environ.get("AIETL_PROJECT_ROOT") or PROJECT_ROOT)
    bootstrap_project(root)
    session = KedroSession.create(project_path=root, env=env or os.environ.get("KEDRO_ENV") or None)
    return session.load_context()


def load_catalog(env: str | None = None, project_path: str | Path | None = None) -> Any:
    """The project's DataCatalog (the same datasets `kedro run` reads and writes)."""
    return load_context(env, project_path).catalog
