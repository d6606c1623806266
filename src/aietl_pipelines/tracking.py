"""MLflow helpers: the tracking URI in use and a clear error when the server cannot be reached."""

from __future__ import annotations

import mlflow

from aietl_pipelines.errors import AietlInputError


def tracking_uri() -> str:
    """The tracking URI MLflow will use (MLFLOW_TRACKING_URI, mlflow.yml via kedro-mlflow, or the default)."""
    return mlflow.get_tracking_uri()


def check_tracking_server(uri: str | None = None) -> None:
    """Raise an AietlInputError naming the URI when the tracking store does not answer."""
    uri = uri or tracking_uri()
    try:
        mlflow.MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except Exception as exc:  # noqa: BLE001 - any failure here means "unreachable or unusable"
        raise AietlInputError(
            f"MLflow tracking store at '{uri}' is unreachable or unusable ({type(exc).__name__}: "
            f"{str(exc)[:200]}). Start it (`make mlflow-ui` or the docker-compose mlflow service) or set "
            "MLFLOW_TRACKING_URI to a reachable store, e.g. sqlite:///mlflow.db."
        ) from None
