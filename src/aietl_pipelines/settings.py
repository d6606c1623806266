"""Kedro project settings: hooks, config loader and resolvers."""

from omegaconf.resolvers import oc

from aietl_pipelines.hooks import (
    InputValidationHooks,
    MetricsHooks,
    PrometheusHooks,
    RunTaggingHooks,
)

# kedro-mlflow registers its own hooks through its entry point (one MLflow run per `kedro run`).
HOOKS = (InputValidationHooks(), RunTaggingHooks(), MetricsHooks(), PrometheusHooks())

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
