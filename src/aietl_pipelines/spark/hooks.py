"""Kedro hook that starts the SparkSession from `conf/<env>/spark.yml` (as kedro-starters' spaceflights-pyspark
does). Environments without a spark.yml (base, local, test, server) never import pyspark."""

from __future__ import annotations

from typing import Any

from kedro.framework.hooks import hook_impl


class SparkHooks:
    """Build the session once per `kedro run` / `kedro jupyter` when the environment has Spark settings."""

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        from kedro.config import MissingConfigException

        try:
            conf = context.config_loader["spark"]
        except (KeyError, ValueError, MissingConfigException):  # no spark.yml in this environment
            conf = {}
        settings = (conf or {}).get("spark") or {}
        if not settings:
            return
        from aietl_pipelines.spark.session import get_spark

        get_spark(settings)
