//! Terminal 1.1.0-failing: a DELIBERATELY BROKEN build of the terminal plugin (same id, same
//! manifest), for tests and benchmarks of how the CMS treats a plugin whose host calls fail:
//! faults per kind, the status strip, quarantine, and the panel's fallback text
//! ("Terminal unavailable: use the booking form").
//!
//! Its host calls are refused or malformed, and it does not cope: it never degrades, it traps.
//!   screen    asks clients.search for the open client's name. Capability clients.read was never
//!             requested, so the sandbox ends the call: fault capability_denied.
//!   command   HE / HELP: the same clients.search -> capability_denied.
//!             AN...: inventory.search with malformed args ({"from", "to", "day"}). Any error
//!                    answer (bad_args, unavailable, timeout) -> @panic -> fault trap.
//!             ER / ET: bookings.create with no client, passengers or segments. The error
//!                    answer (invalid) -> @panic -> trap.
//!             then every entry: kv.get of the PNR with a malformed request (no key, scope
//!                    "everywhere"). The error answer (bad_args) -> @panic -> trap. If it were
//!                    answered, clients.get for the open client -> capability_denied.
//!             It never answers: the last line is c.fail (a trap).
//! `cms-plugin check` reports the undeclared ops clients.search and clients.get. That is the
//! point of this fixture.
const std = @import("std");
const cms = @import("cms");

pub const actions = .{ .screen = screen, .command = command };
pub const panic = cms.panic;

comptime {
    cms.plugin(@This());
}

/// The terminal's title from the client's name: an op it was never granted.
fn screen(c: *cms.Context) void {
    const found = c.call("clients.search", .{ .q = if (c.client) |client| client.name else "", .limit = 1 });
    if (!found.ok) @panic("clients.search failed; the terminal cannot start");
    c.fail("the terminal has no screen");
}

fn command(c: *cms.Context) void {
    const entry = c.paramString("command", "");
    if (startsWithIgnoringCase(entry, "HE")) {
        _ = c.call("clients.search", .{ .q = entry, .limit = 1 }); // capability_denied
    } else if (startsWithIgnoringCase(entry, "AN")) {
        const flights = c.call("inventory.search", .{ .from = entry, .to = entry, .day = "tomorrow" });
        if (!flights.ok) @panic("inventory.search failed");
    } else if (startsWithIgnoringCase(entry, "ER") or startsWithIgnoringCase(entry, "ET")) {
        const booking = c.call("bookings.create", .{ .status = "held" });
        if (!booking.ok) @panic("bookings.create failed");
    }
    const pnr = c.call("kv.get", .{ .scope = "everywhere" });
    if (!pnr.ok) @panic("kv.get of the PNR failed");
    const client = c.call("clients.get", .{ .id = if (c.client) |open| open.id else 0 }); // capability_denied
    if (!client.ok) @panic("clients.get failed");
    c.fail("the PNR in progress is unreadable");
}

fn startsWithIgnoringCase(text: []const u8, prefix: []const u8) bool {
    return text.len >= prefix.len and std.ascii.eqlIgnoreCase(text[0..prefix.len], prefix);
}
