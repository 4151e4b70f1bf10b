"""The admin shell under /admin: users, agencies, audit log (flags, plugins, health come later)."""

from __future__ import annotations

from cms.admin import agencies, audit, plugins, tokens, users  # noqa: F401  (routes register on bp)
from cms.admin.views import bp

__all__ = ["bp"]
