"""Project hooks: input checks, MLflow run tags and Prometheus metrics.

Nodes stay pure; everything that touches the outside world at run time lives here or in catalog datasets.
kedro-mlflow (registered by its own entry point) opens one MLflow run per `kedro run` and logs parameters.
"""

from __future__ import annotations

import hashlib
import logging
import math
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
from kedro.framework.hooks import hook_impl

from aietl_pipelines import monitoring
from aietl_pipelines.errors import AietlInputError
from aietl_pipelines.monitoring import kedro_hooks
from aietl_pipelines.validation import check_frame

logger = logging.getLogger(__name__)


def _dataset_expectations(catalog: Any, name: str) -> dict[str, Any]:
    """`metadata.aietl` of a catalog entry, or {}."""
    try:
        dataset = catalog.get(name)
    except Exception:  # noqa: BLE001 - a dataset we cannot resolve has no expectations
        return {}
    metadata = getattr(dataset, "metadata", None) or {}
    return dict(metadata.get("aietl") or {})


def _describe(catalog: Any, name: str) -> str:
    dataset = catalog.get(name)
    path = getattr(dataset, "_filepath", None) or getattr(dataset, "filepath", None)
    return str(path) if path is not None else type(dataset).__name__


#: The dataset being loaded right now (sequential runner), for the one-line report of a failed read.
LOADING: dict[str, str | None] = {"name": None}


class InputValidationHooks:
    """Fail early, with one clear message, on a missing, empty or wrongly shaped input dataset."""

    def __init__(self) -> None:
        self._catalog: Any = None
        self._free_inputs: set[str] = set()

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        """Check that every input the pipeline does not produce itself exists."""
        self._catalog = catalog
        self._free_inputs = {n for n in pipeline.inputs() if not n.startswith("param")}
        missing = []
        for name in sorted(self._free_inputs):
            if name not in catalog.keys():  # noqa: SIM118 - DataCatalog has no __contains__ for patterns
                continue
            if _dataset_expectations(catalog, name).get("optional"):
                continue  # e.g. a history that the first run starts
            try:
                exists = catalog.exists(name)
            except Exception:  # noqa: BLE001
                exists = True
            if not exists:
                missing.append(f"'{name}' ({_describe(catalog, name)})")
        if missing:
            raise AietlInputError(
                "Input dataset(s) missing: "
                + ", ".join(missing)
                + ". Run the whole project once (`kedro run`) so `data_generation` writes the sample "
                "data, or point the catalog entry (or the runtime params) at your own file."
            )

    @hook_impl
    def before_dataset_loaded(self, dataset_name: str) -> None:
        """Remember which dataset is being read, so that a failed read is reported by its name (cli.py)."""
        LOADING["name"] = dataset_name

    @hook_impl
    def after_dataset_loaded(self, dataset_name: str, data: Any) -> None:
        """Check declared columns and emptiness of inputs that declare them in `metadata.aietl`."""
        LOADING["name"] = None
        if self._catalog is None:
            return
        spec = _dataset_expectations(self._catalog, dataset_name)
        if "required_columns" not in spec and "allow_empty" not in spec:
            return
        check_frame(
            data,
            dataset_name,
            required_columns=spec.get("required_columns", ()),
            allow_empty=bool(spec.get("allow_empty", False)),
            where=_describe(self._catalog, dataset_name),
        )


def _git_commit() -> str:
    """Commit of the project checkout (the working directory, else the checkout this package is in)."""
    for where in (Path.cwd(), Path(__file__).resolve().parent):
        try:
            out = subprocess.run(
                ["git", "-C", str(where), "rev-parse", "HEAD"],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            )
        except OSError:
            return "unknown"
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    return "unknown"


def pipeline_label(run_params: dict[str, Any]) -> str:
    """The pipeline name(s) of a run, as `kedro run --pipeline` got them; `__default__` for all."""
    names = run_params.get("pipeline_names") or run_params.get("pipeline_name")
    if isinstance(names, list | tuple):
        return ",".join(names) or "__default__"
    return names or "__default__"


def frame_fingerprint(df: pd.DataFrame) -> str:
    """Short content hash of a frame: the 'data version' tagged on MLflow runs."""
    hashed = pd.util.hash_pandas_object(df, index=False).to_numpy()
    return hashlib.sha1(hashed.tobytes()).hexdigest()[:12]


class RunTaggingHooks:
    """Tag the MLflow run kedro-mlflow opened with the pipeline, git commit and input data versions."""

    def __init__(self) -> None:
        self._pipeline_name = "__default__"
        self._free_inputs: set[str] = set()

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any) -> None:
        self._pipeline_name = pipeline_label(run_params)
        self._free_inputs = set(pipeline.inputs())
        self._tagged = False

    def _active_run(self) -> Any:
        import mlflow

        return mlflow.active_run()

    @hook_impl
    def before_node_run(self) -> None:
        if self._tagged:
            return
        run = self._active_run()
        if run is None:
            return
        import mlflow

        mlflow.set_tags(
            {
                "kedro.pipeline": self._pipeline_name,
                "git.commit": _git_commit(),
                "mlflow.source.git.commit": _git_commit(),
            }
        )
        self._tagged = True

    @hook_impl
    def after_dataset_loaded(self, dataset_name: str, data: Any) -> None:
        if dataset_name not in self._free_inputs or not isinstance(data, pd.DataFrame):
            return
        if self._active_run() is None:
            return
        import mlflow

        mlflow.set_tag(f"data.{dataset_name}", f"rows={len(data)} sha1={frame_fingerprint(data)}")


# Node/run metrics and the Pushgateway push live with the metrics (registered in settings.py from here).
PrometheusHooks = kedro_hooks.PrometheusHooks


def flatten_metrics(dataset_name: str, value: Any) -> dict[str, float]:
    """`{dataset}.{key}: float` for every finite number in a (possibly nested) metrics dict."""
    out: dict[str, float] = {}

    def walk(prefix: str, obj: Any) -> None:
        if isinstance(obj, dict):
            for key, sub in obj.items():
                walk(f"{prefix}.{key}", sub)
        elif isinstance(obj, bool):
            out[prefix] = float(obj)
        elif isinstance(obj, int | float) and math.isfinite(float(obj)):
            out[prefix] = float(obj)

    walk(dataset_name, value)
    return out


class MetricsHooks:
    """Log every node output named `*_metrics` (a dict of numbers) to MLflow and Prometheus."""

    @hook_impl
    def after_node_run(self, outputs: dict[str, Any]) -> None:
        for name, value in outputs.items():
            if not name.endswith("_metrics") or not isinstance(value, dict):
                continue
            metrics = flatten_metrics(name, value)
            for key, number in metrics.items():
                monitoring.set_gauge(key, number)
            import mlflow

            if mlflow.active_run() is not None and metrics:
                mlflow.log_metrics(metrics)
