"""Bookings with their passengers and flight segments."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, Index, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cms.extensions import db
from cms.models.types import UTCDateTime, utcnow


class BookingStatus(str, enum.Enum):
    """Lifecycle of a booking, in order."""

    QUOTED = "quoted"
    HELD = "held"
    CONFIRMED = "confirmed"
    TICKETED = "ticketed"
    CANCELLED = "cancelled"


class Cabin(str, enum.Enum):
    """Cabin classes with their usual one-letter codes as values."""

    ECONOMY = "Y"
    PREMIUM = "W"
    BUSINESS = "C"
    FIRST = "F"

    @property
    def label(self) -> str:
        return self.name.capitalize()


class PassengerType(str, enum.Enum):
    ADULT = "ADT"
    CHILD = "CHD"
    INFANT = "INF"


class Booking(db.Model):  # type: ignore[name-defined,misc]
    """A reservation for one client, identified by a six-character record locator."""

    __tablename__ = "bookings"
    __table_args__ = (Index("ix_bookings_agency_status", "agency_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"))
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    record_locator: Mapped[str] = mapped_column(String(6), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=BookingStatus.QUOTED.value)
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    passengers: Mapped[list["Passenger"]] = relationship(
        back_populates="booking", cascade="all, delete-orphan", order_by="Passenger.position"
    )
    segments: Mapped[list["Segment"]] = relationship(
        back_populates="booking", cascade="all, delete-orphan", order_by="Segment.position"
    )
    client = relationship("Client")
    agent = relationship("User")

    __mapper_args__ = {"version_id_col": version}

    @property
    def total_fare(self) -> Decimal:
        return sum((s.fare for s in self.segments), Decimal("0"))

    @property
    def first_departure(self) -> date | None:
        return min((s.departure_date for s in self.segments), default=None)


class Passenger(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "passengers"

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(
        ForeignKey("bookings.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    first_name: Mapped[str] = mapped_column(String(80))
    last_name: Mapped[str] = mapped_column(String(80))
    pax_type: Mapped[str] = mapped_column(String(3), default=PassengerType.ADULT.value)

    booking: Mapped[Booking] = relationship(back_populates="passengers")


class Segment(db.Model):  # type: ignore[name-defined,misc]
    """One flight of a booking; `departure_date` is indexed for "upcoming departures"."""

    __tablename__ = "segments"
    __table_args__ = (Index("ix_segments_departure_booking", "departure_date", "booking_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(
        ForeignKey("bookings.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    carrier: Mapped[str] = mapped_column(String(2))
    flight_number: Mapped[str] = mapped_column(String(4))
    origin: Mapped[str] = mapped_column(String(3))
    destination: Mapped[str] = mapped_column(String(3))
    departure_date: Mapped[date] = mapped_column(Date)
    cabin: Mapped[str] = mapped_column(String(1), default=Cabin.ECONOMY.value)
    fare: Mapped[Decimal] = mapped_column(Numeric(10, 2), default=Decimal("0"))

    booking: Mapped[Booking] = relationship(back_populates="segments")

    @property
    def flight(self) -> str:
        return f"{self.carrier}{self.flight_number}"
