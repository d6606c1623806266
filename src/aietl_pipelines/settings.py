"""Kedro project settings: hooks, config loader and resolvers."""

from omegaconf.resolvers import oc

from aietl_pipelines.hooks import (
    InputValidationHooks,
    MetricsHooks,
    PrometheusHooks,
    RunTaggingHooks,
)
from aietl_pipelines.publish import RunPublishHooks
from aietl_pipelines.tracking import TrackingCheckHooks

# kedro-mlflow registers its own hooks through its entry point (one MLflow run per `kedro run`).
# TrackingCheckHooks runs first (tryfirst) so that an unreachable server is one line, not minutes of retries;
# RunPublishHooks stages the run's file outputs and publishes them together after success.
HOOKS = (InputValidationHooks(), RunTaggingHooks(), MetricsHooks(), PrometheusHooks(), TrackingCheckHooks(),
         RunPublishHooks())

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
    },
}
