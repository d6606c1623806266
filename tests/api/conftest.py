"""API test fixtures: keys, a project root in a temporary folder, a Feast repo with features, S3 (moto)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from tests.api.guide import FULL_KEY, READ_KEY


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def uvicorn_server(cwd: Path, **env: str) -> Iterator[str]:
    """`uvicorn aietl_pipelines.api.app:app` on a free 127.0.0.1 port, started in `cwd` with the current
    environment (plus `env`); yields the base URL, stops the process after."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "aietl_pipelines.api.app:app", "--host", "127.0.0.1",
                             "--port", str(port), "--log-level", "warning"], cwd=cwd, env={**os.environ, **env})
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300  # a loaded 2-core machine imports Feast and torch slowly
    try:
        while True:
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"uvicorn did not start (exit code {proc.poll()})")
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def api_env(tmp_path, monkeypatch) -> Path:
    """A project root of its own (drift history/reports, data roots), keys, and no stray env."""
    root = tmp_path / "project"
    (root / "data").mkdir(parents=True)
    monkeypatch.setenv("AIETL_API_WARMUP", "0")  # tests load only what they use
    for name in ("AIETL_API_AUTH", "AIETL_DATA_ROOTS", "AIETL_VECTOR_PATH", "AIETL_API_MAX_BODY_BYTES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AIETL_PROJECT_ROOT", str(root))
    monkeypatch.setenv("AIETL_API_KEYS", FULL_KEY)
    monkeypatch.setenv("AIETL_API_READ_KEYS", READ_KEY)
    return root


@pytest.fixture
def feature_repo(api_env, monkeypatch) -> Path:
    """A Feast repo with the features of 3 pipelines ('123', '456', 'pipeline_003') over 2024-12-29..2025-01-03."""
    from aietl_pipelines.datagen.telemetry import generate_etl_runs
    from aietl_pipelines.features.compute import compute_pipeline_features
    from aietl_pipelines.features.store import FeatureStoreService

    runs = generate_etl_runs(n_pipelines=3, days=5, runs_per_day=6, drift_start_day=None, start="2024-12-29")
    runs["pipeline_id"] = runs["pipeline_id"].replace({"pipeline_001": "123", "pipeline_002": "456"})
    features = compute_pipeline_features(runs)
    repo = api_env / "feast_repo"
    features_path = api_env / "data" / "04_feature" / "pipeline_features.parquet"
    service = FeatureStoreService(repo_path=repo, features_path=features_path)
    service.write_offline_source(features)
    service.apply()
    monkeypatch.setenv("AIETL_FEAST_REPO", str(repo))
    monkeypatch.setenv("AIETL_FEATURES_PATH", str(features_path))
    return repo


def drift_frames(n: int = 2000) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training vs production: `tenure` and the target `churn` drift, `plan` does not."""
    rng = np.random.default_rng(11)
    plans = np.array(["basic", "pro", "team"])
    reference = pd.DataFrame({"tenure": rng.normal(24, 6, n), "plan": plans[rng.integers(0, 3, n)],
                              "churn": (rng.random(n) < 0.1).astype(int)})
    current = pd.DataFrame({"tenure": rng.normal(14, 6, n), "plan": plans[rng.integers(0, 3, n)],
                            "churn": (rng.random(n) < 0.45).astype(int)})
    return reference, current


@pytest.fixture
def s3_bucket(api_env, monkeypatch):
    """moto's S3 server on 127.0.0.1 with s3://bucket/{training,production}_data.parquet; the standard AWS
    variables (AWS_ENDPOINT_URL included) point at it, and AIETL_DATA_ROOTS allows s3://bucket."""
    import boto3
    import s3fs
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": endpoint, "AIETL_DATA_ROOTS": f"s3://bucket,{api_env / 'data'}"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    s3fs.S3FileSystem.clear_instance_cache()
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket="bucket")
    reference, current = drift_frames()
    s3.put_object(Bucket="bucket", Key="training_data.parquet", Body=reference.to_parquet(index=False))
    s3.put_object(Bucket="bucket", Key="production_data.parquet", Body=current.to_parquet(index=False))
    s3.put_object(Bucket="bucket", Key=f"other-{uuid.uuid4().hex[:6]}.csv", Body=current.to_csv(index=False))
    yield {"endpoint": endpoint, "env": env, "client": s3}
    s3fs.S3FileSystem.clear_instance_cache()
    server.stop()
