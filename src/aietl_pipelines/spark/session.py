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

    A Spark Connect URL (e.g. sc://host:15002), as `spark.remote` in `conf` or in the `SPARK_REMOTE` environment
    variable, connects to a remote Spark Connect server instead of starting a local JVM; then only the `spark.sql.*`
    settings apply (the others belong to the server)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise AietlInputError(
            "engine 'spark' needs pyspark: run `make setup` (it installs pyspark) or "
            "`pip install pyspark==4.3.0`."
        ) from None
    settings = {**DEFAULT_CONF, **{str(k): str(v) for k, v in (conf or {}).items()}}
    remote = settings.pop("spark.remote", None) or os.environ.get("SPARK_REMOTE")
    if remote:
        return _connect(SparkSession, remote, settings)
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


def _connect(session_class: Any, remote: str, settings: Mapping[str, str]) -> Any:
    """A Spark Connect session at `remote` with the `spark.sql.*` settings; one clear line when it is unreachable."""
    try:
        import pyspark.sql.connect.session  # noqa: F401  (needs pyspark's connect extras: grpcio-status, ...)
    except ImportError as exc:
        raise AietlInputError(f"Spark Connect URL {remote!r} given but pyspark's Spark Connect client cannot be "
                              f"imported ({exc}): `pip install 'pyspark[connect]==4.3.0'`.") from None
    _check_reachable(remote)
    # the URL in the environment, not `.remote()`: the builder reads it from there, and so do the sessions other code
    # asks for (kedro-datasets' SparkDatasetV2 calls `SparkSession.builder.getOrCreate()`)
    os.environ["SPARK_REMOTE"] = remote
    spark = session_class.builder.getOrCreate()
    try:
        for key, value in settings.items():
            if key.startswith("spark.sql."):
                spark.conf.set(key, value)
    except Exception as exc:  # noqa: BLE001  (grpc errors of any kind: the server is down or refuses)
        raise AietlInputError(f"cannot reach the Spark Connect server at {remote!r}: {str(exc).splitlines()[0]}. "
                              "Start it (sbin/start-connect-server.sh) or unset SPARK_REMOTE.") from None
    _plain_frames(spark)
    return spark


def _plain_frames(spark: Any) -> None:
    """Frames collected through this Connect session without the plan metrics the client puts in `DataFrame.attrs`
    (`PlanMetrics` objects): pandas writes `attrs` into every parquet file as JSON and fails on them, so the dedupe
    state and any output derived from a collected frame could not be saved. Wraps the session's own client once
    (pyspark 4.3 `SparkConnectClient.to_pandas` returns (frame, execution info)); anything else passes through."""
    client = spark.client
    if getattr(client, "_aietl_plain_frames", False):
        return
    original = client.to_pandas

    def to_pandas(*args: Any, **kwargs: Any) -> Any:
        out = original(*args, **kwargs)
        frame = out[0] if isinstance(out, tuple) and out else out
        attrs = getattr(frame, "attrs", None)
        if isinstance(attrs, dict):
            attrs.pop("metrics", None)
            attrs.pop("observed_metrics", None)
        return out

    client.to_pandas = to_pandas
    client._aietl_plain_frames = True


def _check_reachable(remote: str, timeout: float = 5.0) -> None:
    """One clear line when nothing listens at the Spark Connect URL (the client would retry for minutes)."""
    import socket
    from urllib.parse import urlparse

    where = urlparse(remote.split(";", 1)[0])
    if where.scheme != "sc" or not where.hostname:
        raise AietlInputError(f"Spark Connect URL {remote!r} is not of the form sc://host:port: fix SPARK_REMOTE "
                              "or spark.remote in conf/spark/spark.yml.")
    try:
        socket.create_connection((where.hostname, where.port or 15002), timeout=timeout).close()
    except OSError as exc:
        raise AietlInputError(f"cannot reach the Spark Connect server at {remote!r} ({exc}): start it "
                              "(sbin/start-connect-server.sh, or `python -m aietl_pipelines.spark.local_cluster "
                              "--connect`) or unset SPARK_REMOTE.") from None


def is_connect(spark: Any) -> bool:
    """Whether `spark` is a Spark Connect session (no SparkContext, no broadcast variables)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def parallelism(spark: Any) -> int:
    """The session's default parallelism (classic: the SparkContext's; Spark Connect: the shuffle partitions)."""
    if is_connect(spark):
        return int(spark.conf.get("spark.sql.shuffle.partitions", "8"))
    return int(spark.sparkContext.defaultParallelism)


def partitions_of(frame: Any) -> int | None:
    """How many partitions a DataFrame has (None on Spark Connect, which does not expose it)."""
    if is_connect(frame.sparkSession):
        return None
    return int(frame.rdd.getNumPartitions())


class _Held:
    """A value passed to the executors inside the task's closure (Spark Connect has no broadcast variables)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def unpersist(self) -> None:
        """Nothing to release."""


def share(spark: Any, value: Any) -> Any:
    """`value` for the executors, read as `.value` and released with `.unpersist()`: a broadcast variable on
    classic Spark, the value itself inside the task's closure on Spark Connect (shipped with the plan: keep it
    small there)."""
    if is_connect(spark):
        return _Held(value)
    return spark.sparkContext.broadcast(value)
