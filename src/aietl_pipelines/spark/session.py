"""One SparkSession per process, built from `conf/<env>/spark.yml` (or test settings)."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from typing import Any

from aietl_pipelines.errors import AietlInputError

# Test- and laptop-friendly defaults; conf/spark/spark.yml overrides any of them.
DEFAULT_CONF: dict[str, str] = {
    "spark.master": "local[*]",
    "spark.app.name": "aietl_pipelines",
    "spark.ui.enabled": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
}


def java_problem() -> str | None:
    """Why a local Spark session cannot start here (no Java), or None."""
    if os.environ.get("JAVA_HOME") or shutil.which("java"):
        return None
    return ("no Java runtime: install Java 17 (Debian/Ubuntu: `apt-get install openjdk-17-jre-headless`) "
            "or set JAVA_HOME")


def get_spark(conf: Mapping[str, Any] | None = None) -> Any:
    """The process's SparkSession (created on first call with DEFAULT_CONF updated by `conf`).

    `spark.remote` (a Spark Connect URL, e.g. sc://host:15002) in `conf` connects to a remote cluster instead
    of starting a local JVM."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise AietlInputError(
            "engine 'spark' needs pyspark: run `make setup` (it installs pyspark) or "
            "`pip install pyspark==4.3.0`."
        ) from None
    settings = {**DEFAULT_CONF, **{str(k): str(v) for k, v in (conf or {}).items()}}
    remote = settings.pop("spark.remote", None)
    if remote:
        return SparkSession.builder.remote(remote).getOrCreate()
    problem = java_problem()
    if problem:
        raise AietlInputError(f"engine 'spark' cannot start a local Spark session: {problem}.")
    # executors run the project's own interpreter (the virtualenv), bound to loopback unless told otherwise
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(str(settings.get("aietl.log_level", "ERROR")))
    return spark
