"""The flag edit form. Targeting lists are typed comma-separated; the service validates them."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, RadioField, SelectChoice, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from cms.flags.service import REASON_MAX, REASON_MIN

_NO_AUTOFILL = {"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"}


def split_list(text: str | None) -> list[str]:
    """"a, b,,c " -> ["a", "b", "c"]."""
    return [item.strip() for item in (text or "").split(",") if item.strip()]


class FlagForm(FlaskForm):
    state = RadioField("State", choices=[SelectChoice("on", "On"), SelectChoice("off", "Off")],
                       validators=[InputRequired(message="Choose on or off.")])
    rollout_percent = IntegerField(
        "Rollout %", validators=[InputRequired(message="Give a percentage from 0 to 100."),
                                 NumberRange(0, 100, message="Use a whole number from 0 to 100.")],
        render_kw={"min": 0, "max": 100, "inputmode": "numeric"},
    )
    agents = StringField("Agents", validators=[Optional(), Length(max=4000)],
                         render_kw={"placeholder": "usernames or user ids", **_NO_AUTOFILL})
    agencies = StringField("Agencies", validators=[Optional(), Length(max=2000)],
                           render_kw={"placeholder": "agency ids", **_NO_AUTOFILL})
    roles = StringField("Roles", validators=[Optional(), Length(max=40)],
                        render_kw={"placeholder": "agent, admin", **_NO_AUTOFILL})
    reason = TextAreaField(
        "Reason", validators=[DataRequired(message="Say why: it goes into the audit log."),
                              Length(min=REASON_MIN, max=REASON_MAX)],
        render_kw={"rows": 2, "maxlength": REASON_MAX},
    )
    confirm_off = BooleanField("I understand this turns it off for every agent")
