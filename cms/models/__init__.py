"""The data model; import models from here."""

from cms.models.audit import AuditEvent
from cms.models.bookings import Booking, BookingStatus, Cabin, Passenger, PassengerType, Segment
from cms.models.clients import (
    Activity,
    ActivityKind,
    Client,
    RecentClient,
    client_search_keys,
    normalize_email,
    normalize_phone,
    normalize_text,
)
from cms.models.flags import FeatureFlag, FlagVersion
from cms.models.monitoring import Alert
from cms.models.plugins import (Flight, OutboxMail, PluginInstall, PluginValue, PluginVersion,
                                TrustedKey)
from cms.models.tenancy import Agency, Role, User, UserSession
from cms.models.tokens import AdminToken
from cms.models.types import utcnow

__all__ = [
    "Activity",
    "ActivityKind",
    "AdminToken",
    "Agency",
    "Alert",
    "AuditEvent",
    "Booking",
    "BookingStatus",
    "Cabin",
    "Client",
    "FeatureFlag",
    "FlagVersion",
    "Flight",
    "OutboxMail",
    "Passenger",
    "PassengerType",
    "PluginInstall",
    "PluginValue",
    "PluginVersion",
    "RecentClient",
    "Role",
    "Segment",
    "TrustedKey",
    "User",
    "UserSession",
    "client_search_keys",
    "normalize_email",
    "normalize_phone",
    "normalize_text",
    "utcnow",
]
