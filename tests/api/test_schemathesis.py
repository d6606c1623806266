"""A bounded schemathesis pass (the 4.x CLI) over the app's OpenAPI schema, against uvicorn on 127.0.0.1.

Every operation, a fixed seed, a bounded number of examples per operation (examples, coverage and fuzzing
phases). The run fails on any 5xx, an undocumented status code, a response that does not match its schema
or content type, or a schema-violating request that is accepted.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.api.conftest import uvicorn_server
from tests.api.guide import FULL_KEY

CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,"
          "negative_data_rejection")
SEED, MAX_EXAMPLES = 20261201, 12


def test_schemathesis_finds_no_server_error_or_schema_violation(feature_repo, api_env, tmp_path):
    cli = Path(sys.executable).with_name("schemathesis")
    if not cli.exists() and not shutil.which("schemathesis"):
        pytest.skip("schemathesis is not installed (it is in the dev extra: make setup)")
    (api_env / "data" / "sample.csv").write_text("x,y\n1,a\n2,b\n3,a\n")
    # numpy = the exact in-process vector store: the fuzzer's collections stay in memory
    with uvicorn_server(tmp_path, AIETL_VECTOR_PROVIDER="numpy", AIETL_API_WARMUP="1") as base:
        result = subprocess.run(
            [str(cli) if cli.exists() else "schemathesis", "run", f"{base}/openapi.json",
             "-H", f"X-API-Key: {FULL_KEY}", "--checks", CHECKS, "--seed", str(SEED),
             "--max-examples", str(MAX_EXAMPLES), "--phases", "examples,coverage,fuzzing", "--workers", "1",
             "--request-timeout", "120", "--no-shrink", "--report", "junit",
             "--report-dir", str(tmp_path / "report")],
            cwd=tmp_path, capture_output=True, text=True, timeout=900)
    summary = result.stdout[-6000:]
    assert result.returncode == 0, summary
    assert "Selected: 13/13" in result.stdout or "13/13" in result.stdout, summary
