"""Bookings: create and edit reservations with passengers and flight segments."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("bookings", __name__)

from cms.bookings import views  # noqa: E402,F401
