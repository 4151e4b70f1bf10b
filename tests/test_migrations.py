"""Migrations: upgrade and downgrade on SQLite and PostgreSQL, and they match the models."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect

from cms import create_app
from cms.extensions import db
from tests.conftest import make_settings

EXPECTED_TABLES = {
    "agencies", "users", "user_sessions", "clients", "activities", "recent_clients",
    "bookings", "passengers", "segments", "audit_events", "alembic_version",
    "plugin_installs", "plugin_values", "outbox_mails", "flights", "plugin_versions", "trusted_keys",
    "feature_flags", "flag_versions", "admin_tokens",
    "alerts",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def bare_app(request: pytest.FixtureRequest, tmp_path: Path) -> Flask:
    """An app on an empty database (no create_all)."""
    url = request.getfixturevalue("postgres_schema_url") if request.param == "postgresql" else None
    return create_app(make_settings(tmp_path, url))


def test_upgrade_then_downgrade_round_trip(bare_app: Flask) -> None:
    with bare_app.app_context():
        upgrade()
        assert set(inspect(db.engine).get_table_names()) == EXPECTED_TABLES
        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        upgrade()
        assert set(inspect(db.engine).get_table_names()) == EXPECTED_TABLES
        db.engine.dispose()


# SQLite cannot reflect expression indexes (lower(name)); PostgreSQL compares them fully.
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
def test_migrations_match_the_models(bare_app: Flask) -> None:
    """Autogenerate finds nothing to add: a model change without a migration fails here."""
    with bare_app.app_context():
        upgrade()
        with db.engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), db.metadata)
        db.engine.dispose()
    assert diff == []


def test_search_key_columns_use_bytewise_collation_on_postgresql(
    tmp_path: Path, postgres_schema_url: str
) -> None:
    app = create_app(make_settings(tmp_path, postgres_schema_url))
    with app.app_context():
        upgrade()
        columns = {c["name"]: c for c in inspect(db.engine).get_columns("clients")}
        db.engine.dispose()
    for name in ("first_last_key", "last_first_key", "email_key", "phone_key"):
        assert columns[name]["type"].collation == "C"


def test_agency_names_are_unique_regardless_of_case_in_the_database(bare_app: Flask) -> None:
    from sqlalchemy.exc import IntegrityError

    from cms.models import Agency

    with bare_app.app_context():
        upgrade()
        db.session.add(Agency(name="Alpha Travel"))
        db.session.commit()
        db.session.add(Agency(name="ALPHA travel"))
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()
        db.engine.dispose()
