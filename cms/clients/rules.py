"""What a valid client record is: limits, the input shape, and the checks services apply.

The form shows the same limits to the agent; the service re-checks them so every caller
(form, JSON, CLI, plugins) gets the same rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from email_validator import EmailNotValidError, validate_email

NAME_MAX = 80
EMAIL_MAX = 254
PHONE_MAX = 32
PHONE_MIN_DIGITS = 6
NOTES_MAX = 5000
MEAL_MAX = 8
FREQUENT_FLYER_MAX = 40
ASSISTANCE_MAX = 200
NOTE_MAX = 5000

SEAT_CHOICES = (("", "No preference"), ("aisle", "Aisle"), ("window", "Window"))
PHONE_PATTERN = re.compile(r"^[0-9 +\-().]*$")
MEAL_PATTERN = re.compile(r"^[A-Za-z0-9]*$")

# The preference keys the client form manages; other keys in `preferences` are kept on edit.
PREFERENCE_FIELDS = ("seat", "meal", "frequent_flyer", "assistance")

REQUIRED = "Required."
PHONE_CHARACTERS = "Use only digits, spaces and + - ( ) ."
PHONE_TOO_SHORT = f"A phone number needs at least {PHONE_MIN_DIGITS} digits."
MEAL_MESSAGE = "Use a meal code such as VGML (letters and digits only)."
EMAIL_MESSAGE = "Enter a valid email address."

# Human names of the profile fields, as they appear in "Profile updated: email, phone".
FIELD_LABELS = {
    "first_name": "first name",
    "last_name": "last name",
    "email": "email",
    "phone": "phone",
    "notes": "notes",
    "preferences": "preferences",
}


@dataclass(frozen=True)
class ClientInput:
    """A client's profile as plain, already stripped values ("" for an empty optional field)."""

    first_name: str
    last_name: str
    email: str = ""
    phone: str = ""
    notes: str = ""
    seat: str = ""
    meal: str = ""
    frequent_flyer: str = ""
    assistance: str = ""

    def preferences(self) -> dict[str, str]:
        """The preferences JSON: only the keys that have a value."""
        values = {
            "seat": self.seat,
            "meal": self.meal.upper(),
            "frequent_flyer": self.frequent_flyer,
            "assistance": self.assistance,
        }
        return {key: value for key, value in values.items() if value}

    def profile(self) -> dict[str, Any]:
        """The stored columns, as compared for audit and change detection."""
        return {
            "first_name": self.first_name,
            "last_name": self.last_name,
            "email": self.email or None,
            "phone": self.phone or None,
            "notes": self.notes,
            "preferences": self.preferences(),
        }


def phone_problem(phone: str) -> str | None:
    """Why `phone` is not an acceptable phone number, or None."""
    if not PHONE_PATTERN.match(phone):
        return PHONE_CHARACTERS
    if sum(c.isdigit() for c in phone) < PHONE_MIN_DIGITS:
        return PHONE_TOO_SHORT
    return None


def email_problem(email: str) -> str | None:
    """Why `email` is not an acceptable address (syntax only, no DNS), or None."""
    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError:
        return EMAIL_MESSAGE
    return None


def _too_long(limit: int) -> str:
    return f"At most {limit} characters."


def client_problems(data: ClientInput) -> dict[str, list[str]]:
    """Return field name -> messages for everything wrong with `data` (empty when valid)."""
    problems: dict[str, list[str]] = {}

    def add(name: str, message: str) -> None:
        problems.setdefault(name, []).append(message)

    for name in ("first_name", "last_name"):
        value = getattr(data, name)
        if not value:
            add(name, REQUIRED)
        elif len(value) > NAME_MAX:
            add(name, _too_long(NAME_MAX))
    if len(data.email) > EMAIL_MAX:
        add("email", _too_long(EMAIL_MAX))
    elif data.email and (message := email_problem(data.email)):
        add("email", message)
    if len(data.phone) > PHONE_MAX:
        add("phone", _too_long(PHONE_MAX))
    elif data.phone and (message := phone_problem(data.phone)):
        add("phone", message)
    if data.seat not in {value for value, _ in SEAT_CHOICES}:
        add("seat", "Choose aisle, window or no preference.")
    if len(data.meal) > MEAL_MAX:
        add("meal", _too_long(MEAL_MAX))
    elif not MEAL_PATTERN.match(data.meal):
        add("meal", MEAL_MESSAGE)
    for name, limit in (
        ("frequent_flyer", FREQUENT_FLYER_MAX),
        ("assistance", ASSISTANCE_MAX),
        ("notes", NOTES_MAX),
    ):
        if len(getattr(data, name)) > limit:
            add(name, _too_long(limit))
    return problems


def note_problem(body: str) -> str | None:
    """Why a timeline note cannot be saved, or None."""
    if not body.strip():
        return "Write something before adding the note."
    if len(body) > NOTE_MAX:
        return f"A note can have at most {NOTE_MAX} characters."
    return None
