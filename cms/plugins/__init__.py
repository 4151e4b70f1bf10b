"""Plugins for agents: panels in the UI's slots, actions by form and by JSON API."""

from __future__ import annotations

from cms.plugins.views import bp

__all__ = ["bp"]
