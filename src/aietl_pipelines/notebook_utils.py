"""Support for the notebooks in notebooks/: they open with `%load_ext kedro.ipython` (Kedro's own catalog, context
and pipelines); this module only adds the project's logging in a kernel and the "which pipeline first" check."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from aietl_pipelines.errors import AietlInputError
from aietl_pipelines.pipeline_registry import PIPELINE_NAMES as PIPELINE_ORDER

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def use_project_logging() -> None:
    """Apply conf/logging.yml when Kedro could not find it itself.

    Kedro looks for `conf/logging.yml` in the working directory; a notebook kernel runs in `notebooks/`, so
    without this a notebook logs with Kedro's default configuration and shows every library deprecation
    warning (kedro-mlflow, omegaconf, tqdm, SQLAlchemy) that `kedro run` keeps out of its output. Called from
    settings.py, which `%load_ext kedro.ipython` imports first.
    """
    root = Path(os.environ.get("AIETL_PROJECT_ROOT") or PROJECT_ROOT)
    path = root / "conf" / "logging.yml"
    if not (os.environ.get("KEDRO_LOGGING_CONFIG") or Path("conf/logging.yml").exists()) and path.exists():
        import yaml
        from kedro.framework.project import LOGGING

        LOGGING.configure(yaml.safe_load(path.read_text(encoding="utf-8")))
    _use_ipython_tracebacks()


def _use_ipython_tracebacks() -> None:
    """In an IPython kernel, give tracebacks back to IPython.

    Kedro's RichHandler (`rich_tracebacks: True`) installs rich's traceback display into IPython, which ignores
    `_render_traceback_`: a notebook's "run this pipeline first" would show as a full rich traceback instead of one
    line. IPython's own display honours it and shows every other error as usual.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        for name in ("_showtraceback", "showtraceback", "showsyntaxerror"):  # rich's instance overrides
            vars(shell).pop(name, None)


class MissingPipelineOutput(AietlInputError):
    """A dataset a notebook reads does not exist yet: shown in Jupyter as one line, not a traceback."""

    def _render_traceback_(self) -> list[str]:  # IPython's hook for a custom traceback
        return [f"{type(self).__name__}: {self}"]


def producers(pipelines: Mapping[str, Any], dataset: str) -> list[str]:
    """The registered pipelines (in PIPELINE_ORDER first) whose nodes write `dataset`."""
    names = [n for n in PIPELINE_ORDER if n in pipelines] + sorted(
        n for n in pipelines if n not in PIPELINE_ORDER and n != "__default__")
    return [n for n in names if dataset in pipelines[n].all_outputs()]


def require_outputs(catalog: Any, pipelines: Mapping[str, Any], datasets: Iterable[str]) -> None:
    """Stop a notebook at its first cell when a dataset it reads is missing, naming the pipeline to run first.

    Raises:
        MissingPipelineOutput: one line, e.g. "dedupe_clusters is missing: run `kedro run --pipeline dedupe`
        first (it writes dedupe_clusters)".
    """
    missing = [d for d in datasets if not catalog.exists(d)]
    if not missing:
        return
    needed: list[str] = []
    for dataset in missing:
        for name in producers(pipelines, dataset)[:1]:
            if name not in needed:
                needed.append(name)
    needed.sort(key=lambda n: PIPELINE_ORDER.index(n) if n in PIPELINE_ORDER else len(PIPELINE_ORDER))
    env = os.environ.get("KEDRO_ENV")
    env_arg = f" --env {env}" if env else ""
    runs = " then ".join(f"`kedro run --pipeline {n}{env_arg}`" for n in needed) or "the pipeline that writes it"
    raise MissingPipelineOutput(f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing: run {runs} "
                                f"first, then rerun this notebook.")
