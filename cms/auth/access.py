"""View decorators for access rules."""

from __future__ import annotations

from functools import wraps
from typing import Any, Callable, TypeVar

from flask_login import current_user, login_required

from cms.errors import PermissionDenied

F = TypeVar("F", bound=Callable[..., Any])


def admin_required(view: F) -> F:
    """Logged-in admins only: anonymous users go to the login page, agents get a 403."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_admin:
            raise PermissionDenied("This page is for administrators.")
        return view(*args, **kwargs)

    return login_required(wrapped)  # type: ignore[return-value]
