"""A real Prometheus and Pushgateway (Debian's packages) on 127.0.0.1, with TLS and basic auth from
deploy/prometheus/web.yml, scraping a real `kedro run` (pushed) and the API started by `make api` over TLS.

Checks with PromQL over Prometheus's HTTP API: the guide's metrics and their values, request counts per route
and status, node rows, the drift alert (the project's rule, `for:` shortened) firing on injected drift, and
that scrapes and queries without credentials are refused while those with them succeed.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
import yaml

from aietl_pipelines.datagen.telemetry import generate_etl_runs
from aietl_pipelines.monitoring.webconfig import make_self_signed_cert, render_web_config, web_user

ROOT = Path(__file__).resolve().parents[2]
KEDRO = str(Path(sys.executable).with_name("kedro"))
TOOLS = {name: shutil.which(name) for name in ("prometheus", "prometheus-pushgateway", "make")}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not all(TOOLS.values()),
        reason="Prometheus/Pushgateway absent (" + ", ".join(k for k, v in TOOLS.items() if not v)
        + "): `make setup` installs Debian's prometheus and prometheus-pushgateway when run as root",
    ),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list[str], log: Path, **kwargs) -> subprocess.Popen:
    handle = log.open("w")
    return subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True, **kwargs)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def wait_until(check, what: str, timeout: float, logs: list[Path] = ()) -> object:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.5)
    tails = "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in logs if p.exists())
    raise AssertionError(f"{what}: not within {timeout:.0f} s (last: {last!r})\n{tails}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("prom")
    ports = {name: free_port() for name in ("prometheus", "pushgateway", "api")}
    cert, key = make_self_signed_cert(tmp / "tls", ["localhost", "127.0.0.1"])
    password, api_key = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    user = web_user()
    web = tmp / "web.yml"
    web.write_text(render_web_config(password, cert_file=str(cert), key_file=str(key)))
    (tmp / "web_password").write_text(password)
    (tmp / "api_key").write_text(api_key)

    # the committed scrape config, pointed at the test ports and files; the committed rules, `for:` shortened
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config.pop("alerting")
    targets = {"api:8000": f"127.0.0.1:{ports['api']}", "pushgateway:9091": f"127.0.0.1:{ports['pushgateway']}",
               "localhost:9090": f"127.0.0.1:{ports['prometheus']}"}
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [targets[t] for t in job["static_configs"][0]["targets"]]}]
        job["tls_config"]["ca_file"] = str(cert)
        if "authorization" in job:
            job["authorization"]["credentials_file"] = str(tmp / "api_key")
        if "basic_auth" in job:
            job["basic_auth"]["password_file"] = str(tmp / "web_password")
    no_credentials = {k: v for k, v in config["scrape_configs"][0].items() if k != "authorization"}
    config["scrape_configs"].append({**no_credentials, "job_name": "aietl_api_without_key"})
    rules = yaml.safe_load((ROOT / "deploy/prometheus/rules/aietl.rules.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule["for"] = "1s"
    (tmp / "rules.yml").write_text(yaml.safe_dump(rules))
    config["rule_files"] = [str(tmp / "rules.yml")]
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))

    # a project copy whose telemetry drifts from day 14 on (the generator's drift episode)
    project = tmp / "project"
    for item in ("conf", "feast_repo", "pyproject.toml"):
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, project / item, ignore=shutil.ignore_patterns("local", "data", "*.db"))
        else:
            shutil.copy(src, project / item)
    (project / "conf" / "local").mkdir(exist_ok=True)
    (project / "src").mkdir()
    runs = generate_etl_runs(n_pipelines=8, days=21, runs_per_day=12, drift_start_day=14, seed=7)
    (project / "data" / "01_raw").mkdir(parents=True)
    runs.to_parquet(project / "data" / "01_raw" / "etl_runs.parquet")

    logs = {name: tmp / f"{name}.log" for name in ("pushgateway", "prometheus", "api")}
    processes = []
    try:
        processes.append(start([TOOLS["prometheus-pushgateway"], f"--web.listen-address=127.0.0.1:{ports['pushgateway']}",
                                f"--web.config.file={web}"], logs["pushgateway"]))
        processes.append(start([TOOLS["prometheus"], f"--config.file={tmp / 'prometheus.yml'}",
                                f"--storage.tsdb.path={tmp / 'tsdb'}", f"--web.config.file={web}",
                                f"--web.listen-address=127.0.0.1:{ports['prometheus']}"], logs["prometheus"]))
        # the API (`make api` with AIETL_TLS_CERT/KEY) boots while the batch runs run; it builds its feature
        # store on the first feature request, after the runs have materialized it
        api_env = {**os.environ, "AIETL_API_KEYS": api_key, "AIETL_PROJECT_ROOT": str(project),
                   "AIETL_FEAST_REPO": str(project / "data" / "feast_repo"),
                   "AIETL_FEATURES_PATH": str(project / "data" / "04_feature" / "pipeline_features.parquet"),
                   "AIETL_VECTOR_PATH": str(tmp / "vectors"), "AIETL_TLS_CERT": str(cert), "AIETL_TLS_KEY": str(key)}
        api_env.pop("AIETL_API_AUTH", None)
        processes.append(start([TOOLS["make"], "-s", "-f", str(ROOT / "Makefile"), "api", f"API_PORT={ports['api']}",
                                f"BIN={Path(sys.executable).parent}"], logs["api"], env=api_env, cwd=project))
        wait_until(lambda: httpx.get(f"https://127.0.0.1:{ports['pushgateway']}/-/ready", verify=str(cert),
                                     auth=(user, password)).status_code == 200, "Pushgateway ready", 30,
                   [logs["pushgateway"]])
        # two batch runs side by side, each pushing its own group: the feature store the API then serves, and
        # the drift check on the injected drift
        kedro_env = {**os.environ, "AIETL_TEST_DATA": str(project / "data"), "KEDRO_DISABLE_TELEMETRY": "true",
                     "DO_NOT_TRACK": "1", "PROMETHEUS_PUSHGATEWAY_URL": f"https://127.0.0.1:{ports['pushgateway']}",
                     "PROMETHEUS_PUSHGATEWAY_USERNAME": user, "PROMETHEUS_PUSHGATEWAY_PASSWORD": password,
                     "PROMETHEUS_PUSHGATEWAY_CA_FILE": str(cert)}
        runs_by_name = {}
        for name in ("feature_engineering", "drift_monitoring"):
            env = {**kedro_env, "MLFLOW_TRACKING_URI": f"sqlite:///{project}/mlflow_{name}.db"}
            logs[name] = tmp / f"kedro_{name}.log"
            runs_by_name[name] = start([KEDRO, "run", "--env", "test", "--pipeline", name], logs[name], env=env,
                                       cwd=project)
            processes.append(runs_by_name[name])
        for name, process in runs_by_name.items():
            assert process.wait(timeout=400) == 0, logs[name].read_text()[-3000:]

        yield {"tmp": tmp, "ports": ports, "cert": str(cert), "auth": (user, password), "api_key": api_key,
               "project": project, "runs": runs, "logs": logs,
               "kedro_output": "".join(logs[n].read_text() for n in runs_by_name)}
    finally:
        for process in reversed(processes):
            stop(process)


def api(stack, method: str, path: str, key: str | None = "key", **kwargs) -> httpx.Response:
    headers = {"X-API-Key": stack["api_key"]} if key else {}
    return httpx.request(method, f"https://127.0.0.1:{stack['ports']['api']}{path}", headers=headers,
                         verify=stack["cert"], timeout=120, **kwargs)


def query(stack, promql: str) -> list[dict]:
    response = httpx.get(f"https://127.0.0.1:{stack['ports']['prometheus']}/api/v1/query",
                         params={"query": promql}, auth=stack["auth"], verify=stack["cert"], timeout=10)
    response.raise_for_status()
    return response.json()["data"]["result"]


def scalar(stack, promql: str) -> float | None:
    result = query(stack, promql)
    return float(result[0]["value"][1]) if result else None


def equals(stack, promql: str, expected: float, timeout: float = 30) -> None:
    wait_until(lambda: scalar(stack, promql) == expected, f"{promql} == {expected} (now {scalar(stack, promql)})",
               timeout, [stack["logs"]["prometheus"]])


def test_the_guides_metrics_reach_prometheus_over_tls_with_credentials(stack):
    wait_until(lambda: api(stack, "GET", "/health").status_code == 200, "API over TLS", 90, [stack["logs"]["api"]])

    # drive the API: vector search, one bad request, drift detection, an online feature read
    collection = "e2e_customers"
    assert api(stack, "POST", "/api/v1/vector-search/collections", json={"name": collection}).status_code == 200
    records = [{"id": "c1", "text": "John Doe, 123 Main St, john@example.com"},
               {"id": "c2", "text": "Jane Roe, 9 Elm Road, jane@example.com"},
               {"id": "c3", "text": "Jon Doe, 123 Main Street, john@example.com"}]
    indexed = api(stack, "POST", "/api/v1/vector-search/index", json={"collection_name": collection, "records": records})
    assert indexed.status_code == 200, indexed.text
    for text in ("John Doe Main Street", "Jane Elm Road"):
        assert api(stack, "POST", "/api/v1/vector-search/search",
                   json={"collection_name": collection, "query": text}).status_code == 200
    assert api(stack, "POST", "/api/v1/vector-search/duplicates",
               json={"collection_name": collection, "text": "Jon Doe, 123 Main Street"}).status_code == 200
    unknown = api(stack, "POST", "/api/v1/vector-search/search", json={"collection_name": "nope", "query": "x"})
    assert unknown.status_code == 422, unknown.text
    reference = [{"x": float(i % 10), "c": "a"} for i in range(200)]
    current = [{"x": float(i % 10) + 5.0, "c": "b"} for i in range(200)]
    detected = api(stack, "POST", "/api/v1/drift-monitoring/detect",
                   json={"reference_data": reference, "current_data": current, "save_report": False})
    assert detected.status_code == 200, detected.text
    pipeline_id = str(stack["runs"]["pipeline_id"].iloc[0])
    online = api(stack, "POST", "/api/v1/features/online", json={"pipeline_ids": [pipeline_id]})
    assert online.status_code == 200, online.text

    # /metrics: refused without a key, served with one
    assert api(stack, "GET", "/metrics", key=None).status_code == 401
    assert "vector_search_total" in api(stack, "GET", "/metrics").text

    # Prometheus scraped both targets over TLS with their credentials; the scrape without the key is refused
    equals(stack, 'up{job="aietl_api"}', 1)
    equals(stack, 'up{job="pushgateway"}', 1)
    equals(stack, 'up{job="aietl_api_without_key"}', 0)

    # the guide's metrics from the API, with the expected values
    api_job = 'job="aietl_api"'
    equals(stack, f'vector_search_total{{{api_job}, collection="{collection}", operation="create_collection"}}', 1)
    equals(stack, f'vector_search_total{{{api_job}, collection="{collection}", operation="batch_index"}}', 1)
    equals(stack, f'vector_search_total{{{api_job}, collection="{collection}", operation="search"}}', 2)
    equals(stack, f'vector_search_total{{{api_job}, collection="{collection}", operation="find_duplicates"}}', 1)
    equals(stack, f'aietl_vector_search_errors_total{{{api_job}, collection="other", kind="bad_input"}}', 1)
    equals(stack, f'drift_detection_duration_seconds_count{{{api_job}, dataset="service"}}', 1)
    equals(stack, f'aietl_drift_share{{{api_job}, dataset="service"}}', detected.json()["drift_share"])
    search_route = 'route="/api/v1/vector-search/search"'
    equals(stack, f'aietl_api_requests_total{{{api_job}, {search_route}, status="200"}}', 2)
    equals(stack, f'aietl_api_requests_total{{{api_job}, {search_route}, status="422"}}', 1)
    # our own 401 and the keyless scrape job's, one a second: all counted under the route, status 401
    wait_until(lambda: (scalar(stack, f'aietl_api_requests_total{{{api_job}, route="/metrics", status="401"}}') or 0) >= 2,
               "401s of /metrics counted", 30)
    equals(stack, f"aietl_feast_online_latency_seconds_count{{{api_job}}}", 1)
    latency = scalar(stack, f"feast_online_latency_ms{{{api_job}}}")
    assert latency is not None and 0 < latency < 10_000
    # freshness: now - the newest event time the read served (the synthetic telemetry is weeks old)
    features = pd.read_parquet(stack["project"] / "data/04_feature/pipeline_features.parquet")
    newest = pd.to_datetime(features.loc[features["pipeline_id"] == pipeline_id, "event_timestamp"], utc=True).max()
    freshness = scalar(stack, f'aietl_feature_freshness_seconds{{{api_job}, feature_view="pipeline_features"}}')
    assert freshness is not None and abs(freshness - (time.time() - newest.timestamp())) < 600, (freshness, newest)

    # the batch run's push: drift of the injected episode, node rows, the run's outcome
    summary = json.loads((stack["project"] / "data/08_reporting/drift_summary.json").read_text())
    assert summary["drift_share"] > 0.3, summary  # the generator's drift episode is in the current window
    pushed = 'job="aietl_pipelines", pipeline="drift_monitoring"'
    equals(stack, f'aietl_drift_share{{{pushed}, dataset="etl_runs"}}', summary["drift_share"])
    equals(stack, f'aietl_drift_drifted_columns{{{pushed}, dataset="etl_runs"}}', summary["n_drifted"])
    equals(stack, f'drift_detection_duration_seconds_count{{{pushed}, dataset="etl_runs"}}', 1)
    equals(stack, f'aietl_pipeline_last_success{{{pushed}}}', 1)
    equals(stack, 'aietl_pipeline_last_success{job="aietl_pipelines", pipeline="feature_engineering"}', 1)
    equals(stack, f'aietl_node_input_rows{{{pushed}, node="select_drift_windows"}}', len(stack["runs"]))
    assert scalar(stack, f'aietl_node_duration_seconds_count{{{pushed}, node="detect_column_drift"}}') == 1

    # the project's drift rule fires on the injected drift
    wait_until(lambda: query(stack, 'ALERTS{alertname="AietlDataDriftHigh", alertstate="firing", dataset="etl_runs"}'),
               "AietlDataDriftHigh firing", 30, [stack["logs"]["prometheus"]])
    assert not query(stack, 'ALERTS{alertname="AietlPipelineRunFailed"}')


def test_queries_and_pushes_without_credentials_are_refused(stack):
    prometheus = f"https://127.0.0.1:{stack['ports']['prometheus']}/api/v1/query"
    pushgateway = f"https://127.0.0.1:{stack['ports']['pushgateway']}"
    cert = stack["cert"]
    assert httpx.get(prometheus, params={"query": "up"}, verify=cert).status_code == 401
    assert httpx.get(prometheus, params={"query": "up"}, verify=cert,
                     auth=(stack["auth"][0], "wrong")).status_code == 401
    assert httpx.get(prometheus, params={"query": "up"}, verify=cert, auth=stack["auth"]).status_code == 200
    assert httpx.get(f"{pushgateway}/metrics", verify=cert).status_code == 401
    assert httpx.put(f"{pushgateway}/metrics/job/intruder", content=b"x 1\n", verify=cert).status_code == 401
    plain = httpx.get(f"http://127.0.0.1:{stack['ports']['prometheus']}/api/v1/query", params={"query": "up"},
                      auth=stack["auth"], timeout=5)
    assert plain.status_code == 400  # Go's TLS server: "Client sent an HTTP request to an HTTPS server"
    # the push of the run used the credentials: no warning in its output
    assert "Metrics not pushed" not in stack["kedro_output"]
