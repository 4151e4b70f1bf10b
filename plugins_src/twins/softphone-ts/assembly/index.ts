// Softphone in TypeScript: the C softphone's (plugins_src/softphone) click-to-call, wrap-up and
// scheduling a callback (the client panel's form), ported action by action so that both answer
// the same (tests/sdk/test_twin_ts.py compares them).
//
// State, in kv: plugin "settings" {"link": "tel"|"sip", "sip_domain": ...} (agency-wide), agent
// "call" {"number", "client_id", "client_name", "started"} (the running call) and agent
// "callbacks" [{"when": "YYYY-MM-DD HH:MM", "client_id", "client_name", "note"}]. Time comes
// from context.now (plugins have no clock). Host trouble never fails a call: the plugin answers
// ok with an alert saying what could not be done.
import { Action, Button, Ctx, Field, INFO, JsonValue, JsonWriter, Option, handle } from "cms";
export { cms_alloc, cms_abi_version } from "cms";

const MIN_DIGITS = 6;
const NAME_CHARS = 80; // client names in titles and labels are clipped to this many UTF-8 bytes
const TIMER_UNAVAILABLE = "Call timer unavailable: this call is not being timed";

// ---- small helpers ---------------------------------------------------------------------------

function isDigit(c: i32): bool { return c >= 0x30 && c <= 0x39; }

/** The character code at `i`, 0 past the end (like C's NUL). */
function at(s: string, i: i32): i32 { return i < s.length ? s.charCodeAt(i) : 0; }

/** The number with only a leading + and its digits: "+44 (20) 7946-0000" -> "+442079460000". */
function normalise(raw: string): string {
  let out = "";
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c == 0) break;
    if (isDigit(c) || (c == 0x2B && out.length == 0)) out += String.fromCharCode(c);
  }
  return out;
}

function countDigits(s: string): i32 {
  let n = 0;
  for (let i = 0; i < s.length; i++) if (isDigit(s.charCodeAt(i))) n++;
  return n;
}

/** Without leading and trailing ASCII whitespace. */
function trimAscii(s: string): string {
  let start = 0, end = s.length;
  while (start < end && (s.charCodeAt(start) == 0x20 || (s.charCodeAt(start) >= 0x09 && s.charCodeAt(start) <= 0x0D))) start++;
  while (end > start && (s.charCodeAt(end - 1) == 0x20 || (s.charCodeAt(end - 1) >= 0x09 && s.charCodeAt(end - 1) <= 0x0D))) end--;
  return s.substring(start, end);
}

/** At most `max` UTF-8 bytes of s, cut on a character boundary, with "..." when cut. */
function clip(s: string, max: i32): string {
  const bytes = String.UTF8.encode(s);
  if (bytes.byteLength <= max) return s;
  const base = changetype<usize>(bytes);
  while (max > 0 && (load<u8>(base + <usize>max) & 0xC0) == 0x80) max--;
  return String.UTF8.decodeUnsafe(base, <usize>max) + "...";
}

function two(v: i64): string { return (v < 10 ? "0" : "") + v.toString(); }

/** A running call's timer: "03:12", or "1:03:12" past an hour. */
function clockText(s: i64): string {
  if (s < 0) s = 0;
  if (s >= 3600) return `${s / 3600}:${two(s / 60 % 60)}:${two(s % 60)}`;
  return `${two(s / 60)}:${two(s % 60)}`;
}

/** A finished call's length: "45s", "3m12s", "1h03m12s". */
function durationText(s: i64): string {
  if (s < 0) s = 0;
  if (s >= 3600) return `${s / 3600}h${two(s / 60 % 60)}m${two(s % 60)}s`;
  if (s >= 60) return `${s / 60}m${two(s % 60)}s`;
  return `${s}s`;
}

// ---- time: ISO 8601 and "YYYY-MM-DD HH:MM" to seconds since 1970 (UTC) -----------------------

/** `n` digits of s from `from` as a number, or -1. */
function num(s: string, from: i32, n: i32): i32 {
  let v = 0;
  for (let i = from; i < from + n; i++) {
    const c = at(s, i);
    if (!isDigit(c)) return -1;
    v = v * 10 + (c - 0x30);
  }
  return v;
}

function daysFromCivil(y: i64, m: i64, d: i64): i64 { // days since 1970-01-01
  y -= m <= 2 ? 1 : 0;
  const era = (y >= 0 ? y : y - 399) / 400;
  const yoe = y - era * 400;
  const doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

/** Seconds since 1970 (t >= 0) as the UTC time a timer block starts from: "2026-11-24T14:05:09Z". */
function utcStamp(t: i64): string {
  const z = t / 86400 + 719468, secs = t % 86400;
  const era = z / 146097, doe = z - era * 146097;
  const yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
  const d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
  const y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  return `${y}-${two(m)}-${two(d)}T${two(secs / 3600)}:${two(secs / 60 % 60)}:${two(secs % 60)}Z`;
}

function daysInMonth(y: i32, m: i32): i32 {
  const leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (m == 2) return leap ? 29 : 28;
  return m == 4 || m == 6 || m == 9 || m == 11 ? 30 : 31;
}

/** "YYYY-MM-DD HH:MM" (or with T) at the start of s: seconds, or -1. */
function parseMinute(s: string): i64 {
  const y = num(s, 0, 4), mo = num(s, 5, 2), d = num(s, 8, 2), h = num(s, 11, 2), mi = num(s, 14, 2);
  const sep = at(s, 10);
  if (y < 0 || at(s, 4) != 0x2D || mo < 0 || at(s, 7) != 0x2D || d < 0
      || (sep != 0x20 && sep != 0x54 && sep != 0x74) || h < 0 || at(s, 13) != 0x3A || mi < 0) return -1;
  if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo) || h > 23 || mi > 59) return -1;
  return daysFromCivil(y, mo, d) * 86400 + <i64>h * 3600 + <i64>mi * 60;
}

/** ISO 8601 as the host sends context.now: "2026-11-24T14:05:09Z", fractions and offsets
 *  allowed; -1 when it is not one (times before 1970 are not accepted). */
function parseIso(s: string | null): i64 {
  if (s === null) return -1;
  let t = parseMinute(s);
  if (t < 0) return -1;
  let p = 16;
  if (at(s, p) == 0x3A) {
    const sec = num(s, p + 1, 2);
    if (sec < 0 || sec > 60) return -1;
    t += sec;
    p += 3;
    if (at(s, p) == 0x2E || at(s, p) == 0x2C) {
      p++;
      if (!isDigit(at(s, p))) return -1;
      while (isDigit(at(s, p))) p++;
    }
  }
  const c = at(s, p);
  if (c == 0x5A || c == 0x7A) return at(s, p + 1) == 0 && p + 1 >= s.length ? t : -1;
  if (c == 0x2B || c == 0x2D) {
    const oh = num(s, p + 1, 2), om = num(s, p + 4, 2);
    if (oh < 0 || at(s, p + 3) != 0x3A || om < 0 || p + 6 < s.length) return -1;
    return t - (c == 0x2B ? 1 : -1) * (<i64>oh * 3600 + <i64>om * 60);
  }
  return p >= s.length ? t : -1; // no zone: UTC
}

function optString(v: JsonValue): string | null { return v.isString ? v.str : null; }

/** context.now in seconds, or -1 when the host did not send a usable one. */
function nowS(ctx: Ctx): i64 { return parseIso(optString(ctx.context.get("now"))); }

/** Seconds from an ISO time to context.now; -1 when either is missing or not a time. */
function elapsedSince(ctx: Ctx, started: string | null): i64 {
  const now = nowS(ctx), then = parseIso(started);
  if (now < 0 || then < 0) return -1;
  return now > then ? now - then : 0;
}

// ---- settings and links ----------------------------------------------------------------------

function hostnameOk(s: string): bool {
  const n = s.length;
  if (!n || n > 253) return false;
  const first = s.charCodeAt(0), last = s.charCodeAt(n - 1);
  if (first == 0x2E || first == 0x2D || last == 0x2E || last == 0x2D) return false;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c == 0x2E && (at(s, i + 1) == 0x2E || at(s, i + 1) == 0x2D || s.charCodeAt(i - 1) == 0x2D)) return false;
    if (!isDigit(c) && !(c >= 0x61 && c <= 0x7A) && !(c >= 0x41 && c <= 0x5A) && c != 0x2E && c != 0x2D) return false;
  }
  return true;
}

/** How numbers are dialled: sip: links on `domain`, else tel: links (also when unreadable). */
class Settings {
  sip: bool = false;
  domain: string = "";
}

function loadSettings(ctx: Ctx): Settings {
  const s = new Settings();
  const v = ctx.kvGet("settings", "plugin");
  if (v === null) return s;
  const domain = v.get("sip_domain").asString("");
  if (v.get("link").asString("tel") == "sip" && hostnameOk(domain)) {
    s.sip = true;
    s.domain = domain;
  }
  return s;
}

function hrefFor(s: Settings, number: string): string {
  return s.sip ? `sip:${number}@${s.domain}` : `tel:${number}`;
}

// ---- the running call (kv agent "call") ------------------------------------------------------

/** The running call (null when there is none) and whether kv could not say. */
class CallState {
  constructor(public call: JsonValue | null, public unavailable: bool) {}
}

function loadCall(ctx: Ctx): CallState {
  const v = ctx.kvGet("call", "agent");
  if (v === null) return new CallState(null, true);
  return new CallState(v.isObject && v.get("number").asString("").length > 0 ? v : null, false);
}

function callWho(call: JsonValue): string {
  const number = call.get("number").asString("");
  const name = call.get("client_name").asString("");
  return name.length > 0 ? `${clip(name, NAME_CHARS)} (${number})` : number;
}

/** "On call 03:12", ticking on the page, and the hang-up button. */
function showCall(ctx: Ctx, call: JsonValue): void {
  const secs = elapsedSince(ctx, optString(call.get("started")));
  if (secs < 0) ctx.ui.badge("On call", "success");
  else ctx.ui.timer(utcStamp(nowS(ctx) - secs), "On call");
  ctx.ui.form("hangup", `Call with ${callWho(call)}`);
  ctx.ui.button(new Button("Hang up").withStyle("danger"));
}

function dialPad(ctx: Ctx): void {
  ctx.ui.form("dial");
  ctx.ui.field(new Field("number").withLabel("Number").withKind("tel")
    .withPlaceholder("+44 20 7946 0000").withRequired());
  ctx.ui.button(new Button("Call").withStyle("primary"));
}

// ---- panels ----------------------------------------------------------------------------------

/** agent.toolbar: the running call (timer and hang up), else a compact dial pad. */
function toolbar(ctx: Ctx): void {
  const state = loadCall(ctx);
  if (state.unavailable) ctx.ui.alert("Call state unavailable", "warning");
  const call = state.call;
  if (call !== null) showCall(ctx, call);
  else dialPad(ctx);
  ctx.result().obj().kbool("on_call", call !== null).end();
}

/** client.sidebar: call this client, the call in progress with them, schedule a callback. */
function clientPanel(ctx: Ctx): void {
  const client = ctx.context.get("client");
  const id = client.get("id").asInt(0);
  if (!client.isObject || id <= 0) {
    ctx.ui.text("Open a client to call them", "neutral");
    return;
  }
  const name = clip(client.get("name").asString(""), NAME_CHARS);
  const number = normalise(client.get("phone").asString(""));
  const callable = countDigits(number) >= MIN_DIGITS && number.length <= 32;

  const state = loadCall(ctx);
  const call = state.call;
  const withClient = call !== null && call.get("client_id").asInt(0) == id;
  if (state.unavailable) ctx.ui.alert("Call state unavailable", "warning");
  if (call !== null && withClient) showCall(ctx, call);

  if (callable) {
    ctx.ui.link(`Call ${number}`, hrefFor(loadSettings(ctx), number));
    if (!withClient) {
      ctx.ui.form("dial", name.length > 0 ? `Call ${name} and time it` : "Call and time it");
      ctx.ui.field(new Field("number").withLabel("Number").withKind("hidden").withValue(number));
      ctx.ui.field(new Field("client_id").withLabel("Client").withKind("hidden").withValueJson(id.toString()));
      ctx.ui.button(new Button("Call").withStyle("primary"));
    }
  } else {
    ctx.ui.text("No phone number on file", "neutral");
  }

  ctx.ui.form("schedule_callback", "Schedule a callback");
  ctx.ui.field(new Field("client_id").withLabel("Client").withKind("hidden").withValueJson(id.toString()));
  ctx.ui.field(new Field("when").withLabel("When (UTC)").withKind("text")
    .withPlaceholder("2026-12-01 14:30").withRequired());
  ctx.ui.field(new Field("note").withLabel("Note").withKind("text").withPlaceholder("Wants a quote for March"));
  ctx.ui.button(new Button("Schedule").withStyle("secondary"));

  ctx.result().obj().kstrOrNull("number", callable ? number : null).kbool("on_call", withClient).end();
}

// ---- dial, hang up, wrap up ------------------------------------------------------------------

function dial(ctx: Ctx): void {
  const number = normalise(ctx.param("number").asString(""));
  if (countDigits(number) < MIN_DIGITS) {
    ctx.error("bad_number", "Enter a phone number with at least 6 digits");
    return;
  }
  const clientId = ctx.param("client_id").asInt(0);
  const client = ctx.context.get("client");
  const clientName = clientId > 0 && client.get("id").asInt(0) == clientId
    ? optString(client.get("name")) : null;

  const href = hrefFor(loadSettings(ctx), number);
  const call = new JsonWriter().obj().kstr("number", number);
  if (clientId > 0) call.kint("client_id", clientId);
  else call.knull("client_id");
  call.kstrOrNull("client_name", clientName).kvalue("started", ctx.context.get("now")).end();
  const timed = ctx.kvSet("call", "agent", call.toString());

  ctx.result().obj().kstr("href", href).kstr("number", number).kbool("timed", timed).end();

  ctx.ui.link(`Call ${number}`, href);
  ctx.ui.badge("Calling", "info");
  if (timed) {
    ctx.ui.form("hangup", clientName !== null ? `Call with ${clip(clientName, NAME_CHARS)}` : null);
    ctx.ui.button(new Button("Hang up").withStyle("danger"));
  } else {
    ctx.ui.alert(TIMER_UNAVAILABLE, "warning");
  }
}

const DISPOSITIONS: Option[] = [
  new Option("booked", "Booked"), new Option("quote_sent", "Quote sent"),
  new Option("callback", "Callback needed"), new Option("no_answer", "No answer"),
  new Option("wrong_number", "Wrong number"), new Option("other", "Other")];

function dispositionLabel(code: string): string | null {
  for (let i = 0; i < DISPOSITIONS.length; i++) if (DISPOSITIONS[i].value == code) return DISPOSITIONS[i].label;
  return null;
}

/** The wrap-up form; `disposition` and `notes` prefill it (null: empty). */
function wrapUpForm(ctx: Ctx, number: string, clientId: i64, secs: i64, title: string,
                    disposition: string | null, notes: string | null): void {
  ctx.ui.form("wrap_up", title);
  ctx.ui.field(new Field("disposition").withLabel("Outcome").withKind("select").withValue(disposition)
    .withRequired().withOptions(DISPOSITIONS));
  ctx.ui.field(new Field("notes").withLabel("Notes").withKind("textarea")
    .withValue(notes !== null && notes.length > 0 ? notes : null).withPlaceholder("What was agreed"));
  if (clientId > 0) {
    ctx.ui.field(new Field("client_id").withLabel("Client").withKind("hidden").withValueJson(clientId.toString()));
  }
  ctx.ui.field(new Field("number").withLabel("Number").withKind("hidden").withValue(number));
  ctx.ui.field(new Field("duration_s").withLabel("Duration").withKind("hidden").withValueJson(secs.toString()));
  ctx.ui.button(new Button("Log call").withStyle("primary"));
}

function hangup(ctx: Ctx): void {
  const state = loadCall(ctx);
  const call = state.call;
  if (call === null) {
    ctx.result().obj().kint("duration_s", 0).kbool("ended", false).end();
    if (state.unavailable) ctx.ui.alert("Call state unavailable: hang up on your phone and try again", "warning");
    else ctx.ui.text("No call in progress", "neutral");
    return;
  }
  const number = call.get("number").asString("");
  const clientId = call.get("client_id").asInt(0);
  let secs = elapsedSince(ctx, optString(call.get("started")));
  const timed = secs >= 0;
  if (!timed) secs = 0;
  const cleared = ctx.kvDelete("call", "agent");
  ctx.log(INFO, `hang up ${number} after ${secs}s`);

  ctx.result().obj().kint("duration_s", secs).kbool("ended", true).end();

  ctx.ui.badge(timed ? `Call ended ${clockText(secs)}` : "Call ended", "neutral");
  if (!cleared) ctx.ui.alert("The call could not be cleared: press Hang up again in a moment", "warning");
  wrapUpForm(ctx, number, clientId, secs, `Wrap up: ${callWho(call)}, ${durationText(secs)}`, null, null);
}

function wrapUp(ctx: Ctx): void {
  const code = ctx.param("disposition").asString("");
  const label = dispositionLabel(code);
  if (label === null) {
    ctx.error("bad_disposition", "Choose an outcome for the call");
    return;
  }
  const number = normalise(ctx.param("number").asString(""));
  const notes = trimAscii(ctx.param("notes").asString(""));
  const clientId = ctx.param("client_id").asInt(0);
  let secs = ctx.param("duration_s").asInt(0);
  if (secs < 0) secs = 0;

  const text = `Call to ${number.length > 0 ? number : "an unknown number"} ${durationText(secs)}: ${label}.`
    + (notes.length > 0 ? " " : "") + notes;
  let logged = false;
  let problem: string | null = null;
  if (clientId > 0) {
    const args = new JsonWriter().obj().kint("client_id", clientId).kstr("kind", "call").kstr("text", text)
      .kobj("data").kstr("disposition", code).kint("duration_s", secs).kstr("number", number).end().end();
    const answer = ctx.call("activity.add", args.toString());
    logged = answer.ok;
    if (!logged) {
      const code = answer.code;
      const why = answer.message.length > 0 ? answer.message : code !== null ? code : "";
      problem = answer.transient
        ? "Call not logged: the client's timeline is unavailable, try again"
        : `Call not logged: ${clip(why, 200)}`;
    }
  }
  ctx.log(INFO, `wrap up ${number}: ${code} (${secs}s)${logged ? ", logged" : ""}`);

  ctx.result().obj().kbool("logged", logged).kstr("text", text).end();

  if (logged) {
    ctx.ui.alert("Call logged", "success");
  } else if (problem !== null) {
    ctx.ui.alert(problem, "warning");
    wrapUpForm(ctx, number, clientId, secs, "Log the call again", code, notes);
  } else {
    ctx.ui.alert("Call finished (no client to log it on)", "info");
  }
}

// ---- callbacks (kv agent "callbacks": sorted by time, at most MAX_CALLBACKS) -----------------

const MAX_CALLBACKS = 20;

class Callback {
  constructor(public when: string, public clientId: i64, public clientName: string | null,
              public note: string) {}
}

/** The agent's callbacks (entries that are not ours skipped), or null when kv could not say. */
function loadCallbacks(ctx: Ctx): Callback[] | null {
  const v = ctx.kvGet("callbacks", "agent");
  if (v === null) return null;
  const list: Callback[] = [];
  const entries = v.isArray ? v.children : [];
  for (let i = 0; i < entries.length && list.length < MAX_CALLBACKS; i++) {
    const e = entries[i];
    const when = e.get("when").asString("");
    if (when.length != 16 || parseMinute(when) < 0) continue;
    list.push(new Callback(when, e.get("client_id").asInt(0), optString(e.get("client_name")),
                           e.get("note").asString("")));
  }
  return list;
}

/** Text order of two times in the same format, which is time order. */
function whenAfter(a: string, b: string): bool {
  const n = min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a.charCodeAt(i) != b.charCodeAt(i)) return a.charCodeAt(i) > b.charCodeAt(i);
  return a.length > b.length;
}

function saveCallbacks(ctx: Ctx, list: Callback[]): bool {
  const b = new JsonWriter().arr();
  for (let i = 0; i < list.length; i++) {
    const c = list[i];
    b.obj().kstr("when", c.when).kint("client_id", c.clientId).kstrOrNull("client_name", c.clientName)
      .kstr("note", c.note).end();
  }
  return ctx.kvSet("callbacks", "agent", b.end().toString());
}

function scheduleCallback(ctx: Ctx): void {
  const clientId = ctx.param("client_id").asInt(0);
  const raw = trimAscii(ctx.param("when").asString(""));
  const note = clip(trimAscii(ctx.param("note").asString("")), 200);
  const whenT = raw.length == 16 ? parseMinute(raw) : -1;
  if (whenT < 0) {
    ctx.error("bad_time", "Give the time as YYYY-MM-DD HH:MM, for example 2026-12-01 14:30");
    return;
  }
  const now = nowS(ctx);
  if (now >= 0 && whenT < now - now % 60) {
    ctx.error("bad_time", "That time has passed: choose a time from now on");
    return;
  }
  if (clientId <= 0) {
    ctx.error("bad_client", "A callback needs a client");
    return;
  }
  const when = raw.substring(0, 10) + " " + raw.substring(11); // the canonical "YYYY-MM-DD HH:MM"
  const client = ctx.context.get("client");
  const name = client.get("id").asInt(0) == clientId ? optString(client.get("name")) : null;

  const list = loadCallbacks(ctx);
  let saved = false, dropped = 0;
  if (list !== null) {
    const fresh = new Callback(when, clientId, name, note);
    let at = -1;
    for (let i = 0; i < list.length; i++) { // the same client at the same time: update it
      if (list[i].clientId == clientId && list[i].when == when) {
        if (name === null) fresh.clientName = list[i].clientName;
        list[i] = fresh;
        at = i;
        break;
      }
    }
    if (at < 0) { // insert in time order (after equal times)
      list.push(fresh);
      for (at = list.length - 1; at > 0 && whenAfter(list[at - 1].when, when); at--) list[at] = list[at - 1];
      list[at] = fresh;
    }
    while (list.length > MAX_CALLBACKS) { // full: drop the earliest that is not the new one
      const drop = at == 0 ? 1 : 0;
      list.splice(drop, 1);
      if (drop < at) at--;
      dropped++;
    }
    saved = saveCallbacks(ctx, list);
  }
  const who = name !== null ? clip(name, NAME_CHARS) : `client #${clientId}`;

  const r = ctx.result().obj();
  if (saved && list !== null) r.kint("scheduled", list.length);
  else r.knull("scheduled");
  r.kbool("saved", saved).kstr("when", when).end();
  if (saved) {
    ctx.ui.alert(`Callback to ${who} scheduled for ${when}`, "success");
    if (dropped) ctx.ui.text(`At most ${MAX_CALLBACKS} callbacks are kept: the earliest was removed`, "warning");
  } else {
    ctx.ui.alert("Callbacks unavailable right now: the callback was not scheduled, try again", "warning");
  }
}

/** Action name -> function. The names match [actions.*] in plugin.toml. */
export function cms_handle(ptr: usize, len: usize): u64 {
  return handle(ptr, len, [
    new Action("toolbar", toolbar), new Action("client_panel", clientPanel), new Action("dial", dial),
    new Action("hangup", hangup), new Action("wrap_up", wrapUp),
    new Action("schedule_callback", scheduleCallback)]);
}
