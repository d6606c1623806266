"""docker-compose.yml and the Grafana dashboard, checked as files (no Docker engine on CI)."""

import json
import re
from pathlib import Path

import yaml

from aietl_pipelines.monitoring import REGISTRY

ROOT = Path(__file__).resolve().parents[1]


def test_compose_has_the_services_healthchecks_and_no_committed_secret():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"qdrant", "weaviate", "postgres", "redis", "mlflow", "prometheus", "pushgateway", "grafana"} <= set(services)
    for name, svc in services.items():
        assert "healthcheck" in svc, name
        assert all(str(p).startswith("127.0.0.1:") for p in svc.get("ports", [])), name
    assert services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    example = (ROOT / ".env.example").read_text()
    assert re.search(r"^GRAFANA_ADMIN_PASSWORD=\s*$", example, re.M) and re.search(r"^POSTGRES_PASSWORD=\s*$", example, re.M)


def test_dashboard_queries_use_metrics_the_project_exports():
    import aietl_pipelines.api.app  # noqa: F401  (registers the API metrics)

    exported = {m.name for m in REGISTRY.collect()}
    names = exported | {f"{n}_bucket" for n in exported} | {f"{n}_total" for n in exported}
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/aietl.json").read_text())
    assert dashboard["panels"]
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            used = set(re.findall(r"aietl_[a-z_]+", target["expr"]))
            assert used and used <= names, (panel["title"], used - names)
