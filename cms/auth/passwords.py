"""argon2id password hashing.

The parameters are OWASP's recommended minimum for argon2id (m=19 MiB, t=2, p=1): about a
fifth of the CPU of argon2-cffi's default (m=64 MiB, t=3, p=4), so a 2-core host logs in the
7:30 shift several times faster (docs/benchmarks.md). A hash made with other parameters is
replaced at the next successful login (`needs_rehash`).
"""

from __future__ import annotations

from argon2 import Parameters, PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from argon2.profiles import CHEAPEST

#: OWASP Password Storage Cheat Sheet, argon2id minimum configuration.
OWASP_MINIMUM = Parameters(type=Type.ID, version=19, salt_len=16, hash_len=32, time_cost=2,
                           memory_cost=19 * 1024, parallelism=1)

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256


class Passwords:
    """Hashes and verifies passwords with argon2id; `fast=True` only for tests and bulk demo seeds."""

    def __init__(self, fast: bool = False) -> None:
        self._hasher = PasswordHasher.from_parameters(CHEAPEST if fast else OWASP_MINIMUM)
        # Verified against when the username is unknown, so timing does not reveal which users exist.
        self._dummy_hash = self._hasher.hash("not-a-real-password")

    def hash(self, password: str) -> str:
        """Return an argon2id hash of `password`."""
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """Return True when `password` matches `password_hash` (None: compare against a dummy)."""
        try:
            return self._hasher.verify(password_hash or self._dummy_hash, password) and bool(
                password_hash
            )
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made with other parameters than this hasher's."""
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    @property
    def parameters(self) -> Parameters:
        return Parameters(type=self._hasher.type, version=19, salt_len=self._hasher.salt_len,
                          hash_len=self._hasher.hash_len, time_cost=self._hasher.time_cost,
                          memory_cost=self._hasher.memory_cost,
                          parallelism=self._hasher.parallelism)


def password_problem(password: str) -> str | None:
    """Return why `password` is unacceptable, or None when it is fine."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Password must be at least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"Password must be at most {MAX_PASSWORD_LENGTH} characters."
    if password.strip() != password:
        return "Password must not start or end with spaces."
    return None
