"""Forms of the client pages: the client profile (new and edit) and the timeline note."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import EmailField, Field, IntegerField, SelectField, StringField, TelField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, InputRequired, Length, Optional, Regexp, ValidationError
from wtforms.widgets import HiddenInput

from cms.clients.rules import (
    ASSISTANCE_MAX,
    EMAIL_MAX,
    EMAIL_MESSAGE,
    FREQUENT_FLYER_MAX,
    MEAL_MAX,
    MEAL_MESSAGE,
    MEAL_PATTERN,
    NAME_MAX,
    NOTE_MAX,
    NOTES_MAX,
    PHONE_MAX,
    REQUIRED,
    SEAT_CHOICES,
    ClientInput,
    phone_problem,
)
from cms.models import Client


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _valid_phone(form: FlaskForm, field: Field) -> None:
    problem = phone_problem(field.data or "")
    if problem:
        raise ValidationError(problem)


def _too_long(limit: int) -> str:
    return f"At most {limit} characters."


class ClientForm(FlaskForm):
    """A client's profile and travel preferences."""

    first_name = StringField(
        "First name",
        [DataRequired(REQUIRED), Length(max=NAME_MAX, message=_too_long(NAME_MAX))],
        filters=[_strip],
        render_kw={"autocomplete": "off"},
    )
    last_name = StringField(
        "Last name",
        [DataRequired(REQUIRED), Length(max=NAME_MAX, message=_too_long(NAME_MAX))],
        filters=[_strip],
        render_kw={"autocomplete": "off"},
    )
    email = EmailField(
        "Email",
        [Optional(), Length(max=EMAIL_MAX, message=_too_long(EMAIL_MAX)), Email(EMAIL_MESSAGE)],
        filters=[_strip],
        render_kw={"autocomplete": "off"},
    )
    phone = TelField(
        "Phone",
        [Optional(), Length(max=PHONE_MAX, message=_too_long(PHONE_MAX)), _valid_phone],
        filters=[_strip],
        render_kw={"autocomplete": "off", "placeholder": "+44 20 7946 0000"},
    )
    seat = SelectField("Seat", choices=[SelectChoice(value, label) for value, label in SEAT_CHOICES], default="")
    meal = StringField(
        "Meal code",
        [Optional(), Length(max=MEAL_MAX, message=_too_long(MEAL_MAX)), Regexp(MEAL_PATTERN, message=MEAL_MESSAGE)],
        filters=[_strip],
        render_kw={"placeholder": "VGML", "class": "mono"},
    )
    frequent_flyer = StringField(
        "Frequent flyer",
        [Length(max=FREQUENT_FLYER_MAX, message=_too_long(FREQUENT_FLYER_MAX))],
        filters=[_strip],
        render_kw={"placeholder": "BA 12345678"},
    )
    assistance = StringField(
        "Special assistance",
        [Length(max=ASSISTANCE_MAX, message=_too_long(ASSISTANCE_MAX))],
        filters=[_strip],
        render_kw={"placeholder": "e.g. wheelchair to the gate (WCHR)"},
    )
    notes = TextAreaField(
        "Notes", [Length(max=NOTES_MAX, message=_too_long(NOTES_MAX))], filters=[_strip]
    )

    def to_input(self) -> ClientInput:
        """The submitted profile as plain values for the service."""
        return ClientInput(
            first_name=self.first_name.data or "",
            last_name=self.last_name.data or "",
            email=self.email.data or "",
            phone=self.phone.data or "",
            notes=self.notes.data or "",
            seat=self.seat.data or "",
            meal=(self.meal.data or "").upper(),
            frequent_flyer=self.frequent_flyer.data or "",
            assistance=self.assistance.data or "",
        )

    def apply_problems(self, problems: dict[str, list[str]]) -> None:
        """Show the service's messages on the fields they concern."""
        for name, messages in problems.items():
            field = self._fields.get(name)
            if field is None:
                self.form_errors.extend(messages)
            else:
                field.errors = [*field.errors, *messages]

    def field_errors(self) -> dict[str, list[str]]:
        """Field name -> messages, as given to JSON clients."""
        errors = {name: list(messages) for name, messages in self.errors.items() if name}
        if self.form_errors:
            errors["form"] = list(self.form_errors)
        return errors

    @classmethod
    def prefilled(cls, query: str) -> "ClientForm":
        """A new-client form started from a search that found nothing ("Ana Lima", an email...)."""
        form = cls()
        text = query.strip()[:NAME_MAX]
        if "@" in text:
            form.email.data = text
        elif text and phone_problem(text) is None:
            form.phone.data = text
        elif text:
            first, _, last = text.rpartition(" ")
            form.first_name.data, form.last_name.data = first.strip(), last
        return form


class EditClientForm(ClientForm):
    """The profile form for an existing client; `version` is the one the agent started from."""

    version = IntegerField(widget=HiddenInput(), validators=[InputRequired("Reload the page and try again.")])

    @classmethod
    def for_client(cls, client: Client) -> "EditClientForm":
        preferences = client.preferences or {}
        return cls(
            formdata=None,
            obj=client,
            seat=preferences.get("seat", ""),
            meal=preferences.get("meal", ""),
            frequent_flyer=preferences.get("frequent_flyer", ""),
            assistance=preferences.get("assistance", ""),
        )


class NoteForm(FlaskForm):
    """A free-text note on the client's timeline."""

    body = TextAreaField(
        "Note",
        [
            DataRequired("Write something before adding the note."),
            Length(max=NOTE_MAX, message=f"A note can have at most {NOTE_MAX} characters."),
        ],
        render_kw={"rows": 3, "placeholder": "Called about the Lisbon trip; prefers morning flights…"},
    )
