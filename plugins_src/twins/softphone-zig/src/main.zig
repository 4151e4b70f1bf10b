//! Softphone twin in Zig: click-to-call and wrap-up of the bundled softphone (plugins_src/softphone,
//! in C), ported action for action. tests/sdk/test_twins.py proves both answer the softphone's
//! vectors identically: the same outputs and the same host ops with the same arguments.
//!
//! State in kv: plugin "settings" {"link": "tel"|"sip", "sip_domain"}; agent "call" {"number",
//! "client_id", "client_name", "started"}. Time comes from context.now. Host trouble never fails
//! a call: the answer says what could not be done.
const std = @import("std");
const cms = @import("cms");

pub const actions = .{
    .toolbar = toolbar,
    .client_panel = clientPanel,
    .dial = dial,
    .hangup = hangup,
    .wrap_up = wrapUp,
    .schedule_callback = scheduleCallback,
};
pub const panic = cms.panic;

comptime {
    cms.plugin(@This());
}

const Value = std.json.Value;
const min_digits = 6;
const max_callbacks = 20;
const name_chars = 80;
const timer_unavailable = "Call timer unavailable: this call is not being timed";

const dispositions = [_]cms.Option{
    .{ .value = "booked", .label = "Booked" },         .{ .value = "quote_sent", .label = "Quote sent" },
    .{ .value = "callback", .label = "Callback needed" }, .{ .value = "no_answer", .label = "No answer" },
    .{ .value = "wrong_number", .label = "Wrong number" }, .{ .value = "other", .label = "Other" },
};

// --- small helpers ---------------------------------------------------------------------------

/// Only a leading + and the digits: "+44 (20) 7946-0000" -> "+442079460000".
fn normalise(c: *cms.Context, raw: []const u8) []const u8 {
    var out = std.ArrayList(u8).init(c.allocator);
    for (raw) |ch| {
        if (std.ascii.isDigit(ch) or (ch == '+' and out.items.len == 0)) out.append(ch) catch unreachable;
    }
    return out.items;
}

fn countDigits(s: []const u8) usize {
    var n: usize = 0;
    for (s) |ch| n += @intFromBool(std.ascii.isDigit(ch));
    return n;
}

/// At most `max` bytes, cut on a UTF-8 character boundary, with "..." when cut.
fn clip(c: *cms.Context, s: []const u8, max_bytes: usize) []const u8 {
    if (s.len <= max_bytes) return s;
    var max = max_bytes;
    while (max > 0 and (s[max] & 0xC0) == 0x80) max -= 1;
    return c.fmt("{s}...", .{s[0..max]});
}

fn two(c: *cms.Context, v: i64) []const u8 {
    return c.fmt("{s}{d}", .{ if (v < 10) "0" else "", v });
}

/// A running call's clock: "03:12", or "1:03:12" past an hour.
fn clockText(c: *cms.Context, seconds: i64) []const u8 {
    const s = @max(seconds, 0);
    if (s >= 3600) return c.fmt("{d}:{s}:{s}", .{ @divTrunc(s, 3600), two(c, @mod(@divTrunc(s, 60), 60)), two(c, @mod(s, 60)) });
    return c.fmt("{s}:{s}", .{ two(c, @divTrunc(s, 60)), two(c, @mod(s, 60)) });
}

/// A finished call's length: "45s", "3m12s", "1h03m12s".
fn durationText(c: *cms.Context, seconds: i64) []const u8 {
    const s = @max(seconds, 0);
    if (s >= 3600) return c.fmt("{d}h{s}m{s}s", .{ @divTrunc(s, 3600), two(c, @mod(@divTrunc(s, 60), 60)), two(c, @mod(s, 60)) });
    if (s >= 60) return c.fmt("{d}m{s}s", .{ @divTrunc(s, 60), two(c, @mod(s, 60)) });
    return c.fmt("{d}s", .{s});
}

fn trimAscii(s: []const u8) []const u8 {
    return std.mem.trim(u8, s, " \t\n\x0b\x0c\r");
}

// --- time: ISO 8601 to seconds since 1970 (UTC) ----------------------------------------------

fn num(s: []const u8, at: usize, n: usize) ?i64 {
    if (at + n > s.len) return null;
    var v: i64 = 0;
    for (s[at .. at + n]) |ch| {
        if (!std.ascii.isDigit(ch)) return null;
        v = v * 10 + (ch - '0');
    }
    return v;
}

fn daysFromCivil(year: i64, m: i64, d: i64) i64 {
    const y = if (m <= 2) year - 1 else year;
    const era = @divTrunc(if (y >= 0) y else y - 399, 400);
    const yoe = y - era * 400;
    const doy = @divTrunc(153 * (if (m > 2) m - 3 else m + 9) + 2, 5) + d - 1;
    const doe = yoe * 365 + @divTrunc(yoe, 4) - @divTrunc(yoe, 100) + doy;
    return era * 146097 + doe - 719468;
}

fn daysInMonth(y: i64, m: i64) i64 {
    const days = [12]i64{ 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    const leap = (@mod(y, 4) == 0 and @mod(y, 100) != 0) or @mod(y, 400) == 0;
    return if (m == 2 and leap) 29 else days[@intCast(m - 1)];
}

/// Seconds since 1970 (t >= 0) as the UTC time a timer starts from: "2026-11-24T14:05:09Z".
fn utcStamp(c: *cms.Context, t: i64) []const u8 {
    const z = @divTrunc(t, 86400) + 719468;
    const secs = @mod(t, 86400);
    const era = @divTrunc(z, 146097);
    const doe = z - era * 146097;
    const yoe = @divTrunc(doe - @divTrunc(doe, 1460) + @divTrunc(doe, 36524) - @divTrunc(doe, 146096), 365);
    const doy = doe - (365 * yoe + @divTrunc(yoe, 4) - @divTrunc(yoe, 100));
    const mp = @divTrunc(5 * doy + 2, 153);
    const d = doy - @divTrunc(153 * mp + 2, 5) + 1;
    const m = if (mp < 10) mp + 3 else mp - 9;
    const y = yoe + era * 400 + @intFromBool(m <= 2);
    return c.fmt("{d}-{s}-{s}T{s}:{s}:{s}Z", .{ y, two(c, m), two(c, d), two(c, @divTrunc(secs, 3600)), two(c, @mod(@divTrunc(secs, 60), 60)), two(c, @mod(secs, 60)) });
}

/// "YYYY-MM-DD HH:MM" (or with T) at the start of s, in seconds; the rest of s is not read.
fn parseMinute(s: []const u8) ?i64 {
    const y = num(s, 0, 4) orelse return null;
    const mo = num(s, 5, 2) orelse return null;
    const d = num(s, 8, 2) orelse return null;
    const h = num(s, 11, 2) orelse return null;
    const mi = num(s, 14, 2) orelse return null;
    if (s[4] != '-' or s[7] != '-' or (s[10] != ' ' and s[10] != 'T' and s[10] != 't') or s[13] != ':') return null;
    if (y < 1970 or mo < 1 or mo > 12 or d < 1 or d > daysInMonth(y, mo) or h > 23 or mi > 59) return null;
    return daysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60;
}

/// "2026-11-24T14:05:09Z" as the host sends context.now; fractions and offsets allowed.
fn parseIso(s: []const u8) ?i64 {
    var t = parseMinute(s) orelse return null;
    var p: usize = 16;
    if (p < s.len and s[p] == ':') {
        const sec = num(s, p + 1, 2) orelse return null;
        if (sec > 60) return null;
        t += sec;
        p += 3;
        if (p < s.len and (s[p] == '.' or s[p] == ',')) {
            p += 1;
            if (p >= s.len or !std.ascii.isDigit(s[p])) return null;
            while (p < s.len and std.ascii.isDigit(s[p])) p += 1;
        }
    }
    if (p == s.len) return t; // no zone: UTC
    if (s[p] == 'Z' or s[p] == 'z') return if (p + 1 == s.len) t else null;
    if (s[p] == '+' or s[p] == '-') {
        const oh = num(s, p + 1, 2) orelse return null;
        const om = num(s, p + 4, 2) orelse return null;
        if (s[p + 3] != ':' or p + 6 != s.len) return null;
        const offset = oh * 3600 + om * 60;
        return if (s[p] == '+') t - offset else t + offset;
    }
    return null;
}

fn stringOrNull(v: ?Value) ?[]const u8 {
    const value = v orelse return null;
    return if (value == .string) value.string else null;
}

/// context.now in seconds; null when the host sent no usable one.
fn nowSeconds(c: *cms.Context) ?i64 {
    return parseIso(stringOrNull(cms.field(c.context, "now")) orelse return null);
}

/// Seconds from `started` to context.now; null when either is missing or not a time.
fn elapsedSince(c: *cms.Context, started: ?Value) ?i64 {
    const now = nowSeconds(c) orelse return null;
    const then = parseIso(stringOrNull(started) orelse return null) orelse return null;
    return if (now > then) now - then else 0;
}

// --- settings and links ----------------------------------------------------------------------

const Settings = struct { sip: bool = false, domain: []const u8 = "" };

fn hostnameOk(s: []const u8) bool {
    if (s.len == 0 or s.len > 253 or s[0] == '.' or s[0] == '-' or s[s.len - 1] == '.' or s[s.len - 1] == '-') return false;
    for (s, 0..) |ch, i| {
        if (ch == '.' and (s[i + 1] == '.' or s[i + 1] == '-' or s[i - 1] == '-')) return false;
        if (!std.ascii.isAlphanumeric(ch) and ch != '.' and ch != '-') return false;
    }
    return true;
}

fn loadSettings(c: *cms.Context) Settings {
    const stored = c.kvGet("settings", .plugin);
    if (!stored.ok) return .{};
    const domain = cms.asString(cms.field(stored.result, "sip_domain"), "");
    if (std.mem.eql(u8, cms.asString(cms.field(stored.result, "link"), "tel"), "sip") and hostnameOk(domain))
        return .{ .sip = true, .domain = domain };
    return .{};
}

fn hrefFor(c: *cms.Context, s: Settings, number: []const u8) []const u8 {
    return if (s.sip) c.fmt("sip:{s}@{s}", .{ number, s.domain }) else c.fmt("tel:{s}", .{number});
}

// --- the running call (kv agent "call") ------------------------------------------------------

const Loaded = struct { call: ?Value, unavailable: bool };

fn loadCall(c: *cms.Context) Loaded {
    const stored = c.kvGet("call", .agent);
    if (!stored.ok) return .{ .call = null, .unavailable = true };
    const v = stored.result;
    if (v != .object or cms.asString(cms.field(v, "number"), "").len == 0) return .{ .call = null, .unavailable = false };
    return .{ .call = v, .unavailable = false };
}

fn callWho(c: *cms.Context, call: Value) []const u8 {
    const number = cms.asString(cms.field(call, "number"), "");
    const name = cms.asString(cms.field(call, "client_name"), "");
    return if (name.len > 0) c.fmt("{s} ({s})", .{ clip(c, name, name_chars), number }) else number;
}

/// "On call 03:12", ticking on the page, and the hang-up button.
fn showCall(c: *cms.Context, call: Value) void {
    if (elapsedSince(c, cms.field(call, "started"))) |secs| {
        c.timer("On call", utcStamp(c, nowSeconds(c).? - secs));
    } else {
        c.badge("On call", .success);
    }
    c.form(.{ .action = "hangup", .title = c.fmt("Call with {s}", .{callWho(c, call)}), .buttons = &.{.{ .label = "Hang up", .style = .danger }} });
}

// --- actions ---------------------------------------------------------------------------------

/// agent.toolbar: the running call (timer and hang up), else a compact dial pad.
fn toolbar(c: *cms.Context) !void {
    const loaded = loadCall(c);
    if (loaded.unavailable) c.alert("Call state unavailable", .warning);
    if (loaded.call) |call| {
        showCall(c, call);
    } else {
        c.form(.{
            .action = "dial",
            .fields = &.{.{ .name = "number", .label = "Number", .kind = .tel, .placeholder = "+44 20 7946 0000", .required = true }},
            .buttons = &.{.{ .label = "Call", .style = .primary }},
        });
    }
    c.setResult(.{ .on_call = loaded.call != null });
}

/// client.sidebar: call this client, the call in progress with them, schedule a callback.
fn clientPanel(c: *cms.Context) !void {
    const client = cms.field(c.context, "client");
    const id = cms.asInt(cms.field(client, "id"), 0);
    if (client == null or client.? != .object or id <= 0) return c.text("Open a client to call them", .neutral);
    const name = clip(c, cms.asString(cms.field(client, "name"), ""), name_chars);
    const number = normalise(c, cms.asString(cms.field(client, "phone"), ""));
    const callable = countDigits(number) >= min_digits and number.len <= 32;

    const loaded = loadCall(c);
    const with_client = if (loaded.call) |call| cms.asInt(cms.field(call, "client_id"), 0) == id else false;
    if (loaded.unavailable) c.alert("Call state unavailable", .warning);
    if (with_client) showCall(c, loaded.call.?);

    if (callable) {
        c.link(c.fmt("Call {s}", .{number}), hrefFor(c, loadSettings(c), number));
        if (!with_client) c.form(.{
            .action = "dial",
            .title = if (name.len > 0) c.fmt("Call {s} and time it", .{name}) else "Call and time it",
            .fields = &.{
                .{ .name = "number", .label = "Number", .kind = .hidden, .value = .{ .string = number } },
                .{ .name = "client_id", .label = "Client", .kind = .hidden, .value = .{ .integer = id } },
            },
            .buttons = &.{.{ .label = "Call", .style = .primary }},
        });
    } else {
        c.text("No phone number on file", .neutral);
    }
    c.form(.{
        .action = "schedule_callback",
        .title = "Schedule a callback",
        .fields = &.{
            .{ .name = "client_id", .label = "Client", .kind = .hidden, .value = .{ .integer = id } },
            .{ .name = "when", .label = "When (UTC)", .kind = .text, .placeholder = "2026-12-01 14:30", .required = true },
            .{ .name = "note", .label = "Note", .kind = .text, .placeholder = "Wants a quote for March" },
        },
        .buttons = &.{.{ .label = "Schedule", .style = .secondary }},
    });
    c.setResult(.{ .number = if (callable) number else null, .on_call = with_client });
}

fn dial(c: *cms.Context) !void {
    const number = normalise(c, c.paramString("number", ""));
    if (countDigits(number) < min_digits) return c.setError("bad_number", "Enter a phone number with at least 6 digits");
    const client_id = c.paramInt("client_id", 0);
    const client = cms.field(c.context, "client");
    const client_name: ?[]const u8 = if (client_id > 0 and cms.asInt(cms.field(client, "id"), 0) == client_id)
        stringOrNull(cms.field(client, "name"))
    else
        null;
    const href = hrefFor(c, loadSettings(c), number);

    var call = std.json.ObjectMap.init(c.allocator);
    try call.put("number", .{ .string = number });
    try call.put("client_id", if (client_id > 0) .{ .integer = client_id } else .null);
    try call.put("client_name", if (client_name) |n| .{ .string = n } else .null);
    try call.put("started", cms.field(c.context, "now") orelse .null);
    const timed = c.kvSet("call", Value{ .object = call }, .agent).ok;

    c.setResult(.{ .href = href, .number = number, .timed = timed });
    c.link(c.fmt("Call {s}", .{number}), href);
    c.badge("Calling", .info);
    if (timed) {
        c.form(.{
            .action = "hangup",
            .title = if (client_name) |n| c.fmt("Call with {s}", .{clip(c, n, name_chars)}) else null,
            .buttons = &.{.{ .label = "Hang up", .style = .danger }},
        });
    } else {
        c.alert(timer_unavailable, .warning);
    }
}

/// The wrap-up form; `disposition` and `notes` prefill it.
fn wrapUpForm(c: *cms.Context, number: []const u8, client_id: i64, secs: i64, title: []const u8, disposition: ?[]const u8, notes: ?[]const u8) void {
    var fields = std.ArrayList(cms.Field).init(c.allocator);
    fields.append(.{ .name = "disposition", .label = "Outcome", .kind = .select, .value = if (disposition) |d| .{ .string = d } else null, .required = true, .options = &dispositions }) catch unreachable;
    fields.append(.{ .name = "notes", .label = "Notes", .kind = .textarea, .value = if (notes) |n| (if (n.len > 0) cms.Scalar{ .string = n } else null) else null, .placeholder = "What was agreed" }) catch unreachable;
    if (client_id > 0) fields.append(.{ .name = "client_id", .label = "Client", .kind = .hidden, .value = .{ .integer = client_id } }) catch unreachable;
    fields.append(.{ .name = "number", .label = "Number", .kind = .hidden, .value = .{ .string = number } }) catch unreachable;
    fields.append(.{ .name = "duration_s", .label = "Duration", .kind = .hidden, .value = .{ .integer = secs } }) catch unreachable;
    c.form(.{ .action = "wrap_up", .title = title, .fields = fields.items, .buttons = &.{.{ .label = "Log call", .style = .primary }} });
}

fn hangup(c: *cms.Context) !void {
    const loaded = loadCall(c);
    const call = loaded.call orelse {
        c.setResult(.{ .duration_s = 0, .ended = false });
        if (loaded.unavailable) c.alert("Call state unavailable: hang up on your phone and try again", .warning) else c.text("No call in progress", .neutral);
        return;
    };
    const number = cms.asString(cms.field(call, "number"), "");
    const client_id = cms.asInt(cms.field(call, "client_id"), 0);
    const elapsed = elapsedSince(c, cms.field(call, "started"));
    const secs = elapsed orelse 0;
    const cleared = c.kvDelete("call", .agent).ok;
    c.log(.info, "hang up {s} after {d}s", .{ number, secs });

    c.setResult(.{ .duration_s = secs, .ended = true });
    c.badge(if (elapsed != null) c.fmt("Call ended {s}", .{clockText(c, secs)}) else "Call ended", .neutral);
    if (!cleared) c.alert("The call could not be cleared: press Hang up again in a moment", .warning);
    wrapUpForm(c, number, client_id, secs, c.fmt("Wrap up: {s}, {s}", .{ callWho(c, call), durationText(c, secs) }), null, null);
}

fn wrapUp(c: *cms.Context) !void {
    const code = c.paramString("disposition", "");
    const label = for (dispositions) |o| {
        if (std.mem.eql(u8, o.value, code)) break o.label;
    } else return c.setError("bad_disposition", "Choose an outcome for the call");
    const number = normalise(c, c.paramString("number", ""));
    const notes = trimAscii(c.paramString("notes", ""));
    const client_id = c.paramInt("client_id", 0);
    const secs = @max(c.paramInt("duration_s", 0), 0);

    const text = c.fmt("Call to {s} {s}: {s}.{s}{s}", .{ if (number.len > 0) number else "an unknown number", durationText(c, secs), label, if (notes.len > 0) " " else "", notes });
    var logged = false;
    var problem: ?[]const u8 = null;
    if (client_id > 0) {
        const answer = c.call("activity.add", .{
            .client_id = client_id,
            .kind = "call",
            .text = text,
            .data = .{ .disposition = code, .duration_s = secs, .number = number },
        });
        logged = answer.ok;
        if (!logged) {
            const host_trouble = std.mem.eql(u8, answer.code, "unavailable") or std.mem.eql(u8, answer.code, "timeout");
            problem = if (host_trouble)
                "Call not logged: the client's timeline is unavailable, try again"
            else
                c.fmt("Call not logged: {s}", .{clip(c, if (answer.message.len > 0) answer.message else answer.code, 200)});
        }
    }
    c.log(.info, "wrap up {s}: {s} ({d}s){s}", .{ number, code, secs, if (logged) ", logged" else "" });

    c.setResult(.{ .logged = logged, .text = text });
    if (logged) {
        c.alert("Call logged", .success);
    } else if (problem) |p| {
        c.alert(p, .warning);
        wrapUpForm(c, number, client_id, secs, "Log the call again", code, notes);
    } else {
        c.alert("Call finished (no client to log it on)", .info);
    }
}

// --- callbacks (kv agent "callbacks": sorted by time, at most max_callbacks) ------------------

const Callback = struct { when: []const u8, client_id: i64, client_name: ?[]const u8, note: []const u8 };
const Callbacks = struct { items: std.ArrayList(Callback), unavailable: bool };

fn loadCallbacks(c: *cms.Context) Callbacks {
    const stored = c.kvGet("callbacks", .agent);
    var list = Callbacks{ .items = std.ArrayList(Callback).init(c.allocator), .unavailable = !stored.ok };
    if (!stored.ok or stored.result != .array) return list;
    for (stored.result.array.items) |e| {
        if (list.items.items.len == max_callbacks) break;
        const when = cms.asString(cms.field(e, "when"), "");
        if (when.len != 16 or parseMinute(when) == null) continue; // not ours: skip it
        list.items.append(.{
            .when = when,
            .client_id = cms.asInt(cms.field(e, "client_id"), 0),
            .client_name = stringOrNull(cms.field(e, "client_name")),
            .note = cms.asString(cms.field(e, "note"), ""),
        }) catch unreachable;
    }
    return list;
}

fn scheduleCallback(c: *cms.Context) !void {
    const client_id = c.paramInt("client_id", 0);
    const raw = trimAscii(c.paramString("when", ""));
    const note = clip(c, trimAscii(c.paramString("note", "")), 200);
    const when_t = (if (raw.len == 16) parseMinute(raw) else null) orelse
        return c.setError("bad_time", "Give the time as YYYY-MM-DD HH:MM, for example 2026-12-01 14:30");
    if (nowSeconds(c)) |now| {
        if (when_t < now - @mod(now, 60)) return c.setError("bad_time", "That time has passed: choose a time from now on");
    }
    if (client_id <= 0) return c.setError("bad_client", "A callback needs a client");
    const when = try c.allocator.dupe(u8, raw);
    when[10] = ' '; // the canonical form: "YYYY-MM-DD HH:MM"
    const client = cms.field(c.context, "client");
    const name: ?[]const u8 = if (cms.asInt(cms.field(client, "id"), 0) == client_id) stringOrNull(cms.field(client, "name")) else null;

    var list = loadCallbacks(c);
    var saved = false;
    var dropped = false;
    if (!list.unavailable) {
        var fresh = Callback{ .when = when, .client_id = client_id, .client_name = name, .note = note };
        const items = &list.items;
        var at: ?usize = null;
        for (items.items, 0..) |*item, i| { // the same client at the same time: update it
            if (item.client_id == client_id and std.mem.eql(u8, item.when, when)) {
                if (name == null) fresh.client_name = item.client_name;
                item.* = fresh;
                at = i;
                break;
            }
        }
        var index = at orelse blk: { // insert in time order (after equal times)
            var i = items.items.len;
            while (i > 0 and std.mem.order(u8, items.items[i - 1].when, when) == .gt) i -= 1;
            try items.insert(i, fresh);
            break :blk i;
        };
        while (items.items.len > max_callbacks) { // full: drop the earliest that is not the new one
            const drop: usize = if (index == 0) 1 else 0;
            _ = items.orderedRemove(drop);
            if (drop < index) index -= 1;
            dropped = true;
        }
        saved = c.kvSet("callbacks", items.items, .agent).ok;
    }
    const who = if (name) |n| clip(c, n, name_chars) else c.fmt("client #{d}", .{client_id});
    c.setResult(.{ .scheduled = if (saved) @as(?usize, list.items.items.len) else null, .saved = saved, .when = when });
    if (saved) {
        c.alert(c.fmt("Callback to {s} scheduled for {s}", .{ who, when }), .success);
        if (dropped) c.text(c.fmt("At most {d} callbacks are kept: the earliest was removed", .{max_callbacks}), .warning);
    } else {
        c.alert("Callbacks unavailable right now: the callback was not scheduled, try again", .warning);
    }
}
