"""Kedro project settings: hooks, config loader and resolvers."""
# ruff: noqa: E402  (the project's logging is applied before the other imports, see below)

# A notebook kernel runs in notebooks/, where Kedro does not find conf/logging.yml: apply it before the imports
# below, so that `%load_ext kedro.ipython` logs like `kedro run` (no library deprecation warnings).
from aietl_pipelines.notebook_utils import use_project_logging

use_project_logging()

from omegaconf.resolvers import oc

from aietl_pipelines.hooks import (
    InputValidationHooks,
    MetricsHooks,
    PrometheusHooks,
    RunTaggingHooks,
)
from aietl_pipelines.publish import RunPublishHooks
from aietl_pipelines.spark.hooks import SparkHooks
from aietl_pipelines.tracking import TrackingCheckHooks

# kedro-mlflow registers its own hooks through its entry point (one MLflow run per `kedro run`).
# TrackingCheckHooks runs first (tryfirst) so that an unreachable server is one line, not minutes of retries;
# RunPublishHooks stages the run's file outputs and publishes them together after success.
# SparkHooks starts the SparkSession only in environments with a spark.yml (conf/spark).
HOOKS = (InputValidationHooks(), RunTaggingHooks(), MetricsHooks(), PrometheusHooks(), TrackingCheckHooks(),
         RunPublishHooks(), SparkHooks())

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # `${oc.env:VAR,default}` everywhere, not only in credentials: the server env reads URLs from env vars.
    "custom_resolvers": {"oc.env": oc.env},
    # an environment overrides single parameters (conf/test/parameters_dedupe.yml changes only cache_dir)
    "merge_strategy": {"parameters": "soft"},
    "config_patterns": {
        "parameters": ["parameters*", "parameters*/**", "**/parameters*"],
        "mlflow": ["mlflow*", "mlflow*/**", "**/mlflow*"],
        "spark": ["spark*", "spark*/**"],
    },
}
