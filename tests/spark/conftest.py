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


@pytest.fixture(scope="session")
def count_collects(spark):
    """`count_collects(patch)`: from then on, under the MonkeyPatch `patch`, every `toPandas`/`collect` of a Spark
    DataFrame is appended to the returned list as (its columns, rows): what reached the driver."""
    frame_class = type(spark.range(1))

    def start(patch: pytest.MonkeyPatch) -> list[tuple[tuple[str, ...], int]]:
        collected: list[tuple[tuple[str, ...], int]] = []

        def counting(method):
            def counted(self, *args, **kwargs):
                out = method(self, *args, **kwargs)
                collected.append((tuple(self.columns), len(out)))
                return out
            return counted

        patch.setattr(frame_class, "toPandas", counting(frame_class.toPandas))
        patch.setattr(frame_class, "collect", counting(frame_class.collect))
        return collected

    return start
