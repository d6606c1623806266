"""The S3 catalog entry against a real S3-protocol server (moto's server mode on 127.0.0.1)."""

from __future__ import annotations

import shutil
import socket
import uuid
from pathlib import Path

import boto3
import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro.io.core import DatasetError
from moto.server import ThreadedMotoServer

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BUCKET = f"aietl-test-{uuid.uuid4().hex[:8]}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def s3_endpoint():
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()  # no listing cached from another test's server
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def project(tmp_path, s3_endpoint, monkeypatch) -> Path:
    shutil.copytree(PROJECT_ROOT / "conf", tmp_path / "conf", ignore=shutil.ignore_patterns("local"))
    shutil.copy(PROJECT_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "src").mkdir()
    (tmp_path / "conf" / "local").mkdir()
    (tmp_path / "conf" / "local" / "credentials.yml").write_text(
        "s3_credentials:\n  key: testing\n  secret: testing\n"
        f"  client_kwargs:\n    endpoint_url: {s3_endpoint}\n    region_name: us-east-1\n")
    monkeypatch.setenv("AIETL_S3_BUCKET", BUCKET)
    return tmp_path


def _catalog(project: Path):
    bootstrap_project(project)
    return KedroSession.create(project_path=project).load_context().catalog


def test_parquet_round_trips_through_the_s3_catalog_entry(project, s3_endpoint):
    frame = pd.DataFrame({"run_id": ["r1", "r2"], "duration_seconds": [1.5, 2.5]})
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, aws_access_key_id="testing",
                      aws_secret_access_key="testing", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="raw/etl_runs.parquet", Body=frame.to_parquet(index=False))
    loaded = _catalog(project).load("etl_runs_s3")
    pd.testing.assert_frame_equal(loaded, frame)


def test_missing_object_names_the_dataset(project, s3_endpoint, monkeypatch):
    monkeypatch.setenv("AIETL_S3_BUCKET", BUCKET + "-empty")
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, aws_access_key_id="testing",
                      aws_secret_access_key="testing", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET + "-empty")
    with pytest.raises(DatasetError, match=f"{BUCKET}-empty/raw/etl_runs.parquet"):
        _catalog(project).load("etl_runs_s3")
