//! cms: the Zig guest library of the CMS plugin SDK (ABI v1, see docs/plugin-abi.md).
//!
//! A plugin is one Zig file. It names its actions, installs the panic handler and asks this
//! library to export `cms_alloc`, `cms_handle` and `cms_abi_version`; the library parses the
//! input envelope, calls the action and writes the output envelope:
//!
//!     const std = @import("std");
//!     const cms = @import("cms");
//!
//!     pub const actions = .{ .greet = greet };   // action name -> fn (c: *cms.Context) !void
//!     pub const panic = cms.panic;               // a panic ends the call as fault "trap"
//!     comptime {
//!         cms.plugin(@This());                   // the ABI exports (a compile error without
//!     }                                          // `actions` or `panic`)
//!
//!     fn greet(c: *cms.Context) !void {
//!         const name = c.paramString("name", "");
//!         if (name.len == 0) return c.setError("bad_name", "Name must not be empty");
//!         c.setResult(.{ .greeting = c.fmt("Hello, {s}!", .{name}) });
//!         c.alert("Greeted", .success);
//!     }
//!
//! (Zig only analyses what is referenced, so the exports cannot live in this library on their
//! own: `comptime { cms.plugin(@This()); }` is what pulls them, and the actions, into the module.)
//! Build with `cms-plugin build` (plugin_sdk/toolchain.py: wasm32-freestanding, ReleaseSmall).
//!
//! Context (`c: *cms.Context`, one per call):
//!   input    c.action; c.params and c.context (std.json.Value objects); c.agent, c.client
//!            (?cms.Agent, ?cms.Client from the context); c.slot (?[]const u8)
//!            c.param(key) ?Value, c.paramString(key, default), c.paramInt(key, default),
//!            c.paramBool(key, default); for any Value: cms.field(v, key), cms.asString,
//!            cms.asInt, cms.asFloat, cms.asBool (each with a default)
//!   output   c.setResult(value)            -> "result": any Zig value or std.json.Value
//!            c.setError(code, message)     -> {"ok": false, "error": {"code", "message"}}
//!            UI blocks, appended to "ui" in call order (the vocabulary of plugin_sdk/ui.py):
//!            c.heading(text, level 1..3), c.text(text, tone), c.alert(text, tone),
//!            c.badge(text, tone), c.keyValue(&.{.{ .key, .value }}), c.table(columns, rows),
//!            c.list(items, ordered), c.form(.{ .action, .title, .fields, .buttons }),
//!            c.terminal(lines), c.timeline(&.{.{ .time, .title, .text, .tone }}),
//!            c.link(text, href); c.block(value) appends a hand-made block
//!   host     c.call(op, args) cms.Answer   args: a struct literal (`.{ .key = k }`, `.{}`) or
//!                                          a std.json.Value object
//!            c.kvGet(key, scope), c.kvSet(key, value, scope), c.kvDelete(key, scope),
//!            c.kvList(prefix, scope)        scope: .plugin, .agent or .client
//!            An Answer is {ok, result, code, message}. An error answer ("unavailable",
//!            "timeout", "unknown_op", op-defined codes) is data, never a trap: check `.ok` and
//!            degrade. The kv wrappers unwrap the result: kvGet gives the value (null when
//!            unset), kvDelete the "deleted" bool, kvList the "keys" array.
//!   misc     c.log(.info, "greeted {s}", .{name}) (levels debug, info, warn, err; capability
//!            "log"); cms.log does the same without a Context, and
//!            `pub const std_options: std.Options = .{ .logFn = cms.logFn };` routes std.log.
//!            c.fmt(format, args) []const u8; c.stringify(value) []const u8 (JSON);
//!            c.allocator (= cms.allocator); c.fail(message); cms.parseJson(text)
//!
//! JSON: numbers that fit an i64 arrive as `.integer`; other numbers stay text
//! (`.number_string`, exact when passed on; read them with cms.asFloat). The module carries no
//! float parser or float tables unless the plugin itself formats or parses floats.
//!
//! Memory: a bump allocator over wasm memory (each call is a fresh instance, so nothing is ever
//! freed). It never returns an error: when memory cannot grow it ends the call cleanly with fault
//! `memory_limit` (the abort op, sent from static memory). So builders, c.fmt and c.call need no
//! `try`; std functions that take the allocator still have error.OutOfMemory in their type, and
//! an action that returns it also ends with `memory_limit`.
//!
//! Errors and faults:
//!   unknown action                        -> ok:false, code "unknown_action"
//!   input that is not a valid envelope    -> ok:false, code "bad_input"
//!   action returns error.NoSuchClient     -> ok:false, code "no_such_client" (the error's name in
//!                                            snake_case; "HTTPTimeout" -> "http_timeout"),
//!                                            unless the action called setError first
//!   action returns error.OutOfMemory      -> fault memory_limit ("plugin aborted: ...")
//!   @panic(message) / c.fail(message)     -> fault trap ("plugin aborted: <message>")
//!   output over 256 KiB                   -> ok:false, code "output_too_large"

const std = @import("std");

pub const abi_version: i32 = 1;
const page_size = 64 * 1024;
const max_output_bytes = 256 * 1024;
const max_log_bytes = 2048;

// ---------------------------------------------------------------------------------------------
// Host imports (module "cms")

const host = struct {
    extern "cms" fn log(level: i32, ptr: [*]const u8, len: usize) void;
    extern "cms" fn call(ptr: [*]const u8, len: usize) u64;
};

fn unpack(value: u64) []const u8 {
    const ptr: [*]const u8 = @ptrFromInt(@as(usize, @intCast(value >> 32)));
    return ptr[0..@as(u32, @truncate(value))];
}

fn pack(bytes: []const u8) u64 {
    return (@as(u64, @intFromPtr(bytes.ptr)) << 32) | @as(u64, bytes.len);
}

// ---------------------------------------------------------------------------------------------
// ABI exports

/// Export the plugin: call once, from the plugin's root file, as `comptime { cms.plugin(@This()); }`.
/// The file declares `pub const actions = .{ .name = handler, ... }` (each handler a
/// `fn (c: *cms.Context) !void`, or returning plain void) and `pub const panic = cms.panic;`.
pub fn plugin(comptime Plugin: type) void {
    if (!@hasDecl(Plugin, "actions"))
        @compileError("cms: declare the plugin's actions: pub const actions = .{ .name = handler };");
    if (!@hasDecl(Plugin, "panic"))
        @compileError("cms: add `pub const panic = cms.panic;` so that a panic ends the call with its message");
    const Exports = struct {
        fn handle(ptr: [*]const u8, len: usize) callconv(.c) u64 {
            return pack(handleInput(Plugin.actions, ptr[0..len]));
        }
    };
    @export(&Exports.handle, .{ .name = "cms_handle" });
    @export(&cmsAlloc, .{ .name = "cms_alloc" });
    @export(&cmsAbiVersion, .{ .name = "cms_abi_version" });
}

fn cmsAbiVersion() callconv(.c) i32 {
    return abi_version;
}

/// Memory for the host (the input, and each cms.call answer): 0 when memory cannot grow, as the
/// ABI asks; the host then ends the call with memory_limit itself.
fn cmsAlloc(n: usize) callconv(.c) usize {
    const p = bump(n, 8) orelse return 0;
    return @intFromPtr(p);
}

// ---------------------------------------------------------------------------------------------
// Memory: a bump allocator that ends the call with memory_limit when memory runs out.

extern var __heap_base: u8; // first free byte after data and stack (set by wasm-ld)
var heap_next: usize = 0;

/// `n` bytes aligned to `alignment`, growing memory in whole pages; null when it cannot grow.
fn bump(n: usize, alignment: usize) ?[*]u8 {
    if (heap_next == 0) heap_next = @intFromPtr(&__heap_base);
    const start = std.mem.alignForward(usize, heap_next, alignment);
    const end = std.math.add(usize, start, n) catch return null;
    if (!ensureMemory(end)) return null;
    heap_next = end;
    return @ptrFromInt(start);
}

/// Grow memory so that addresses below `end` are backed; false when memory.grow refuses.
fn ensureMemory(end: usize) bool {
    const have: u64 = @as(u64, @wasmMemorySize(0)) * page_size;
    if (end <= have) return true;
    const pages = (end - have + page_size - 1) / page_size;
    return @wasmMemoryGrow(0, @intCast(pages)) != -1;
}

const bump_vtable: std.mem.Allocator.VTable = .{
    .alloc = bumpAlloc,
    .resize = bumpResize,
    .remap = bumpRemap,
    .free = bumpFree,
};

/// The plugin's allocator. Running out of memory ends the call with fault memory_limit.
pub const allocator: std.mem.Allocator = .{ .ptr = undefined, .vtable = &bump_vtable };

fn bumpAlloc(_: *anyopaque, len: usize, alignment: std.mem.Alignment, _: usize) ?[*]u8 {
    return bump(len, alignment.toByteUnits()) orelse outOfMemory(len);
}

/// In place: any shrink; growth only of the latest allocation.
fn bumpResize(_: *anyopaque, memory: []u8, _: std.mem.Alignment, new_len: usize, _: usize) bool {
    if (new_len <= memory.len) {
        if (isLast(memory)) heap_next -= memory.len - new_len;
        return true;
    }
    if (!isLast(memory)) return false;
    const end = std.math.add(usize, @intFromPtr(memory.ptr), new_len) catch return false;
    if (!ensureMemory(end)) return false; // the caller falls back to alloc, which aborts
    heap_next = end;
    return true;
}

fn bumpRemap(ctx: *anyopaque, memory: []u8, alignment: std.mem.Alignment, new_len: usize, ra: usize) ?[*]u8 {
    return if (bumpResize(ctx, memory, alignment, new_len, ra)) memory.ptr else null;
}

fn bumpFree(_: *anyopaque, memory: []u8, _: std.mem.Alignment, _: usize) void {
    if (isLast(memory)) heap_next = @intFromPtr(memory.ptr);
}

fn isLast(memory: []u8) bool {
    return @intFromPtr(memory.ptr) + memory.len == heap_next;
}

// ---------------------------------------------------------------------------------------------
// Clean give-up: the abort op, built in static memory (nothing to allocate when memory is gone).

pub const AbortKind = enum { memory_limit, trap };

var abort_buffer: [1024]u8 = undefined;
var aborting = false;

/// End the call now with fault `kind` and `message` (sent as the host op "abort").
pub fn abort(kind: AbortKind, message: []const u8) noreturn {
    if (aborting) @trap(); // a panic while aborting: plain trap
    aborting = true;
    var out: StaticWriter = .{ .buf = &abort_buffer };
    out.raw("{\"op\":\"abort\",\"args\":{\"kind\":\"");
    out.raw(@tagName(kind));
    out.raw("\",\"message\":\"");
    out.escaped(message, abort_buffer.len - 4);
    out.raw("\"}}");
    _ = host.call(&abort_buffer, out.len);
    @trap(); // not reached: the host ends the call
}

fn outOfMemory(n: usize) noreturn {
    var buf: [64]u8 = undefined;
    abort(.memory_limit, std.fmt.bufPrint(&buf, "out of memory allocating {d} bytes", .{n}) catch
        "out of memory");
}

/// For `catch` after std calls whose only error is OutOfMemory.
fn noMemory() noreturn {
    abort(.memory_limit, "out of memory");
}

/// Appends to a fixed buffer; JSON-escapes a message, cut at a character boundary.
const StaticWriter = struct {
    buf: []u8,
    len: usize = 0,

    fn raw(w: *StaticWriter, s: []const u8) void {
        const n = @min(s.len, w.buf.len - w.len);
        @memcpy(w.buf[w.len..][0..n], s[0..n]);
        w.len += n;
    }

    fn escaped(w: *StaticWriter, s: []const u8, limit: usize) void {
        var i: usize = 0;
        while (i < s.len) {
            const c = s[i];
            var piece: []const u8 = s[i .. i + 1];
            var hex: [6]u8 = undefined;
            if (c == '"') {
                piece = "\\\"";
            } else if (c == '\\') {
                piece = "\\\\";
            } else if (c < 0x20) {
                piece = std.fmt.bufPrint(&hex, "\\u{x:0>4}", .{c}) catch unreachable;
            } else if (c >= 0x80) {
                const n = std.unicode.utf8ByteSequenceLength(c) catch 0;
                const ok = n > 0 and i + n <= s.len and std.unicode.utf8ValidateSlice(s[i .. i + n]);
                piece = if (ok) s[i .. i + n] else "?";
                if (ok) i += n - 1;
            }
            if (w.len + piece.len > limit) return;
            w.raw(piece);
            i += 1;
        }
    }
};

// ---------------------------------------------------------------------------------------------
// Panics

fn panicHandler(message: []const u8, _: ?usize) noreturn {
    abort(.trap, message);
}

/// Install in the plugin with `pub const panic = cms.panic;`: a panic ends the call as fault
/// "trap" with the panic message. (`cms.plugin` insists on a `panic` declaration: the default
/// handler would end the call as a bare `unreachable` trap, without the message.)
pub const panic = std.debug.FullPanic(panicHandler);

// ---------------------------------------------------------------------------------------------
// Logging

pub const Level = enum(i32) { debug = 0, info = 1, warn = 2, err = 3 };

/// One line into the plugin log (capability "log"); longer than 2,048 bytes is cut.
pub fn log(level: Level, comptime format: []const u8, args: anytype) void {
    writeLog(level, format, args);
}

fn writeLog(level: Level, comptime format: []const u8, args: anytype) void {
    var buf: [max_log_bytes]u8 = undefined;
    var stream = std.io.fixedBufferStream(&buf);
    stream.writer().print(format, args) catch {}; // NoSpaceLeft: keep what fits
    host.log(@intFromEnum(level), &buf, stream.pos);
}

/// For `pub const std_options: std.Options = .{ .logFn = cms.logFn };`: std.log goes to the host.
pub fn logFn(
    comptime level: std.log.Level,
    comptime scope: @TypeOf(.enum_literal),
    comptime format: []const u8,
    args: anytype,
) void {
    const prefix = if (scope == .default) "" else @tagName(scope) ++ ": ";
    const ours: Level = switch (level) {
        .debug => .debug,
        .info => .info,
        .warn => .warn,
        .err => .err,
    };
    log(ours, prefix ++ format, args);
}

// ---------------------------------------------------------------------------------------------
// JSON value helpers

const Value = std.json.Value;

/// `object[key]`, or null when `object` is not an object or has no such key.
pub fn field(object: ?Value, key: []const u8) ?Value {
    const v = object orelse return null;
    return switch (v) {
        .object => |o| o.get(key),
        else => null,
    };
}

/// The string, or `default` when `value` is missing or not a string.
pub fn asString(value: ?Value, default: []const u8) []const u8 {
    const v = value orelse return default;
    return switch (v) {
        .string => |s| s,
        else => default,
    };
}

/// An integer: a JSON integer, a whole number such as 3.0, or a string of digits; else `default`.
pub fn asInt(value: ?Value, default: i64) i64 {
    const v = value orelse return default;
    return switch (v) {
        .integer => |i| i,
        .float => |f| if (@floor(f) == f and @abs(f) < 9.0e15) @intFromFloat(f) else default,
        .string, .number_string => |s| parseWhole(std.mem.trim(u8, s, " ")) orelse default,
        else => default,
    };
}

/// "42" or "42.000" -> 42 (without a float parser); anything else -> null.
fn parseWhole(text: []const u8) ?i64 {
    const dot = std.mem.indexOfScalar(u8, text, '.') orelse text.len;
    if (dot + 1 == text.len) return null;
    for (text[@min(dot + 1, text.len)..]) |ch| if (ch != '0') return null;
    return std.fmt.parseInt(i64, text[0..dot], 10) catch null;
}

/// A number (integer, float or number text), else `default`.
pub fn asFloat(value: ?Value, default: f64) f64 {
    const v = value orelse return default;
    return switch (v) {
        .integer => |i| @floatFromInt(i),
        .float => |f| f,
        .number_string => |s| std.fmt.parseFloat(f64, s) catch default,
        else => default,
    };
}

/// A JSON boolean, else `default`.
pub fn asBool(value: ?Value, default: bool) bool {
    const v = value orelse return default;
    return switch (v) {
        .bool => |b| b,
        else => default,
    };
}

// ---------------------------------------------------------------------------------------------
// JSON parsing into std.json.Value. A small parser of our own instead of std.json's: it keeps the
// float parser and its tables out of the module (about half its size). Integers that fit an i64
// become `.integer`; other numbers stay text (`.number_string`, read them with cms.asFloat), so
// passing a value on loses no precision. Strings without escapes point into the input.

pub const ParseError = error{BadJson};
const max_depth = 64; // each level takes a few hundred bytes of the 64 KiB stack

/// Parse one JSON document (the call's memory holds the result; running out ends the call).
pub fn parseJson(text: []const u8) ParseError!Value {
    var p: Parser = .{ .s = text };
    const v = try p.value(0);
    p.skipSpace();
    if (p.i != text.len) return error.BadJson;
    return v;
}

const Parser = struct {
    s: []const u8,
    i: usize = 0,

    fn skipSpace(p: *Parser) void {
        while (p.i < p.s.len) : (p.i += 1) switch (p.s[p.i]) {
            ' ', '\t', '\n', '\r' => {},
            else => return,
        };
    }

    fn peek(p: *Parser) ParseError!u8 {
        p.skipSpace();
        return if (p.i < p.s.len) p.s[p.i] else error.BadJson;
    }

    fn expect(p: *Parser, ch: u8) ParseError!void {
        if (try p.peek() != ch) return error.BadJson;
        p.i += 1;
    }

    fn literal(p: *Parser, word: []const u8, v: Value) ParseError!Value {
        if (!std.mem.startsWith(u8, p.s[p.i..], word)) return error.BadJson;
        p.i += word.len;
        return v;
    }

    fn value(p: *Parser, depth: usize) ParseError!Value {
        if (depth > max_depth) return error.BadJson;
        return switch (try p.peek()) {
            '{' => p.object(depth),
            '[' => p.array(depth),
            '"' => .{ .string = try p.string() },
            't' => p.literal("true", .{ .bool = true }),
            'f' => p.literal("false", .{ .bool = false }),
            'n' => p.literal("null", .null),
            '-', '0'...'9' => p.number(),
            else => error.BadJson,
        };
    }

    fn object(p: *Parser, depth: usize) ParseError!Value {
        var map = std.json.ObjectMap.init(allocator);
        p.i += 1; // {
        if (try p.peek() == '}') {
            p.i += 1;
            return .{ .object = map };
        }
        while (true) {
            if (try p.peek() != '"') return error.BadJson;
            const key = try p.string();
            try p.expect(':');
            map.put(key, try p.value(depth + 1)) catch noMemory();
            switch (try p.peek()) {
                ',' => p.i += 1,
                '}' => break,
                else => return error.BadJson,
            }
        }
        p.i += 1;
        return .{ .object = map };
    }

    fn array(p: *Parser, depth: usize) ParseError!Value {
        var items = std.json.Array.init(allocator);
        p.i += 1; // [
        if (try p.peek() == ']') {
            p.i += 1;
            return .{ .array = items };
        }
        while (true) {
            items.append(try p.value(depth + 1)) catch noMemory();
            switch (try p.peek()) {
                ',' => p.i += 1,
                ']' => break,
                else => return error.BadJson,
            }
        }
        p.i += 1;
        return .{ .array = items };
    }

    /// At the opening quote. Returns the decoded text.
    fn string(p: *Parser) ParseError![]const u8 {
        p.i += 1;
        const start = p.i;
        while (p.i < p.s.len) : (p.i += 1) switch (p.s[p.i]) {
            '"' => {
                p.i += 1;
                return p.s[start .. p.i - 1];
            },
            '\\' => break,
            0...0x1f => return error.BadJson,
            else => {},
        } else return error.BadJson;
        // Has escapes: decode into a copy.
        var out = std.ArrayList(u8).init(allocator);
        out.appendSlice(p.s[start..p.i]) catch noMemory();
        while (p.i < p.s.len) {
            const ch = p.s[p.i];
            p.i += 1;
            switch (ch) {
                '"' => return out.items,
                0...0x1f => return error.BadJson,
                '\\' => {
                    if (p.i >= p.s.len) return error.BadJson;
                    const e = p.s[p.i];
                    p.i += 1;
                    const plain: u8 = switch (e) {
                        '"', '\\', '/' => e,
                        'b' => 8,
                        'f' => 12,
                        'n' => '\n',
                        'r' => '\r',
                        't' => '\t',
                        'u' => {
                            var buf: [4]u8 = undefined;
                            const n = std.unicode.utf8Encode(try p.codepoint(), &buf) catch unreachable;
                            out.appendSlice(buf[0..n]) catch noMemory();
                            continue;
                        },
                        else => return error.BadJson,
                    };
                    out.append(plain) catch noMemory();
                },
                else => out.append(ch) catch noMemory(),
            }
        }
        return error.BadJson;
    }

    /// After "\u": one code point, joining a surrogate pair; a lone surrogate becomes U+FFFD.
    fn codepoint(p: *Parser) ParseError!u21 {
        const hi = try p.hex4();
        if (hi < 0xD800 or hi > 0xDFFF) return hi;
        if (hi <= 0xDBFF and std.mem.startsWith(u8, p.s[p.i..], "\\u")) {
            const save = p.i;
            p.i += 2;
            const lo = try p.hex4();
            if (lo >= 0xDC00 and lo <= 0xDFFF) return 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
            p.i = save;
        }
        return 0xFFFD;
    }

    fn hex4(p: *Parser) ParseError!u21 {
        if (p.i + 4 > p.s.len) return error.BadJson;
        const v = std.fmt.parseUnsigned(u16, p.s[p.i..][0..4], 16) catch return error.BadJson;
        p.i += 4;
        return v;
    }

    fn number(p: *Parser) ParseError!Value {
        const start = p.i;
        if (p.s[p.i] == '-') p.i += 1;
        const int_start = p.i;
        const int_len = p.digits();
        if (int_len == 0 or (int_len > 1 and p.s[int_start] == '0')) return error.BadJson;
        var integral = true;
        if (p.i < p.s.len and p.s[p.i] == '.') {
            p.i += 1;
            if (p.digits() == 0) return error.BadJson;
            integral = false;
        }
        if (p.i < p.s.len and (p.s[p.i] == 'e' or p.s[p.i] == 'E')) {
            p.i += 1;
            if (p.i < p.s.len and (p.s[p.i] == '+' or p.s[p.i] == '-')) p.i += 1;
            if (p.digits() == 0) return error.BadJson;
            integral = false;
        }
        const text = p.s[start..p.i];
        if (integral) if (std.fmt.parseInt(i64, text, 10)) |n| return .{ .integer = n } else |_| {};
        return .{ .number_string = text };
    }

    fn digits(p: *Parser) usize {
        const start = p.i;
        while (p.i < p.s.len and std.ascii.isDigit(p.s[p.i])) p.i += 1;
        return p.i - start;
    }
};

// ---------------------------------------------------------------------------------------------
// JSON writing. Our own compact writer (smaller and several times cheaper in fuel than
// std.json.stringify). A value may be: bool, integer, float (NaN and infinities as null),
// optional, enum (its tag name), error (its name), []const u8 / string literal, slice or array,
// struct (an object; a tuple is an array), tagged union ({"tag": payload}), std.json.Value, or any
// type with a std.json `jsonStringify` method.

fn toJson(value: anytype, options: struct { skip_null_fields: bool = false }) []const u8 {
    var out = std.ArrayList(u8).init(allocator);
    var w: JsonWriter = .{ .out = &out, .skip_null_fields = options.skip_null_fields };
    w.value(value);
    return out.items;
}

const JsonWriter = struct {
    out: *std.ArrayList(u8),
    /// Leave out struct fields whose optional value is null (UI blocks).
    skip_null_fields: bool,

    fn raw(w: *JsonWriter, bytes: []const u8) void {
        w.out.appendSlice(bytes) catch noMemory();
    }

    fn print(w: *JsonWriter, comptime format: []const u8, args: anytype) void {
        w.out.writer().print(format, args) catch noMemory();
    }

    fn string(w: *JsonWriter, s: []const u8) void {
        w.raw("\"");
        var start: usize = 0;
        for (s, 0..) |ch, i| {
            const escape: []const u8 = switch (ch) {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                0...8, 0x0b, 0x0c, 0x0e...0x1f => "",
                else => continue,
            };
            w.raw(s[start..i]);
            if (escape.len > 0) w.raw(escape) else w.print("\\u{x:0>4}", .{ch});
            start = i + 1;
        }
        w.raw(s[start..]);
        w.raw("\"");
    }

    fn float(w: *JsonWriter, f: f64) void {
        if (!std.math.isFinite(f)) return w.raw("null");
        const size = @abs(f);
        if (f == 0 or (size >= 1e-5 and size < 1e15)) w.print("{d}", .{f}) else w.print("{e}", .{f});
    }

    fn value(w: *JsonWriter, v: anytype) void {
        const T = @TypeOf(v);
        if (T == Value) return w.jsonValue(v);
        if (T == Scalar) return switch (v) {
            inline else => |inner| w.value(inner),
        };
        switch (@typeInfo(T)) {
            .null, .void => w.raw("null"),
            .bool => w.raw(if (v) "true" else "false"),
            .int, .comptime_int => w.print("{d}", .{v}),
            .float, .comptime_float => w.float(v),
            .optional => if (v) |inner| w.value(inner) else w.raw("null"),
            .@"enum", .enum_literal => w.string(@tagName(v)),
            .error_set => w.string(@errorName(v)),
            .pointer => |p| switch (p.size) {
                .slice => if (p.child == u8) w.string(v) else w.array(v),
                .one => switch (@typeInfo(p.child)) {
                    .array => |a| if (a.child == u8) w.string(v) else w.array(v),
                    else => w.value(v.*),
                },
                else => @compileError("cms: cannot write " ++ @typeName(T) ++ " as JSON"),
            },
            .array => |a| if (a.child == u8) w.string(&v) else w.array(&v),
            .@"struct" => |s| if (comptime std.meta.hasFn(T, "jsonStringify"))
                w.viaStd(v)
            else if (s.is_tuple) {
                w.raw("[");
                inline for (s.fields, 0..) |f, i| {
                    if (i > 0) w.raw(",");
                    w.value(@field(v, f.name));
                }
                w.raw("]");
            } else {
                w.raw("{");
                var first = true;
                inline for (s.fields) |f| {
                    const skip = @typeInfo(f.type) == .optional and w.skip_null_fields and @field(v, f.name) == null;
                    if (!skip) {
                        w.raw(if (first) "\"" ++ f.name ++ "\":" else ",\"" ++ f.name ++ "\":");
                        first = false;
                        w.value(@field(v, f.name));
                    }
                }
                w.raw("}");
            },
            .@"union" => |u| if (comptime std.meta.hasFn(T, "jsonStringify"))
                w.viaStd(v)
            else if (u.tag_type == null)
                @compileError("cms: cannot write the untagged union " ++ @typeName(T) ++ " as JSON")
            else switch (v) {
                inline else => |payload, tag| {
                    w.raw("{\"" ++ @tagName(tag) ++ "\":");
                    w.value(payload);
                    w.raw("}");
                },
            },
            else => @compileError("cms: cannot write " ++ @typeName(T) ++ " as JSON"),
        }
    }

    fn array(w: *JsonWriter, items: anytype) void {
        w.raw("[");
        for (items, 0..) |item, i| {
            if (i > 0) w.raw(",");
            w.value(item);
        }
        w.raw("]");
    }

    fn jsonValue(w: *JsonWriter, v: Value) void {
        switch (v) {
            .null => w.raw("null"),
            .bool => |b| w.value(b),
            .integer => |i| w.value(i),
            .float => |f| w.float(f),
            .number_string => |s| w.raw(s),
            .string => |s| w.string(s),
            .array => |a| w.array(a.items),
            .object => |o| {
                w.raw("{");
                var it = o.iterator();
                var first = true;
                while (it.next()) |entry| {
                    if (!first) w.raw(",");
                    first = false;
                    w.string(entry.key_ptr.*);
                    w.raw(":");
                    w.jsonValue(entry.value_ptr.*);
                }
                w.raw("}");
            },
        }
    }

    fn viaStd(w: *JsonWriter, v: anytype) void {
        std.json.stringify(v, .{}, w.out.writer()) catch noMemory();
    }
};

// ---------------------------------------------------------------------------------------------
// UI blocks (plugin_sdk/ui.py is the schema)

pub const Tone = enum { neutral, info, success, warning, danger };
pub const FieldKind = enum { text, textarea, number, email, tel, date, select, checkbox, hidden };
pub const ButtonStyle = enum { primary, secondary, danger };

pub const KeyValue = struct { key: []const u8, value: []const u8 };
pub const Option = struct { value: []const u8, label: []const u8 };

/// A form field's initial value: `.{ .string = "x" }`, `.{ .integer = 3 }`, `.{ .bool = true }`.
/// (No floats: the float formatter would double the size of every module; use a string.)
pub const Scalar = union(enum) { string: []const u8, integer: i64, bool: bool };

pub const Field = struct {
    name: []const u8,
    label: []const u8,
    kind: ?FieldKind = null,
    value: ?Scalar = null,
    placeholder: ?[]const u8 = null,
    required: ?bool = null,
    options: ?[]const Option = null,
};

/// A form button; `action` (optional) submits to another action than the form's.
pub const Button = struct {
    label: []const u8,
    action: ?[]const u8 = null,
    style: ?ButtonStyle = null,
    value: ?[]const u8 = null,
};

pub const Form = struct {
    action: []const u8,
    title: ?[]const u8 = null,
    fields: []const Field = &.{},
    buttons: []const Button = &.{},
};

pub const TimelineItem = struct {
    time: []const u8,
    title: []const u8,
    text: ?[]const u8 = null,
    tone: ?Tone = null,
};

// ---------------------------------------------------------------------------------------------
// Host calls

pub const Scope = enum { plugin, agent, client };

/// A host answer. `ok` false: `code` and `message` say why ("unavailable", "timeout", an
/// op-defined code, or "bad_answer" when the host's answer could not be read).
pub const Answer = struct {
    ok: bool,
    result: Value = .null,
    code: []const u8 = "",
    message: []const u8 = "",
};

// ---------------------------------------------------------------------------------------------
// Context

pub const Agent = struct { id: i64, username: []const u8, name: []const u8, agency_id: i64 };
pub const Client = struct { id: i64, name: []const u8 };

/// One call: its input, the output being built, and access to the host.
pub const Context = struct {
    allocator: std.mem.Allocator = allocator,
    action: []const u8,
    params: Value,
    context: Value,
    agent: ?Agent = null,
    client: ?Client = null,
    slot: ?[]const u8 = null,

    result_json: ?[]const u8 = null,
    ui_json: std.ArrayList(u8) = std.ArrayList(u8).init(allocator),
    error_code: ?[]const u8 = null,
    error_message: []const u8 = "",

    // --- input ---------------------------------------------------------------------------

    pub fn param(c: *const Context, key: []const u8) ?Value {
        return field(c.params, key);
    }

    pub fn paramString(c: *const Context, key: []const u8, default: []const u8) []const u8 {
        return asString(c.param(key), default);
    }

    pub fn paramInt(c: *const Context, key: []const u8, default: i64) i64 {
        return asInt(c.param(key), default);
    }

    pub fn paramBool(c: *const Context, key: []const u8, default: bool) bool {
        return asBool(c.param(key), default);
    }

    // --- output --------------------------------------------------------------------------

    /// The call's "result": any value JsonWriter takes (structs, slices, std.json.Value, ...).
    pub fn setResult(c: *Context, value: anytype) void {
        c.result_json = c.stringify(value);
    }

    /// Answer {"ok": false, "error": {"code": code, "message": message}} instead of a result.
    pub fn setError(c: *Context, code: []const u8, message: []const u8) void {
        c.error_code = code;
        c.error_message = message;
    }

    /// End the call now as fault "trap" with `message` (for bugs, not for expected errors).
    pub fn fail(_: *const Context, message: []const u8) noreturn {
        abort(.trap, message);
    }

    /// Text formatted with std.fmt, in the call's memory.
    pub fn fmt(c: *const Context, comptime format: []const u8, args: anytype) []const u8 {
        return std.fmt.allocPrint(c.allocator, format, args) catch noMemory();
    }

    /// `value` as compact JSON (see JsonWriter for what a value may be).
    pub fn stringify(_: *const Context, value: anytype) []const u8 {
        return toJson(value, .{});
    }

    pub fn log(_: *const Context, level: Level, comptime format: []const u8, args: anytype) void {
        writeLog(level, format, args);
    }

    // --- UI blocks -----------------------------------------------------------------------

    /// Append any value as a UI block (null optional fields are left out).
    pub fn block(c: *Context, value: anytype) void {
        if (c.ui_json.items.len > 0) c.ui_json.append(',') catch noMemory();
        var w: JsonWriter = .{ .out = &c.ui_json, .skip_null_fields = true };
        w.value(value);
    }

    /// level 1 (largest) to 3.
    pub fn heading(c: *Context, title: []const u8, level: u8) void {
        c.block(.{ .type = "heading", .text = title, .level = std.math.clamp(level, 1, 3) });
    }

    pub fn text(c: *Context, body: []const u8, tone: Tone) void {
        c.block(.{ .type = "text", .text = body, .tone = tone });
    }

    pub fn alert(c: *Context, body: []const u8, tone: Tone) void {
        c.block(.{ .type = "alert", .text = body, .tone = tone });
    }

    pub fn badge(c: *Context, label: []const u8, tone: Tone) void {
        c.block(.{ .type = "badge", .text = label, .tone = tone });
    }

    pub fn keyValue(c: *Context, items: []const KeyValue) void {
        c.block(.{ .type = "key_value", .items = items });
    }

    /// `rows`: a slice of rows or a tuple of tuples of scalars (strings, numbers, bools, null),
    /// for example `.{ .{ "Ada", 3 }, .{ "Grace", 5 } }`.
    pub fn table(c: *Context, columns: []const []const u8, rows: anytype) void {
        c.block(.{ .type = "table", .columns = columns, .rows = rows });
    }

    pub fn list(c: *Context, items: []const []const u8, ordered: bool) void {
        c.block(.{ .type = "list", .items = items, .ordered = ordered });
    }

    /// Empty `fields` and `buttons` are left out (a form of buttons only, or one Submit).
    pub fn form(c: *Context, f: Form) void {
        c.block(.{
            .type = "form",
            .action = f.action,
            .title = f.title,
            .fields = if (f.fields.len > 0) f.fields else null,
            .buttons = if (f.buttons.len > 0) f.buttons else null,
        });
    }

    pub fn terminal(c: *Context, lines: []const []const u8) void {
        c.block(.{ .type = "terminal", .lines = lines });
    }

    pub fn timeline(c: *Context, items: []const TimelineItem) void {
        c.block(.{ .type = "timeline", .items = items });
    }

    /// `href`: tel:, sip:, sips:, mailto: or a path of the CMS ("/clients/12").
    pub fn link(c: *Context, label: []const u8, href: []const u8) void {
        c.block(.{ .type = "link", .text = label, .href = href });
    }

    /// A running clock, "label 03:12", that the page ticks from `since` (a UTC time such as
    /// "2026-11-24T14:05:09Z", the form of the context's "now") without calling the plugin.
    pub fn timer(c: *Context, label: ?[]const u8, since: []const u8) void {
        c.block(.{ .type = "timer", .label = label, .since = since });
    }

    // --- host calls ----------------------------------------------------------------------

    /// Send {"op": op, "args": args} to the host and return its answer. A missing capability
    /// or the 65th host call ends the call (a fault); an error answer is returned as data.
    pub fn call(c: *Context, op: []const u8, args: anytype) Answer {
        const request = if (@TypeOf(args) == @TypeOf(.{}))
            c.stringify(.{ .op = op, .args = Empty{} })
        else
            c.stringify(.{ .op = op, .args = args });
        const answer = unpack(host.call(request.ptr, request.len));
        const parsed = parseJson(answer) catch return bad_answer;
        const ok = field(parsed, "ok") orelse return bad_answer;
        if (ok == .bool and ok.bool) return .{ .ok = true, .result = field(parsed, "result") orelse .null };
        const err = field(parsed, "error");
        return .{
            .ok = false,
            .code = asString(field(err, "code"), "bad_answer"),
            .message = asString(field(err, "message"), "the host gave no message"),
        };
    }

    /// The stored value (Answer.result; JSON null when the key is not set).
    pub fn kvGet(c: *Context, key: []const u8, scope: Scope) Answer {
        return unwrap(c.call("kv.get", .{ .key = key, .scope = scope }), "value");
    }

    /// Store any JSON-writable value.
    pub fn kvSet(c: *Context, key: []const u8, value: anytype, scope: Scope) Answer {
        return c.call("kv.set", .{ .key = key, .value = value, .scope = scope });
    }

    /// Answer.result: whether a value was deleted (bool).
    pub fn kvDelete(c: *Context, key: []const u8, scope: Scope) Answer {
        return unwrap(c.call("kv.delete", .{ .key = key, .scope = scope }), "deleted");
    }

    /// Answer.result: the keys starting with `prefix` (an array of strings).
    pub fn kvList(c: *Context, prefix: []const u8, scope: Scope) Answer {
        return unwrap(c.call("kv.list", .{ .prefix = prefix, .scope = scope }), "keys");
    }
};

const Empty = struct {};

fn unwrap(answer: Answer, key: []const u8) Answer {
    var a = answer;
    if (a.ok) a.result = field(a.result, key) orelse .null;
    return a;
}

const bad_answer: Answer = .{ .ok = false, .code = "bad_answer", .message = "the host's answer is not a JSON answer" };

// ---------------------------------------------------------------------------------------------
// Dispatch

fn actionNames(comptime actions: anytype) []const u8 {
    comptime var names: []const u8 = "";
    inline for (comptime std.meta.fields(@TypeOf(actions)), 0..) |f, i|
        names = names ++ (if (i == 0) "" else ", ") ++ f.name;
    return names;
}

fn handleInput(comptime actions: anytype, input: []const u8) []const u8 {
    var c = parseInput(input) orelse
        return errorOutput("bad_input", "the input is not an envelope {\"action\": str, \"params\": {}, \"context\": {}}");
    dispatch(actions, &c);
    return finish(&c);
}

fn parseInput(input: []const u8) ?Context {
    const envelope = parseJson(input) catch return null;
    if (envelope != .object) return null;
    const action = field(envelope, "action") orelse return null;
    if (action != .string) return null;
    const empty: Value = .{ .object = std.json.ObjectMap.init(allocator) };
    const params = field(envelope, "params") orelse empty;
    const context = field(envelope, "context") orelse empty;
    if (params != .object or context != .object) return null;

    var c: Context = .{ .action = action.string, .params = params, .context = context };
    if (field(context, "agent")) |a| if (a == .object) {
        c.agent = .{
            .id = asInt(field(a, "id"), 0),
            .username = asString(field(a, "username"), ""),
            .name = asString(field(a, "name"), ""),
            .agency_id = asInt(field(a, "agency_id"), 0),
        };
    };
    if (field(context, "client")) |cl| if (cl == .object) {
        c.client = .{ .id = asInt(field(cl, "id"), 0), .name = asString(field(cl, "name"), "") };
    };
    if (field(context, "slot")) |s| if (s == .string) {
        c.slot = s.string;
    };
    return c;
}

fn dispatch(comptime actions: anytype, c: *Context) void {
    inline for (comptime std.meta.fields(@TypeOf(actions))) |f| {
        if (std.mem.eql(u8, c.action, f.name)) return run(c, f.name, @field(actions, f.name));
    }
    const names = comptime actionNames(actions);
    c.setError("unknown_action", c.fmt("this plugin has no action \"{s}\" (it has {s})", .{ c.action, names }));
}

fn run(c: *Context, comptime name: []const u8, comptime handler: anytype) void {
    const Handler = @TypeOf(handler);
    const info = @typeInfo(Handler);
    if (info != .@"fn" or info.@"fn".params.len != 1 or info.@"fn".params[0].type != *Context)
        @compileError("cms: action " ++ name ++ " must be fn (c: *cms.Context) !void, not " ++ @typeName(Handler));
    const Return = info.@"fn".return_type.?;
    if (@typeInfo(Return) != .error_union) return handler(c);
    handler(c) catch |err| {
        const e: anyerror = err;
        if (e == error.OutOfMemory) abort(.memory_limit, "out of memory in action " ++ name);
        if (c.error_code == null)
            c.setError(snakeCase(@errorName(e)), c.fmt("action " ++ name ++ " failed: error.{s}", .{@errorName(e)}));
    };
}

/// "BadName" -> "bad_name", "HTTPError" -> "http_error".
fn snakeCase(name: []const u8) []const u8 {
    var out = std.ArrayList(u8).initCapacity(allocator, name.len + 8) catch noMemory();
    for (name, 0..) |ch, i| {
        if (std.ascii.isUpper(ch)) {
            const after_lower = i > 0 and (std.ascii.isLower(name[i - 1]) or std.ascii.isDigit(name[i - 1]));
            const ends_acronym = i > 0 and std.ascii.isUpper(name[i - 1]) and i + 1 < name.len and std.ascii.isLower(name[i + 1]);
            if (after_lower or ends_acronym) out.append('_') catch noMemory();
            out.append(std.ascii.toLower(ch)) catch noMemory();
        } else out.append(ch) catch noMemory();
    }
    return out.items;
}

fn finish(c: *Context) []const u8 {
    if (c.error_code) |code| return errorOutput(code, c.error_message);
    var out = std.ArrayList(u8).init(allocator);
    out.appendSlice("{\"ok\":true") catch noMemory();
    if (c.result_json) |result| {
        out.appendSlice(",\"result\":") catch noMemory();
        out.appendSlice(result) catch noMemory();
    }
    if (c.ui_json.items.len > 0) {
        out.appendSlice(",\"ui\":[") catch noMemory();
        out.appendSlice(c.ui_json.items) catch noMemory();
        out.append(']') catch noMemory();
    }
    out.append('}') catch noMemory();
    if (out.items.len > max_output_bytes)
        return errorOutput("output_too_large", "the output is larger than 256 KiB");
    return out.items;
}

fn errorOutput(code: []const u8, message: []const u8) []const u8 {
    return toJson(.{ .ok = false, .@"error" = .{ .code = code, .message = message } }, .{});
}
