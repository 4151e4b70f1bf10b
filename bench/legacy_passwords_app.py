"""The reference app of the login storm (bench/page_cost.py): the CMS exactly as built, except
that passwords are hashed and verified with the argon2id parameters it used before (argon2-cffi's
default: t=3, m=64 MiB, p=4). The storm's agents get a hash with those parameters first, so
neither run rehashes.

    gunicorn -c <config> bench.legacy_passwords_app:app
"""

from __future__ import annotations

from argon2 import PasswordHasher

from cms import create_app
from cms.auth.passwords import Passwords

LEGACY = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=4)


class LegacyPasswords(Passwords):
    """Passwords with the old parameters."""

    def __init__(self) -> None:
        super().__init__(fast=False)
        self._hasher = LEGACY
        self._dummy_hash = LEGACY.hash("not-a-real-password")


app = create_app()
app.extensions["cms"].passwords = LegacyPasswords()
