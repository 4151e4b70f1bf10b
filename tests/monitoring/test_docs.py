"""docs/alerts.yml mirrors the detectors with metrics that exist; the runbook covers every kind;
docs/monitoring.md lists every setting the app reads."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from cms.monitoring.metrics import Metrics
from cms.monitoring.settings import ALERT_KINDS, MonitorSettings

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _exported_names() -> set[str]:
    text = Metrics().exposition()[0].decode()
    families = set(re.findall(r"^# TYPE (\S+) (\w+)$", text, re.M))
    names = set()
    for family, kind in families:
        names.add(family)
        if kind == "histogram":
            names.update({f"{family}_bucket", f"{family}_sum", f"{family}_count"})
    return names


def test_the_prometheus_rules_mirror_every_detector_with_real_metrics() -> None:
    text = (DOCS / "alerts.yml").read_text()
    assert set(re.findall(r"^\s+kind: (\w+)$", text, re.M)) == set(ALERT_KINDS)
    used = set(re.findall(r"\b(cms_[a-z_]+)", text))
    assert used and used <= _exported_names(), used - _exported_names()
    for anchor in re.findall(r'runbook: "docs/runbook.md#([\w-]+)"', text):
        assert f"### {anchor}" in (DOCS / "runbook.md").read_text(), anchor


def test_the_runbook_covers_every_kind_with_pages_and_commands() -> None:
    text = (DOCS / "runbook.md").read_text()
    for kind in ALERT_KINDS:
        assert f"`{kind}`" in text, kind
    for page in ("/admin/alerts", "/admin/health", "/admin/plugins/", "/admin/audit", "/admin/flags/"):
        assert page in text, page
    assert "cms-plugin run" in text and "/metrics" in text


def test_every_setting_is_documented() -> None:
    source = (Path(__file__).resolve().parents[2] / "cms" / "monitoring" / "settings.py").read_text()
    variables = set(re.findall(r'"((?:CMS_MONITOR|CMS_ALERT|CMS_METRICS)_\w+)"', source))
    assert len(variables) >= len(fields(MonitorSettings)) - 1
    documented = (DOCS / "monitoring.md").read_text()
    assert {v for v in variables if v not in documented} == set()
