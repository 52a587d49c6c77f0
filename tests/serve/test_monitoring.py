"""The shipped Prometheus rules and Grafana dashboard only use metrics the service exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

DOCS = Path(__file__).resolve().parents[2] / "docs" / "monitoring"
METRIC = re.compile(r"\b(medlens_[a-z_]+?)(?:_bucket|_count|_sum)?\b(?=[{\[\s)]|$)")


def exported_names(client, png: bytes) -> set[str]:
    client.post("/v1/predict", files={"file": ("a.png", png, "image/png")})
    client.post("/v1/predict", files={"file": ("a.txt", b"x", "text/plain")})
    text = client.get("/metrics").text
    names = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            names.add(
                re.sub(
                    r"_(bucket|count|sum|total|created|info)$", "", line.split("{")[0].split()[0]
                )
            )
    return names


def used_names(text: str) -> set[str]:
    return {re.sub(r"_(bucket|count|sum|total|info)$", "", m) for m in METRIC.findall(text)}


def test_dashboard_and_alerts_use_exported_metrics(client, png: bytes) -> None:
    exported = exported_names(client, png)
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    alerts = yaml.safe_load((DOCS / "medlens-alerts.yml").read_text())
    exprs += " " + " ".join(r["expr"] for g in alerts["groups"] for r in g["rules"])
    used = used_names(exprs)
    assert used and used <= exported, used - exported
    scrape = yaml.safe_load((DOCS / "prometheus.yml").read_text())
    assert scrape["scrape_configs"][0]["metrics_path"] == "/metrics"
