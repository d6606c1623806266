"""The Spark engine through Spark Connect (`SPARK_REMOTE=sc://...`): a real `SparkConnectServer` (pyspark's own jar)
on local[2], a client process that builds its session with `spark.session.get_spark` and runs the drift and dedupe
engines there; results equal the pandas path. A dead URL is one clear line within seconds (no minutes of gRPC
retries)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time

import pytest

from aietl_pipelines.errors import AietlInputError

CLIENT = r"""
import json, sys, time
import numpy as np, pandas as pd
from aietl_pipelines.spark.session import get_spark, is_connect
from aietl_pipelines.drift.statistics import compute_drift
from aietl_pipelines.spark import drift as spark_drift
from aietl_pipelines.datagen.customers import generate_customers
from aietl_pipelines.dedupe import engine
from aietl_pipelines.dedupe.config import DedupeConfig

t0 = time.monotonic()
spark = get_spark({"spark.sql.shuffle.partitions": "2"})
out = {"connect": is_connect(spark)}
rng = np.random.default_rng(7)
ref = pd.DataFrame({"x": rng.normal(0, 1, 1500).round(3), "kind": rng.choice(list("abc"), 1500)})
cur = pd.DataFrame({"x": rng.normal(0.2, 1.1, 1200).round(3), "kind": rng.choice(list("abcd"), 1200)})
expected, _ = compute_drift(ref, cur)
got, _ = spark_drift.compute_drift(spark.createDataFrame(ref), spark.createDataFrame(cur), collect_limit=10)
expected, got = expected.set_index("column").sort_index(), got.set_index("column").sort_index()
out["drift_tests"] = [expected["test"].tolist(), got["test"].tolist()]
out["drift_verdicts"] = [expected["drifted"].tolist(), got["drifted"].tolist()]
out["drift_score_diff"] = float(np.max(np.abs(expected["score"].to_numpy(float) - got["score"].to_numpy(float))
                                       / np.maximum(np.abs(expected["score"].to_numpy(float)), 1e-300)))
t1 = time.monotonic()
records = generate_customers(n_entities=40, seed=11)
fields = {"first_name": "name", "last_name": "name", "street": "street", "city": "text", "postcode": "postcode",
          "phone": "phone", "email": "email", "date_of_birth": "date"}
base = dict(fields=fields, blocking=[["email"], ["phone"], ["first_name", "last_name"], ["postcode", "last_name"]],
            cache_dir=sys.argv[1], use_embeddings=False)  # the vectors on Connect: local_cluster --connect
runs = [engine.run(records, DedupeConfig(**base)), engine.run(records, DedupeConfig(**base, engine="spark"))]
out["clusters"] = [sorted(sorted(map(str, ids)) for _, ids in r.clusters.groupby("cluster_id")["record_id"])
                   for r in runs]
out["n_pairs"] = [len(r.pairs) for r in runs]
collected = spark.range(3).toPandas()  # plan metrics kept out of attrs: pandas writes attrs into parquet as JSON
collected.to_parquet(sys.argv[1] + "_collected.parquet")
out["attrs"] = sorted(collected.attrs)
out["seconds"] = [t1 - t0, time.monotonic() - t1]
print("RESULT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def connect_url(tmp_path_factory):
    """A Spark Connect server on local[2], stopped after the module."""
    if importlib.util.find_spec("pyspark") is None:
        pytest.skip("spark: pyspark is not installed (make setup installs it)")
    try:
        import pyspark.sql.connect.session  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"spark connect: the Spark Connect client cannot be imported ({exc}); make setup installs "
                    "pyspark[connect]")
    from aietl_pipelines.spark import local_cluster
    from aietl_pipelines.spark.session import java_problem

    problem = java_problem()
    if problem:
        pytest.skip(f"spark: {problem}")
    logs = tmp_path_factory.mktemp("connect")
    server, url = local_cluster.start_connect("local[2]", logs, {
        "spark.sql.shuffle.partitions": "2", "spark.driver.memory": "1g",
        "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"})
    try:
        yield url
    finally:
        server.stop()


@pytest.mark.spark
def test_drift_and_dedupe_through_spark_connect_equal_pandas(connect_url, tmp_path):
    env = {**os.environ, "SPARK_REMOTE": connect_url}
    env.pop("SPARK_MASTER", None)
    done = subprocess.run([sys.executable, "-c", CLIENT, str(tmp_path / "cache")], env=env, capture_output=True,
                          text=True, timeout=600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    out = json.loads(lines[-1][len("RESULT "):])
    print("seconds (drift, dedupe):", out["seconds"])
    assert out["connect"] is True
    assert out["drift_tests"][0] == out["drift_tests"][1]
    assert out["drift_verdicts"][0] == out["drift_verdicts"][1]
    assert out["drift_score_diff"] <= 1e-9
    assert out["n_pairs"][0] == out["n_pairs"][1] > 0
    assert out["clusters"][0] == out["clusters"][1]
    assert any(len(c) > 1 for c in out["clusters"][0])
    assert out["attrs"] == []


def test_unreachable_spark_connect_url_is_one_clear_line(monkeypatch):
    if importlib.util.find_spec("pyspark") is None:
        pytest.skip("spark: pyspark is not installed (make setup installs it)")
    try:
        import pyspark.sql.connect.session  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"spark connect: the Spark Connect client cannot be imported ({exc})")
    from aietl_pipelines.spark import session
    from aietl_pipelines.spark.local_cluster import free_port

    monkeypatch.delenv("SPARK_REMOTE", raising=False)
    url = f"sc://127.0.0.1:{free_port()}"
    start = time.monotonic()
    with pytest.raises(AietlInputError, match="cannot reach the Spark Connect server") as caught:
        session.get_spark({"spark.remote": url})
    assert time.monotonic() - start < 10 and "\n" not in str(caught.value)
    with pytest.raises(AietlInputError, match="sc://host:port"):
        session._check_reachable("http://127.0.0.1:15002")
