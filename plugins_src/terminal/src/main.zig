//! Terminal: a GDS-style cryptic command line (like Amadeus or Sabre) for travel agents.
//!
//! Actions: "screen" shows the terminal (the last screen lines and a command form); "command"
//! runs one cryptic entry, appends "> ENTRY" and the response to the screen and shows it again.
//! A bad entry is not an ok:false: agents read the GDS error on the screen ("INVALID FORMAT"),
//! and the result carries it as {"error": ...}. Host trouble is one line,
//! "SYSTEM UNAVAILABLE - RETRY", never a trap.
//!
//! State, in kv scope "agent" (every list capped, so nothing grows call after call):
//!   screen  the last 40 screen lines
//!   avail   the last availability display: {date, flights (<= 12)}, for SS to sell from
//!   pnr     the PNR in progress: {segments (<= 8), passengers (<= 9), contacts (<= 5)}
//!   last    the record on display: {locator, booking_id} of the last ER/ET or RT
//! An entry reads the keys it needs in the order pnr, avail, last, and the screen last of all.
const std = @import("std");
const cms = @import("cms");

const Value = std.json.Value;
const ObjectMap = std.json.ObjectMap;
const Array = std.json.Array;
const Lines = std.ArrayList([]const u8);

/// Action name -> handler. The names match [actions.*] in plugin.toml.
pub const actions = .{ .screen = screen, .command = command };

/// A panic ends the call as a "trap" fault that carries the panic message.
pub const panic = cms.panic;

comptime {
    cms.plugin(@This());
}

const screen_lines = 40;
const line_width = 80;
const max_flights = 12;
const max_segments = 8;
const max_names = 9;
const max_contacts = 5;
const max_contact_len = 70;
const max_message_len = 60;
const max_shown = 20; // names or segments of a retrieved booking

const system_unavailable = "SYSTEM UNAVAILABLE - RETRY";
const invalid_format = "INVALID FORMAT";
const check_date = "CHECK DATE";
const check_city_pair = "CHECK CITY PAIR";
const class_not_available = "CLASS NOT AVAILABLE";
const no_pnr = "NO PNR";
const no_record = "NO RECORD";
const ready = "TERMINAL READY - ENTER HE FOR HELP";

const cabins = "FCWY"; // first, business, premium economy, economy: the display order

const help_lines = [_][]const u8{
    "COMMANDS - EXAMPLES",
    "AN20DECJFKLHR        AVAILABILITY 20DEC JFK-LHR (AN20DECJFKLHR/C: ONE CABIN)",
    "SS1Y1                SELL 1 SEAT IN Y FROM AVAILABILITY LINE 1",
    "NM1SMITH/JOHN MR     NAME (NM2SMITH/JOHN MR/JANE MRS, TITLE CHD FOR A CHILD)",
    "AP LON 020 7946 0000 CONTACT ELEMENT",
    "*R                   DISPLAY THE PNR IN PROGRESS",
    "ER / ET              END TRANSACTION (ER REDISPLAYS THE PNR)",
    "XI / X1              CANCEL THE ITINERARY / SEGMENT 1",
    "RTABC123             RETRIEVE A BOOKING BY RECORD LOCATOR",
    "IG                   IGNORE THE PNR IN PROGRESS",
    "HE                   THIS HELP",
};

fn oom() noreturn {
    cms.abort(.memory_limit, "out of memory");
}

// ---------------------------------------------------------------------------------------------
// Actions

/// The terminal: the stored screen and the command line.
fn screen(c: *cms.Context) void {
    var lines = Lines.init(c.allocator);
    const stored = c.kvGet("screen", .agent);
    if (stored.ok) loadScreen(&lines, stored.result) else append(&lines, system_unavailable);
    if (lines.items.len == 0) append(&lines, ready);
    c.setResult(.{ .lines = lines.items });
    show(c, lines.items);
}

/// One cryptic entry: run it, keep the screen, answer its lines and the terminal again.
fn command(c: *cms.Context) void {
    const entry = std.mem.trim(u8, gds(c.paramString("command", "")), " ");
    var t: Term = .{ .c = c, .lines = Lines.init(c.allocator), .result = ObjectMap.init(c.allocator) };
    t.put("lines", .null); // first key of the result; filled in below
    run(&t, entry);
    if (t.lines.items.len == 0) t.say(invalid_format); // every entry answers something
    c.log(.info, "{s}: {s} -> {s}", .{ if (c.agent) |a| a.username else "?", clip(entry), t.lines.items[0] });

    var responses = Array.init(c.allocator);
    for (t.lines.items) |line| responses.append(.{ .string = line }) catch oom();
    t.put("lines", .{ .array = responses });
    c.setResult(Value{ .object = t.result });

    // The screen: what it showed, then this entry and its answer, capped to the last 40 lines.
    // When the stored screen cannot be read it is left alone (not overwritten by this entry).
    var lines = Lines.init(c.allocator);
    const stored = c.kvGet("screen", .agent);
    if (stored.ok) loadScreen(&lines, stored.result);
    append(&lines, clean(c.fmt("> {s}", .{entry})));
    lines.appendSlice(t.lines.items) catch oom();
    const kept = lines.items[lines.items.len -| screen_lines..];
    if (stored.ok) _ = c.kvSet("screen", kept, .agent); // a failed write costs the history only
    show(c, kept);
    // ER, RT, XI: the booking itself is one click away.
    const booking_id = cms.asInt(t.result.get("booking_id"), 0);
    if (booking_id > 0) {
        const locator = cms.asString(t.result.get("locator"), "");
        c.link(c.fmt("Open booking {s}", .{locator}), c.fmt("/bookings/{d}", .{booking_id}));
    }
}

fn show(c: *cms.Context, lines: []const []const u8) void {
    c.terminal(lines);
    c.form(.{
        .action = "command",
        .fields = &.{.{ .name = "command", .label = "Command", .kind = .text, .placeholder = "HE for help", .required = true }},
        .buttons = &.{.{ .label = "Enter", .style = .primary }},
    });
}

/// The last 40 string lines of a stored screen (anything else stored there is ignored).
fn loadScreen(lines: *Lines, stored: Value) void {
    if (stored != .array) return;
    const items = stored.array.items;
    for (items[items.len -| screen_lines..]) |item| {
        if (item == .string) append(lines, clean(item.string));
    }
}

fn append(lines: *Lines, line: []const u8) void {
    lines.append(line) catch oom();
}

// ---------------------------------------------------------------------------------------------
// One entry's answer

const Term = struct {
    c: *cms.Context,
    lines: Lines,
    result: ObjectMap,

    fn say(t: *Term, line: []const u8) void {
        append(&t.lines, clean(line));
    }

    fn sayf(t: *Term, comptime format: []const u8, args: anytype) void {
        t.say(t.c.fmt(format, args));
    }

    /// A GDS error: the line on the screen and {"error": line} in the result.
    fn refuse(t: *Term, message: []const u8) void {
        const line = clean(message);
        append(&t.lines, line);
        t.put("error", .{ .string = line });
    }

    fn put(t: *Term, key: []const u8, value: Value) void {
        t.result.put(key, value) catch oom();
    }

    fn putInt(t: *Term, key: []const u8, n: anytype) void {
        t.put(key, .{ .integer = @intCast(n) });
    }

    fn putText(t: *Term, key: []const u8, s: []const u8) void {
        t.put(key, .{ .string = s });
    }

    /// A host error answer: host trouble asks for a retry; an op's refusal is shown, cut short.
    /// An "invalid" answer leads with a sentence for forms ("The booking was not saved: please
    /// check the marked fields. segments-1-cabin: Choose a cabin."): the part after it is shown.
    fn trouble(t: *Term, answer: cms.Answer) void {
        if (hostTrouble(answer.code)) return t.refuse(system_unavailable);
        var message = answer.message;
        if (std.mem.eql(u8, answer.code, "invalid")) {
            if (std.mem.indexOf(u8, message, ". ")) |dot| {
                const detail = std.mem.trim(u8, message[dot + 2 ..], " ");
                if (detail.len > 0) message = detail;
            }
        }
        const why = gds(if (message.len > 0) message else answer.code);
        t.refuse(t.c.fmt("UNABLE TO PROCESS - {s}", .{why[0..@min(why.len, max_message_len)]}));
    }

    /// A kv value (JSON null when unset), or null after showing the trouble.
    fn load(t: *Term, key: []const u8) ?Value {
        const answer = t.c.kvGet(key, .agent);
        if (!answer.ok) {
            t.trouble(answer);
            return null;
        }
        return answer.result;
    }

    fn loadPnr(t: *Term) ?Pnr {
        return Pnr.from(t.load("pnr") orelse return null);
    }

    /// Store the PNR in progress; false (after showing the trouble) when it was not stored.
    fn savePnr(t: *Term, pnr: Pnr) bool {
        const answer = t.c.kvSet("pnr", pnr.value(), .agent);
        if (!answer.ok) t.trouble(answer);
        return answer.ok;
    }

    fn saveLast(t: *Term, locator: []const u8, booking_id: i64) bool {
        return t.c.kvSet("last", .{ .locator = locator, .booking_id = booking_id }, .agent).ok;
    }
};

/// Codes that mean the host (not the request) is in trouble.
fn hostTrouble(code: []const u8) bool {
    const codes = [_][]const u8{ "unavailable", "timeout", "unknown_op", "bad_answer", "bad_request", "too_large" };
    for (codes) |known| if (std.mem.eql(u8, code, known)) return true;
    return false;
}

fn run(t: *Term, entry: []const u8) void {
    const compact = withoutSpaces(entry);
    const eql = std.mem.eql;
    const starts = std.mem.startsWith;
    if (compact.len == 0) return t.refuse(invalid_format);
    if (eql(u8, compact, "HE") or eql(u8, compact, "HELP")) return help(t);
    if (eql(u8, compact, "*R")) return display(t);
    if (eql(u8, compact, "ER")) return end(t, true);
    if (eql(u8, compact, "ET")) return end(t, false);
    if (eql(u8, compact, "IG")) return ignore(t);
    if (eql(u8, compact, "XI")) return cancelItinerary(t);
    if (starts(u8, compact, "XE")) return cancelSegment(t, compact[2..]);
    if (compact[0] == 'X') return cancelSegment(t, compact[1..]);
    if (starts(u8, compact, "AN")) return availability(t, compact[2..]);
    if (starts(u8, compact, "SS")) return sell(t, compact[2..]);
    if (starts(u8, entry, "NM")) return names(t, entry[2..]);
    if (starts(u8, entry, "AP")) return contact(t, entry[2..]);
    if (starts(u8, compact, "RT")) return retrieve(t, compact[2..]);
    t.refuse(invalid_format);
}

// ---------------------------------------------------------------------------------------------
// Commands

fn help(t: *Term) void {
    for (help_lines) |line| t.say(line);
}

/// AN<DDMMM><ORIG><DEST>[/<cabin>]: availability, saved for SS.
fn availability(t: *Term, spec: []const u8) void {
    if (spec.len == 0) return t.refuse(invalid_format);
    var i: usize = 0;
    var day: u32 = 0;
    while (i < spec.len and i < 2 and std.ascii.isDigit(spec[i])) : (i += 1) day = day * 10 + (spec[i] - '0');
    if (i == 0 or spec.len < i + 3) return t.refuse(check_date);
    const month = monthNumber(spec[i..][0..3]) orelse return t.refuse(check_date);
    const rest = spec[i + 3 ..];
    const slash = std.mem.indexOfScalar(u8, rest, '/');
    const pair = rest[0 .. slash orelse rest.len];
    if (pair.len != 6 or !allLetters(pair) or std.mem.eql(u8, pair[0..3], pair[3..6]))
        return t.refuse(check_city_pair);
    var cabin: ?[]const u8 = null;
    if (slash) |s| {
        const wanted = rest[s + 1 ..];
        if (wanted.len != 1 or std.mem.indexOfScalar(u8, cabins, wanted[0]) == null) return t.refuse(invalid_format);
        cabin = wanted;
    }
    const today = Date.parse(cms.asString(cms.field(t.c.context, "now"), "")) orelse
        return t.refuse("CHECK DATE - NO SYSTEM DATE");
    const date = Date.next(today, day, month) orelse return t.refuse(check_date);
    const iso = date.iso(t.c);
    const origin = pair[0..3];
    const destination = pair[3..6];

    const answer = if (cabin) |wanted|
        t.c.call("inventory.search", .{ .origin = origin, .destination = destination, .date = iso, .cabin = wanted })
    else
        t.c.call("inventory.search", .{ .origin = origin, .destination = destination, .date = iso });
    if (!answer.ok) return t.trouble(answer);

    var flights = Array.init(t.c.allocator);
    for (arrayOf(cms.field(answer.result, "flights"))) |flight| {
        if (flights.items.len == max_flights) break;
        if (flight == .object) flights.append(keptFlight(flight, iso)) catch oom();
    }
    var saved = ObjectMap.init(t.c.allocator);
    saved.put("date", .{ .string = iso }) catch oom();
    saved.put("flights", .{ .array = flights }) catch oom();
    const stored = t.c.kvSet("avail", Value{ .object = saved }, .agent);

    t.putInt("flights", flights.items.len);
    if (flights.items.len == 0) {
        t.say("NO AVAILABILITY");
    } else {
        t.sayf("** AVAILABILITY ** {s} {s} {s} {s}{s}{s}", .{ origin, destination, date.weekday(), date.ddmmmyy(t.c), if (cabin != null) " /" else "", cabin orelse "" });
        for (flights.items, 1..) |f, n| {
            t.sayf("{d: >2} {s: <2} {s: <4} {s} {s} {s} {s}  F{d} C{d} W{d} Y{d}", .{
                n,                          text(f, "carrier"),      text(f, "flight_number"),
                text(f, "origin"),          text(f, "destination"),  hhmm(t.c, text(f, "departs")),
                hhmm(t.c, text(f, "arrives")), shownSeats(f, 'F'), shownSeats(f, 'C'),
                shownSeats(f, 'W'),         shownSeats(f, 'Y'),
            });
        }
    }
    if (!stored.ok) t.say("AVAILABILITY NOT SAVED - RETRY BEFORE SELLING");
}

/// What SS needs of an inventory flight: its identity, times, seats and fares per cabin.
fn keptFlight(flight: Value, date: []const u8) Value {
    var f = ObjectMap.init(cms.allocator);
    for ([_][]const u8{ "carrier", "flight_number", "origin", "destination", "departs", "arrives" }) |key|
        f.put(key, .{ .string = shortCode(text(flight, key)) }) catch oom();
    const own_date = shortCode(text(flight, "date"));
    f.put("date", .{ .string = if (own_date.len > 0) own_date else date }) catch oom();
    var seats = ObjectMap.init(cms.allocator);
    var fares = ObjectMap.init(cms.allocator);
    for (cabins, 0..) |_, i| {
        const cab = cabins[i .. i + 1];
        seats.put(cab, .{ .integer = @max(0, cms.asInt(cms.field(cms.field(flight, "seats"), cab), 0)) }) catch oom();
        if (cms.field(cms.field(flight, "fares"), cab)) |fare| if (isNumber(fare)) fares.put(cab, fare) catch oom();
    }
    f.put("seats", .{ .object = seats }) catch oom();
    f.put("fares", .{ .object = fares }) catch oom();
    return .{ .object = f };
}

fn seatsIn(flight: Value, cabin: u8) i64 {
    return cms.asInt(cms.field(cms.field(flight, "seats"), &[_]u8{cabin}), 0);
}

fn shownSeats(flight: Value, cabin: u8) i64 {
    return std.math.clamp(seatsIn(flight, cabin), 0, 9);
}

/// SS<n><cabin><line>: sell n seats in a cabin of an availability line.
fn sell(t: *Term, spec: []const u8) void {
    var i: usize = 0;
    const seats = digits(spec, &i) orelse return t.refuse(invalid_format);
    if (i >= spec.len or !std.ascii.isAlphabetic(spec[i])) return t.refuse(invalid_format);
    const cabin = spec[i];
    i += 1;
    const line = digits(spec, &i) orelse return t.refuse(invalid_format);
    if (i != spec.len) return t.refuse(invalid_format);
    if (seats < 1 or seats > 9) return t.refuse("CHECK NUMBER OF SEATS");
    if (std.mem.indexOfScalar(u8, cabins, cabin) == null) return t.refuse(class_not_available);

    var pnr = t.loadPnr() orelse return;
    const avail = t.load("avail") orelse return;
    const flights = arrayOf(cms.field(avail, "flights"));
    if (line < 1 or line > flights.len) return t.refuse("CHECK LINE NUMBER");
    const flight = flights[line - 1];
    if (flight != .object or seatsIn(flight, cabin) < seats) return t.refuse(class_not_available);
    if (pnr.segments.items.len >= max_segments) return t.refuse("MAXIMUM 8 SEGMENTS");

    var seg = ObjectMap.init(t.c.allocator);
    for ([_][]const u8{ "carrier", "flight_number", "origin", "destination", "date", "departs", "arrives" }) |key|
        seg.put(key, .{ .string = text(flight, key) }) catch oom();
    seg.put("cabin", .{ .string = t.c.fmt("{c}", .{cabin}) }) catch oom();
    if (cms.field(cms.field(flight, "fares"), &[_]u8{cabin})) |fare| if (isNumber(fare)) seg.put("fare", fare) catch oom();
    seg.put("seats", .{ .integer = seats }) catch oom();
    pnr.segments.append(.{ .object = seg }) catch oom();
    if (!t.savePnr(pnr)) return;

    const n = pnr.segments.items.len;
    t.say(segmentLine(t.c, n, .{ .object = seg }, true));
    t.putInt("segment", n);
    t.putInt("segments", n);
}

/// NM<n><SURNAME>/<FIRST> [TITLE][/<FIRST> [TITLE]...]: names.
fn names(t: *Term, spec: []const u8) void {
    const body = std.mem.trim(u8, spec, " ");
    var i: usize = 0;
    const count = digits(body, &i) orelse return t.refuse(invalid_format);
    var parts = std.mem.splitScalar(u8, body[i..], '/');
    const surname = std.mem.trim(u8, parts.first(), " ");
    if (!validName(surname)) return t.refuse(invalid_format);
    var added = Array.init(t.c.allocator);
    while (parts.next()) |part| {
        if (added.items.len == max_names) return t.refuse(invalid_format);
        added.append(passenger(t.c, surname, part) orelse return t.refuse(invalid_format)) catch oom();
    }
    if (count < 1 or count != added.items.len) return t.refuse(invalid_format);

    var pnr = t.loadPnr() orelse return;
    if (pnr.passengers.items.len + added.items.len > max_names) return t.refuse("MAXIMUM 9 NAMES");
    const first = pnr.passengers.items.len + 1;
    pnr.passengers.appendSlice(added.items) catch oom();
    if (!t.savePnr(pnr)) return;
    for (added.items, first..) |p, n| t.say(nameLine(t.c, n, p));
    t.putInt("passengers", pnr.passengers.items.len);
}

const titles = [_][]const u8{ "MR", "MRS", "MS", "MISS", "MSTR", "DR", "CHD", "(CHD)" };

/// "JOHN MR" -> {first_name JOHN, last_name, pax_type ADT, title MR}; null when malformed.
fn passenger(c: *cms.Context, surname: []const u8, part: []const u8) ?Value {
    var words: [8][]const u8 = undefined;
    var n: usize = 0;
    var it = std.mem.tokenizeScalar(u8, part, ' ');
    while (it.next()) |word| {
        if (n == words.len) return null;
        words[n] = word;
        n += 1;
    }
    var title: []const u8 = "";
    if (n >= 2) for (titles) |known| {
        if (std.mem.eql(u8, words[n - 1], known)) {
            title = if (known[0] == '(') "CHD" else known;
            n -= 1;
            break;
        }
    };
    if (n == 0) return null;
    const first_name = std.mem.join(c.allocator, " ", words[0..n]) catch oom();
    if (!validName(first_name)) return null;
    var p = ObjectMap.init(c.allocator);
    p.put("first_name", .{ .string = first_name }) catch oom();
    p.put("last_name", .{ .string = surname }) catch oom();
    p.put("pax_type", .{ .string = if (std.mem.eql(u8, title, "CHD")) "CHD" else "ADT" }) catch oom();
    if (title.len > 0) p.put("title", .{ .string = title }) catch oom();
    return .{ .object = p };
}

/// Letters, with spaces, hyphens and apostrophes inside; 1..30 characters.
fn validName(name: []const u8) bool {
    if (name.len == 0 or name.len > 30 or !std.ascii.isAlphabetic(name[0])) return false;
    for (name) |ch| if (!std.ascii.isAlphabetic(ch) and ch != ' ' and ch != '-' and ch != '\'') return false;
    return true;
}

/// AP <free text>: a contact element.
fn contact(t: *Term, spec: []const u8) void {
    var body = std.mem.trim(u8, spec, " ");
    if (body.len == 0) return t.refuse(invalid_format);
    body = body[0..@min(body.len, max_contact_len)];
    var pnr = t.loadPnr() orelse return;
    if (pnr.contacts.items.len >= max_contacts) return t.refuse("MAXIMUM 5 CONTACTS");
    pnr.contacts.append(.{ .string = body }) catch oom();
    if (!t.savePnr(pnr)) return;
    t.sayf("{d: >2} AP {s}", .{ pnr.contacts.items.len, body });
    t.putInt("contacts", pnr.contacts.items.len);
}

/// *R: the PNR in progress, or the record locator of the last one.
fn display(t: *Term) void {
    const pnr = t.loadPnr() orelse return;
    if (!pnr.isEmpty()) {
        pnrLines(t, pnr);
        t.putInt("passengers", pnr.passengers.items.len);
        t.putInt("segments", pnr.segments.items.len);
        t.putInt("contacts", pnr.contacts.items.len);
        return;
    }
    const last = t.load("last") orelse return;
    const locator = text(last, "locator");
    if (locator.len == 0) return t.refuse(no_pnr);
    t.sayf("NO PNR IN PROGRESS - LAST REC LOC {s}", .{locator});
    t.putText("locator", locator);
}

fn pnrLines(t: *Term, pnr: Pnr) void {
    for (pnr.passengers.items, 1..) |p, n| t.say(nameLine(t.c, n, p));
    for (pnr.segments.items, 1..) |s, n| t.say(segmentLine(t.c, n, s, true));
    for (pnr.contacts.items, 1..) |a, n| t.sayf("{d: >2} AP {s}", .{ n, cms.asString(a, "") });
}

/// ER / ET: end the transaction: the PNR becomes a held booking of the open client.
fn end(t: *Term, redisplay: bool) void {
    const pnr = t.loadPnr() orelse return;
    if (pnr.passengers.items.len == 0) return t.refuse("NEED NAME");
    if (pnr.segments.items.len == 0) return t.refuse("NEED ITINERARY");
    const client = t.c.client orelse return t.refuse("NEED CLIENT - OPEN A CLIENT RECORD");
    if (client.id <= 0) return t.refuse("NEED CLIENT - OPEN A CLIENT RECORD");
    const a = t.c.allocator;

    var passengers = Array.init(a);
    for (pnr.passengers.items) |p| {
        var o = ObjectMap.init(a);
        for ([_][]const u8{ "first_name", "last_name", "pax_type" }) |key| o.put(key, .{ .string = text(p, key) }) catch oom();
        passengers.append(.{ .object = o }) catch oom();
    }
    var segments = Array.init(a);
    for (pnr.segments.items) |s| {
        var o = ObjectMap.init(a);
        for ([_][]const u8{ "carrier", "flight_number", "origin", "destination", "date", "cabin" }) |key|
            o.put(key, .{ .string = text(s, key) }) catch oom();
        if (cms.field(s, "fare")) |fare| if (isNumber(fare)) o.put("fare", fare) catch oom();
        segments.append(.{ .object = o }) catch oom();
    }
    var args = ObjectMap.init(a);
    args.put("client_id", .{ .integer = client.id }) catch oom();
    args.put("passengers", .{ .array = passengers }) catch oom();
    args.put("segments", .{ .array = segments }) catch oom();
    args.put("status", .{ .string = "held" }) catch oom();
    if (pnr.contacts.items.len > 0) {
        var notes = std.ArrayList(u8).init(a);
        for (pnr.contacts.items, 0..) |contact_element, n| {
            if (n > 0) notes.appendSlice("; ") catch oom();
            notes.appendSlice(cms.asString(contact_element, "")) catch oom();
        }
        args.put("notes", .{ .string = notes.items }) catch oom();
    }

    const answer = t.c.call("bookings.create", Value{ .object = args });
    if (!answer.ok) return t.trouble(answer); // the PNR stays, to fix and end again
    const booking = answer.result;
    const locator = text(booking, "locator");
    const id = cms.asInt(cms.field(booking, "id"), 0);
    const cleared = t.c.kvDelete("pnr", .agent);
    _ = t.saveLast(locator, id);

    t.sayf("END OF TRANSACTION - REC LOC {s}", .{locator});
    if (redisplay) {
        t.sayf("RLOC {s}  {s}  {s}", .{ locator, orText(text(booking, "status"), "held"), orText(text(booking, "client_name"), client.name) });
        pnrLines(t, pnr);
    }
    if (!cleared.ok) t.say("PNR NOT CLEARED - ENTER IG BEFORE THE NEXT PNR");
    t.putText("locator", locator);
    t.putInt("booking_id", id);
}

/// XI: cancel the itinerary of the PNR in progress, or cancel the record on display.
fn cancelItinerary(t: *Term) void {
    var pnr = t.loadPnr() orelse return;
    if (!pnr.isEmpty()) {
        const n = pnr.segments.items.len;
        if (n == 0) return t.refuse("NO ITINERARY");
        pnr.segments.clearRetainingCapacity();
        if (!t.savePnr(pnr)) return;
        t.say("ITINERARY CANCELLED");
        t.putInt("cancelled", n);
        return;
    }
    const last = t.load("last") orelse return;
    const id = cms.asInt(cms.field(last, "booking_id"), 0);
    if (id <= 0) return t.refuse(no_pnr);
    const answer = t.c.call("bookings.cancel", .{ .id = id });
    if (!answer.ok) {
        if (std.mem.eql(u8, answer.code, "not_found")) return t.refuse(no_record);
        return t.trouble(answer);
    }
    const locator = orText(text(answer.result, "locator"), text(last, "locator"));
    t.sayf("ITINERARY CANCELLED - {s}", .{locator});
    t.putText("locator", locator);
    t.putInt("booking_id", id);
    t.putText("status", orText(text(answer.result, "status"), "cancelled"));
}

/// X<n> (or XE<n>): cancel segment n of the PNR in progress.
fn cancelSegment(t: *Term, spec: []const u8) void {
    var i: usize = 0;
    const n = digits(spec, &i) orelse return t.refuse(invalid_format);
    if (i != spec.len) return t.refuse(invalid_format);
    var pnr = t.loadPnr() orelse return;
    if (n < 1 or n > pnr.segments.items.len) return t.refuse("CHECK SEGMENT NUMBER");
    _ = pnr.segments.orderedRemove(n - 1);
    if (!t.savePnr(pnr)) return;
    t.sayf("SEGMENT {d} CANCELLED", .{n});
    for (pnr.segments.items, 1..) |s, k| t.say(segmentLine(t.c, k, s, true));
    t.putInt("segments", pnr.segments.items.len);
}

/// RT<LOCATOR>: retrieve a booking (RT alone: the record on display again).
fn retrieve(t: *Term, spec: []const u8) void {
    var locator = spec;
    if (locator.len == 0) {
        const last = t.load("last") orelse return;
        locator = text(last, "locator");
        if (locator.len == 0) return t.refuse(no_pnr);
    } else if (locator.len > 6 or !allAlphanumeric(locator)) { // locators have 6 characters
        return t.refuse(invalid_format);
    }
    const answer = t.c.call("bookings.get", .{ .locator = locator });
    if (!answer.ok) {
        if (std.mem.eql(u8, answer.code, "not_found")) return t.refuse(no_record);
        return t.trouble(answer);
    }
    const booking = answer.result;
    const found = orText(text(booking, "locator"), locator);
    const id = cms.asInt(cms.field(booking, "id"), 0);
    bookingLines(t, booking, found);
    if (id > 0) _ = t.saveLast(found, id); // XI then cancels it, as in a GDS
    t.putText("locator", found);
    t.putInt("booking_id", id);
    t.putText("status", text(booking, "status"));
}

fn bookingLines(t: *Term, booking: Value, locator: []const u8) void {
    const status = text(booking, "status");
    t.sayf("RLOC {s}  {s}  {s}", .{ locator, status, text(booking, "client_name") });
    const passengers = arrayOf(cms.field(booking, "passengers"));
    for (passengers[0..@min(passengers.len, max_shown)], 1..) |p, n| {
        const pax = text(p, "pax_type");
        const child = pax.len > 0 and !std.mem.eql(u8, pax, "ADT");
        t.sayf("{d: >2}.{s}/{s}{s}{s}{s}", .{ n, text(p, "last_name"), text(p, "first_name"), if (child) " (" else "", if (child) pax else "", if (child) ")" else "" });
    }
    const held = if (std.mem.eql(u8, status, "cancelled")) "HX" else "HK";
    const segments = arrayOf(cms.field(booking, "segments"));
    for (segments[0..@min(segments.len, max_shown)], 1..) |s, n| {
        t.sayf("{d: >2} {s} {s} {s} {s} {s}{s} {s}{d}", .{ n, text(s, "carrier"), text(s, "flight_number"), text(s, "cabin"), ddmmm(t.c, text(s, "date")), text(s, "origin"), text(s, "destination"), held, @min(passengers.len, 9) });
    }
    const notes = gds(text(booking, "notes"));
    var at: usize = 0;
    var shown: usize = 0;
    while (at < notes.len and shown < 3) : (shown += 1) {
        const piece = notes[at..@min(notes.len, at + max_contact_len)];
        t.sayf(" RM {s}", .{piece});
        at += piece.len;
    }
}

/// IG: discard the PNR in progress and the record on display.
fn ignore(t: *Term) void {
    const pnr = t.c.kvDelete("pnr", .agent);
    if (!pnr.ok) return t.trouble(pnr);
    const last = t.c.kvDelete("last", .agent);
    if (!last.ok) return t.trouble(last);
    t.say("IGNORED");
}

// ---------------------------------------------------------------------------------------------
// The PNR in progress

const Pnr = struct {
    segments: Array,
    passengers: Array,
    contacts: Array,

    /// From its stored form; anything malformed is left out, and every list is capped.
    fn from(stored: Value) Pnr {
        return .{
            .segments = keptItems(cms.field(stored, "segments"), .object, max_segments),
            .passengers = keptItems(cms.field(stored, "passengers"), .object, max_names),
            .contacts = keptItems(cms.field(stored, "contacts"), .string, max_contacts),
        };
    }

    fn isEmpty(p: Pnr) bool {
        return p.segments.items.len == 0 and p.passengers.items.len == 0 and p.contacts.items.len == 0;
    }

    fn value(p: Pnr) Value {
        var o = ObjectMap.init(cms.allocator);
        o.put("segments", .{ .array = p.segments }) catch oom();
        o.put("passengers", .{ .array = p.passengers }) catch oom();
        o.put("contacts", .{ .array = p.contacts }) catch oom();
        return .{ .object = o };
    }
};

fn keptItems(list: ?Value, comptime kind: std.meta.Tag(Value), cap: usize) Array {
    var out = Array.init(cms.allocator);
    for (arrayOf(list)) |item| {
        if (out.items.len == cap) break;
        if (item == kind) out.append(item) catch oom();
    }
    return out;
}

/// " 1 BA 178 Y 20DEC JFKLHR HK1 0830 2040"
fn segmentLine(c: *cms.Context, n: usize, s: Value, times: bool) []const u8 {
    const seats = std.math.clamp(cms.asInt(cms.field(s, "seats"), 1), 1, 9);
    const head = c.fmt("{d: >2} {s} {s} {s} {s} {s}{s} HK{d}", .{ n, text(s, "carrier"), text(s, "flight_number"), text(s, "cabin"), ddmmm(c, text(s, "date")), text(s, "origin"), text(s, "destination"), seats });
    if (!times) return head;
    return c.fmt("{s} {s} {s}", .{ head, hhmm(c, text(s, "departs")), hhmm(c, text(s, "arrives")) });
}

/// " 1.SMITH/JOHN MR"
fn nameLine(c: *cms.Context, n: usize, p: Value) []const u8 {
    const title = text(p, "title");
    return c.fmt("{d: >2}.{s}/{s}{s}{s}", .{ n, text(p, "last_name"), text(p, "first_name"), if (title.len > 0) " " else "", title });
}

// ---------------------------------------------------------------------------------------------
// Dates: DDMMM means the next such date on or after the call's "now" (plugins have no clock).

const month_names = [_][]const u8{ "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC" };
const weekdays = [_][]const u8{ "MO", "TU", "WE", "TH", "FR", "SA", "SU" };

fn monthNumber(name: []const u8) ?u8 {
    for (month_names, 1..) |known, m| if (std.mem.eql(u8, name, known)) return @intCast(m);
    return null;
}

const Date = struct {
    y: i32,
    m: u8,
    d: u8,

    /// "2026-11-24T14:05:09Z" (or any text starting YYYY-MM-DD).
    fn parse(s: []const u8) ?Date {
        if (s.len < 10 or s[4] != '-' or s[7] != '-') return null;
        const y = std.fmt.parseInt(i32, s[0..4], 10) catch return null;
        const m = std.fmt.parseInt(u8, s[5..7], 10) catch return null;
        const d = std.fmt.parseInt(u8, s[8..10], 10) catch return null;
        if (m < 1 or m > 12 or d < 1 or d > daysIn(y, m)) return null;
        return .{ .y = y, .m = m, .d = d };
    }

    /// The first day/month on or after `today` (a 29FEB may be years away); null if none.
    fn next(today: Date, day: u32, month: u8) ?Date {
        if (day < 1 or day > 31) return null;
        var y = today.y;
        while (y <= today.y + 8) : (y += 1) {
            if (day > daysIn(y, month)) continue;
            const date: Date = .{ .y = y, .m = month, .d = @intCast(day) };
            if (!date.before(today)) return date;
        }
        return null;
    }

    fn before(a: Date, b: Date) bool {
        if (a.y != b.y) return a.y < b.y;
        if (a.m != b.m) return a.m < b.m;
        return a.d < b.d;
    }

    fn iso(date: Date, c: *cms.Context) []const u8 {
        return c.fmt("{d:0>4}-{d:0>2}-{d:0>2}", .{ @as(u32, @intCast(date.y)), date.m, date.d });
    }

    fn ddmmmyy(date: Date, c: *cms.Context) []const u8 {
        return c.fmt("{d:0>2}{s}{d:0>2}", .{ date.d, month_names[date.m - 1], @as(u32, @intCast(@mod(date.y, 100))) });
    }

    /// Days since 1970-01-01 (Howard Hinnant's days_from_civil), then the weekday.
    fn weekday(date: Date) []const u8 {
        const y: i64 = if (date.m <= 2) date.y - 1 else date.y;
        const era = @divFloor(y, 400);
        const yoe = y - era * 400;
        const mp: i64 = @mod(@as(i64, date.m) + 9, 12);
        const doy = @divFloor(153 * mp + 2, 5) + date.d - 1;
        const doe = yoe * 365 + @divFloor(yoe, 4) - @divFloor(yoe, 100) + doy;
        const days = era * 146097 + doe - 719468;
        return weekdays[@intCast(@mod(days + 3, 7))]; // 1970-01-01 was a Thursday
    }
};

fn daysIn(y: i32, m: u8) u8 {
    const lengths = [_]u8{ 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (m == 2 and (@mod(y, 4) == 0 and (@mod(y, 100) != 0 or @mod(y, 400) == 0))) return 29;
    return lengths[m - 1];
}

/// "2026-12-20" -> "20DEC" (anything else as it is).
fn ddmmm(c: *cms.Context, iso: []const u8) []const u8 {
    const date = Date.parse(iso) orelse return iso;
    return c.fmt("{d:0>2}{s}", .{ date.d, month_names[date.m - 1] });
}

/// "08:30" -> "0830".
fn hhmm(c: *cms.Context, time: []const u8) []const u8 {
    var out = std.ArrayList(u8).init(c.allocator);
    for (time) |ch| {
        if (out.items.len == 4) break;
        if (ch != ':') out.append(ch) catch oom();
    }
    return out.items;
}

// ---------------------------------------------------------------------------------------------
// Text

/// GDS text: ASCII upper case; control characters become spaces, other characters '?'.
fn gds(s: []const u8) []const u8 {
    var plain = true;
    for (s) |ch| if (ch < 0x20 or ch >= 0x7f or std.ascii.isLower(ch)) {
        plain = false;
        break;
    };
    if (plain) return s;
    var out = std.ArrayList(u8).initCapacity(cms.allocator, s.len) catch oom();
    for (s) |ch| {
        if (ch >= 0x80 and ch < 0xc0) continue; // inside a UTF-8 sequence: its lead byte gave '?'
        out.appendAssumeCapacity(if (ch >= 0x80 or ch == 0x7f) '?' else if (ch < 0x20) ' ' else std.ascii.toUpper(ch));
    }
    return out.items;
}

/// A code or time of an inventory flight ("BA", "178", "08:30", "2026-12-20"): GDS text, at most
/// 10 characters, so that 12 stored flights stay far below the kv value quota.
fn shortCode(s: []const u8) []const u8 {
    const plain = gds(s);
    return plain[0..@min(plain.len, 10)];
}

fn clip(s: []const u8) []const u8 {
    return s[0..@min(s.len, line_width)];
}

/// A screen line: GDS text, at most 80 characters.
fn clean(s: []const u8) []const u8 {
    return clip(gds(s));
}

fn withoutSpaces(s: []const u8) []const u8 {
    if (std.mem.indexOfScalar(u8, s, ' ') == null) return s;
    var out = std.ArrayList(u8).initCapacity(cms.allocator, s.len) catch oom();
    for (s) |ch| if (ch != ' ') out.appendAssumeCapacity(ch);
    return out.items;
}

/// Digits at `i.*` (at most 6), advancing `i`; null when there are none.
fn digits(s: []const u8, i: *usize) ?u32 {
    const start = i.*;
    var n: u32 = 0;
    while (i.* < s.len and std.ascii.isDigit(s[i.*]) and i.* - start < 6) : (i.* += 1) n = n * 10 + (s[i.*] - '0');
    return if (i.* == start) null else n;
}

fn allLetters(s: []const u8) bool {
    for (s) |ch| if (!std.ascii.isAlphabetic(ch)) return false;
    return true;
}

fn allAlphanumeric(s: []const u8) bool {
    for (s) |ch| if (!std.ascii.isAlphanumeric(ch)) return false;
    return true;
}

/// A field as text: a string, or an integer written out ("flight_number": 178); else "".
fn text(v: ?Value, key: []const u8) []const u8 {
    const found = cms.field(v, key) orelse return "";
    return switch (found) {
        .string => |s| s,
        .integer => |n| std.fmt.allocPrint(cms.allocator, "{d}", .{n}) catch oom(),
        else => "",
    };
}

fn orText(s: []const u8, default: []const u8) []const u8 {
    return if (s.len > 0) s else default;
}

fn arrayOf(v: ?Value) []Value {
    const found = v orelse return &.{};
    return if (found == .array) found.array.items else &.{};
}

fn isNumber(v: Value) bool {
    return v == .integer or v == .float or v == .number_string;
}
