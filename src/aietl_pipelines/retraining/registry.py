"""Small typed adapter over the MLflow model registry: champion by alias, registration, promotion."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from aietl_pipelines.tracking import check_tracking_server

CHAMPION, CHALLENGER = "champion", "challenger"
#: Model version tag holding `training_fingerprint`: a rerun on identical data registers no new version.
FINGERPRINT_TAG = "data_fingerprint"

logger = logging.getLogger(__name__)


def training_fingerprint(train: pd.DataFrame, features: Sequence[str], model_params: Mapping[str, Any]) -> str:
    """Content hash of what a model is trained from: the training rows, the feature list and the model
    parameters (training is deterministic by seed, so equal fingerprints mean the same model)."""
    digest = hashlib.sha1(pd.util.hash_pandas_object(train, index=False).to_numpy().tobytes())
    digest.update(json.dumps([list(features), dict(model_params)], sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def find_version_by_fingerprint(model_name: str, fingerprint: str) -> str | None:
    """The registered version of `model_name` trained from the same data and parameters, if any."""
    client = mlflow.MlflowClient()
    try:
        versions = client.search_model_versions(f"name='{model_name}'")
    except MlflowException:
        return None
    same = [v for v in versions if (v.tags or {}).get(FINGERPRINT_TAG) == fingerprint]
    return str(max(int(v.version) for v in same)) if same else None


def _requirements() -> list[str]:
    """What the model needs to load (explicit: MLflow's inference would list the whole environment)."""
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("scikit-learn", "numpy", "pandas", "skops")]


def load_champion(model_name: str) -> Any | None:
    """The model behind the `champion` alias, or None when there is none yet."""
    check_tracking_server()
    client = mlflow.MlflowClient()
    try:
        version = client.get_model_version_by_alias(model_name, CHAMPION)
    except MlflowException:
        return None
    model = mlflow.sklearn.load_model(f"models:/{model_name}@{CHAMPION}")
    model.registry_version_ = str(version.version)
    return model


def register_model(model: Any, model_name: str, input_example: pd.DataFrame, promote: bool,
                   tags: dict[str, str] | None = None) -> str:
    """Log the model to the active run (or a new one), register a version, then alias or tag it.

    Returns:
        The registered version.
    """
    check_tracking_server()
    fingerprint = (tags or {}).get(FINGERPRINT_TAG)
    existing = find_version_by_fingerprint(model_name, str(fingerprint)) if fingerprint else None
    if existing is not None:
        client = mlflow.MlflowClient()
        if promote:
            client.set_registered_model_alias(model_name, CHAMPION, existing)
            client.set_model_version_tag(model_name, existing, "role", CHAMPION)
        logger.info("Model '%s' version %s was trained from identical data and parameters (%s=%s): "
                    "no new version registered.", model_name, existing, FINGERPRINT_TAG, fingerprint)
        return existing
    started = mlflow.active_run() is None
    run = mlflow.start_run(run_name="retraining") if started else mlflow.active_run()
    try:
        signature = infer_signature(input_example, model.predict_proba(input_example)[:, 1])
        # skops (MLflow's safe default format) lists the classes it will load: this model is our own, so we
        # trust exactly the types skops finds in it.
        import skops.io

        trusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
        info = mlflow.sklearn.log_model(model, name="failure_model", signature=signature,
                                        input_example=input_example, registered_model_name=model_name,
                                        skops_trusted_types=trusted, pip_requirements=_requirements())
        version = str(info.registered_model_version)
        client = mlflow.MlflowClient()
        for key, value in (tags or {}).items():
            client.set_model_version_tag(model_name, version, key, str(value))
        client.set_model_version_tag(model_name, version, "source_run_id", run.info.run_id)
        if promote:
            client.set_registered_model_alias(model_name, CHAMPION, version)
            client.set_model_version_tag(model_name, version, "role", CHAMPION)
        else:
            client.set_model_version_tag(model_name, version, "role", CHALLENGER)
            client.set_registered_model_alias(model_name, CHALLENGER, version)
        return version
    finally:
        if started:
            mlflow.end_run()
