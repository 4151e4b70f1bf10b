"""Phone numbers as people read them: "+442079460374" is shown as "+44 20 7946 0374".

Formatting only: numbers are stored as the agent typed them (and searched by their digits).
"""

from __future__ import annotations

import phonenumbers


def readable_phone(value: str | None) -> str:
    """`value` in the international format of its country when it is a number with a country
    code (it starts with + or 00); otherwise unchanged."""
    if not value:
        return ""
    text = value.strip()
    candidate = "+" + text[2:] if text.startswith("00") else text
    if not candidate.startswith("+"):
        return value
    try:
        number = phonenumbers.parse(candidate, None)
    except phonenumbers.NumberParseException:
        return value
    if not phonenumbers.is_possible_number(number):
        return value
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL))
