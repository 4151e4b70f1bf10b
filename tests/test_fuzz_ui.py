"""Property: random ids, strings and JSON in every path, query parameter and form field of the
agent and admin UI never produce a 5xx. Routes come from the URL map and field names from the
templates and forms, so a new page or field is fuzzed without touching this file."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Browser, Personas, create_personas
from tests.plugins.test_bundled_http import bundled_app


ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = 6
#: Routes that would end the fuzzing session itself (logged out, or its own account gone).
SKIP = {"auth.logout", "admin.user_deactivate", "admin.user_logout", "admin.agency_deactivate",
        "admin.user_password", "static", "plugins.form_action"}
QUERY_NAMES = ["q", "page", "sort", "order", "client", "client_id", "agency", "user", "kind",
               "severity", "since", "until", "action", "actor", "target", "days", "next",
               "version", "status", "role", "departing"]

WEIRD = ["", "0", "-1", "1", "2", str(2**63), str(2**64), "1e309", "NaN", "null", "true", "[]",
         "{}", "[" * 64, "%00", "\x00", "../../etc/passwd", "<script>alert(1)</script>",
         "' OR 1=1 --", "９", "٤٢", "a" * 5000]
#: Path segments: mostly ids at and past the edges of 64 bits, else anything.
SEGMENTS = st.one_of(st.sampled_from([str(2**63), str(2**64), "9" * 30, "0", "-1", "1"]),
                     st.integers(min_value=-2**70, max_value=2**70).map(str))
VALUES = st.one_of(
    st.sampled_from(WEIRD),
    st.integers(min_value=-2**70, max_value=2**70).map(str),
    st.text(max_size=40),
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                 lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                     st.text(max_size=5), inner, max_size=3), max_leaves=8).map(json.dumps),
)


def _field_names() -> list[str]:
    names = set()
    for template in (ROOT / "cms" / "templates").rglob("*.html"):
        names.update(re.findall(r'name="([a-z_][a-z0-9_]*)"', template.read_text()))
    from flask_wtf import FlaskForm

    import cms.admin.forms, cms.auth.forms, cms.bookings.forms, cms.clients.forms  # noqa: E401,F401

    def walk(cls: type) -> Iterator[type]:
        for sub in cls.__subclasses__():
            yield sub
            yield from walk(sub)

    from wtforms.fields.core import UnboundField

    for form in walk(FlaskForm):
        names.update(name for name in dir(form) if isinstance(getattr(form, name, None), UnboundField))
    names.discard("csrf_token")
    return sorted(names)


FIELDS = _field_names()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    yield from bundled_app(tmp_path_factory.mktemp("fuzz"), login_max_failures_per_account=10**6,
                           login_max_failures_per_ip=10**6)


@pytest.fixture(scope="module")
def users(app: Flask) -> dict[str, Browser]:
    personas: Personas = create_personas(app)
    found = {}
    for name in (personas.agent_a, personas.admin):
        browser = Browser(app.test_client())
        assert browser.login(name).status_code == 302
        found[name] = browser
    return found


def _routes(app: Flask) -> list[tuple[str, str, str, list[str]]]:
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in SKIP or rule.rule.startswith(("/api/", "/static")):
            continue
        for method in sorted((rule.methods or set()) & {"GET", "POST"}):
            found.append((rule.endpoint, method, rule.rule, sorted(rule.arguments)))
    return sorted(found)


def test_random_input_anywhere_in_the_ui_is_never_a_server_error(
        app: Flask, users: dict[str, Browser]) -> None:
    routes = _routes(app)
    assert len(routes) >= 40 and len(FIELDS) >= 30
    failures: list[str] = []
    for endpoint, method, rule, arguments in routes:
        browser = users["ada.admin" if endpoint.startswith(("admin.", "flags.")) else "alice.agent"]
        token = browser.csrf("/admin/health" if endpoint.startswith("admin.") else "/clients")

        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(path=st.fixed_dictionaries({a: st.one_of(SEGMENTS, VALUES) for a in arguments}),
               query=st.dictionaries(st.sampled_from(QUERY_NAMES), VALUES, max_size=4),
               form=st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=6))
        def check(path: dict[str, str], query: dict[str, str], form: dict[str, str]) -> None:
            url = rule
            for name, value in path.items():
                url = re.sub(rf"<(?:[^:>]+:)?{name}>", _segment(value), url)
            if method == "GET":
                response = browser.client.get(url, query_string=query)
            else:
                response = browser.client.post(url, query_string=query,
                                               data={**form, "csrf_token": token})
            if response.status_code >= 500:
                failures.append(f"{method} {url} {query} {form} -> {response.status_code}")

        check()
    assert failures == [], "\n".join(failures[:20])


def _segment(value: str) -> str:
    from urllib.parse import quote

    return quote(value.replace("/", "_"), safe="") or "x"
