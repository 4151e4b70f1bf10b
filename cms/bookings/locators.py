"""Record locators: six characters from an alphabet without look-alikes (no 0/O, 1/I)."""

from __future__ import annotations

import re
import secrets

LOCATOR_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
LOCATOR_LENGTH = 6

_LOCATOR = re.compile(f"^[{LOCATOR_ALPHABET}]{{{LOCATOR_LENGTH}}}$")


def generate_locator() -> str:
    """Return a new random locator (uniqueness is the caller's job: the column is unique)."""
    return "".join(secrets.choice(LOCATOR_ALPHABET) for _ in range(LOCATOR_LENGTH))


def normalize_locator(text: str) -> str | None:
    """Return `text` as a locator (trimmed, upper case) if it could be one, else None."""
    candidate = text.strip().upper()
    return candidate if _LOCATOR.match(candidate) else None
