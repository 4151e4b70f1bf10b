"""The plugin action API as agents use it: answers, errors by kind, agency walls, and writes that
are kept only when the plugin answers ok."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from cms.extensions import db
from cms.models import Activity, Booking, Client, PluginValue
from tests import factories
from tests.conftest import Browser, Personas
from tests.plugins.conftest import built, install, probe_plugin
from tests.runtime import guests

API = "/api/plugins/probe/actions/call"


def api(browser: Browser, params: Any, url: str = API, **query: Any) -> Any:
    token = browser.csrf("/")
    return browser.client.post(url, json=params, query_string=query,
                               headers={"X-CSRFToken": token})


def calls(browser: Browser, *ops: tuple[str, dict[str, Any]], then: str = "ok", **query: Any) -> Any:
    return api(browser, {"calls": [{"op": op, "args": args} for op, args in ops], "then": then},
               **query)


def make_client(app: Flask, agency_id: int, **fields: Any) -> int:
    with app.app_context():
        from cms.models import Agency
        return factories.make_client(db.session, db.session.get(Agency, agency_id), **fields).id


def count(app: Flask, model: Any) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(model)) or 0)


SEGMENT = {"carrier": "BA", "flight_number": "178", "origin": "JFK", "destination": "LHR",
           "date": "2027-01-20", "cabin": "Y", "fare": 420.0}
PAX = {"first_name": "John", "last_name": "Smith"}


def test_an_action_answers_its_output_and_stats(app: Flask, personas: Personas, browser: Browser) -> None:
    browser.login(personas.agent_a)
    response = api(browser, {"calls": [], "count": 3})
    assert response.status_code == 200
    body = response.get_json()
    assert body["ok"] is True and body["result"]["count"] == 3 and body["result"]["answers"] == []
    assert body["ui"] == [{"type": "text", "text": "count 3", "tone": "info"}]
    assert body["stats"]["fuel_consumed"] > 0 and body["stats"]["plugin_id"] == "probe"
    context = body["result"]["context"]
    assert context["agent"]["username"] == personas.agent_a
    assert context["agent"]["agency_id"] == personas.agency_a_id
    assert context["now"].endswith("Z") and "client" not in context


def test_the_open_client_is_in_the_context_only_within_the_agency(
        app: Flask, personas: Personas, browser: Browser) -> None:
    own = make_client(app, personas.agency_a_id, first_name="Ada", last_name="Lovelace")
    other = make_client(app, personas.agency_b_id)
    browser.login(personas.agent_a)
    context = api(browser, {}, client_id=own).get_json()["result"]["context"]
    assert context["client"]["id"] == own and context["client"]["name"] == "Ada Lovelace"
    response = api(browser, {}, client_id=other)
    assert response.status_code == 404


@pytest.mark.parametrize(("params", "status", "code"), [
    ({"calls": "nope"}, 422, "invalid_params"),
    ({"then": "explode"}, 422, "invalid_params"),
    ({"colour": 1}, 422, "invalid_params"),
])
def test_params_that_fail_the_schema_are_422(app: Flask, personas: Personas, browser: Browser,
                                             params: Any, status: int, code: str) -> None:
    browser.login(personas.agent_a)
    response = api(browser, params)
    assert response.status_code == status
    error = response.get_json()["error"]
    assert error["code"] == code and error["message"].startswith("Params of call:")


def test_unknown_off_and_missing_actions_are_404(app: Flask, personas: Personas, browser: Browser) -> None:
    browser.login(personas.agent_a)
    assert api(browser, {}, url="/api/plugins/nope/actions/call").status_code == 404
    assert api(browser, {}, url="/api/plugins/probe/actions/nope").status_code == 404
    install(app, probe_plugin(built_wasm(app)), enabled=False)
    response = api(browser, {})
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "plugin_unavailable"


def built_wasm(app: Flask) -> bytes:
    from cms.plugins.lifecycle import get_version
    with app.app_context():
        return get_version(db.session, "probe", "1.0.0").wasm


def test_a_capability_not_granted_is_403(app: Flask, personas: Personas, browser: Browser) -> None:
    install(app, probe_plugin(built_wasm(app)), grants=["kv"])
    browser.login(personas.agent_a)
    response = calls(browser, ("clients.search", {"q": "a"}))
    assert response.status_code == 403
    error = response.get_json()["error"]
    assert error["kind"] == "capability_denied" and "'clients.read'" in error["message"]
    assert calls(browser, ("kv.get", {"key": "x"})).status_code == 200


@pytest.mark.parametrize(("then", "status", "kind"), [("trap", 503, "trap"), ("error", 200, None)])
def test_writes_are_kept_only_when_the_plugin_answers_ok(
        app: Flask, personas: Personas, browser: Browser, then: str, status: int, kind: str | None) -> None:
    client_id = make_client(app, personas.agency_a_id)
    browser.login(personas.agent_a)
    response = calls(browser, ("kv.set", {"key": "k", "value": [1, 2]}),
                     ("bookings.create", {"client_id": client_id, "passengers": [PAX], "segments": [SEGMENT]}),
                     ("activity.add", {"client_id": client_id, "kind": "note", "text": "hello"}),
                     then=then)
    assert response.status_code == status
    if kind:
        error = response.get_json()["error"]
        assert error == {"code": "plugin_fault", "kind": "trap",
                         "message": "plugin aborted: probe fails after its calls",
                         "fallback": "Probe unavailable: test fallback text."}
    else:
        assert response.get_json()["ok"] is False
    assert count(app, PluginValue) == 0 and count(app, Booking) == 0
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Activity).where(
            Activity.body == "hello")) == 0
    # ...and the same calls with an ok answer are kept.
    assert calls(browser, ("kv.set", {"key": "k", "value": [1, 2]}),
                 ("bookings.create", {"client_id": client_id, "passengers": [PAX],
                                      "segments": [SEGMENT]})).status_code == 200
    assert count(app, PluginValue) == 1 and count(app, Booking) == 1


@pytest.mark.parametrize("then", ["trap", "error", "ok"])
def test_transactional_writes_on_both_databases(any_db_app: Flask, then: str) -> None:
    from tests.conftest import create_personas

    app = any_db_app
    personas = create_personas(app)
    client_id = make_client(app, personas.agency_a_id)
    browser = Browser(app.test_client())
    browser.login(personas.agent_a)
    # A booking is made, then the kv quota refuses a value: the plugin still decides the outcome.
    response = calls(browser, ("bookings.create", {"client_id": client_id, "passengers": [PAX],
                                                   "segments": [SEGMENT]}),
                     ("kv.set", {"key": "a", "value": 1}),
                     ("kv.set", {"key": "b", "value": "x" * 20_000}), then=then)
    assert response.status_code == {"trap": 503, "error": 200, "ok": 200}[then]
    kept = then == "ok"
    assert count(app, Booking) == int(kept) and count(app, PluginValue) == int(kept)
    if kept:
        answers = response.get_json()["result"]["answers"]
        assert [a["ok"] for a in answers] == [True, True, False]
        assert answers[2]["error"]["code"] == "too_large"


def test_kv_reads_of_one_transaction_share_a_statement_and_never_see_a_rolled_back_write(
        app: Flask, personas: Personas) -> None:
    from sqlalchemy import event

    from cms.app_state import state
    from cms.audit import Actor
    from cms.models import User
    from cms.plugins.service import AgentCall, run_action

    client_id = make_client(app, personas.agency_a_id)
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == personas.agent_a))
        call = AgentCall.for_user(user, Actor.for_user(user, None, None), client_id=client_id)

        def run(*ops: tuple[str, dict[str, Any]], then: str = "ok") -> Any:
            params = {"calls": [{"op": op, "args": a} for op, a in ops], "then": then}
            try:
                return run_action(db.session, state().plugins, call, "probe", "call", params)
            except Exception as exc:  # a trap is an answer here
                return exc

        run(("kv.set", {"key": "k", "value": "kept"}), ("kv.set", {"key": "c", "value": 1,
                                                                   "scope": "client"}))
        seen: list[str] = []
        listener = lambda *args: seen.append(args[2])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            first = run(("kv.get", {"key": "k"}), ("kv.get", {"key": "c", "scope": "client"}),
                        ("kv.list", {}))
            again = run(("kv.get", {"key": "k"}), ("kv.get", {"key": "nope", "scope": "plugin"}))
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        answers = [r["result"] for r in first.output["result"]["answers"]]
        assert answers == [{"value": "kept"}, {"value": 1}, {"keys": ["k"]}]
        assert [r["result"] for r in again.output["result"]["answers"]][0] == {"value": "kept"}
        assert sum("plugin_values" in s for s in seen) == 1  # agency, agent and client at once
        # A write the plugin did not answer ok for is gone, also from what later calls read.
        run(("kv.set", {"key": "k", "value": "lost"}), ("kv.set", {"key": "new", "value": 2}),
            then="trap")
        after = run(("kv.get", {"key": "k"}), ("kv.get", {"key": "new"}))
        assert [a["result"] for a in after.output["result"]["answers"]] == [
            {"value": "kept"}, {"value": None}]
