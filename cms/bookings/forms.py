"""The booking form: header fields plus repeating passenger and segment rows.

Blank rows are ignored; a partly filled row is an error on that row. Rows added in the browser
(`segments-5-carrier`, ...) are accepted up to a generous cap; the service enforces the real
limits (9 passengers, 16 segments) and the cross-row rules, and `apply_problems` puts its
messages back on the rows they came from.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    DecimalField,
    Field,
    FieldList,
    Form,
    FormField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, Regexp, ValidationError
from wtforms.widgets import HiddenInput

from cms.bookings.rules import (
    AIRPORT_MESSAGE,
    AIRPORT_PATTERN,
    CARRIER_MESSAGE,
    CARRIER_PATTERN,
    CURRENCY_MESSAGE,
    CURRENCY_PATTERN,
    FLIGHT_NUMBER_MESSAGE,
    FLIGHT_NUMBER_PATTERN,
    INITIAL_STATUSES,
    MAX_PASSENGERS,
    MAX_SEGMENTS,
    MONEY_MESSAGE,
    SAME_AIRPORT_MESSAGE,
    NAME_MAX,
    NOTES_MAX,
    BookingInput,
    PassengerInput,
    SegmentInput,
    money_problem,
)
from cms.models import Booking, Cabin, PassengerType

REQUIRED = "Required."
PAX_TYPE_LABELS = {"ADT": "Adult", "CHD": "Child", "INF": "Infant"}
# Rows beyond this many (blank ones included) are not even parsed: the form is refused.
ROW_SLACK = 3
_ROW_KEY = re.compile(r"^(passengers|segments)-(\d+)-(\w+)$")


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def _fare(form: Form, field: Field) -> None:
    problem = money_problem(field.data)
    if problem:
        raise ValidationError(problem)


class BlankableDateField(DateField):
    """A date input where an empty value is just "no date" (InputRequired reports it once)."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        if valuelist and str(valuelist[0]).strip():
            super().process_formdata(valuelist)
        else:
            self.data = None


class FareField(DecimalField):
    """An amount; empty is "no amount", anything unparsable gets the one money message."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        raw = str(valuelist[0]).strip() if valuelist else ""
        if not raw:
            self.data = None
            return
        try:
            self.data = Decimal(raw)
        except InvalidOperation:
            self.data = None
            raise ValueError(MONEY_MESSAGE) from None


class _Row(Form):
    """A repeating row that counts as absent when its typed-in fields are all empty."""

    typed_fields: tuple[str, ...] = ()

    @property
    def is_blank(self) -> bool:
        return not any(
            str((self[name].raw_data or [""])[0]).strip() for name in self.typed_fields
        )

    def validate(self, extra_validators: Any = None) -> bool:
        if self.is_blank:
            return True
        return bool(super().validate(extra_validators))


class PassengerRow(_Row):
    typed_fields = ("first_name", "last_name")

    first_name = StringField(
        "First name", filters=[_strip], validators=[DataRequired(REQUIRED), Length(max=NAME_MAX)]
    )
    last_name = StringField(
        "Last name", filters=[_strip], validators=[DataRequired(REQUIRED), Length(max=NAME_MAX)]
    )
    pax_type = SelectField(
        "Type", choices=[SelectChoice(t.value, PAX_TYPE_LABELS[t.value]) for t in PassengerType], default="ADT"
    )


class SegmentRow(_Row):
    typed_fields = ("carrier", "flight_number", "origin", "destination", "departure_date", "fare")

    carrier = StringField(
        "Airline",
        filters=[_upper],
        validators=[DataRequired(REQUIRED), Regexp(CARRIER_PATTERN, message=CARRIER_MESSAGE)],
        render_kw={"maxlength": 2, "autocapitalize": "characters"},
    )
    flight_number = StringField(
        "Flight no.",
        filters=[_strip],
        validators=[
            DataRequired(REQUIRED),
            Regexp(FLIGHT_NUMBER_PATTERN, message=FLIGHT_NUMBER_MESSAGE),
        ],
        render_kw={"maxlength": 4, "inputmode": "numeric"},
    )
    origin = StringField(
        "From",
        filters=[_upper],
        validators=[DataRequired(REQUIRED), Regexp(AIRPORT_PATTERN, message=AIRPORT_MESSAGE)],
        render_kw={"maxlength": 3, "autocapitalize": "characters"},
    )
    destination = StringField(
        "To",
        filters=[_upper],
        validators=[DataRequired(REQUIRED), Regexp(AIRPORT_PATTERN, message=AIRPORT_MESSAGE)],
        render_kw={"maxlength": 3, "autocapitalize": "characters"},
    )
    departure_date = BlankableDateField("Date", validators=[InputRequired(REQUIRED)])
    cabin = SelectField(
        "Cabin", choices=[SelectChoice(c.value, c.label) for c in Cabin], default=Cabin.ECONOMY.value
    )
    fare = FareField(
        "Fare",
        places=2,
        validators=[InputRequired(REQUIRED), _fare],
        render_kw={"inputmode": "decimal"},
    )

    def validate_destination(self, field: Field) -> None:
        # Also checked by the service; repeated here so it shows with the other row errors.
        if field.data and field.data == self.origin.data:
            raise ValidationError(SAME_AIRPORT_MESSAGE)


class BookingForm(FlaskForm):
    """Fields shared by the new and edit forms."""

    currency = StringField(
        "Currency",
        default="EUR",
        filters=[_upper],
        validators=[DataRequired(REQUIRED), Regexp(CURRENCY_PATTERN, message=CURRENCY_MESSAGE)],
        render_kw={"maxlength": 3, "autocapitalize": "characters"},
    )
    notes = TextAreaField(
        "Notes", filters=[_strip], validators=[Length(max=NOTES_MAX)], render_kw={"rows": 3}
    )
    passengers = FieldList(
        FormField(PassengerRow), min_entries=2, max_entries=MAX_PASSENGERS * ROW_SLACK + 1
    )
    segments = FieldList(
        FormField(SegmentRow), min_entries=3, max_entries=MAX_SEGMENTS * ROW_SLACK + 1
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Messages about a whole list of rows ("add at least one passenger").
        self.row_errors: dict[str, list[str]] = {"passengers": [], "segments": []}
        self._row_index: dict[str, list[int]] = {"passengers": [], "segments": []}

    def add_blank_rows(self) -> None:
        """Offer one empty row after the filled ones, and at least the usual number of rows."""
        for rows in (self.passengers, self.segments):
            rows.append_entry()
            while len(rows.entries) < rows.min_entries:
                rows.append_entry()

    def validate(self, extra_validators: Any = None) -> bool:
        valid = bool(super().validate(extra_validators))
        for name, limit in (("passengers", MAX_PASSENGERS), ("segments", MAX_SEGMENTS)):
            if len(self[name].entries) > limit * ROW_SLACK:
                self.row_errors[name].append(
                    f"Too many rows were sent; a booking has at most {limit} {name}."
                )
                valid = False
        return valid

    def to_data(self) -> BookingInput:
        """The filled-in rows as service input (call after `validate()` succeeded)."""
        passengers: list[PassengerInput] = []
        segments: list[SegmentInput] = []
        self._row_index = {"passengers": [], "segments": []}
        for index, entry in enumerate(self.passengers.entries):
            if not entry.form.is_blank:
                row = entry.form
                passengers.append(
                    PassengerInput(row.first_name.data, row.last_name.data, row.pax_type.data)
                )
                self._row_index["passengers"].append(index)
        for index, entry in enumerate(self.segments.entries):
            if not entry.form.is_blank:
                row = entry.form
                segments.append(
                    SegmentInput(
                        carrier=row.carrier.data,
                        flight_number=row.flight_number.data,
                        origin=row.origin.data,
                        destination=row.destination.data,
                        departure_date=row.departure_date.data,
                        cabin=row.cabin.data,
                        fare=row.fare.data,
                    )
                )
                self._row_index["segments"].append(index)
        return BookingInput(
            passengers=passengers,
            segments=segments,
            currency=self.currency.data,
            notes=self.notes.data or "",
        )

    def apply_problems(self, problems: dict[str, list[str]]) -> None:
        """Show the service's problems (keyed by position among filled rows) on the form's rows."""
        for key, messages in problems.items():
            match = _ROW_KEY.match(key)
            if key in self.row_errors:
                self.row_errors[key].extend(messages)
            elif match and int(match[2]) < len(self._row_index[match[1]]):
                entry_index = self._row_index[match[1]][int(match[2])]
                target = self[match[1]].entries[entry_index].form[match[3]]
                target.errors = [*target.errors, *messages]
            elif key in self._fields and not match:
                self[key].errors = [*self[key].errors, *messages]
            else:
                self.form_errors.extend(messages)

    def field_errors(self) -> dict[str, list[str]]:
        """Every error, keyed by the posted field name ("segments-2-origin"), for JSON answers."""
        errors: dict[str, list[str]] = {}
        for field in self:
            if isinstance(field, FieldList):
                for entry in field.entries:
                    for sub in entry.form:
                        if sub.errors:
                            errors[sub.name] = list(sub.errors)
            elif field.errors:
                errors[field.name] = list(field.errors)
        for name, messages in self.row_errors.items():
            if messages:
                errors[name] = list(messages)
        if self.form_errors:
            errors["form"] = list(self.form_errors)
        return errors

    def has_errors(self) -> bool:
        return bool(self.field_errors())


class NewBookingForm(BookingForm):
    status = SelectField(
        "Status",
        choices=[SelectChoice(s.value, s.value.capitalize()) for s in INITIAL_STATUSES],
        default=INITIAL_STATUSES[0].value,
    )


class EditBookingForm(BookingForm):
    version = IntegerField(widget=HiddenInput(), validators=[InputRequired()])

    @classmethod
    def for_booking(cls, booking: Booking) -> "EditBookingForm":
        """A form showing `booking`, with a spare row for each list."""
        form = cls(obj=booking)
        form.add_blank_rows()
        return form


class StatusForm(FlaskForm):
    """The status buttons: `status` is a verb ("cancel") or a status; `version` is optional."""

    status = StringField()
    version = IntegerField(widget=HiddenInput())
