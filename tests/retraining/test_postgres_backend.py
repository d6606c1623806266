"""MLflow with PostgreSQL as the backend store (CI machines run PostgreSQL on 127.0.0.1:5432)."""

import uuid

import mlflow
import pandas as pd
import pytest
import sqlalchemy as sa

from aietl_pipelines.retraining.model import train_failure_model
from aietl_pipelines.retraining.registry import load_champion, register_model


@pytest.mark.services
def test_register_and_promote_on_postgres(postgres_dsn, tmp_path, monkeypatch):
    db = f"mlflow_test_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(postgres_dsn.replace("postgresql://", "postgresql+psycopg://").rsplit("/", 1)[0] + "/postgres",
                             isolation_level="AUTOCOMMIT")
    with admin.connect() as con:
        con.execute(sa.text(f'CREATE DATABASE "{db}"'))
    uri = postgres_dsn.replace("postgresql://", "postgresql+psycopg://").rsplit("/", 1)[0] + f"/{db}"
    monkeypatch.chdir(tmp_path)  # artifacts go to ./mlartifacts of the temp dir
    try:
        mlflow.set_tracking_uri(uri)
        frame = pd.DataFrame({"x": list(range(200)), "label": [0, 1] * 100})
        model = train_failure_model(frame, ["x"], {"algorithm": "logistic_regression", "min_training_rows": 10})
        version = register_model(model, "pg_model", frame[["x"]].head(3).astype(float), promote=True)
        assert version == "1"
        champion = load_champion("pg_model")
        assert champion is not None and champion.registry_version_ == "1"
    finally:
        mlflow.set_tracking_uri(None)
        with admin.connect() as con:
            con.execute(sa.text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
