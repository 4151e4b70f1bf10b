/* Softphone: click-to-call (tel: or sip: links), a call timer, wrap-up notes on the client's
 * timeline, and scheduled callbacks (see plugin.toml and README.md).
 *
 * State, all in kv:
 *   plugin   "settings"   {"link": "tel"|"sip", "sip_domain": "pbx.example.com"}   (agency-wide)
 *   agent    "call"       {"number", "client_id", "client_name", "started"}        (the running call)
 *   agent    "callbacks"  [{"when": "YYYY-MM-DD HH:MM", "client_id", "client_name", "note"}]
 *                         sorted by time, never more than MAX_CALLBACKS entries
 * Time comes from context.now (plugins have no clock). Host trouble (unavailable, timeout) never
 * fails a call: the plugin answers ok with an alert saying what could not be done. */
#include "cms_plugin.h"

#define MAX_CALLBACKS 20
#define MIN_DIGITS 6
#define NAME_CHARS 80 /* client names in titles and labels are clipped to this */

static const char *const TIMER_UNAVAILABLE = "Call timer unavailable: this call is not being timed";

/* ---- small helpers ------------------------------------------------------------------------ */

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* The number with only a leading + and its digits: "+44 (20) 7946-0000" -> "+442079460000". */
static char *normalise(const char *raw) {
    size_t n = strlen(raw), k = 0;
    char *out = cms_arena_alloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        if (is_digit(raw[i]) || (raw[i] == '+' && k == 0)) out[k++] = raw[i];
    }
    out[k] = 0;
    return out;
}

static size_t count_digits(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += is_digit(*s);
    return n;
}

/* At most `max` bytes of s, cut on a UTF-8 character boundary, with "..." when cut. */
static const char *clip(const char *s, size_t max) {
    size_t n = strlen(s);
    if (n <= max) return s;
    while (max && ((unsigned char)s[max] & 0xC0) == 0x80) max--;
    return cms_fmt("%.*s...", (int)max, s);
}

static const char *two(long long v) { return cms_fmt("%s%lld", v < 10 ? "0" : "", v); }

/* A running call's timer: "03:12", or "1:03:12" past an hour. */
static const char *clock_text(long long s) {
    if (s < 0) s = 0;
    if (s >= 3600) return cms_fmt("%lld:%s:%s", s / 3600, two(s / 60 % 60), two(s % 60));
    return cms_fmt("%s:%s", two(s / 60), two(s % 60));
}

/* A finished call's length: "45s", "3m12s", "1h03m12s". */
static const char *duration_text(long long s) {
    if (s < 0) s = 0;
    if (s >= 3600) return cms_fmt("%lldh%sm%ss", s / 3600, two(s / 60 % 60), two(s % 60));
    if (s >= 60) return cms_fmt("%lldm%ss", s / 60, two(s % 60));
    return cms_fmt("%llds", s);
}

/* ---- time: ISO 8601 and "YYYY-MM-DD HH:MM" to seconds since 1970 (UTC) --------------------- */

static int num(const char *s, int n, int *out) { /* n digits; stops at the NUL of a short string */
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit(s[i])) return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

static long long days_from_civil(long long y, int m, int d) { /* days since 1970-01-01 */
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Seconds since 1970 (t >= 0) as the UTC time a timer block starts from: "2026-11-24T14:05:09Z". */
static const char *utc_stamp(long long t) {
    long long z = t / 86400 + 719468, secs = t % 86400;
    long long era = z / 146097, doe = z - era * 146097;
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    long long d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
    long long y = yoe + era * 400 + (m <= 2);
    return cms_fmt("%lld-%s-%sT%s:%s:%sZ", y, two(m), two(d), two(secs / 3600), two(secs / 60 % 60),
                   two(secs % 60));
}

static int days_in_month(int y, int m) {
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

/* "YYYY-MM-DD HH:MM" (or with T) at s: the time in *t; *end after the minutes. */
static int parse_minute(const char *s, long long *t, const char **end) {
    int y, mo, d, h, mi;
    if (!num(s, 4, &y) || s[4] != '-' || !num(s + 5, 2, &mo) || s[7] != '-' || !num(s + 8, 2, &d)
        || (s[10] != ' ' && s[10] != 'T' && s[10] != 't') || !num(s + 11, 2, &h) || s[13] != ':'
        || !num(s + 14, 2, &mi))
        return 0;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59) return 0;
    *t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60;
    *end = s + 16;
    return 1;
}

/* ISO 8601 as the host sends context.now: "2026-11-24T14:05:09Z", fractions and offsets allowed. */
static int parse_iso(const char *s, long long *t) {
    const char *p;
    int sec = 0, oh, om;
    if (!s || !parse_minute(s, t, &p)) return 0;
    if (*p == ':') {
        if (!num(p + 1, 2, &sec) || sec > 60) return 0;
        p += 3;
        if (*p == '.' || *p == ',') {
            p++;
            if (!is_digit(*p)) return 0;
            while (is_digit(*p)) p++;
        }
    }
    *t += sec;
    if (*p == 'Z' || *p == 'z') return p[1] == 0;
    if (*p == '+' || *p == '-') {
        if (!num(p + 1, 2, &oh) || p[3] != ':' || !num(p + 4, 2, &om) || p[6]) return 0;
        *t -= (*p == '+' ? 1 : -1) * (oh * 3600 + om * 60);
        return 1;
    }
    return *p == 0; /* no zone: UTC */
}

/* context.now in seconds, or 0 (with *known = 0) when the host did not send a usable one. */
static long long now_s(cms_ctx *ctx, int *known) {
    long long t = 0;
    *known = parse_iso(cms_as_str(cms_get(ctx->context, "now"), 0), &t);
    return *known ? t : 0;
}

/* Seconds from an ISO time to context.now; -1 when either is missing or not a time. */
static long long elapsed_since(cms_ctx *ctx, const char *started) {
    int known;
    long long now = now_s(ctx, &known), then;
    if (!known || !parse_iso(started, &then)) return -1;
    return now > then ? now - then : 0;
}

/* ---- settings and links ------------------------------------------------------------------- */

typedef struct {
    int sip;            /* 1: sip: links on `domain`; 0: tel: links */
    const char *domain;
    int unavailable;    /* the settings could not be read (tel: links meanwhile) */
} settings;

static int hostname_ok(const char *s) {
    size_t n = strlen(s);
    if (!n || n > 253 || s[0] == '.' || s[0] == '-' || s[n - 1] == '.' || s[n - 1] == '-') return 0;
    for (; *s; s++) {
        char c = *s;
        if (c == '.' && (s[1] == '.' || s[1] == '-' || s[-1] == '-')) return 0; /* empty label, -.x */
        if (!is_digit(c) && !(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') && c != '.' && c != '-') return 0;
    }
    return 1;
}

static settings load_settings(cms_ctx *ctx) {
    settings s = {0, "", 0};
    const cms_json *v = cms_kv_get(ctx, "settings", "plugin");
    if (!v) {
        s.unavailable = 1;
        return s;
    }
    const char *domain = cms_as_str(cms_get(v, "sip_domain"), "");
    if (cms_streq(cms_as_str(cms_get(v, "link"), "tel"), "sip") && hostname_ok(domain)) {
        s.sip = 1;
        s.domain = domain;
    }
    return s;
}

static const char *href_for(const settings *s, const char *number) {
    return s->sip ? cms_fmt("sip:%s@%s", number, s->domain) : cms_fmt("tel:%s", number);
}

/* ---- the running call (kv agent "call") --------------------------------------------------- */

/* The running call, or NULL when there is none; *unavailable when kv could not say. */
static const cms_json *load_call(cms_ctx *ctx, int *unavailable) {
    const cms_json *v = cms_kv_get(ctx, "call", "agent");
    *unavailable = !v;
    if (cms_type(v) != CMS_OBJECT || !*cms_as_str(cms_get(v, "number"), "")) return 0;
    return v;
}

static const char *call_who(const cms_json *call) {
    const char *number = cms_as_str(cms_get(call, "number"), "");
    const char *name = cms_as_str(cms_get(call, "client_name"), "");
    return *name ? cms_fmt("%s (%s)", clip(name, NAME_CHARS), number) : number;
}

/* "On call 03:12", ticking on the page, and the hang-up button. */
static void show_call(cms_ctx *ctx, const cms_json *call) {
    long long secs = elapsed_since(ctx, cms_as_str(cms_get(call, "started"), 0));
    int known;
    long long now = now_s(ctx, &known);
    if (secs < 0) cms_ui_badge(ctx, "On call", "success");
    else cms_ui_timer(ctx, "On call", utc_stamp(now - secs));
    cms_ui_form(ctx, "hangup", cms_fmt("Call with %s", call_who(call)));
    cms_ui_button(ctx, &(cms_button){.label = "Hang up", .style = "danger"});
}

static void dial_pad(cms_ctx *ctx) {
    cms_ui_form(ctx, "dial", NULL);
    cms_ui_field(ctx, &(cms_field){.name = "number", .label = "Number", .kind = "tel",
                                   .placeholder = "+44 20 7946 0000", .required = 1});
    cms_ui_button(ctx, &(cms_button){.label = "Call", .style = "primary"});
}

/* ---- panels ------------------------------------------------------------------------------- */

/* agent.toolbar: the running call (timer and hang up), else a compact dial pad. */
static void toolbar(cms_ctx *ctx) {
    int unavailable;
    const cms_json *call = load_call(ctx, &unavailable);
    if (unavailable) cms_ui_alert(ctx, "Call state unavailable", "warning");
    if (call) {
        show_call(ctx, call);
    } else {
        dial_pad(ctx);
    }
    cms_buf *r = cms_result(ctx);
    cms_w_obj(r);
    cms_w_kbool(r, "on_call", call != 0);
    cms_w_end(r);
}

/* client.sidebar: call this client, the call in progress with them, schedule a callback. */
static void client_panel(cms_ctx *ctx) {
    const cms_json *client = cms_get(ctx->context, "client");
    long long id = cms_as_int(cms_get(client, "id"), 0);
    if (cms_type(client) != CMS_OBJECT || id <= 0) {
        cms_ui_text(ctx, "Open a client to call them", "neutral");
        return;
    }
    const char *name = clip(cms_as_str(cms_get(client, "name"), ""), NAME_CHARS);
    const char *number = normalise(cms_as_str(cms_get(client, "phone"), ""));
    int callable = count_digits(number) >= MIN_DIGITS && strlen(number) <= 32;

    int unavailable;
    const cms_json *call = load_call(ctx, &unavailable);
    int with_client = call && cms_as_int(cms_get(call, "client_id"), 0) == id;
    if (unavailable) cms_ui_alert(ctx, "Call state unavailable", "warning");
    if (with_client) show_call(ctx, call);

    if (callable) {
        settings s = load_settings(ctx);
        cms_ui_link(ctx, cms_fmt("Call %s", number), href_for(&s, number));
        if (!with_client) {
            cms_ui_form(ctx, "dial", *name ? cms_fmt("Call %s and time it", name) : "Call and time it");
            cms_ui_field(ctx, &(cms_field){.name = "number", .label = "Number", .kind = "hidden",
                                           .value = number});
            cms_ui_field(ctx, &(cms_field){.name = "client_id", .label = "Client", .kind = "hidden",
                                           .value_json = cms_fmt("%lld", id)});
            cms_ui_button(ctx, &(cms_button){.label = "Call", .style = "primary"});
        }
    } else {
        cms_ui_text(ctx, "No phone number on file", "neutral");
    }

    cms_ui_form(ctx, "schedule_callback", "Schedule a callback");
    cms_ui_field(ctx, &(cms_field){.name = "client_id", .label = "Client", .kind = "hidden",
                                   .value_json = cms_fmt("%lld", id)});
    cms_ui_field(ctx, &(cms_field){.name = "when", .label = "When (UTC)", .kind = "text",
                                   .placeholder = "2026-12-01 14:30", .required = 1});
    cms_ui_field(ctx, &(cms_field){.name = "note", .label = "Note", .kind = "text",
                                   .placeholder = "Wants a quote for March"});
    cms_ui_button(ctx, &(cms_button){.label = "Schedule", .style = "secondary"});

    cms_buf *r = cms_result(ctx);
    cms_w_obj(r);
    if (callable) cms_w_kstr(r, "number", number); else cms_w_knull(r, "number");
    cms_w_kbool(r, "on_call", with_client);
    cms_w_end(r);
}

/* ---- dial, hang up, wrap up --------------------------------------------------------------- */

static void dial(cms_ctx *ctx) {
    const char *number = normalise(cms_as_str(cms_param(ctx, "number"), ""));
    if (count_digits(number) < MIN_DIGITS) {
        cms_error(ctx, "bad_number", "Enter a phone number with at least 6 digits");
        return;
    }
    const cms_json *cid = cms_param(ctx, "client_id");
    long long client_id = cms_as_int(cid, 0);
    const cms_json *client = cms_get(ctx->context, "client");
    const char *client_name = client_id > 0 && cms_as_int(cms_get(client, "id"), 0) == client_id
        ? cms_as_str(cms_get(client, "name"), 0) : 0;

    settings s = load_settings(ctx);
    const char *href = href_for(&s, number);

    cms_buf call = {0};
    cms_w_obj(&call);
    cms_w_kstr(&call, "number", number);
    if (client_id > 0) cms_w_kint(&call, "client_id", client_id); else cms_w_knull(&call, "client_id");
    cms_w_kstr(&call, "client_name", client_name); /* NULL is written as null */
    cms_w_kjson(&call, "started", cms_get(ctx->context, "now"));
    cms_w_end(&call);
    int timed = cms_kv_set(ctx, "call", "agent", cms_buf_str(&call));

    cms_buf *r = cms_result(ctx);
    cms_w_obj(r);
    cms_w_kstr(r, "href", href);
    cms_w_kstr(r, "number", number);
    cms_w_kbool(r, "timed", timed);
    cms_w_end(r);

    cms_ui_link(ctx, cms_fmt("Call %s", number), href);
    cms_ui_badge(ctx, "Calling", "info");
    if (timed) {
        cms_ui_form(ctx, "hangup", client_name ? cms_fmt("Call with %s", clip(client_name, NAME_CHARS)) : NULL);
        cms_ui_button(ctx, &(cms_button){.label = "Hang up", .style = "danger"});
    } else {
        cms_ui_alert(ctx, TIMER_UNAVAILABLE, "warning");
    }
}

static const cms_option DISPOSITIONS[] = {
    {"booked", "Booked"}, {"quote_sent", "Quote sent"}, {"callback", "Callback needed"},
    {"no_answer", "No answer"}, {"wrong_number", "Wrong number"}, {"other", "Other"}, {0, 0}};

static const char *disposition_label(const char *code) {
    for (const cms_option *o = DISPOSITIONS; o->value; o++)
        if (cms_streq(o->value, code)) return o->label;
    return 0;
}

/* The wrap-up form; `disposition` and `notes` prefill it (NULL: empty). */
static void wrap_up_form(cms_ctx *ctx, const char *number, long long client_id, long long secs,
                         const char *title, const char *disposition, const char *notes) {
    cms_ui_form(ctx, "wrap_up", title);
    cms_ui_field(ctx, &(cms_field){.name = "disposition", .label = "Outcome", .kind = "select",
                                   .value = disposition, .required = 1, .options = DISPOSITIONS});
    cms_ui_field(ctx, &(cms_field){.name = "notes", .label = "Notes", .kind = "textarea",
                                   .value = notes && *notes ? notes : 0, .placeholder = "What was agreed"});
    if (client_id > 0)
        cms_ui_field(ctx, &(cms_field){.name = "client_id", .label = "Client", .kind = "hidden",
                                       .value_json = cms_fmt("%lld", client_id)});
    cms_ui_field(ctx, &(cms_field){.name = "number", .label = "Number", .kind = "hidden", .value = number});
    cms_ui_field(ctx, &(cms_field){.name = "duration_s", .label = "Duration", .kind = "hidden",
                                   .value_json = cms_fmt("%lld", secs)});
    cms_ui_button(ctx, &(cms_button){.label = "Log call", .style = "primary"});
}

static void hangup(cms_ctx *ctx) {
    int unavailable;
    const cms_json *call = load_call(ctx, &unavailable);
    if (!call) {
        cms_buf *r = cms_result(ctx);
        cms_w_obj(r);
        cms_w_kint(r, "duration_s", 0);
        cms_w_kbool(r, "ended", 0);
        cms_w_end(r);
        if (unavailable) cms_ui_alert(ctx, "Call state unavailable: hang up on your phone and try again", "warning");
        else cms_ui_text(ctx, "No call in progress", "neutral");
        return;
    }
    const char *number = cms_as_str(cms_get(call, "number"), "");
    long long client_id = cms_as_int(cms_get(call, "client_id"), 0);
    long long secs = elapsed_since(ctx, cms_as_str(cms_get(call, "started"), 0));
    int timed = secs >= 0;
    if (!timed) secs = 0;
    int cleared = cms_kv_delete(ctx, "call", "agent");
    cms_logf(ctx, CMS_INFO, "hang up %s after %llds", number, secs);

    cms_buf *r = cms_result(ctx);
    cms_w_obj(r);
    cms_w_kint(r, "duration_s", secs);
    cms_w_kbool(r, "ended", 1);
    cms_w_end(r);

    cms_ui_badge(ctx, timed ? cms_fmt("Call ended %s", clock_text(secs)) : "Call ended", "neutral");
    if (!cleared) cms_ui_alert(ctx, "The call could not be cleared: press Hang up again in a moment", "warning");
    wrap_up_form(ctx, number, client_id, secs,
                 cms_fmt("Wrap up: %s, %s", call_who(call), duration_text(secs)), 0, 0);
}

static void wrap_up(cms_ctx *ctx) {
    const char *code = cms_as_str(cms_param(ctx, "disposition"), "");
    const char *label = disposition_label(code);
    if (!label) {
        cms_error(ctx, "bad_disposition", "Choose an outcome for the call");
        return;
    }
    const char *number = normalise(cms_as_str(cms_param(ctx, "number"), ""));
    const char *notes = cms_trim(cms_as_str(cms_param(ctx, "notes"), ""));
    long long client_id = cms_as_int(cms_param(ctx, "client_id"), 0);
    long long secs = cms_as_int(cms_param(ctx, "duration_s"), 0);
    if (secs < 0) secs = 0;

    const char *text = cms_fmt("Call to %s %s: %s.%s%s", *number ? number : "an unknown number",
                               duration_text(secs), label, *notes ? " " : "", notes);
    int logged = 0;
    const char *problem = 0;
    if (client_id > 0) {
        cms_buf args = {0};
        cms_w_obj(&args);
        cms_w_kint(&args, "client_id", client_id);
        cms_w_kstr(&args, "kind", "call");
        cms_w_kstr(&args, "text", text);
        cms_w_kobj(&args, "data");
        cms_w_kstr(&args, "disposition", code);
        cms_w_kint(&args, "duration_s", secs);
        cms_w_kstr(&args, "number", number);
        cms_w_end(&args);
        cms_w_end(&args);
        const cms_json *answer = cms_call(ctx, "activity.add", cms_buf_str(&args));
        logged = cms_call_ok(answer);
        if (!logged) {
            const char *error = cms_call_error(answer);
            problem = cms_streq(error, "unavailable") || cms_streq(error, "timeout")
                ? "Call not logged: the client's timeline is unavailable, try again"
                : cms_fmt("Call not logged: %s", clip(*cms_call_message(answer) ? cms_call_message(answer)
                                                                                 : error, 200));
        }
    }
    cms_logf(ctx, CMS_INFO, "wrap up %s: %s (%llds)%s", number, code, secs, logged ? ", logged" : "");

    cms_buf *r = cms_result(ctx);
    cms_w_obj(r);
    cms_w_kbool(r, "logged", logged);
    cms_w_kstr(r, "text", text);
    cms_w_end(r);

    if (logged) {
        cms_ui_alert(ctx, "Call logged", "success");
    } else if (problem) {
        cms_ui_alert(ctx, problem, "warning");
        wrap_up_form(ctx, number, client_id, secs, "Log the call again", code, notes);
    } else {
        cms_ui_alert(ctx, "Call finished (no client to log it on)", "info");
    }
}

/* ---- callbacks (kv agent "callbacks": sorted by time, at most MAX_CALLBACKS) --------------- */

typedef struct {
    const char *when;   /* "YYYY-MM-DD HH:MM" */
    long long client_id;
    const char *client_name, *note;
} callback;

typedef struct {
    callback items[MAX_CALLBACKS + 1];
    int count;
    int unavailable;
} callbacks;

static callbacks load_callbacks(cms_ctx *ctx) {
    callbacks list = {.count = 0};
    const cms_json *v = cms_kv_get(ctx, "callbacks", "agent");
    list.unavailable = !v;
    long long t;
    const char *end;
    for (const cms_json *e = cms_first(cms_type(v) == CMS_ARRAY ? v : 0); e && list.count < MAX_CALLBACKS;
         e = cms_next(e)) {
        const char *when = cms_as_str(cms_get(e, "when"), "");
        if (strlen(when) != 16 || !parse_minute(when, &t, &end)) continue; /* not ours: skip it */
        list.items[list.count++] = (callback){when, cms_as_int(cms_get(e, "client_id"), 0),
                                             cms_as_str(cms_get(e, "client_name"), 0),
                                             cms_as_str(cms_get(e, "note"), "")};
    }
    return list;
}

static int when_cmp(const char *a, const char *b) { /* same format: text order is time order */
    for (; *a && *a == *b; a++, b++) {}
    return (unsigned char)*a - (unsigned char)*b;
}

static int save_callbacks(cms_ctx *ctx, const callbacks *list) {
    cms_buf b = {0};
    cms_w_arr(&b);
    for (int i = 0; i < list->count; i++) {
        const callback *c = &list->items[i];
        cms_w_obj(&b);
        cms_w_kstr(&b, "when", c->when);
        cms_w_kint(&b, "client_id", c->client_id);
        cms_w_kstr(&b, "client_name", c->client_name);
        cms_w_kstr(&b, "note", c->note);
        cms_w_end(&b);
    }
    cms_w_end(&b);
    return cms_kv_set(ctx, "callbacks", "agent", cms_buf_str(&b));
}

static const char *callback_who(const callback *c) {
    return c->client_name && *c->client_name ? clip(c->client_name, NAME_CHARS)
                                             : cms_fmt("Client #%lld", c->client_id);
}

static void schedule_callback(cms_ctx *ctx) {
    long long client_id = cms_as_int(cms_param(ctx, "client_id"), 0);
    const char *raw = cms_trim(cms_as_str(cms_param(ctx, "when"), ""));
    const char *note = clip(cms_trim(cms_as_str(cms_param(ctx, "note"), "")), 200);
    long long when_t, now;
    const char *end;
    int known;
    if (strlen(raw) != 16 || !parse_minute(raw, &when_t, &end)) {
        cms_error(ctx, "bad_time", "Give the time as YYYY-MM-DD HH:MM, for example 2026-12-01 14:30");
        return;
    }
    now = now_s(ctx, &known);
    if (known && when_t < now - now % 60) {
        cms_error(ctx, "bad_time", "That time has passed: choose a time from now on");
        return;
    }
    if (client_id <= 0) {
        cms_error(ctx, "bad_client", "A callback needs a client");
        return;
    }
    char *when = cms_strdup(raw);
    when[10] = ' '; /* the canonical form: "YYYY-MM-DD HH:MM" */
    const cms_json *client = cms_get(ctx->context, "client");
    const char *name = cms_as_int(cms_get(client, "id"), 0) == client_id
        ? cms_as_str(cms_get(client, "name"), 0) : 0;

    callbacks list = load_callbacks(ctx);
    int saved = 0, dropped = 0;
    if (!list.unavailable) {
        callback fresh = {when, client_id, name, note};
        int i, at = -1;
        for (i = 0; i < list.count; i++) { /* the same client at the same time: update it */
            if (list.items[i].client_id == client_id && cms_streq(list.items[i].when, when)) {
                if (!name) fresh.client_name = list.items[i].client_name;
                list.items[i] = fresh;
                at = i;
                break;
            }
        }
        if (at < 0) { /* insert in time order (after equal times) */
            for (at = list.count; at > 0 && when_cmp(list.items[at - 1].when, when) > 0; at--)
                list.items[at] = list.items[at - 1];
            list.items[at] = fresh;
            list.count++;
        }
        while (list.count > MAX_CALLBACKS) { /* full: drop the earliest that is not the new one */
            int drop = at == 0 ? 1 : 0;
            for (i = drop; i < list.count - 1; i++) list.items[i] = list.items[i + 1];
            if (drop < at) at--;
            list.count--;
            dropped++;
        }
        saved = save_callbacks(ctx, &list);
    }
    const char *who = name ? clip(name, NAME_CHARS) : cms_fmt("client #%lld", client_id);

    cms_buf *r = cms_result(ctx);
    cms_w_obj(r);
    if (saved) cms_w_kint(r, "scheduled", list.count); else cms_w_knull(r, "scheduled");
    cms_w_kbool(r, "saved", saved);
    cms_w_kstr(r, "when", when);
    cms_w_end(r);
    if (saved) {
        cms_ui_alert(ctx, cms_fmt("Callback to %s scheduled for %s", who, when), "success");
        if (dropped) cms_ui_text(ctx, cms_fmt("At most %d callbacks are kept: the earliest was removed",
                                             MAX_CALLBACKS), "warning");
    } else {
        cms_ui_alert(ctx, "Callbacks unavailable right now: the callback was not scheduled, try again",
                     "warning");
    }
}

/* dashboard.widget: the agent's callbacks by time, overdue ones marked. */
static void callbacks_widget(cms_ctx *ctx) {
    callbacks list = load_callbacks(ctx);
    int known, overdue = 0;
    long long now = now_s(ctx, &known), t;
    const char *end;
    if (list.unavailable) {
        cms_ui_alert(ctx, "Callbacks unavailable right now", "warning");
    } else if (!list.count) {
        cms_ui_text(ctx, "No callbacks scheduled", "neutral");
    } else {
        int late[MAX_CALLBACKS];
        for (int i = 0; i < list.count; i++) {
            late[i] = known && parse_minute(list.items[i].when, &t, &end) && t < now - now % 60;
            overdue += late[i];
        }
        if (overdue) cms_ui_badge(ctx, cms_fmt("%d overdue", overdue), "warning");
        cms_ui_table(ctx, (const char *[]){"When", "Client", "Note", NULL});
        for (int i = 0; i < list.count; i++) {
            const callback *c = &list.items[i];
            cms_ui_row(ctx);
            cms_ui_cell(ctx, late[i] ? cms_fmt("%s (overdue)", c->when) : c->when);
            cms_ui_cell(ctx, callback_who(c));
            cms_ui_cell(ctx, c->note);
        }
        cms_ui_form(ctx, "callback_done", NULL);
        cms_option *options = cms_arena_alloc(sizeof(cms_option) * (size_t)(list.count + 1));
        for (int i = 0; i < list.count; i++) {
            const callback *c = &list.items[i];
            options[i] = (cms_option){cms_fmt("%s #%lld", c->when, c->client_id),
                                      cms_fmt("%s %s", c->when, callback_who(c))};
        }
        cms_ui_field(ctx, &(cms_field){.name = "callback", .label = "Callback", .kind = "select",
                                       .required = 1, .options = options});
        cms_ui_button(ctx, &(cms_button){.label = "Done", .style = "secondary"});
    }
    cms_buf *r = cms_result(ctx);
    cms_w_obj(r);
    if (list.unavailable) cms_w_knull(r, "count"); else cms_w_kint(r, "count", list.count);
    cms_w_kint(r, "overdue", overdue);
    cms_w_end(r);
}

/* Remove one callback, named "YYYY-MM-DD HH:MM #client_id" as the widget's form sends it. */
static void callback_done(cms_ctx *ctx) {
    const char *value = cms_trim(cms_as_str(cms_param(ctx, "callback"), ""));
    long long t, client_id = 0;
    const char *p;
    if (strlen(value) < 19 || !parse_minute(value, &t, &p) || p[0] != ' ' || p[1] != '#' || !is_digit(p[2])) {
        cms_error(ctx, "bad_callback", "Choose a callback from the list");
        return;
    }
    for (p += 2; is_digit(*p) && client_id < 100000000000000LL; p++) client_id = client_id * 10 + (*p - '0');
    if (*p) {
        cms_error(ctx, "bad_callback", "Choose a callback from the list");
        return;
    }
    char *when = cms_strndup(value, 16);
    when[10] = ' ';

    callbacks list = load_callbacks(ctx);
    int removed = 0, saved = 0;
    if (!list.unavailable) {
        int k = 0;
        for (int i = 0; i < list.count; i++) {
            if (!removed && list.items[i].client_id == client_id && cms_streq(list.items[i].when, when)) {
                removed = 1;
                continue;
            }
            list.items[k++] = list.items[i];
        }
        list.count = k;
        saved = !removed || save_callbacks(ctx, &list);
    }
    cms_buf *r = cms_result(ctx);
    cms_w_obj(r);
    cms_w_kbool(r, "removed", removed && saved);
    if (!list.unavailable && saved) cms_w_kint(r, "count", list.count); else cms_w_knull(r, "count");
    cms_w_end(r);
    if (list.unavailable || !saved) cms_ui_alert(ctx, "Callbacks unavailable right now, try again", "warning");
    else if (removed) cms_ui_alert(ctx, "Callback done", "success");
    else cms_ui_text(ctx, "That callback is no longer on the list", "neutral");
}

/* ---- settings ----------------------------------------------------------------------------- */

static void save_settings(cms_ctx *ctx) {
    const char *link = cms_as_str(cms_param(ctx, "link"), "");
    const char *domain = cms_trim(cms_as_str(cms_param(ctx, "sip_domain"), ""));
    int sip = cms_streq(link, "sip");
    if (!sip && !cms_streq(link, "tel")) {
        cms_error(ctx, "bad_settings", "link must be tel or sip");
        return;
    }
    if (sip && !hostname_ok(domain)) {
        cms_error(ctx, "bad_settings", "sip links need a SIP domain such as pbx.example.com");
        return;
    }
    if (*domain && !hostname_ok(domain)) {
        cms_error(ctx, "bad_settings", "the SIP domain must be a host name such as pbx.example.com");
        return;
    }
    cms_buf v = {0};
    cms_w_obj(&v);
    cms_w_kstr(&v, "link", sip ? "sip" : "tel");
    cms_w_kstr(&v, "sip_domain", domain);
    cms_w_end(&v);
    int saved = cms_kv_set(ctx, "settings", "plugin", cms_buf_str(&v));

    cms_buf *r = cms_result(ctx);
    cms_w_obj(r);
    cms_w_kbool(r, "saved", saved);
    cms_w_kstr(r, "link", sip ? "sip" : "tel");
    cms_w_kstr(r, "sip_domain", domain);
    cms_w_kstr(r, "example", sip ? cms_fmt("sip:+442079460000@%s", domain) : "tel:+442079460000");
    cms_w_end(r);
    if (saved) {
        cms_ui_alert(ctx, sip ? cms_fmt("Calls now use sip: links on %s", domain) : "Calls now use tel: links",
                     "success");
    } else {
        cms_ui_alert(ctx, "Settings unavailable right now: nothing was changed, try again", "warning");
    }
}

/* Action name -> function. The names match [actions.*] in plugin.toml. */
CMS_ACTIONS(CMS_ACTION("toolbar", toolbar), CMS_ACTION("client_panel", client_panel),
            CMS_ACTION("callbacks", callbacks_widget), CMS_ACTION("settings", save_settings),
            CMS_ACTION("dial", dial), CMS_ACTION("hangup", hangup), CMS_ACTION("wrap_up", wrap_up),
            CMS_ACTION("schedule_callback", schedule_callback),
            CMS_ACTION("callback_done", callback_done))
