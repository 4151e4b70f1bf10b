"""GET /healthz reports the database and Redis: the status to anyone (a load balancer), the
details to admins and allow-listed networks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from cms.monitoring.settings import MonitorSettings
from tests.conftest import Personas, build_app, make_settings

INSIDE = MonitorSettings(metrics_allow=("127.0.0.0/8",))


def _settings(tmp_path: Path, **changes: Any) -> Any:
    return make_settings(tmp_path, monitoring=INSIDE, **changes)


def test_anonymous_callers_get_the_status_only(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_admins_and_allowed_networks_get_the_details(tmp_path: Path, personas: Personas,
                                                     as_user: Any) -> None:
    admin = as_user("ada.admin").get("/healthz").get_json()
    assert admin["database"]["ok"] is True and "pid" in admin["plugin_runtime"]
    assert set(as_user("alice.agent").get("/healthz").get_json()) == {"status"}
    inside = next(build_app(_settings(tmp_path))).test_client().get("/healthz").get_json()
    assert inside["status"] == "ok" and inside["database"]["ok"] is True
    assert inside["redis"] == {"configured": False, "ok": False, "detail": "not configured"}


@pytest.mark.redis
def test_health_ok_with_redis(tmp_path: Path, redis_url: str) -> None:
    app = next(build_app(_settings(tmp_path, redis_url=redis_url)))
    body = app.test_client().get("/healthz").get_json()
    assert body["status"] == "ok" and body["redis"]["ok"] is True


def test_redis_down_is_degraded_but_200(tmp_path: Path) -> None:
    app = next(build_app(_settings(tmp_path, redis_url="redis://127.0.0.1:1/0")))
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["status"] == "degraded"
    assert response.get_json()["redis"]["ok"] is False


def test_database_down_is_503(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir" / "db.sqlite3"
    app = next(build_app(make_settings(tmp_path)))
    app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{missing}"
    from cms import create_app

    broken = create_app(make_settings(tmp_path, database_url=f"sqlite:///{missing}"))
    response = broken.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["status"] == "down"
    # A token or a session cookie (which would need the database to check) changes nothing.
    for headers in ({"Authorization": "Bearer cms_x"}, {"Cookie": "cms_session=x"}):
        answer = broken.test_client().get("/healthz", headers=headers)
        assert (answer.status_code, answer.get_json()) == (503, {"status": "down"})
