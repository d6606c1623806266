"""MLflow helpers: the tracking URI in use and a clear, fast error when the server cannot be reached.

MLflow's HTTP client retries a refused connection for minutes (MLFLOW_HTTP_REQUEST_MAX_RETRIES=7 with
exponential backoff); kedro-mlflow contacts the server as soon as the Kedro context exists. So before that,
`TrackingCheckHooks` asks the server once, with a short timeout and no retry, and stops the run with one line
naming the URI when nothing answers.
"""

from __future__ import annotations

import os
import socket
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

import mlflow
from kedro.framework.hooks import hook_impl

from aietl_pipelines.errors import AietlInputError

#: Seconds to wait for the tracking server before declaring it unreachable (env AIETL_MLFLOW_CHECK_TIMEOUT).
CHECK_TIMEOUT_SECONDS = 3.0


def tracking_uri() -> str:
    """The tracking URI MLflow will use (MLFLOW_TRACKING_URI, mlflow.yml via kedro-mlflow, or the default)."""
    return mlflow.get_tracking_uri()


def _unreachable(uri: str, detail: str) -> AietlInputError:
    return AietlInputError(
        f"MLflow tracking server at '{uri}' is unreachable ({detail}). Start it (`make mlflow-ui` or the "
        "docker-compose mlflow service) or set MLFLOW_TRACKING_URI to a reachable store, e.g. sqlite:///mlflow.db."
    )


def check_http_server(uri: str, timeout: float | None = None) -> None:
    """One request to an http(s) tracking server's health endpoint, no retry; AietlInputError if no answer.

    Any HTTP answer counts as reachable (a 401/403 is MLflow's business, with its own message)."""
    timeout = float(os.environ.get("AIETL_MLFLOW_CHECK_TIMEOUT", timeout or CHECK_TIMEOUT_SECONDS))
    parts = urlsplit(uri)
    if not parts.hostname:
        raise _unreachable(uri, "no host in the URI")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            pass
    except OSError as exc:
        raise _unreachable(uri, f"{type(exc).__name__}: {exc.strerror or exc}") from None
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout):  # noqa: S310 - http(s) only
            pass
    except urllib.error.HTTPError:
        return  # the server answered
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise _unreachable(uri, f"{type(exc).__name__}: {reason}") from None


def check_tracking_server(uri: str | None = None) -> None:
    """Raise an AietlInputError naming the URI when the tracking store does not answer."""
    uri = uri or tracking_uri()
    if urlsplit(uri).scheme in ("http", "https"):
        check_http_server(uri)
        return
    try:
        mlflow.MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except Exception as exc:  # noqa: BLE001 - any failure here means "unreachable or unusable"
        raise AietlInputError(
            f"MLflow tracking store at '{uri}' is unreachable or unusable ({type(exc).__name__}: "
            f"{str(exc)[:200]}). Start it (`make mlflow-ui` or the docker-compose mlflow service) or set "
            "MLFLOW_TRACKING_URI to a reachable store, e.g. sqlite:///mlflow.db."
        ) from None


def configured_tracking_uri(context: Any) -> str | None:
    """The tracking URI of the project's mlflow.yml (env vars resolved), else MLFLOW_TRACKING_URI."""
    try:
        server = (context.config_loader["mlflow"] or {}).get("server") or {}
        uri = server.get("mlflow_tracking_uri")
    except Exception:  # noqa: BLE001 - no mlflow.yml: kedro-mlflow falls back on the environment
        uri = None
    return str(uri) if uri else os.environ.get("MLFLOW_TRACKING_URI")


class TrackingCheckHooks:
    """Fail fast, in one line, when the MLflow tracking server is down (before kedro-mlflow's hooks)."""

    @hook_impl(tryfirst=True)
    def after_context_created(self, context: Any) -> None:
        uri = configured_tracking_uri(context)
        if uri and urlsplit(uri).scheme in ("http", "https"):
            check_http_server(uri)
