"""Booking pages (stub: filled in by the bookings work)."""
