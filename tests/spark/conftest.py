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
    # as conf/spark/spark.yml: pandas' nanosecond timestamps to microseconds as classic Spark converts them (else
    # createDataFrame warns and falls back to the slow path without Arrow)
    "spark.sql.execution.pandas.convertToArrowArraySafely": "false",
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


@pytest.fixture(scope="session")
def run_dedupe_pipeline():
    """`run(records, params, scored, kept)`: the Kedro dedupe pipeline on a memory catalog (`scored`: the
    `dedupe_scored_pairs` dataset, None for a memory one); returns the datasets named in `kept` and the scored pairs."""
    from kedro.io import DataCatalog, MemoryDataset
    from kedro.runner import SequentialRunner

    from aietl_pipelines.pipelines.dedupe import create_pipeline

    class Kept(MemoryDataset):  # the runner releases intermediate memory datasets: keep them for the checks
        def _release(self) -> None:
            pass

    def run(records, params: dict, scored, kept: tuple[str, ...]) -> dict:
        catalog = DataCatalog({"customers_raw": MemoryDataset(records), "params:dedupe": MemoryDataset(params),
                               "dedupe_scored_pairs": Kept() if scored is None else scored,
                               **{name: Kept() for name in kept}})
        SequentialRunner().run(create_pipeline(), catalog)
        return {name: catalog[name].load() for name in (*kept, "dedupe_scored_pairs")}

    return run
