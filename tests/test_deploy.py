"""deploy/ and docker-compose.yml: alert rules (promtool check + unit tests), dashboards' PromQL against the
metrics the project exports, web/scrape configs, compose without default passwords (no Docker engine on CI)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

import aietl_pipelines.api.app  # noqa: F401  (the API's metrics live in the same registry)
from aietl_pipelines.monitoring import REGISTRY
from aietl_pipelines.monitoring.webconfig import make_self_signed_cert, render_web_config

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
RULES = DEPLOY / "prometheus" / "rules" / "aietl.rules.yml"
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool absent: `make setup` installs Debian's prometheus package when root"
)
#: Series Prometheus itself makes (not exported by the project, but fine in a dashboard).
PROMETHEUS_SERIES = {"up", "ALERTS", "ALERTS_FOR_STATE", "push_time_seconds", "push_failure_time_seconds"}
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset", "bool",
    "inf", "nan", "le",
}


def exported_series() -> set[str]:
    """Every series name the project's registry can expose (counters' _total, histograms' parts)."""
    names: set[str] = set()
    for family in REGISTRY.collect():
        if family.type == "counter":
            names |= {f"{family.name}_total", f"{family.name}_created"}
        elif family.type == "histogram":
            names |= {f"{family.name}_{part}" for part in ("bucket", "sum", "count", "created")}
        else:
            names.add(family.name)
    return names


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (functions, keywords, label names and strings left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # strings
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        after = text[match.end():].lstrip()
        word = match.group()
        if after.startswith("(") or word.lower() in PROMQL_WORDS or re.fullmatch(r"\d+[smhdwy]", word):
            continue
        names.add(word)
    return names


def dashboard_exprs() -> list[tuple[str, str, str]]:
    out = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel["targets"]:
                out.append((path.name, panel["title"], target["expr"]))
    return out


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120, check=False)


# --- compose ---------------------------------------------------------------------------------------------
def test_compose_has_the_services_healthchecks_and_no_default_password():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    expected = {"qdrant", "weaviate", "postgres", "redis", "mlflow", "api", "prometheus", "pushgateway",
                "alertmanager", "grafana"}
    assert expected <= set(services)
    for name, svc in services.items():
        assert "healthcheck" in svc, name
        assert all(str(p).startswith("127.0.0.1:") for p in svc.get("ports", [])), name
    assert services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    assert services["api"]["environment"]["AIETL_API_KEYS"].startswith("${AIETL_API_KEYS:?")
    for name in ("prometheus", "pushgateway"):
        assert "--web.config.file=/etc/aietl/web.yml" in services[name]["command"], name
    assert any("rules" in v for v in services["prometheus"]["volumes"])
    example = (ROOT / ".env.example").read_text()
    for var in ("GRAFANA_ADMIN_PASSWORD", "POSTGRES_PASSWORD", "PROMETHEUS_WEB_PASSWORD", "AIETL_API_KEYS"):
        assert re.search(rf"^{var}=\s*$", example, re.M), var
    # the only basic-auth hash committed is a placeholder that cannot match a password
    web = yaml.safe_load((DEPLOY / "prometheus" / "web.yml").read_text())
    assert all(not h.startswith("$2") for h in web["basic_auth_users"].values())


def test_prometheus_scrapes_the_api_service_over_tls_with_a_bearer_token():
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    api = jobs["aietl_api"]
    assert api["static_configs"][0]["targets"] == ["api:8000"]  # the compose service, not host.docker.internal
    assert api["scheme"] == "https" and api["authorization"]["type"] == "Bearer"
    assert jobs["pushgateway"]["scheme"] == "https" and jobs["pushgateway"]["basic_auth"]["password_file"]
    assert jobs["pushgateway"]["honor_labels"] is True
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    alertmanager = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    names = {r["name"] for r in alertmanager["receivers"]}
    assert alertmanager["route"]["receiver"] in names


# --- alert rules -------------------------------------------------------------------------------------------
def test_drift_alert_threshold_is_the_pipeline_parameter():
    params = yaml.safe_load((ROOT / "conf" / "base" / "parameters_drift_monitoring.yml").read_text())
    threshold = float(params["drift_monitoring"]["alert_threshold"])
    rules = {r["alert"]: r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    match = re.fullmatch(r"aietl_drift_share\s*>\s*([0-9.]+)", rules["AietlDataDriftHigh"]["expr"].strip())
    assert match and float(match.group(1)) == threshold, (
        "deploy/prometheus/rules/aietl.rules.yml AietlDataDriftHigh must use drift_monitoring.alert_threshold "
        f"({threshold}) from conf/base/parameters_drift_monitoring.yml"
    )


def test_every_alert_the_issue_names_exists_and_is_unit_tested():
    rules = [r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    assert {"AietlDataDriftHigh", "AietlVectorSearchErrors", "AietlFeatureServingLatencyHigh",
            "AietlApi5xxRateHigh", "AietlPipelineNotRunOnSchedule", "AietlPipelineRunFailed"} <= set(rules)
    tests = yaml.safe_load((DEPLOY / "prometheus" / "tests" / "aietl.rules.test.yml").read_text())["tests"]
    for alert in rules:
        cases = [c for t in tests for c in t["alert_rule_test"] if c["alertname"] == alert]
        assert any(c["exp_alerts"] for c in cases), f"{alert}: no case where it fires"
        assert any(not c["exp_alerts"] for c in cases), f"{alert}: no case where it stays quiet"
    docs = (ROOT / "docs" / "operations.md").read_text()
    for alert in rules:  # and every alert has its runbook entry (the anchor its annotation links to)
        assert re.search(rf"^#+ {alert}$", docs, re.M), f"docs/operations.md has no '### {alert}' section"


def test_alert_rules_use_exported_metrics():
    exported = exported_series() | PROMETHEUS_SERIES
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            used = metric_names(rule["expr"])
            assert used and used <= exported, (rule["alert"], used - exported)


@needs_promtool
def test_promtool_checks_and_unit_tests_the_rules():
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", str(DEPLOY / "prometheus" / "tests" / "aietl.rules.test.yml"))
    assert tested.returncode == 0, tested.stdout + tested.stderr


# --- dashboards ----------------------------------------------------------------------------------------------
def test_four_dashboards_and_the_datasource_are_provisioned():
    titles = {json.loads(p.read_text())["title"] for p in DASHBOARDS}
    assert titles == {"aietl-pipelines: vector search", "aietl-pipelines: drift detection",
                      "aietl-pipelines: feature store", "aietl-pipelines: pipelines overview"}
    uids = [json.loads(p.read_text())["uid"] for p in DASHBOARDS]
    assert len(set(uids)) == len(uids)
    source = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    prometheus = source["datasources"][0]
    assert prometheus["type"] == "prometheus" and prometheus["url"].startswith("https://prometheus:")
    assert prometheus["secureJsonData"]["basicAuthPassword"] == "$PROMETHEUS_WEB_PASSWORD"
    for _, title, _ in dashboard_exprs():
        assert title


def test_every_panel_names_only_metrics_the_project_exports():
    exported = exported_series() | PROMETHEUS_SERIES
    for board, title, expr in dashboard_exprs():
        used = metric_names(expr)
        assert used, (board, title, expr)
        assert used <= exported, (board, title, used - exported)


@needs_promtool
def test_promtool_parses_every_panel_query(tmp_path):
    """Each panel's PromQL becomes a recording rule: `promtool check rules` parses it as Prometheus does."""
    rules = [{"record": f"aietl:panel_{i}", "expr": expr} for i, (_, _, expr) in enumerate(dashboard_exprs())]
    path = tmp_path / "panels.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    checked = promtool("check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_metric_name_extraction_is_not_fooled_by_functions_labels_or_strings():
    expr = ('histogram_quantile(0.95, sum by (le, route) (rate(aietl_api_request_duration_seconds_bucket'
            '{route=~"/api/v1/x.*", status="500"}[5m]))) / on(route) group_left time() - up')
    assert metric_names(expr) == {"aietl_api_request_duration_seconds_bucket", "up"}


# --- web config (TLS + basic auth) ------------------------------------------------------------------------------
@needs_promtool
def test_rendered_web_config_and_scrape_config_are_valid(tmp_path):
    cert, key = make_self_signed_cert(tmp_path / "tls", ["localhost", "127.0.0.1"])
    web = tmp_path / "web.yml"
    web.write_text(render_web_config("s3cret-for-test", cert_file=str(cert), key_file=str(key)))
    checked = promtool("check", "web-config", str(web))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "s3cret-for-test" not in web.read_text()

    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (tmp_path / "api_key").write_text("k")
    (tmp_path / "web_password").write_text("p")
    text = yaml.safe_dump(config).replace("/etc/aietl/tls/tls.crt", str(cert)).replace("/etc/aietl/", f"{tmp_path}/")
    text = text.replace("/etc/prometheus/rules/", f"{RULES.parent}/")
    (tmp_path / "prometheus.yml").write_text(text)
    checked = promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_make_metrics_secrets_writes_what_compose_mounts(tmp_path, monkeypatch):
    import bcrypt
    from cryptography import x509

    from aietl_pipelines.monitoring import webconfig

    monkeypatch.delenv("PROMETHEUS_WEB_PASSWORD", raising=False)
    assert webconfig.main(["--out-dir", str(tmp_path / "none")]) == 2  # no password: refuses, writes nothing
    assert not (tmp_path / "none").exists()
    monkeypatch.setenv("PROMETHEUS_WEB_PASSWORD", "pw-from-env")
    monkeypatch.setenv("AIETL_API_KEYS", "first-key, second-key")
    assert webconfig.main(["--out-dir", str(tmp_path)]) == 0
    web = yaml.safe_load((tmp_path / "web.yml").read_text())
    assert web["tls_server_config"]["cert_file"] == "/etc/aietl/tls/tls.crt"  # where compose mounts deploy/secrets
    assert bcrypt.checkpw(b"pw-from-env", web["basic_auth_users"]["aietl"].encode())
    assert (tmp_path / "api_key").read_text() == "first-key"
    assert (tmp_path / "web_password").read_text() == "pw-from-env"
    cert = x509.load_pem_x509_certificate((tmp_path / "tls" / "tls.crt").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert {"api", "prometheus", "pushgateway"} <= set(names)
