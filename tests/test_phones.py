"""Phone numbers shown as people read them, on the client page and its timeline."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from cms.extensions import db
from cms.models import Activity, Agency
from cms.phones import readable_phone
from tests import factories
from tests.conftest import Personas


@pytest.mark.parametrize(("raw", "shown"), [
    ("+442079460374", "+44 20 7946 0374"),
    ("+44 20 7946 0374", "+44 20 7946 0374"),
    ("00442079460374", "+44 20 7946 0374"),
    ("+12125551234", "+1 212-555-1234"),
    ("020 7946 0374", "020 7946 0374"),  # no country code: as typed
    ("+99", "+99"),  # not a possible number: as typed
    ("", ""),
])
def test_readable_phone(raw: str, shown: str) -> None:
    assert readable_phone(raw) == shown


def test_the_timeline_and_profile_show_readable_numbers(app: Flask, personas: Personas,
                                                        as_user: Any) -> None:
    with app.app_context():
        agency = db.session.get(Agency, personas.agency_a_id)
        client = factories.make_client(db.session, agency, first_name="Ada", last_name="L",
                                       phone="+442079460374")
        db.session.add(Activity(agency_id=agency.id, client_id=client.id, kind="call",
                                body="Call to +442079460374 2 min: Reached.",
                                data={"number": "+442079460374", "plugin": "softphone"}))
        db.session.commit()
        client_id = client.id
    page = as_user("alice.agent").get(f"/clients/{client_id}").get_data(as_text=True)
    assert "Call to +44 20 7946 0374 2 min: Reached." in page
    assert '<a href="tel:+442079460374">+44 20 7946 0374</a>' in page
