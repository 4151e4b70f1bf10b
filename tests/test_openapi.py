"""/api/openapi.json describes every JSON route of the app (checked against the URL map, so it
cannot drift), and schemathesis, fed from it, finds no 5xx and no response outside its documented
schema, with a bounded number of examples per operation."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator

import pytest
import schemathesis
from flask import Flask

from cms.audit import Actor
from cms.auth.tokens import create_token
from cms.extensions import db
from tests.conftest import Browser, Personas, create_personas
from tests.plugins.test_bundled_http import bundled_app


#: Examples per operation: enough to find the classic 500s (huge ids, wrong types, deep JSON)
#: while the whole file stays well under a minute on two cores.
EXAMPLES = 12
API = re.compile(r"^/(api/|healthz$|metrics$)")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    yield from bundled_app(tmp_path_factory.mktemp("openapi"))


@pytest.fixture(scope="module")
def credentials(app: Flask) -> tuple[dict[str, str], dict[str, str]]:
    """(headers, cookies): an agent's session with its CSRF token and an admin token, sent on
    every request."""
    personas: Personas = create_personas(app)
    with app.app_context():
        _, token = create_token(db.session, Actor(None, "tests", None), personas.admin)
    agent = Browser(app.test_client())
    agent.login(personas.agent_a)
    csrf = agent.csrf("/clients")
    name = app.config["SESSION_COOKIE_NAME"]
    cookie = agent.client.get_cookie(name)
    assert cookie is not None
    return ({"Authorization": f"Bearer {token}", "X-CSRFToken": csrf,
             "Accept": "application/json"}, {name: cookie.value})


def _route_pattern(rule: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"<(?:\w+:)?\w+>", r"[^/]+", rule) + "$")


def _doc_pattern(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{\w+\}", r"[^/]+", path) + "$")


def test_the_document_covers_every_json_route_and_nothing_else(
        app: Flask, credentials: tuple[dict[str, str], dict[str, str]]) -> None:
    anonymous = app.test_client().get("/api/openapi.json")
    assert anonymous.status_code == 401 and "plugins" not in anonymous.get_data(as_text=True)
    doc = app.test_client().get("/api/openapi.json",
                                headers={"Authorization": credentials[0]["Authorization"]}).get_json()
    assert doc["openapi"] == "3.1.0"
    documented = {(path, method.upper()) for path, item in doc["paths"].items()
                  for method in item if method != "parameters"}
    routes = {(rule.rule, method) for rule in app.url_map.iter_rules() if API.match(rule.rule)
              and rule.rule != "/api/openapi.json"
              for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}}
    for rule, method in routes:
        matched = [p for p, m in documented if m == method and _route_pattern(rule).match(p)]
        assert matched, f"{method} {rule} is not in /api/openapi.json"
    for path, method in documented:
        assert any(m == method and (_route_pattern(rule).match(path) or
                                    _doc_pattern(path).match(rule.replace("<", "{")))
                   for rule, m in routes), f"{method} {path} is documented but not routed"
    # Every installed plugin action is there, with its manifest's params schema as the body.
    with app.app_context():
        from cms.api_docs import installed_manifests

        manifests = installed_manifests(db.session)
    assert {m.id for m in manifests} == {"softphone", "mail", "terminal"}
    for manifest in manifests:
        for name, action in manifest.actions.items():
            body = doc["paths"][f"/api/plugins/{manifest.id}/actions/{name}"]["post"]["requestBody"]
            assert body["content"]["application/json"]["schema"] == (action.params_schema
                                                                     or {"type": "object"})


def test_schemathesis_finds_no_server_error_and_no_undocumented_response(
        app: Flask, credentials: tuple[dict[str, str], dict[str, str]]) -> None:
    from hypothesis import HealthCheck, given, settings
    from schemathesis import checks

    headers, cookies = credentials
    # No 5xx; every status, content type and body as documented. (Not "every schema-valid
    # request is accepted": a valid id of no record is rightly a 404, an unknown agent in a
    # flag's targeting a 422.)
    wanted = [checks.not_a_server_error, checks.status_code_conformance,
              checks.content_type_conformance, checks.response_schema_conformance]
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app,
                                            headers={"Authorization": headers["Authorization"]})
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path == "/api/admin/plugins" and operation.method.upper() == "POST":
            continue  # uploads run the staging gate (a soak per try); tests/plugins cover it
        operations += 1

        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            response = case.call(headers=headers, cookies=cookies)
            label = f"{case.method} {case.formatted_path} -> {response.status_code}"
            if response.status_code >= 500:
                failures.append(f"{label}: {response.text[:200]}")
                return
            try:
                case.validate_response(response, checks=wanted, headers=headers)
            except (Exception, BaseExceptionGroup) as exc:  # every problem, one line each
                failures.append(f"{label}: {' '.join(str(exc).split())[:300]}")

        check()
    assert operations >= 20
    assert failures == [], "\n".join(sorted(set(failures))[:20])
