//! Mail: booking confirmation, itinerary and quote e-mails for travel agents.
//!
//! Actions:
//!   compose  (client.sidebar) the open client's bookings in a form bound to "preview" (template,
//!            booking, address), and the mails sent to this client lately.
//!   preview  checks the address, loads the booking, fills the template, and shows the mail in a
//!            form bound to "send" where the subject and body can still be edited.
//!   send     checks the address again, sends through the relay (mail.send), notes the mail on
//!            the client's timeline (activity.add) and in the sent lists.
//!   outbox   (page) the agent's mails sent lately.
//!
//! State in kv (both lists CAPPED, newest first, so nothing grows call after call):
//!   scope "client", key "sent": the last 10 mails to the client, [{subject, to, at}]
//!   scope "agent",  key "sent": the last 20 mails of the agent,  [{subject, to, at}]
//!
//! Host trouble on a read path (bookings, history) is an alert in an ok answer. A relay that is
//! down is ok:false "mail_unavailable", so the call writes nothing. After the mail is queued,
//! a failing timeline or history write costs only that note (with a warning), never the mail.
const std = @import("std");
const cms = @import("cms");

const Value = std.json.Value;

/// Action name -> handler. The names match [actions.*] in plugin.toml.
pub const actions = .{ .compose = compose, .preview = preview, .send = send, .outbox = outbox };

/// A panic ends the call as a "trap" fault that carries the panic message.
pub const panic = cms.panic;

comptime {
    cms.plugin(@This());
}

const client_sent_cap = 10;
const agent_sent_cap = 20;
const sent_key = "sent";
const max_address = 254;
const max_local = 64;
const max_label = 200; // UI labels and short texts (plugin_sdk/ui.py: MAX_SHORT)

const relay_down = "The mail relay is unavailable; nothing was sent. Try again in a minute.";

// ---------------------------------------------------------------------------------------------
// Templates

const Template = enum { confirmation, itinerary, quote };

const template_options = [_]cms.Option{
    .{ .value = "confirmation", .label = "Booking confirmation" },
    .{ .value = "itinerary", .label = "Your itinerary" },
    .{ .value = "quote", .label = "Your quote" },
};

const Mail = struct { subject: []const u8, body: []const u8 };

/// Who the mail is for and who signs it.
const Parties = struct {
    client_name: []const u8,
    agent_name: []const u8,
    now: []const u8,
};

fn fill(c: *cms.Context, template: Template, booking: Value, who: Parties) !Mail {
    const locator = cms.asString(cms.field(booking, "locator"), "?");
    const status = cms.asString(cms.field(booking, "status"), "");
    const currency = cms.asString(cms.field(booking, "currency"), "EUR");
    const passengers = items(cms.field(booking, "passengers"));
    const segments = items(cms.field(booking, "segments"));

    var out = std.ArrayList(u8).init(c.allocator);
    const w = out.writer();
    try w.print("Dear {s},\n\n", .{who.client_name});
    const subject = switch (template) {
        .confirmation => blk: {
            try w.writeAll("Thank you for booking with us. Here are the details of your booking.\n\n");
            try w.print("Booking reference: {s}\nStatus: {s}\n\n", .{ locator, statusText(status) });
            try writePassengers(w, passengers);
            try writeFlights(w, segments, currency, true);
            try w.print("Total: {s}\n\n", .{money(c, currency, total(segments))});
            try w.writeAll("Please check that every name matches the passport exactly, and tell us\n" ++
                "at once if anything needs changing.\n\n");
            break :blk c.fmt("Booking confirmation: {s}", .{locator});
        },
        .itinerary => blk: {
            try w.print("Here is your itinerary for booking {s} (status: {s}).\n\n", .{ locator, statusText(status) });
            try w.writeAll("Travellers: ");
            if (passengers.len == 0) try w.writeAll("(none)");
            for (passengers, 0..) |p, i| {
                if (i > 0) try w.writeAll(", ");
                try writeName(w, p);
            }
            try w.writeAll("\n\n");
            try writeFlights(w, segments, currency, false);
            try w.print("Total fare: {s}\n\n", .{money(c, currency, total(segments))});
            try w.writeAll("Please be at the airport in good time (3 hours before an international\n" ++
                "flight) with your passport and this itinerary.\n\nHave a good trip!\n\n");
            break :blk c.fmt("Your itinerary: {s}", .{locator});
        },
        .quote => blk: {
            try w.print("Thank you for your enquiry. Here is our quote, reference {s}.\n\n", .{locator});
            try writePassengers(w, passengers);
            try writeFlights(w, segments, currency, true);
            try w.print("Total fare: {s}\n\n", .{money(c, currency, total(segments))});
            try w.writeAll("This quote is valid for 72 hours");
            if (in72Hours(c, who.now)) |until| try w.print(", until {s}", .{until});
            try w.writeAll(".\nSeats and fares are not guaranteed until you book: reply to this mail\n" ++
                "and we will book it for you.\n\n");
            break :blk c.fmt("Your quote: {s}", .{locator});
        },
    };
    try w.print("Kind regards,\n{s}\n", .{who.agent_name});
    return .{ .subject = clip(subject, max_label), .body = out.items };
}

fn items(value: ?Value) []const Value {
    const v = value orelse return &.{};
    return if (v == .array) v.array.items else &.{};
}

fn statusText(status: []const u8) []const u8 {
    const texts = .{
        .{ "confirmed", "confirmed" },
        .{ "ticketed", "ticketed (your e-tickets are issued)" },
        .{ "held", "held (not yet confirmed)" },
        .{ "quoted", "quoted (not yet booked)" },
        .{ "cancelled", "cancelled" },
    };
    inline for (texts) |t| if (std.mem.eql(u8, status, t[0])) return t[1];
    return if (status.len > 0) status else "unknown";
}

fn writeName(w: anytype, passenger: Value) !void {
    const first = cms.asString(cms.field(passenger, "first_name"), "");
    const last = cms.asString(cms.field(passenger, "last_name"), "");
    try w.print("{s}{s}{s}", .{ first, if (first.len > 0 and last.len > 0) " " else "", last });
}

fn writePassengers(w: anytype, passengers: []const Value) !void {
    try w.writeAll("Passengers:\n");
    if (passengers.len == 0) try w.writeAll("  (none)\n");
    for (passengers, 1..) |p, n| {
        try w.print("  {d}. ", .{n});
        try writeName(w, p);
        const pax = cms.asString(cms.field(p, "pax_type"), "ADT");
        const kind = if (std.mem.eql(u8, pax, "CHD")) "child" else if (std.mem.eql(u8, pax, "INF")) "infant" else "adult";
        try w.print(" ({s})\n", .{kind});
    }
    try w.writeAll("\n");
}

/// One line per segment: date, flight, route, cabin and (with `fares`) the fare.
fn writeFlights(w: anytype, segments: []const Value, currency: []const u8, fares: bool) !void {
    try w.writeAll("Flights:\n");
    if (segments.len == 0) try w.writeAll("  (none)\n");
    for (segments, 1..) |s, n| {
        var date_buf: [32]u8 = undefined;
        const date = cms.asString(cms.field(s, "date"), "");
        try w.print("  {d}. {s}  {s} {s}  {s} \u{2192} {s}  {s}", .{
            n,
            formatDate(&date_buf, date),
            cms.asString(cms.field(s, "carrier"), ""),
            cms.asString(cms.field(s, "flight_number"), ""),
            cms.asString(cms.field(s, "origin"), ""),
            cms.asString(cms.field(s, "destination"), ""),
            cabinName(cms.asString(cms.field(s, "cabin"), "Y")),
        });
        if (fares) {
            var money_buf: [48]u8 = undefined;
            try w.print("  {s}", .{formatMoney(&money_buf, currency, cents(cms.field(s, "fare")))});
        }
        try w.writeAll("\n");
    }
    try w.writeAll("\n");
}

fn cabinName(code: []const u8) []const u8 {
    if (code.len != 1) return code;
    return switch (code[0]) {
        'Y' => "Economy",
        'W' => "Premium",
        'C' => "Business",
        'F' => "First",
        else => code,
    };
}

// ---------------------------------------------------------------------------------------------
// Money: fares arrive as JSON numbers (420, 420.5); counted in cents without floats.

fn total(segments: []const Value) i64 {
    var sum: i64 = 0;
    for (segments) |s| sum +|= cents(cms.field(s, "fare"));
    return sum;
}

fn cents(value: ?Value) i64 {
    const v = value orelse return 0;
    return switch (v) {
        .integer => |i| i *| 100,
        .number_string, .string => |s| parseCents(s) orelse 0,
        else => 0,
    };
}

/// "1234.5" -> 123450, "0.125" -> 13 (half up); null for anything else (exponents included).
fn parseCents(text: []const u8) ?i64 {
    var s = text;
    var negative = false;
    if (s.len > 0 and s[0] == '-') {
        negative = true;
        s = s[1..];
    }
    const dot = std.mem.indexOfScalar(u8, s, '.') orelse s.len;
    if (dot == 0 or dot > 15) return null;
    var value: i64 = 0;
    for (s[0..dot]) |ch| {
        if (!std.ascii.isDigit(ch)) return null;
        value = value * 10 + (ch - '0');
    }
    var fraction: [3]u8 = .{ '0', '0', '0' };
    if (dot < s.len) {
        const rest = s[dot + 1 ..];
        if (rest.len == 0) return null;
        for (rest, 0..) |ch, i| {
            if (!std.ascii.isDigit(ch)) return null;
            if (i < 3) fraction[i] = ch;
        }
    }
    var result = value * 100 + (fraction[0] - '0') * 10 + (fraction[1] - '0');
    if (fraction[2] >= '5') result += 1;
    return if (negative) -result else result;
}

fn money(c: *cms.Context, currency: []const u8, amount: i64) []const u8 {
    var buf: [48]u8 = undefined;
    return c.fmt("{s}", .{formatMoney(&buf, currency, amount)});
}

/// "EUR 1,234.56", like the CMS's booking pages.
fn formatMoney(buf: []u8, currency: []const u8, amount: i64) []const u8 {
    var digits: [24]u8 = undefined;
    const whole = std.fmt.bufPrint(&digits, "{d}", .{@divTrunc(@abs(amount), 100)}) catch return "?";
    var grouped: [32]u8 = undefined;
    var n: usize = 0;
    for (whole, 0..) |ch, i| {
        if (i > 0 and (whole.len - i) % 3 == 0) {
            grouped[n] = ',';
            n += 1;
        }
        grouped[n] = ch;
        n += 1;
    }
    const sign = if (amount < 0) "-" else "";
    return std.fmt.bufPrint(buf, "{s} {s}{s}.{d:0>2}", .{ clip(currency, 8), sign, grouped[0..n], @abs(amount) % 100 }) catch "?";
}

// ---------------------------------------------------------------------------------------------
// Dates: "2026-12-20" -> "Sun 20 Dec 2026" (days since 1970 by H. Hinnant's civil algorithms)

const month_names = [_][]const u8{ "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
const day_names = [_][]const u8{ "Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed" }; // from 1970-01-01

const Civil = struct { y: i64, m: u8, d: u8 };

fn parseDate(text: []const u8) ?Civil {
    if (text.len < 10 or text[4] != '-' or text[7] != '-') return null;
    const y = std.fmt.parseInt(i64, text[0..4], 10) catch return null;
    const m = std.fmt.parseInt(u8, text[5..7], 10) catch return null;
    const d = std.fmt.parseInt(u8, text[8..10], 10) catch return null;
    if (m < 1 or m > 12 or d < 1 or d > 31) return null;
    return .{ .y = y, .m = m, .d = d };
}

fn daysFromCivil(date: Civil) i64 {
    const y = if (date.m <= 2) date.y - 1 else date.y;
    const era = @divFloor(y, 400);
    const yoe = y - era * 400;
    const m: i64 = date.m;
    const mp = if (m > 2) m - 3 else m + 9;
    const doy = @divFloor(153 * mp + 2, 5) + date.d - 1;
    const doe = yoe * 365 + @divFloor(yoe, 4) - @divFloor(yoe, 100) + doy;
    return era * 146097 + doe - 719468;
}

fn civilFromDays(days: i64) Civil {
    const z = days + 719468;
    const era = @divFloor(z, 146097);
    const doe = z - era * 146097;
    const yoe = @divFloor(doe - @divFloor(doe, 1460) + @divFloor(doe, 36524) - @divFloor(doe, 146096), 365);
    const doy = doe - (365 * yoe + @divFloor(yoe, 4) - @divFloor(yoe, 100));
    const mp = @divFloor(5 * doy + 2, 153);
    const d = doy - @divFloor(153 * mp + 2, 5) + 1;
    const m = if (mp < 10) mp + 3 else mp - 9;
    return .{ .y = yoe + era * 400 + @as(i64, if (m <= 2) 1 else 0), .m = @intCast(m), .d = @intCast(d) };
}

fn writeCivil(buf: []u8, days: i64) []const u8 {
    const date = civilFromDays(days);
    const weekday = day_names[@intCast(@mod(days, 7))];
    return std.fmt.bufPrint(buf, "{s} {d} {s} {d}", .{ weekday, date.d, month_names[date.m - 1], date.y }) catch "?";
}

/// "2026-12-20" -> "Sun 20 Dec 2026"; anything else as it is.
fn formatDate(buf: []u8, text: []const u8) []const u8 {
    const date = parseDate(text) orelse return text;
    return writeCivil(buf, daysFromCivil(date));
}

/// context.now ("2026-11-24T14:05:09Z") plus 72 hours: "Fri 27 Nov 2026, 14:05 UTC".
fn in72Hours(c: *cms.Context, now: []const u8) ?[]const u8 {
    const date = parseDate(now) orelse return null;
    if (now.len < 16 or now[10] != 'T' or now[13] != ':') return null;
    var buf: [32]u8 = undefined;
    const day = writeCivil(&buf, daysFromCivil(date) + 3);
    return c.fmt("{s}, {s} UTC", .{ day, now[11..16] });
}

/// "2026-11-24T14:05:09Z" -> "2026-11-24 14:05 UTC" (other text as it is).
fn when(c: *cms.Context, at: []const u8) []const u8 {
    if (at.len < 16 or at[10] != 'T') return clip(at, max_label);
    return c.fmt("{s} {s} UTC", .{ at[0..10], at[11..16] });
}

// ---------------------------------------------------------------------------------------------
// Addresses: local@domain.tld

/// Why `address` is not an e-mail address we send to, or null when it is one.
fn addressProblem(address: []const u8) ?[]const u8 {
    if (address.len == 0) return "it is empty";
    if (address.len > max_address) return "it is longer than 254 characters";
    for (address) |ch| {
        if (ch == ' ' or ch == '\t' or ch == '\r' or ch == '\n') return "it contains a space";
    }
    const at = std.mem.indexOfScalar(u8, address, '@') orelse return "it has no @";
    if (std.mem.indexOfScalarPos(u8, address, at + 1, '@') != null) return "it has more than one @";
    const local = address[0..at];
    const domain = address[at + 1 ..];
    if (local.len == 0) return "nothing comes before the @";
    if (local.len > max_local) return "the part before the @ is longer than 64 characters";
    if (std.mem.indexOf(u8, address, "..") != null) return "it has two dots in a row";
    if (local[0] == '.' or local[local.len - 1] == '.') return "the part before the @ starts or ends with a dot";
    for (local) |ch| {
        if (!(std.ascii.isAlphanumeric(ch) or std.mem.indexOfScalar(u8, ".!#$%&'*+/=?^_`{|}~-", ch) != null))
            return "the part before the @ has a character that is not allowed";
    }
    if (domain.len == 0) return "nothing comes after the @";
    if (std.mem.indexOfScalar(u8, domain, '.') == null) return "the domain has no dot";
    var labels = std.mem.splitScalar(u8, domain, '.');
    var tld: []const u8 = "";
    while (labels.next()) |label| {
        if (label.len == 0) return "the domain starts or ends with a dot";
        if (label.len > 63) return "a part of the domain is longer than 63 characters";
        if (label[0] == '-' or label[label.len - 1] == '-') return "a part of the domain starts or ends with a hyphen";
        for (label) |ch| {
            if (!(std.ascii.isAlphanumeric(ch) or ch == '-')) return "the domain has a character that is not allowed";
        }
        tld = label;
    }
    if (tld.len < 2) return "the top-level domain is shorter than 2 letters";
    for (tld) |ch| if (!std.ascii.isAlphabetic(ch)) return "the top-level domain is not letters only";
    return null;
}

/// The address from the params, trimmed; sets ok:false "bad_address" (naming it) when invalid.
fn checkedAddress(c: *cms.Context) ?[]const u8 {
    const to = std.mem.trim(u8, c.paramString("to", ""), " \t\r\n");
    if (addressProblem(to)) |why| {
        c.setError("bad_address", badAddressMessage(c, to, why));
        return null;
    }
    return to;
}

fn badAddressMessage(c: *cms.Context, to: []const u8, why: []const u8) []const u8 {
    return c.fmt("\"{s}\" is not a valid e-mail address: {s}.", .{ clip(to, max_address), why });
}

// ---------------------------------------------------------------------------------------------
// Small helpers

/// At most `max` bytes of `text`, cut at a UTF-8 character boundary.
fn clip(text: []const u8, max: usize) []const u8 {
    if (text.len <= max) return text;
    var end = max;
    while (end > 0 and (text[end] & 0xC0) == 0x80) end -= 1;
    return text[0..end];
}

fn contextClient(c: *cms.Context) ?Value {
    const client = cms.field(c.context, "client") orelse return null;
    return if (client == .object) client else null;
}

fn callTime(c: *cms.Context) []const u8 {
    return cms.asString(cms.field(c.context, "now"), "");
}

fn agentName(c: *cms.Context) []const u8 {
    const agent = c.agent orelse return "Your travel agent";
    if (agent.name.len > 0) return agent.name;
    return "Your travel agent";
}

/// A mail in a sent list: {subject, to, at}.
fn sentEntry(subject: []const u8, to: []const u8, at: []const u8) Value {
    var map = std.json.ObjectMap.init(cms.allocator);
    map.put("subject", .{ .string = subject }) catch cms.abort(.memory_limit, "out of memory");
    map.put("to", .{ .string = to }) catch cms.abort(.memory_limit, "out of memory");
    map.put("at", .{ .string = at }) catch cms.abort(.memory_limit, "out of memory");
    return .{ .object = map };
}

/// Put `entry` first in the list at `key`, keeping at most `cap` entries: the new length, or
/// null when the list could not be read or written (then it is left as it was).
fn prependCapped(c: *cms.Context, scope: cms.Scope, entry: Value, cap: usize) ?usize {
    const stored = c.kvGet(sent_key, scope);
    if (!stored.ok) return null;
    const old = items(stored.result);
    var list = std.ArrayList(Value).initCapacity(c.allocator, cap) catch cms.abort(.memory_limit, "out of memory");
    list.appendAssumeCapacity(entry);
    for (old[0..@min(old.len, cap - 1)]) |v| list.appendAssumeCapacity(v);
    return if (c.kvSet(sent_key, list.items, scope).ok) list.items.len else null;
}

// ---------------------------------------------------------------------------------------------
// Actions

/// The client sidebar: a form to prepare a mail from a template and a booking, and the mails
/// sent to this client lately.
fn compose(c: *cms.Context) !void {
    const client = c.client orelse {
        c.alert("Open a client to write them a mail.", .info);
        c.setResult(.{ .bookings = 0, .sent = 0 });
        return;
    };

    // The address: the context's, else (an older host without it) the client record's.
    var email: ?[]const u8 = null;
    if (cms.field(contextClient(c), "email")) |e| {
        if (e == .string and e.string.len > 0) email = e.string;
    } else {
        const record = c.call("clients.get", .{ .id = client.id });
        if (record.ok) {
            const e = cms.asString(cms.field(record.result, "email"), "");
            if (e.len > 0) email = e;
        }
    }

    var booking_count: usize = 0;
    const listed = c.call("bookings.list", .{ .client_id = client.id, .limit = 20 });
    if (listed.ok) {
        const bookings = items(cms.field(listed.result, "items"));
        booking_count = bookings.len;
        var options = try std.ArrayList(cms.Option).initCapacity(c.allocator, bookings.len);
        for (bookings) |b| {
            const label = c.fmt("{s} \u{00b7} {s} \u{00b7} {s}", .{
                cms.asString(cms.field(b, "locator"), "?"),
                cms.asString(cms.field(b, "status"), "?"),
                cms.asString(cms.field(b, "summary"), ""),
            });
            options.appendAssumeCapacity(.{
                .value = c.fmt("{d}", .{cms.asInt(cms.field(b, "id"), 0)}),
                .label = clip(label, max_label),
            });
        }
        if (bookings.len == 0) c.text("No bookings yet: templates need a booking", .neutral);
        // A quoted booking most likely wants the quote; anything else the confirmation.
        const first_status = if (bookings.len > 0) cms.asString(cms.field(bookings[0], "status"), "") else "";
        const template = if (std.mem.eql(u8, first_status, "quoted")) "quote" else "confirmation";
        const first_booking: ?cms.Scalar = if (options.items.len > 0) .{ .string = options.items[0].value } else null;
        const address: ?cms.Scalar = if (email) |e| .{ .string = clip(e, max_address) } else null;
        c.form(.{
            .action = "preview",
            .title = if (client.name.len > 0) c.fmt("Mail to {s}", .{clip(client.name, max_label - 8)}) else "New mail",
            .fields = &.{
                .{ .name = "template", .label = "Template", .kind = .select, .value = .{ .string = template }, .required = true, .options = &template_options },
                .{ .name = "booking_id", .label = "Booking", .kind = .select, .value = first_booking, .required = true, .options = options.items },
                .{ .name = "to", .label = "To", .kind = .email, .value = address, .placeholder = "name@example.com", .required = true },
            },
            .buttons = &.{.{ .label = "Preview", .style = .primary }},
        });
    } else {
        c.alert("Bookings are unavailable right now, so no mail can be prepared. Try again in a minute.", .warning);
    }

    var sent_count: usize = 0;
    const sent = c.kvGet(sent_key, .client);
    if (sent.ok) {
        const mails = items(sent.result);
        sent_count = @min(mails.len, client_sent_cap);
        if (sent_count == 0) {
            c.text("No mail sent to this client yet.", .neutral);
        } else {
            var timeline = try std.ArrayList(cms.TimelineItem).initCapacity(c.allocator, sent_count);
            for (mails[0..sent_count]) |m| timeline.appendAssumeCapacity(.{
                .time = when(c, cms.asString(cms.field(m, "at"), "")),
                .title = clip(cms.asString(cms.field(m, "subject"), "(no subject)"), max_label),
                .text = c.fmt("to {s}", .{cms.asString(cms.field(m, "to"), "?")}),
                .tone = .info,
            });
            c.heading("Sent lately", 3);
            c.timeline(timeline.items);
        }
    } else {
        c.alert("The list of mails sent to this client is unavailable right now.", .info);
    }
    c.setResult(.{ .bookings = booking_count, .sent = sent_count });
}

/// The filled template, ready to edit and send.
fn preview(c: *cms.Context) !void {
    const to = checkedAddress(c) orelse return;
    const template = std.meta.stringToEnum(Template, c.paramString("template", "")) orelse
        return c.setError("bad_template", "template must be confirmation, itinerary or quote");
    const booking_id = c.paramInt("booking_id", 0);

    const got = c.call("bookings.get", .{ .id = booking_id });
    if (!got.ok) {
        if (std.mem.eql(u8, got.code, "not_found"))
            return c.setError("no_booking", c.fmt("There is no booking {d} for this agency.", .{booking_id}));
        c.alert("Bookings are unavailable right now, so the mail cannot be prepared. Try again in a minute.", .warning);
        c.setResult(.{ .available = false });
        return;
    }
    const booking = got.result;
    const booking_client = cms.asString(cms.field(booking, "client_name"), "");
    var client_name: []const u8 = if (c.client) |cl| cl.name else "";
    if (client_name.len == 0) client_name = booking_client;
    if (client_name.len == 0) client_name = "traveller";

    const mail = try fill(c, template, booking, .{ .client_name = client_name, .agent_name = agentName(c), .now = callTime(c) });

    // One version of the mail on screen, the one that is sent: the form itself, no copy beside it.
    c.keyValue(&.{.{ .key = "To", .value = to }});
    if (c.client) |cl| {
        const owner = cms.asInt(cms.field(booking, "client_id"), cl.id);
        if (owner != cl.id)
            c.alert(c.fmt("Booking {s} belongs to {s}, not to {s}.", .{
                cms.asString(cms.field(booking, "locator"), "?"), clip(booking_client, max_label), clip(cl.name, max_label),
            }), .warning);
    }
    c.form(.{
        .action = "send",
        .title = "This is the mail that will be sent: edit it here, then send it",
        .fields = &.{
            .{ .name = "template", .label = "Template", .kind = .hidden, .value = .{ .string = @tagName(template) } },
            .{ .name = "booking_id", .label = "Booking", .kind = .hidden, .value = .{ .integer = booking_id } },
            .{ .name = "to", .label = "To", .kind = .hidden, .value = .{ .string = to } },
            .{ .name = "subject", .label = "Subject", .kind = .text, .value = .{ .string = mail.subject }, .required = true },
            .{ .name = "body", .label = "Message", .kind = .textarea, .value = .{ .string = mail.body }, .required = true },
        },
        .buttons = &.{.{ .label = "Send this mail", .style = .primary }},
    });
    c.setResult(.{ .template = @tagName(template), .booking_id = booking_id, .to = to, .subject = mail.subject, .body = mail.body });
}

/// Send through the relay, then note the mail on the client's timeline and in the sent lists.
fn send(c: *cms.Context) !void {
    const to = checkedAddress(c) orelse return;
    const subject = std.mem.trim(u8, c.paramString("subject", ""), " \t");
    if (subject.len == 0) return c.setError("bad_subject", "The subject must not be empty.");
    if (std.mem.indexOfAny(u8, subject, "\r\n") != null) return c.setError("bad_subject", "The subject must be one line.");
    const body = c.paramString("body", "");
    if (std.mem.trim(u8, body, " \t\r\n").len == 0) return c.setError("bad_body", "The message must not be empty.");
    const template: ?[]const u8 = if (c.param("template")) |t| (if (t == .string and t.string.len > 0) t.string else null) else null;
    const booking_id: ?i64 = if (c.param("booking_id")) |b| cms.asInt(b, 0) else null;

    const answer = if (c.client) |client|
        c.call("mail.send", .{ .to = to, .subject = subject, .body = body, .client_id = client.id })
    else
        c.call("mail.send", .{ .to = to, .subject = subject, .body = body });
    if (!answer.ok) {
        if (std.mem.eql(u8, answer.code, "bad_address"))
            return c.setError("bad_address", badAddressMessage(c, to, "the mail relay refused it"));
        if (std.mem.eql(u8, answer.code, "unavailable") or std.mem.eql(u8, answer.code, "timeout"))
            return c.setError("mail_unavailable", relay_down);
        return c.setError(answer.code, c.fmt("The mail was refused: {s}", .{answer.message}));
    }
    const mail_id = cms.asInt(cms.field(answer.result, "id"), 0);
    const status = if (std.mem.eql(u8, cms.asString(cms.field(answer.result, "status"), ""), "sent")) "sent" else "queued";

    // Notes of the mail: the client's timeline and sent list, the agent's sent list.
    const entry = sentEntry(subject, to, callTime(c));
    var timeline: ?bool = null;
    var client_sent: ?usize = null;
    if (c.client) |client| {
        timeline = c.call("activity.add", .{
            .client_id = client.id,
            .kind = "mail",
            .text = c.fmt("Sent \"{s}\" to {s}", .{ subject, to }),
            .data = .{ .mail_id = mail_id, .template = template, .booking_id = booking_id },
        }).ok;
        client_sent = prependCapped(c, .client, entry, client_sent_cap);
    }
    const agent_sent = prependCapped(c, .agent, entry, agent_sent_cap);
    const noted = (timeline orelse true) and (c.client == null or client_sent != null) and agent_sent != null;
    c.log(.info, "mail {d} {s} to {s}", .{ mail_id, status, to });

    c.setResult(.{ .mail_id = mail_id, .status = status, .timeline = timeline, .client_sent = client_sent, .agent_sent = agent_sent });
    if (std.mem.eql(u8, status, "sent"))
        c.alert(c.fmt("Mail sent to {s}", .{to}), .success)
    else
        c.alert(c.fmt("Mail to {s} queued: it goes out through the mail relay", .{to}), .success);
    if (!noted) c.alert("The mail is on its way, but the client's timeline or the sent list could not be updated.", .warning);
    c.link("Outbox", "/outbox");
    if (c.client != null) c.form(.{ .action = "compose", .buttons = &.{.{ .label = "Write another", .style = .secondary }} });
}

/// The page: the agent's mails sent lately.
fn outbox(c: *cms.Context) !void {
    c.heading("Sent mail", 2);
    const sent = c.kvGet(sent_key, .agent);
    if (!sent.ok) {
        c.alert("Your sent mail list is unavailable right now. Try again in a minute.", .warning);
        c.setResult(.{ .count = 0 });
        return;
    }
    const mails = items(sent.result);
    const count = @min(mails.len, agent_sent_cap);
    if (count == 0) {
        c.text("You have not sent any mail yet.", .neutral);
    } else {
        var rows = try std.ArrayList([3][]const u8).initCapacity(c.allocator, count);
        for (mails[0..count]) |m| rows.appendAssumeCapacity(.{
            when(c, cms.asString(cms.field(m, "at"), "")),
            cms.asString(cms.field(m, "to"), ""),
            cms.asString(cms.field(m, "subject"), ""),
        });
        c.table(&.{ "When", "To", "Subject" }, rows.items);
    }
    c.link("Delivery status in the outbox", "/outbox");
    c.setResult(.{ .count = count });
}
