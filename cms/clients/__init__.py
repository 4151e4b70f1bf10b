"""The agent's home: dashboard, client search, client records and their timeline."""

from __future__ import annotations

from cms.clients.views import bp

__all__ = ["bp"]
