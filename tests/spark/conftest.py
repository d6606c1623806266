"""One local[2] SparkSession for every `-m spark` test (skipped with the reason when pyspark or Java is absent)."""

from __future__ import annotations

import importlib.util

import pytest

TEST_CONF = {
    "spark.master": "local[2]",
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    # faster JVM start for short test jobs (tiered JIT level 1, serial GC)
    "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
    "spark.driver.memory": "2g",
}


@pytest.fixture(scope="session")
def spark():
    """The shared local[2] session."""
    if importlib.util.find_spec("pyspark") is None:
        pytest.skip("spark: pyspark is not installed (make setup installs it)")
    from aietl_pipelines.spark.session import get_spark, java_problem

    problem = java_problem()
    if problem:
        pytest.skip(f"spark: {problem}")
    session = get_spark(TEST_CONF)
    yield session
