//! Softphone in Rust: the C softphone's (plugins_src/softphone) click-to-call, call timer,
//! wrap-up and callback scheduling, answer for answer the same (tests/sdk/test_twin_rust.py compares them).
//!
//! State in kv: plugin "settings" {"link": "tel"|"sip", "sip_domain"} (agency-wide) and agent
//! "call" {"number", "client_id", "client_name", "started"} (the running call), agent "callbacks"
//! [{"when": "YYYY-MM-DD HH:MM", "client_id", "client_name", "note"}] (by time, at most 20;
//! scheduled from the client panel; the dashboard widget is not ported). Time comes from
//! context.now. Host trouble never fails a call: the answer says what could not be done.
use cms_plugin::{Button, Ctx, Field, Form, Kind, Level, Scope, Style, Tone, Type, Value, Writer};

const MAX_CALLBACKS: usize = 20;
const MIN_DIGITS: usize = 6;
const NAME_CHARS: usize = 80; // client names in titles and labels are clipped to this
const TIMER_UNAVAILABLE: &str = "Call timer unavailable: this call is not being timed";
const DISPOSITIONS: &[(&str, &str)] = &[
    ("booked", "Booked"), ("quote_sent", "Quote sent"), ("callback", "Callback needed"),
    ("no_answer", "No answer"), ("wrong_number", "Wrong number"), ("other", "Other")];

// ---- small helpers -------------------------------------------------------------------------

/// The number with only a leading + and its digits: "+44 (20) 7946-0000" -> "+442079460000".
fn normalise(raw: &str) -> String {
    let mut out = String::new();
    for c in raw.chars() {
        if c.is_ascii_digit() || (c == '+' && out.is_empty()) {
            out.push(c);
        }
    }
    out
}

fn count_digits(s: &str) -> usize {
    s.bytes().filter(u8::is_ascii_digit).count()
}

/// At most `max` bytes of s, cut on a character boundary, with "..." when cut.
fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

fn ascii_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c == ' ' || ('\t'..='\r').contains(&c))
}

/// A running call's timer: "03:12", or "1:03:12" past an hour.
fn clock_text(s: i64) -> String {
    let s = s.max(0);
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{:02}:{:02}", s / 60, s % 60)
    }
}

/// A finished call's length: "45s", "3m12s", "1h03m12s".
fn duration_text(s: i64) -> String {
    let s = s.max(0);
    if s >= 3600 {
        format!("{}h{:02}m{:02}s", s / 3600, s / 60 % 60, s % 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}s", s)
    }
}

// ---- time: ISO 8601 and "YYYY-MM-DD HH:MM" to seconds since 1970 (UTC) ----------------------

/// `n` digits at `at`.
fn num(s: &[u8], at: usize, n: usize) -> Option<i64> {
    let mut v = 0;
    for i in at..at + n {
        let c = *s.get(i)?;
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as i64;
    }
    Some(v)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Seconds since 1970 (t >= 0) as the UTC time a timer starts from: "2026-11-24T14:05:09Z".
fn utc_stamp(t: i64) -> String {
    let (z, secs) = (t / 86400 + 719468, t % 86400);
    let era = z / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + (m <= 2) as i64;
    format!("{}-{:02}-{:02}T{:02}:{:02}:{:02}Z", y, m, d, secs / 3600, secs / 60 % 60, secs % 60)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    const DAYS: [i64; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if m == 2 && leap { 29 } else { DAYS[(m - 1) as usize] }
}

/// "YYYY-MM-DD HH:MM" (or with T) at the start of s: the time, and the offset after the minutes.
fn parse_minute(s: &[u8]) -> Option<(i64, usize)> {
    let at = |i: usize| s.get(i).copied().unwrap_or(0);
    let y = num(s, 0, 4)?;
    if at(4) != b'-' || at(7) != b'-' || !matches!(at(10), b' ' | b'T' | b't') || at(13) != b':' {
        return None;
    }
    let (mo, d, h, mi) = (num(s, 5, 2)?, num(s, 8, 2)?, num(s, 11, 2)?, num(s, 14, 2)?);
    if y < 1970 || !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 {
        return None;
    }
    Some((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60, 16))
}

/// ISO 8601 as the host sends context.now: "2026-11-24T14:05:09Z", fractions and offsets allowed.
fn parse_iso(s: Option<&str>) -> Option<i64> {
    let s = s?.as_bytes();
    let at = |i: usize| s.get(i).copied().unwrap_or(0);
    let (mut t, mut p) = parse_minute(s)?;
    if at(p) == b':' {
        let sec = num(s, p + 1, 2)?;
        if sec > 60 {
            return None;
        }
        t += sec;
        p += 3;
        if matches!(at(p), b'.' | b',') {
            p += 1;
            if !at(p).is_ascii_digit() {
                return None;
            }
            while at(p).is_ascii_digit() {
                p += 1;
            }
        }
    }
    match at(p) {
        b'Z' | b'z' => (p + 1 == s.len()).then(|| t),
        sign @ (b'+' | b'-') => {
            let (oh, om) = (num(s, p + 1, 2)?, num(s, p + 4, 2)?);
            if at(p + 3) != b':' || p + 6 != s.len() {
                return None;
            }
            Some(t - if sign == b'+' { 1 } else { -1 } * (oh * 3600 + om * 60))
        }
        _ => (p == s.len()).then(|| t), // no zone: UTC
    }
}

fn now_s(ctx: &Ctx) -> Option<i64> {
    parse_iso(ctx.context.get("now").as_str())
}

/// Seconds from an ISO time to context.now; -1 when either is missing or not a time.
fn elapsed_since(ctx: &Ctx, started: Option<&str>) -> i64 {
    match (now_s(ctx), parse_iso(started)) {
        (Some(now), Some(then)) => (now - then).max(0),
        _ => -1,
    }
}

// ---- settings and links --------------------------------------------------------------------

fn hostname_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let n = b.len();
    if n == 0 || n > 253 || matches!(b[0], b'.' | b'-') || matches!(b[n - 1], b'.' | b'-') {
        return false;
    }
    b.iter().enumerate().all(|(i, &c)| {
        let empty_label = c == b'.' && (matches!(b.get(i + 1), Some(b'.' | b'-')) || b[i - 1] == b'-');
        !empty_label && (c.is_ascii_alphanumeric() || c == b'.' || c == b'-')
    })
}

/// The sip: domain, or None for tel: links (also when the settings could not be read).
fn sip_domain(ctx: &mut Ctx) -> Option<String> {
    let v = ctx.kv_get("settings", Some(Scope::Plugin)).ok()?;
    let domain = v.get("sip_domain").str_or("");
    (v.get("link").str_or("tel") == "sip" && hostname_ok(domain)).then(|| domain.to_string())
}

fn href_for(domain: &Option<String>, number: &str) -> String {
    match domain {
        Some(domain) => format!("sip:{}@{}", number, domain),
        None => format!("tel:{}", number),
    }
}

// ---- the running call (kv agent "call") ----------------------------------------------------

/// (the running call or None, whether kv could not say).
fn load_call(ctx: &mut Ctx) -> (Option<Value>, bool) {
    match ctx.kv_get("call", Some(Scope::Agent)) {
        Ok(v) if v.kind() == Type::Object && !v.get("number").str_or("").is_empty() => (Some(v), false),
        Ok(_) => (None, false),
        Err(_) => (None, true),
    }
}

fn call_who(call: &Value) -> String {
    let number = call.get("number").str_or("");
    let name = call.get("client_name").str_or("");
    if name.is_empty() { number.to_string() } else { format!("{} ({})", clip(name, NAME_CHARS), number) }
}

/// "On call 03:12", ticking on the page, and the hang-up button.
fn show_call(ctx: &mut Ctx, call: &Value) {
    let secs = elapsed_since(ctx, call.get("started").as_str());
    if secs < 0 {
        ctx.badge("On call", Tone::Success);
    } else {
        let since = utc_stamp(now_s(ctx).unwrap_or(0) - secs);
        ctx.timer(&since, Some("On call"));
    }
    ctx.form(Form::new("hangup").title(&format!("Call with {}", call_who(call)))
        .button(Button::new("Hang up").style(Style::Danger)));
}

fn dial_pad(ctx: &mut Ctx) {
    ctx.form(Form::new("dial")
        .field(Field::new("number", "Number").kind(Kind::Tel).placeholder("+44 20 7946 0000").required())
        .button(Button::new("Call").style(Style::Primary)));
}

// ---- panels --------------------------------------------------------------------------------

/// agent.toolbar: the running call (timer and hang up), else a compact dial pad.
fn toolbar(ctx: &mut Ctx) {
    let (call, unavailable) = load_call(ctx);
    if unavailable {
        ctx.alert("Call state unavailable", Tone::Warning);
    }
    match &call {
        Some(call) => show_call(ctx, call),
        None => dial_pad(ctx),
    }
    let mut r = Writer::new();
    r.obj().kbool("on_call", call.is_some());
    ctx.result(r);
}

/// client.sidebar: call this client, the call in progress with them, schedule a callback.
fn client_panel(ctx: &mut Ctx) {
    let client = ctx.context.get("client").clone();
    let id = client.get("id").int_or(0);
    if client.kind() != Type::Object || id <= 0 {
        return ctx.text("Open a client to call them", Tone::Neutral);
    }
    let name = clip(client.get("name").str_or(""), NAME_CHARS);
    let number = normalise(client.get("phone").str_or(""));
    let callable = count_digits(&number) >= MIN_DIGITS && number.len() <= 32;

    let (call, unavailable) = load_call(ctx);
    let with_client = call.as_ref().map_or(false, |c| c.get("client_id").int_or(0) == id);
    if unavailable {
        ctx.alert("Call state unavailable", Tone::Warning);
    }
    if let (true, Some(call)) = (with_client, &call) {
        show_call(ctx, call);
    }
    if callable {
        let domain = sip_domain(ctx);
        ctx.link(&format!("Call {}", number), &href_for(&domain, &number));
        if !with_client {
            let title = if name.is_empty() { "Call and time it".to_string() } else { format!("Call {} and time it", name) };
            ctx.form(Form::new("dial").title(&title)
                .field(Field::new("number", "Number").kind(Kind::Hidden).value(&number))
                .field(Field::new("client_id", "Client").kind(Kind::Hidden).value_int(id))
                .button(Button::new("Call").style(Style::Primary)));
        }
    } else {
        ctx.text("No phone number on file", Tone::Neutral);
    }
    ctx.form(Form::new("schedule_callback").title("Schedule a callback")
        .field(Field::new("client_id", "Client").kind(Kind::Hidden).value_int(id))
        .field(Field::new("when", "When (UTC)").kind(Kind::Text).placeholder("2026-12-01 14:30").required())
        .field(Field::new("note", "Note").kind(Kind::Text).placeholder("Wants a quote for March"))
        .button(Button::new("Schedule").style(Style::Secondary)));

    let mut r = Writer::new();
    r.obj().key("number").opt_str(callable.then(|| number.as_str())).kbool("on_call", with_client);
    ctx.result(r);
}

// ---- dial, hang up, wrap up ----------------------------------------------------------------

fn dial(ctx: &mut Ctx) {
    let number = normalise(ctx.param("number").str_or(""));
    if count_digits(&number) < MIN_DIGITS {
        return ctx.error("bad_number", "Enter a phone number with at least 6 digits");
    }
    let client_id = ctx.param("client_id").int_or(0);
    let client = ctx.context.get("client");
    let client_name = (client_id > 0 && client.get("id").int_or(0) == client_id)
        .then(|| client.get("name").as_str().map(str::to_string)).flatten();

    let domain = sip_domain(ctx);
    let href = href_for(&domain, &number);

    let mut call = Writer::new();
    call.obj().kstr("number", &number).key("client_id");
    if client_id > 0 { call.int(client_id) } else { call.null() };
    call.key("client_name").opt_str(client_name.as_deref()).kjson("started", ctx.context.get("now"));
    let timed = ctx.kv_set("call", Some(Scope::Agent), &call.finish()).is_ok();

    let mut r = Writer::new();
    r.obj().kstr("href", &href).kstr("number", &number).kbool("timed", timed);
    ctx.result(r);

    ctx.link(&format!("Call {}", number), &href);
    ctx.badge("Calling", Tone::Info);
    if timed {
        let mut form = Form::new("hangup");
        if let Some(name) = &client_name {
            form = form.title(&format!("Call with {}", clip(name, NAME_CHARS)));
        }
        ctx.form(form.button(Button::new("Hang up").style(Style::Danger)));
    } else {
        ctx.alert(TIMER_UNAVAILABLE, Tone::Warning);
    }
}

fn disposition_label(code: &str) -> Option<&'static str> {
    DISPOSITIONS.iter().find(|(value, _)| *value == code).map(|(_, label)| *label)
}

/// The wrap-up form; `disposition` and `notes` prefill it.
fn wrap_up_form(ctx: &mut Ctx, number: &str, client_id: i64, secs: i64, title: &str,
                disposition: Option<&str>, notes: Option<&str>) {
    let mut outcome = Field::new("disposition", "Outcome").kind(Kind::Select);
    if let Some(code) = disposition {
        outcome = outcome.value(code);
    }
    let mut notes_field = Field::new("notes", "Notes").kind(Kind::Textarea);
    if let Some(notes) = notes.filter(|n| !n.is_empty()) {
        notes_field = notes_field.value(notes);
    }
    let mut form = Form::new("wrap_up").title(title)
        .field(outcome.required().options(DISPOSITIONS))
        .field(notes_field.placeholder("What was agreed"));
    if client_id > 0 {
        form = form.field(Field::new("client_id", "Client").kind(Kind::Hidden).value_int(client_id));
    }
    ctx.form(form.field(Field::new("number", "Number").kind(Kind::Hidden).value(number))
        .field(Field::new("duration_s", "Duration").kind(Kind::Hidden).value_int(secs))
        .button(Button::new("Log call").style(Style::Primary)));
}

fn hangup(ctx: &mut Ctx) {
    let (call, unavailable) = load_call(ctx);
    let call = match call {
        Some(call) => call,
        None => {
            let mut r = Writer::new();
            r.obj().kint("duration_s", 0).kbool("ended", false);
            ctx.result(r);
            if unavailable {
                ctx.alert("Call state unavailable: hang up on your phone and try again", Tone::Warning);
            } else {
                ctx.text("No call in progress", Tone::Neutral);
            }
            return;
        }
    };
    let number = call.get("number").str_or("").to_string();
    let client_id = call.get("client_id").int_or(0);
    let elapsed = elapsed_since(ctx, call.get("started").as_str());
    let secs = elapsed.max(0);
    let cleared = ctx.kv_delete("call", Some(Scope::Agent)).is_ok();
    ctx.log(Level::Info, &format!("hang up {} after {}s", number, secs));

    let mut r = Writer::new();
    r.obj().kint("duration_s", secs).kbool("ended", true);
    ctx.result(r);

    let ended = if elapsed >= 0 { format!("Call ended {}", clock_text(secs)) } else { "Call ended".to_string() };
    ctx.badge(&ended, Tone::Neutral);
    if !cleared {
        ctx.alert("The call could not be cleared: press Hang up again in a moment", Tone::Warning);
    }
    let title = format!("Wrap up: {}, {}", call_who(&call), duration_text(secs));
    wrap_up_form(ctx, &number, client_id, secs, &title, None, None);
}

fn wrap_up(ctx: &mut Ctx) {
    let code = ctx.param("disposition").str_or("").to_string();
    let label = match disposition_label(&code) {
        Some(label) => label,
        None => return ctx.error("bad_disposition", "Choose an outcome for the call"),
    };
    let number = normalise(ctx.param("number").str_or(""));
    let notes = ascii_trim(ctx.param("notes").str_or("")).to_string();
    let client_id = ctx.param("client_id").int_or(0);
    let secs = ctx.param("duration_s").int_or(0).max(0);

    let who = if number.is_empty() { "an unknown number" } else { &number };
    let text = format!("Call to {} {}: {}.{}{}", who, duration_text(secs), label,
                       if notes.is_empty() { "" } else { " " }, notes);
    let mut logged = false;
    let mut problem = None;
    if client_id > 0 {
        let mut args = Writer::new();
        args.obj().kint("client_id", client_id).kstr("kind", "call").kstr("text", &text)
            .kobj("data").kstr("disposition", &code).kint("duration_s", secs).kstr("number", &number);
        match ctx.call("activity.add", &args.finish()) {
            Ok(_) => logged = true,
            Err(e) if e.code == "unavailable" || e.code == "timeout" => {
                problem = Some("Call not logged: the client's timeline is unavailable, try again".to_string());
            }
            Err(e) => {
                let why = if e.message.is_empty() { &e.code } else { &e.message };
                problem = Some(format!("Call not logged: {}", clip(why, 200)));
            }
        }
    }
    ctx.log(Level::Info, &format!("wrap up {}: {} ({}s){}", number, code, secs, if logged { ", logged" } else { "" }));

    let mut r = Writer::new();
    r.obj().kbool("logged", logged).kstr("text", &text);
    ctx.result(r);

    if logged {
        ctx.alert("Call logged", Tone::Success);
    } else if let Some(problem) = problem {
        ctx.alert(&problem, Tone::Warning);
        wrap_up_form(ctx, &number, client_id, secs, "Log the call again", Some(&code), Some(&notes));
    } else {
        ctx.alert("Call finished (no client to log it on)", Tone::Info);
    }
}

// ---- callbacks (kv agent "callbacks": sorted by time, at most MAX_CALLBACKS) ---------------

#[derive(Clone)]
struct Callback {
    when: String, // "YYYY-MM-DD HH:MM"
    client_id: i64,
    client_name: Option<String>,
    note: String,
}

/// The agent's callbacks, or None when kv could not say; entries that are not ours are skipped.
fn load_callbacks(ctx: &mut Ctx) -> Option<Vec<Callback>> {
    let v = ctx.kv_get("callbacks", Some(Scope::Agent)).ok()?;
    let mut list = Vec::new();
    for e in v.items() {
        if list.len() == MAX_CALLBACKS {
            break;
        }
        let when = e.get("when").str_or("");
        if when.len() != 16 || parse_minute(when.as_bytes()).is_none() {
            continue;
        }
        list.push(Callback { when: when.to_string(), client_id: e.get("client_id").int_or(0),
                             client_name: e.get("client_name").as_str().map(str::to_string),
                             note: e.get("note").str_or("").to_string() });
    }
    Some(list)
}

fn save_callbacks(ctx: &mut Ctx, list: &[Callback]) -> bool {
    let mut w = Writer::new();
    w.arr();
    for c in list {
        w.obj().kstr("when", &c.when).kint("client_id", c.client_id).key("client_name")
            .opt_str(c.client_name.as_deref()).kstr("note", &c.note).end();
    }
    ctx.kv_set("callbacks", Some(Scope::Agent), &w.finish()).is_ok()
}

fn schedule_callback(ctx: &mut Ctx) {
    let client_id = ctx.param("client_id").int_or(0);
    let raw = ascii_trim(ctx.param("when").str_or("")).to_string();
    let note = clip(ascii_trim(ctx.param("note").str_or("")), 200);
    let when_t = match parse_minute(raw.as_bytes()) {
        Some((t, _)) if raw.len() == 16 => t,
        _ => return ctx.error("bad_time", "Give the time as YYYY-MM-DD HH:MM, for example 2026-12-01 14:30"),
    };
    if let Some(now) = now_s(ctx) {
        if when_t < now - now % 60 {
            return ctx.error("bad_time", "That time has passed: choose a time from now on");
        }
    }
    if client_id <= 0 {
        return ctx.error("bad_client", "A callback needs a client");
    }
    let when = format!("{} {}", &raw[..10], &raw[11..]); // the canonical form: "YYYY-MM-DD HH:MM"
    let client = ctx.context.get("client");
    let name = (client.get("id").int_or(0) == client_id)
        .then(|| client.get("name").as_str().map(str::to_string)).flatten();

    let mut list = load_callbacks(ctx);
    let (mut saved, mut dropped) = (false, 0);
    if let Some(list) = list.as_mut() {
        let mut fresh = Callback { when: when.clone(), client_id, client_name: name.clone(), note };
        let at = match list.iter().position(|c| c.client_id == client_id && c.when == when) {
            Some(i) => { // the same client at the same time: update it
                if name.is_none() {
                    fresh.client_name = list[i].client_name.clone();
                }
                list[i] = fresh;
                i
            }
            None => { // insert in time order (after equal times)
                let mut at = list.len();
                while at > 0 && list[at - 1].when > when {
                    at -= 1;
                }
                list.insert(at, fresh);
                at
            }
        };
        let mut at = at;
        while list.len() > MAX_CALLBACKS { // full: drop the earliest that is not the new one
            let drop = if at == 0 { 1 } else { 0 };
            list.remove(drop);
            if drop < at {
                at -= 1;
            }
            dropped += 1;
        }
        saved = save_callbacks(ctx, list);
    }
    let who = match &name {
        Some(name) => clip(name, NAME_CHARS),
        None => format!("client #{}", client_id),
    };
    let mut r = Writer::new();
    r.obj().key("scheduled");
    match (&list, saved) {
        (Some(list), true) => r.int(list.len() as i64),
        _ => r.null(),
    };
    r.kbool("saved", saved).kstr("when", &when);
    ctx.result(r);
    if saved {
        ctx.alert(&format!("Callback to {} scheduled for {}", who, when), Tone::Success);
        if dropped > 0 {
            ctx.text(&format!("At most {} callbacks are kept: the earliest was removed", MAX_CALLBACKS),
                     Tone::Warning);
        }
    } else {
        ctx.alert("Callbacks unavailable right now: the callback was not scheduled, try again", Tone::Warning);
    }
}

// Action name -> function. The names match [actions.*] in plugin.toml.
cms_plugin::actions!(toolbar, client_panel, dial, hangup, wrap_up, schedule_callback);
