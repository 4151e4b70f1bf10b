"""Admin forms. Filter forms are GET forms without CSRF; the services do the real validation."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import DateField, PasswordField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Optional

from cms.auth.passwords import MAX_PASSWORD_LENGTH
from cms.users.agencies import NAME_MAX
from cms.users.service import DISPLAY_NAME_MAX, EMAIL_MAX

ROLE_CHOICES = [SelectChoice("agent", "Agent"), SelectChoice("admin", "Admin")]
_NO_AUTOFILL = {"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"}


def choices(pairs: list[tuple[int, str]], blank: str | None = None) -> list[SelectChoice]:
    """Select options from (value, label) pairs, optionally led by an empty "any" option."""
    options = [SelectChoice("", blank)] if blank is not None else []
    return options + [SelectChoice(value, label) for value, label in pairs]


def _optional_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class FilterForm(FlaskForm):
    """A GET form read from the query string."""

    class Meta:
        csrf = False


class UserFilterForm(FilterForm):
    q = StringField("Search", validators=[Optional(), Length(max=64)],
                    render_kw={"placeholder": "Username or name", **_NO_AUTOFILL})
    agency = SelectField("Agency", coerce=_optional_int, validate_choice=False)
    role = SelectField("Role", choices=[SelectChoice("", "Any role"), *ROLE_CHOICES], validate_choice=False)
    active = SelectField(
        "Status",
        choices=[
            SelectChoice("", "Any status"),
            SelectChoice("active", "Active"),
            SelectChoice("inactive", "Deactivated"),
        ],
        validate_choice=False,
    )


class NewUserForm(FlaskForm):
    username = StringField(
        "Username", validators=[DataRequired(), Length(min=3, max=64)],
        render_kw={**_NO_AUTOFILL, "maxlength": 64},
    )
    display_name = StringField(
        "Display name", validators=[DataRequired(), Length(max=DISPLAY_NAME_MAX)],
        render_kw={"maxlength": DISPLAY_NAME_MAX},
    )
    email = StringField(
        "Email (optional)", validators=[Optional(), Length(max=EMAIL_MAX)],
        render_kw={"type": "email", "maxlength": EMAIL_MAX, **_NO_AUTOFILL},
    )
    role = SelectField("Role", choices=ROLE_CHOICES, default="agent")
    agency_id = SelectField("Agency", coerce=_optional_int)
    password = PasswordField(
        "Password", validators=[DataRequired(), Length(max=MAX_PASSWORD_LENGTH)],
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        "Repeat password",
        validators=[DataRequired(), EqualTo("password", message="The passwords do not match.")],
        render_kw={"autocomplete": "new-password"},
    )


class ResetPasswordForm(FlaskForm):
    """Both fields blank means "generate a password"."""

    password = PasswordField(
        "New password", validators=[Optional(), Length(max=MAX_PASSWORD_LENGTH)],
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        "Repeat new password",
        validators=[EqualTo("password", message="The passwords do not match.")],
        render_kw={"autocomplete": "new-password"},
    )


class AgencyForm(FlaskForm):
    name = StringField(
        "Agency name", validators=[DataRequired(), Length(max=NAME_MAX)],
        render_kw={"maxlength": NAME_MAX},
    )


class AuditFilterForm(FilterForm):
    actor = StringField("Actor", validators=[Optional(), Length(max=64)],
                        render_kw={"placeholder": "Name starts with", **_NO_AUTOFILL})
    action = StringField("Action", validators=[Optional(), Length(max=64)],
                         render_kw={"placeholder": "e.g. user.create or auth.", **_NO_AUTOFILL})
    # Query-string names are "from" and "to" (keywords in Python, hence `name=`).
    date_from = DateField("From", validators=[Optional()], name="from")
    date_to = DateField("To", validators=[Optional()], name="to")
