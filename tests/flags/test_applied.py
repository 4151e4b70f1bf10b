"""After a flag change, the admin pages say on how many live workers of every host it is
applied, from what the workers report through the shared store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from cms import create_app
from cms.app_state import state
from cms.audit import Actor
from cms.extensions import db
from cms.flags import set_flag
from tests.conftest import Browser, build_app, create_personas, make_settings


def _tick(app: Flask) -> None:
    with app.app_context():
        app.extensions["monitoring"].tick(lambda: db.session, lead=False)


@pytest.mark.redis
def test_applied_on_n_of_n_workers_across_hosts(tmp_path: Path, redis_url: str) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'shared.sqlite3'}",
                             redis_url=redis_url)
    host_a = next(build_app(settings))
    host_b = create_app(settings)
    host_b.extensions["monitoring"].hostname = "host-b"  # two hosts, one test process
    personas = create_personas(host_a)
    for app in (host_a, host_b):
        with app.app_context():
            state().flags.reload()
        _tick(app)
    with host_a.app_context():
        from cms.flags.views import applied

        from cms.flags.service import config_version

        set_flag(db.session, Actor(None, "ada.admin", None), "plugins.all", enabled=False,
                 reason="incident: every plugin off", notify=state().flags.changed)
        version = config_version(db.session)
    _tick(host_a)
    with host_a.test_request_context():
        first = applied(version)
    assert (first["applied"], first["workers"], first["shared"], first["done"]) == (1, 2, True, False)
    assert first["text"] == "applied on 1 of 2 workers"
    with host_b.app_context():
        state().flags.reload()  # what its watcher does on the Redis signal
    _tick(host_b)
    admin = Browser(host_a.test_client())
    admin.login(personas.admin)
    answer = admin.get(f"/admin/flags/applied.json?version={version}").get_json()
    assert (answer["applied"], answer["workers"], answer["done"]) == (2, 2, True)
    page = admin.get("/admin/flags/plugins.all").get_data(as_text=True)
    assert "applied on 2 of 2 workers</span>" in page


def test_without_redis_the_page_says_it_sees_this_worker_only(app: Flask, as_user: Any) -> None:
    page = as_user("ada.admin").get("/admin/flags").get_data(as_text=True)
    assert "applied on 1 of 1 worker (only this worker is seen: no Redis)" in page
    assert as_user("ada.admin").get("/admin/flags/applied.json?version=x").status_code == 422
    assert as_user("alice.agent").get("/admin/flags/applied.json").status_code == 403
