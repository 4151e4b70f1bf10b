"""GET /healthz reports the database and Redis."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tests.conftest import build_app, make_settings


def test_health_ok_without_redis_configured(client: FlaskClient) -> None:
    response = client.get("/healthz")
    body = response.get_json()
    assert response.status_code == 200
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True
    assert body["redis"] == {"configured": False, "ok": False, "detail": "not configured"}


@pytest.mark.redis
def test_health_ok_with_redis(tmp_path: Path, redis_url: str) -> None:
    app = next(build_app(make_settings(tmp_path, redis_url=redis_url)))
    body = app.test_client().get("/healthz").get_json()
    assert body["status"] == "ok" and body["redis"]["ok"] is True


def test_redis_down_is_degraded_but_200(tmp_path: Path) -> None:
    app = next(build_app(make_settings(tmp_path, redis_url="redis://127.0.0.1:1/0")))
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
