"""Load benchmark of the HTTP API: `wrk` (Debian package) against uvicorn on 127.0.0.1.

    python -m aietl_pipelines.benchmarks.api_load            # or: make bench-api

What it does, bounded in count and time:

1. prepares, once (kept in ``data/benchmarks/api_load/``): a Feast repo with the features of 1,000 pipelines,
   materialized into the SQLite online store, and a 100K-record customer collection in the embedded Qdrant
   (Edge) store per ``--embedding`` (``pieces``, the default, and/or ``text``), embedded through the project's
   embedding cache (so a rerun embeds nothing; the API reads the indexed pieces from it, as in production);
2. for each scenario starts ``uvicorn aietl_pipelines.api.app:app --workers N --no-access-log --log-level warning``
   on a free 127.0.0.1 port with API keys on (the production set-up; uvloop + httptools; torch on one thread per
   process, ``AIETL_API_TORCH_THREADS`` default; one query batch embedded at a time, ``AIETL_API_EMBED_THREADS``
   default), waits for it, sends a few warm-up requests. ``--workers`` are the
   counts tried for ``/features/online`` (default 1 and 2), ``--duplicates-workers`` for duplicates (default 1:
   the embedded Qdrant Edge collection opens in one process only, docs/api.md "Serving options");
3. runs ``wrk -t1 -c10 -d<seconds>s`` (10 concurrent clients on one light wrk thread, so the load tool does not
   take the cores the server needs) with a Lua script that sends the request bodies in turn and prints
   p50/p95/p99 from wrk's own latency histogram. Duplicates: about 11,000 distinct customer records
   (`prepare_queries`), so no body is sent twice in a run below ~11,000 requests;
4. writes docs/benchmarks/api_load.md (requests/s, latency percentiles, errors = non-2xx + socket errors).

The targets (issue 11, 2 cores, 10 clients, zero errors): ``/features/online`` >= 1,000 req/s with p95 <= 15 ms;
``/vector-search/duplicates`` on 100K records >= 150 req/s with p95 <= 80 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from aietl_pipelines.benchmarks._common import write_report
from aietl_pipelines.paths import project_path

KEY = "bench-full-key"
WORK = project_path("data/benchmarks/api_load")
N_PIPELINES, N_RECORDS = 1000, 100_000
COLLECTION = "customer_records"
FEATURES = ["pipeline_features:avg_execution_time", "pipeline_features:success_rate",
            "pipeline_features:error_count", "pipeline_features:failure_probability"]

LUA = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "%(key)s"
local bodies = {
%(bodies)s
}
local i = 0
request = function()
  i = i + 1
  return wrk.format(nil, nil, nil, bodies[(i %% #bodies) + 1])
end
done = function(summary, latency, requests)
  io.write(string.format(
    "AIETL_RESULT requests=%%d duration_us=%%d status_errors=%%d connect=%%d read=%%d write=%%d timeout=%%d " ..
    "p50_us=%%d p95_us=%%d p99_us=%%d max_us=%%d\n",
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max))
end
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- preparation (once) --------------------------------------------------------------------------------
def prepare_features(root: Path) -> None:
    """Feast repo with N_PIPELINES pipelines' features, materialized (skipped when present)."""
    from aietl_pipelines.datagen.telemetry import generate_etl_runs
    from aietl_pipelines.features.compute import compute_pipeline_features
    from aietl_pipelines.services.feature_store import get_feature_store_service

    repo, features_path = root / "feast_repo", root / "data" / "pipeline_features.parquet"
    if (repo / "data" / "online_store.db").exists() and features_path.exists():
        return
    runs = generate_etl_runs(n_pipelines=N_PIPELINES, days=3, runs_per_day=4, drift_start_day=None)
    features = compute_pipeline_features(runs)
    service = get_feature_store_service(repo_path=repo, features_path=features_path)
    service.write_offline_source(features)
    service.apply()
    done = service.materialize_sync(features["event_timestamp"].min(), features["event_timestamp"].max())
    print(f"features: {done['entities']} pipelines materialized", flush=True)


def collection_path(root: Path, n_records: int, embedding: str) -> Path:
    """Folder of the Qdrant Edge store of `n_records` records embedded with `embedding`."""
    return root / (f"edge_{n_records}" if embedding == "text" else f"edge_{n_records}_{embedding}")


def prepare_queries(root: Path) -> Path:
    """The duplicates queries: every record of the 100K sample's generation left out of the collection (about
    1,900, most with a duplicate in it) and the records of 5,000 other people (about 9,500, a few sharing a name
    or a street with the collection): no body is sent twice below ~11,000 requests per run, so no cache of
    whole queries could serve one, and a piece of a query is known only when a record of the collection or an
    earlier query holds it."""
    from aietl_pipelines.datagen.customers import generate_customers

    path = root / "queries_distinct.parquet"
    if not path.exists():
        records = generate_customers(n_entities=int(N_RECORDS / 1.9) + 1000, seed=7)
        records = records.sample(frac=1.0, random_state=7).reset_index(drop=True)
        others = generate_customers(n_entities=5000, seed=8)
        queries = pd.concat([records.iloc[N_RECORDS:], others]).sample(frac=1.0, random_state=8)
        queries[["full_text"]].to_parquet(path, index=False)
    return path


def prepare_collection(root: Path, n_records: int = N_RECORDS, embedding: str = "text") -> Path:
    """`n_records` customer records (full_text) in a Qdrant Edge store (`collection_path`, skipped when present),
    embedded as the API would (`embedding`); returns the store's folder. The records are the first `n_records` of
    one fixed 100K sample, so a smaller collection is a prefix of the larger one and reuses its cached
    embeddings."""
    from aietl_pipelines.datagen.customers import generate_customers
    from aietl_pipelines.services.vector_search import VectorSearchService

    prepare_queries(root)
    edge = collection_path(root, n_records, embedding)
    marker = edge / f"{COLLECTION}.done"
    if marker.exists():
        return edge
    records = generate_customers(n_entities=int(N_RECORDS / 1.9) + 1000, seed=7)
    records = records.sample(frac=1.0, random_state=7).reset_index(drop=True)
    base = records.iloc[:n_records]
    service = VectorSearchService("qdrant", cache_dir=str(project_path("data/02_intermediate/embedding_cache")),
                                  path=str(edge), embedding=embedding)
    service.create_collection_sync(COLLECTION, recreate=True)
    t0 = time.perf_counter()
    for start in range(0, len(base), 2_000):  # progress is kept in the embedding cache chunk by chunk
        chunk = base.iloc[start:start + 2_000]
        service.batch_index_sync(COLLECTION, chunk[["record_id", "full_text", "source"]].rename(
            columns={"full_text": "text"}), text_field="text", id_field="record_id")
        print(f"collection: {start + len(chunk):,}/{len(base):,} records ({time.perf_counter() - t0:.0f} s)",
              flush=True)
    service.store.optimize(COLLECTION)
    marker.write_text(str(service.store.count(COLLECTION)))
    return edge


# --- one load run ----------------------------------------------------------------------------------------
def _tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children (uvicorn's workers), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:  # fields[1] = ppid
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total

def _lua(bodies: list[dict]) -> str:
    items = ",\n".join(f"  [==[{json.dumps(b)}]==]" for b in bodies)
    return LUA % {"key": KEY, "bodies": items}


def _wait(base: str, proc: subprocess.Popen, timeout: float = 600) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"uvicorn exited with {proc.returncode}")
        try:
            if httpx.get(base + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("uvicorn did not answer /health in time")


def run_scenario(name: str, path: str, bodies: list[dict], env: dict[str, str], workers: int, seconds: int,
                 warmup: int, settle: float = 10.0, warmup_from_end: bool = False) -> dict:
    """Start uvicorn, warm it up, run wrk; returns one result row."""
    import httpx

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "uvicorn", "aietl_pipelines.api.app:app", "--host", "127.0.0.1", "--port",
           str(port), "--workers", str(workers), "--no-access-log", "--log-level", "warning"]
    proc = subprocess.Popen(cmd, env={**os.environ, **env}, cwd=tempfile.gettempdir())
    try:
        _wait(base, proc)
        with httpx.Client(base_url=base, headers={"X-API-Key": KEY}, timeout=120) as client:
            for body in (bodies[-warmup:] if warmup_from_end else bodies[:warmup]):
                response = client.post(path, json=body)
                if response.status_code != 200:
                    raise SystemExit(f"warm-up {path}: {response.status_code} {response.text[:300]}")
        time.sleep(settle)  # every worker has finished its start-up warm-up (a loaded machine is slow)
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            script.write(_lua(bodies))
        cpu_before = _tree_cpu_seconds(proc.pid)
        out = subprocess.run(["wrk", "-t1", "-c10", f"-d{seconds}s", "--timeout", "5s", "-s", script.name,
                              base + path], capture_output=True, text=True, timeout=seconds + 60)
        cpu_seconds = _tree_cpu_seconds(proc.pid) - cpu_before
        os.unlink(script.name)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    match = re.search(r"AIETL_RESULT (.*)", out.stdout)
    if not match:
        raise SystemExit(f"wrk gave no result: {out.stdout}\n{out.stderr}")
    values = {k: int(v) for k, v in (kv.split("=") for kv in match.group(1).split())}
    socket_errors = sum(values[k] for k in ("connect", "read", "write", "timeout"))
    return {"scenario": name, "uvicorn workers": workers, "requests": values["requests"],
            "req/s": values["requests"] / (values["duration_us"] / 1e6), "p50 ms": values["p50_us"] / 1000,
            "p95 ms": values["p95_us"] / 1000, "p99 ms": values["p99_us"] / 1000,
            "errors": values["status_errors"] + socket_errors, "non-2xx": values["status_errors"],
            "timeouts (5 s)": values["timeout"], "other socket errors": socket_errors - values["timeout"],
            "server CPU ms/request": cpu_seconds * 1000 / max(values["requests"], 1),
            "req/s if 2 idle cores (est.)": 2.0 / (cpu_seconds / max(values["requests"], 1)) if cpu_seconds else None}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=20, help="wrk duration per scenario")
    parser.add_argument("--only", choices=["online", "duplicates"], default=None)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                        help="uvicorn worker counts to try for /features/online")
    parser.add_argument("--duplicates-workers", type=int, nargs="+", default=[1],
                        help="uvicorn worker counts to try for /vector-search/duplicates")
    parser.add_argument("--note", default="", help="free text recorded with the table (e.g. machine load)")
    parser.add_argument("--no-report", action="store_true")
    parser.add_argument("--prepare", action="store_true", help="only build the feature repo and the collection")
    parser.add_argument("--embedding", nargs="+", choices=["pieces", "text"], default=["pieces"],
                        help="duplicates: the service's embedding(s) (AIETL_VECTOR_EMBEDDING), a row each")
    parser.add_argument("--records", type=int, default=N_RECORDS,
                        help="records in the duplicates collection (the target is stated for 100K)")
    args = parser.parse_args(argv)
    if args.prepare:
        WORK.mkdir(parents=True, exist_ok=True)
        if args.only in (None, "online"):
            prepare_features(WORK)
        if args.only in (None, "duplicates"):
            for embedding in args.embedding:
                prepare_collection(WORK, args.records, embedding)
        return
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: `apt-get install -y wrk` (make setup-system does it as root)")
    WORK.mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    common = {"AIETL_API_KEYS": KEY, "AIETL_API_AUTH": "required", "AIETL_PROJECT_ROOT": str(project_path())}
    # the stores are opened by a separate process, closed before the servers open them
    subprocess.run([sys.executable, "-m", "aietl_pipelines.benchmarks.api_load", "--prepare",
                    "--records", str(args.records), "--embedding", *args.embedding,
                    *(["--only", args.only] if args.only else [])], check=True)
    rows = []
    if args.only in (None, "online"):
        ids = [f"pipeline_{i:03d}" for i in range(1, N_PIPELINES + 1)]
        bodies = [{"features": FEATURES, "entity_rows": [{"pipeline_id": rng.choice(ids)}]} for _ in range(500)]
        env = {**common, "AIETL_API_WARMUP": "features",  # each worker builds its store; no model loading
               "AIETL_FEAST_REPO": str(WORK / "feast_repo"),
               "AIETL_FEATURES_PATH": str(WORK / "data" / "pipeline_features.parquet")}
        for workers in args.workers:
            rows.append(run_scenario("POST /api/v1/features/online (1 entity, 4 features)", "/api/v1/features/online",
                                     bodies, env, workers, args.seconds, warmup=20))
            print(rows[-1], flush=True)
    if args.only in (None, "duplicates"):
        queries = pd.read_parquet(prepare_queries(WORK))["full_text"].tolist()
        bodies = [{"collection_name": COLLECTION, "text": q, "threshold": 0.9} for q in queries]
        for embedding in args.embedding:
            env = {**common, "AIETL_API_WARMUP": "1", "AIETL_VECTOR_EMBEDDING": embedding,
                   "AIETL_VECTOR_PATH": str(collection_path(WORK, args.records, embedding))}
            for workers in args.duplicates_workers:
                # warm-up with the last bodies, the run starts at the first: no body is sent twice
                rows.append(run_scenario(f"POST /api/v1/vector-search/duplicates ({args.records:,} records, "
                                         f"embedding={embedding})", "/api/v1/vector-search/duplicates", bodies,
                                         env, workers, args.seconds, warmup=10, warmup_from_end=True))
                print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    if not args.no_report:
        load = os.getloadavg()
        notes = (f"wrk 4.1 (-t1 -c10, {args.seconds} s per row, closed loop: 10 concurrent clients), API keys on, "
                 f"uvicorn --no-access-log with uvloop/httptools, AIETL_API_TORCH_THREADS="
                 f"{os.environ.get('AIETL_API_TORCH_THREADS', '1 (default)')}, AIETL_API_EMBED_THREADS="
                 f"{os.environ.get('AIETL_API_EMBED_THREADS', '1 (default)')}, one server per row. Load average at the end: "
                 f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}. {args.note}")
        write_report("api_load", "python -m aietl_pipelines.benchmarks.api_load " + " ".join(argv or sys.argv[1:]),
                     table, notes)


if __name__ == "__main__":
    main()
