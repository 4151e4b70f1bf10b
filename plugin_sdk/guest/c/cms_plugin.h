/* cms_plugin.h: the C guest library of the CMS plugin SDK (ABI v1, docs/plugin-abi.md).
 *
 * One header, C11, wasm32-freestanding, no libc. Include it in the plugin's only .c file (what
 * `cms-plugin build` compiles); it defines the exports cms_alloc, cms_abi_version and (through
 * CMS_ACTIONS) cms_handle, and memcpy/memmove/memset/memcmp/strlen (define CMS_NO_LIBC if you
 * bring your own). Unused helpers cost nothing: they are static and dropped by the compiler.
 * Every string the library hands out is NUL-terminated, UTF-8, and lives until the call ends.
 *
 *   #include "cms_plugin.h"
 *   static void greet(cms_ctx *ctx) {
 *       const char *name = cms_as_str(cms_param(ctx, "name"), "");
 *       if (!*name) { cms_error(ctx, "bad_name", "Name must not be empty"); return; }
 *       cms_ui_alert(ctx, cms_fmt("Hello, %s!", name), "success");
 *   }
 *   CMS_ACTIONS(CMS_ACTION("greet", greet))
 *
 * An unknown action answers {"ok":false,"error":{"code":"unknown_action",...}}, an input that is
 * not an ABI v1 envelope {"ok":false,"error":{"code":"bad_input",...}}.
 *
 * Memory. Every call runs in a fresh instance, so memory is a bump arena that is never freed.
 *   void *cms_arena_alloc(n)        n zero-filled bytes, 8-aligned. Never NULL: when memory runs
 *                                   out the call ends cleanly with fault memory_limit ("out of
 *                                   memory allocating N bytes"). Every allocating helper below
 *                                   (strings, JSON, UI, host calls) goes through it.
 *   cms_strdup(s) cms_strndup(s, n) cms_trim(s) cms_fmt(fmt, ...)   new arena strings
 *   cms_streq(a, b)                 equal strings (NULL equals only NULL)
 *   cms_fmt understands %s %.*s %c %d %i %u %x (with l, ll, z) %f/%g (shortest double) %%.
 *
 * Reading JSON: a small read-only DOM in the arena. Every accessor accepts NULL (a missing value)
 * and returns a safe default when the type does not match, so lookups chain.
 *   const cms_json *cms_parse(text, len)  NULL if not valid UTF-8 JSON or nested > CMS_MAX_DEPTH (32)
 *   cms_type(v)        CMS_MISSING (v is NULL), CMS_NULL, CMS_BOOL, CMS_NUMBER, CMS_STRING,
 *                      CMS_ARRAY, CMS_OBJECT
 *   cms_get(obj, key)  member or NULL;  cms_at(arr, i) element or NULL;  cms_len(v) members of
 *                      an array/object, bytes of a string, else 0
 *   cms_first(v), cms_next(child)  iterate an array or object in order (child->key names a member):
 *                      for (const cms_json *m = cms_first(obj); m; m = cms_next(m)) ...
 *   cms_as_str(v, def) cms_as_int(v, def) cms_as_num(v, def) cms_as_bool(v, def)  cms_is_null(v)
 *                      (as_int: integers exactly to 64 bits; an integral double is converted)
 *   char *cms_stringify(v)  compact JSON text of v
 *
 * Writing JSON: cms_buf is a growing string (zero-initialize it: cms_buf b = {0};) with a JSON
 * writer on top that inserts commas itself.
 *   cms_buf_put(b, s, n) cms_buf_puts(b, s) cms_buf_putc(b, c) cms_buf_fmt(b, fmt, ...) cms_buf_vfmt
 *   const char *cms_buf_str(b)   the text so far, NUL-terminated
 *   cms_w_obj(b) cms_w_arr(b) cms_w_end(b)   open an object/array; close the innermost one
 *   cms_w_key(b, k) then one value: cms_w_str(b, s) cms_w_strn(b, s, n) cms_w_int(b, i)
 *     cms_w_num(b, d) cms_w_bool(b, t) cms_w_null(b) cms_w_raw(b, json) cms_w_json(b, node)
 *   key + value in one: cms_w_kstr cms_w_kint cms_w_knum cms_w_kbool cms_w_knull cms_w_kraw
 *     cms_w_kjson (b, key, value), cms_w_kobj(b, key) cms_w_karr(b, key)
 *   Strings are escaped (quotes, backslash, control characters), valid UTF-8 is kept as is and
 *   invalid bytes become U+FFFD. Integers are exact; NaN and infinities are written as null.
 *
 * The call: cms_ctx *ctx is passed to every action.
 *   ctx->action, ctx->params, ctx->context      the envelope (params/context: objects, never NULL)
 *   cms_param(ctx, key)                          cms_get(ctx->params, key)
 *   cms_buf *cms_result(ctx)     write the result (one JSON value) into the returned writer
 *   cms_result_json(ctx, json)   or set it from JSON text
 *   cms_error(ctx, code, msg)    answer {"ok":false,"error":{...}} instead (result and UI dropped)
 *   cms_fail(ctx, msg)           give up: fault "trap" with msg (does not return)
 *   cms_log(ctx, level, msg) cms_logf(ctx, level, fmt, ...)   level CMS_DEBUG..CMS_ERROR;
 *                                needs capability "log"
 *
 * Host calls (capabilities in plugin.toml; a missing one is a fault, not an answer):
 *   const cms_json *cms_call(ctx, op, args_json)  the parsed answer, never NULL; args NULL = {}
 *   cms_call_ok(a)  cms_call_error(a) (code, or NULL when ok)  cms_call_message(a)  cms_call_result(a)
 *   cms_host_error(ctx)           code of the last failed host call, NULL if it succeeded
 *   kv (scope "plugin", "agent" or "client"; NULL = the host's default, "agent"):
 *   const cms_json *cms_kv_get(ctx, key, scope)   the value (a null node when unset), NULL on an
 *                                                 error answer (unavailable, timeout, ...)
 *   int cms_kv_set(ctx, key, scope, value_json)   1 ok, 0 error answer
 *   int cms_kv_delete(ctx, key, scope)            1 ok, 0 error answer
 *   const cms_json *cms_kv_list(ctx, prefix, scope)   array of keys, NULL on an error answer
 *
 * UI blocks (plugin_sdk/ui.py), appended to the answer's "ui" in order. NULL optional arguments
 * (tone, title, style, ...) are left out; tone is "neutral", "info", "success", "warning" or "danger".
 *   cms_ui_heading(ctx, text, level)       level 1-3, 0 leaves it out
 *   cms_ui_text(ctx, text, tone)  cms_ui_alert(ctx, text, tone)  cms_ui_badge(ctx, text, tone)
 *   cms_ui_link(ctx, text, href)           href: tel:, sip:, sips:, mailto: or /a/cms/path
 *   cms_ui_timer(ctx, label, since)        a clock the page ticks from since ("...T14:05:09Z")
 *   cms_ui_key_value(ctx)  then cms_ui_pair(ctx, key, value) ...
 *   cms_ui_list(ctx, ordered)  then cms_ui_item(ctx, text) ...
 *   cms_ui_terminal(ctx)  then cms_ui_line(ctx, text) ...
 *   cms_ui_timeline(ctx)  then cms_ui_event(ctx, time, title, text, tone) ...
 *   cms_ui_table(ctx, (const char *[]){"Name", "Count", NULL})
 *     then per row cms_ui_row(ctx) and cells cms_ui_cell(ctx, s) cms_ui_cell_int cms_ui_cell_num
 *     cms_ui_cell_bool cms_ui_cell_null
 *   cms_ui_form(ctx, action, title), then its fields, then its buttons:
 *     cms_ui_field(ctx, &(cms_field){.name = "name", .label = "Name", .kind = "text",
 *                  .placeholder = "Ada", .required = 1, .value = "..." or .value_json = "3",
 *                  .options = (cms_option[]){{"a", "A"}, {"b", "B"}, {0}}})
 *     cms_ui_button(ctx, &(cms_button){.label = "Save", .action = "save", .style = "primary"})
 *   cms_ui_block_json(ctx, json)           any block as JSON text
 *   A block is finished by the next one (or by cms_ui_end(ctx)). Adding items to the wrong block
 *   is a programming error and ends the call with fault "trap".
 */
#ifndef CMS_PLUGIN_H
#define CMS_PLUGIN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define CMS_API static __attribute__((unused))
#define CMS_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define CMS_EXPORT(name) __attribute__((export_name(name)))
#define CMS_IMPORT(name) __attribute__((import_module("cms"), import_name(name)))
#ifndef CMS_MAX_DEPTH
#define CMS_MAX_DEPTH 32 /* JSON nesting when reading; the writer allows 64 */
#endif

enum { CMS_DEBUG, CMS_INFO, CMS_WARN, CMS_ERROR };
typedef enum { CMS_MISSING, CMS_NULL, CMS_BOOL, CMS_NUMBER, CMS_STRING, CMS_ARRAY, CMS_OBJECT } cms_type_t;

/* A parsed JSON value. Read fields through the accessors; `key` is the member name in an object. */
typedef struct cms_json {
    unsigned char type;   /* cms_type_t */
    unsigned char is_int; /* number held exactly in u.i */
    uint16_t key_len;     /* bytes of key */
    uint32_t len;         /* string bytes, or members of an array/object */
    uint32_t next;        /* nodes to the next sibling, 0 = last (the DOM is one array, in order) */
    const char *key;      /* member name (NUL-terminated, at most 64 KiB) in an object, else NULL */
    union { double num; long long i; const char *str; int b; } u;
} cms_json;

typedef struct cms_buf {
    char *data;
    size_t len, cap;
    unsigned char fixed, depth, after_key; /* fixed: a static buffer that never grows */
    uint64_t first, obj;                   /* per depth: no member yet; is an object */
} cms_buf;

typedef struct cms_ctx {
    const char *action;      /* the action's name */
    const cms_json *params;  /* its params: an object */
    const cms_json *context; /* who calls: {"agent": {...}, "client": {...}, "slot": ...} */
    /* private */
    cms_buf result_, ui_;
    unsigned char has_result_, ui_state_;
    const char *error_code_, *error_message_, *host_error_;
} cms_ctx;

typedef struct { const char *value, *label; } cms_option;
typedef struct cms_field {
    const char *name, *label, *kind, *placeholder;
    const char *value;      /* a string value */
    const char *value_json; /* or any scalar as JSON text: "3", "true", "null" */
    int required;
    const cms_option *options; /* kind "select": ends with {0} */
} cms_field;
typedef struct cms_button { const char *label, *action, *style, *value; } cms_button;

typedef void (*cms_action_fn)(cms_ctx *ctx);
typedef struct { const char *name; cms_action_fn fn; } cms_action;

/* ---- host imports, libc, exports -------------------------------------------------------- */

CMS_IMPORT("log") void cms__host_log(int32_t level, const char *ptr, size_t len);
CMS_IMPORT("call") uint64_t cms__host_call(const char *ptr, size_t len);

#ifndef CMS_NO_LIBC
void *memcpy(void *restrict dst, const void *restrict src, size_t n) {
#ifdef __wasm_bulk_memory__
    __builtin_memcpy(dst, src, n); /* memory.copy */
#else
    unsigned char *d = dst; const unsigned char *s = src;
    while (n--) *d++ = *s++;
#endif
    return dst;
}
void *memmove(void *dst, const void *src, size_t n) {
#ifdef __wasm_bulk_memory__
    __builtin_memmove(dst, src, n);
#else
    unsigned char *d = dst; const unsigned char *s = src;
    if (d < s) while (n--) *d++ = *s++;
    else while (n--) d[n] = s[n];
#endif
    return dst;
}
void *memset(void *dst, int c, size_t n) {
#ifdef __wasm_bulk_memory__
    __builtin_memset(dst, c, n); /* memory.fill */
#else
    unsigned char *d = dst;
    while (n--) *d++ = (unsigned char)c;
#endif
    return dst;
}
int memcmp(const void *a, const void *b, size_t n) {
    const unsigned char *x = a, *y = b;
    for (; n; n--, x++, y++) if (*x != *y) return *x - *y;
    return 0;
}
size_t strlen(const char *s) {
    const char *p = s;
    while (*p) p++;
    return (size_t)(p - s);
}
#else
void *memcpy(void *restrict, const void *restrict, size_t);
void *memmove(void *, const void *, size_t);
void *memset(void *, int, size_t);
int memcmp(const void *, const void *, size_t);
size_t strlen(const char *);
#endif

#ifdef __wasm_bulk_memory__
#define cms__copy __builtin_memcpy /* inline memory.copy */
#else
#define cms__copy memcpy
#endif

extern unsigned char __heap_base; /* first byte after data and stack (wasm-ld) */
static uintptr_t cms__top;        /* next free byte of the arena */

static int cms__reserve(uintptr_t end) { /* memory up to `end` exists (grown if needed) */
    uint64_t have = (uint64_t)__builtin_wasm_memory_size(0) << 16;
    if (end <= have) return 1;
    return __builtin_wasm_memory_grow(0, (size_t)((end - have + 0xFFFF) >> 16)) != (size_t)-1;
}

static void *cms__bump(size_t n) { /* NULL when memory cannot grow */
    if (!cms__top) cms__top = (uintptr_t)&__heap_base;
    uintptr_t p = (cms__top + 7) & ~(uintptr_t)7;
    if (n > UINTPTR_MAX - p || !cms__reserve(p + n)) return 0;
    cms__top = p + n;
    return (void *)p;
}

/* The host's allocator (for the input and for host answers): 0 when memory is exhausted. */
CMS_EXPORT("cms_alloc") void *cms_alloc(size_t n) { return cms__bump(n); }
CMS_EXPORT("cms_abi_version") int32_t cms_abi_version(void) { return 1; }

/* ---- strings and buffers ---------------------------------------------------------------- */

static void cms__abort(const char *kind, const char *msg, size_t n, size_t bytes)
    __attribute__((noreturn));
#define cms__oom(n) cms__abort("memory_limit", 0, 0, (n))
#define cms__trap(msg) cms__abort("trap", (msg), strlen(msg), 0)

/* Room for n more bytes and a NUL. A fixed buffer answers 0 when full; others grow or abort. */
static int cms__room(cms_buf *b, size_t n) {
    size_t need = b->len + n + 1, cap;
    if (need <= b->cap) return 1;
    if (b->fixed) return 0;
    cap = b->cap * 2 > need ? b->cap * 2 : need < 64 ? 64 : need;
    if (b->data && (uintptr_t)b->data + b->cap == cms__top && cms__reserve((uintptr_t)b->data + cap)) {
        cms__top = (uintptr_t)b->data + cap; /* the last allocation grows in place */
    } else {
        char *p = cms__bump(cap);
        if (!p) cms__oom(cap);
        if (b->len) cms__copy(p, b->data, b->len);
        b->data = p;
    }
    b->cap = cap;
    return 1;
}

CMS_API void cms_buf_put(cms_buf *b, const char *s, size_t n) {
    if (!cms__room(b, n)) return;
    cms__copy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
}
CMS_API void cms_buf_puts(cms_buf *b, const char *s) { cms_buf_put(b, s, strlen(s)); }
CMS_API void cms_buf_putc(cms_buf *b, char c) {
    if (!cms__room(b, 1)) return;
    b->data[b->len++] = c;
    b->data[b->len] = 0;
}
CMS_API const char *cms_buf_str(const cms_buf *b) { return b->data ? b->data : ""; }

static void cms__put_some(cms_buf *b, const char *s, size_t n) { /* a full fixed buffer: a prefix */
    if (b->fixed && b->len + n + 1 > b->cap) {
        n = b->cap > b->len + 1 ? b->cap - b->len - 1 : 0;
        while (n && (s[n] & 0xC0) == 0x80) n--; /* whole UTF-8 characters only */
        cms_buf_put(b, s, n);
        b->cap = b->len + 1; /* and nothing after them */
        return;
    }
    cms_buf_put(b, s, n);
}

static void cms__put_u64(cms_buf *b, unsigned long long v, int neg, unsigned base) {
    char t[24];
    int i = 24;
    do { t[--i] = "0123456789abcdef"[v % base]; v /= base; } while (v);
    if (neg) t[--i] = '-';
    cms_buf_put(b, t + i, (size_t)(24 - i));
}
static void cms__put_i64(cms_buf *b, long long v) {
    cms__put_u64(b, v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v, v < 0, 10);
}

/* Length of the valid UTF-8 sequence at s (2-4), or 0 when it is not one. */
static size_t cms__utf8_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t k = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (!k || n < k) return 0;
    if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F) || (c == 0xF0 && s[1] < 0x90)
        || (c == 0xF4 && s[1] > 0x8F)) return 0; /* overlong, surrogate, above U+10FFFF */
    for (size_t i = 1; i < k; i++) if ((s[i] & 0xC0) != 0x80) return 0;
    return k;
}

/* s[0..n) as the inside of a JSON string (no quotes). */
static void cms__escape(cms_buf *b, const char *s, size_t n) {
    size_t i = 0, run = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') { i++; continue; }
        size_t k = c >= 0x80 ? cms__utf8_len((const unsigned char *)s + i, n - i) : 0;
        if (k) { i += k; continue; }
        cms__put_some(b, s + run, i - run);
        if (c >= 0x80) {
            cms_buf_put(b, "\\ufffd", 6); /* not UTF-8 */
            i++;
        } else {
            const char *e = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n" : c == '\r' ? "\\r"
                          : c == '\t' ? "\\t" : c == '\b' ? "\\b" : c == '\f' ? "\\f" : 0;
            if (e) {
                cms_buf_put(b, e, 2);
            } else {
                char u[6] = {'\\', 'u', '0', '0', "0123456789abcdef"[c >> 4], "0123456789abcdef"[c & 15]};
                cms_buf_put(b, u, 6);
            }
            i++;
        }
        run = i;
    }
    cms__put_some(b, s + run, i - run);
}

/* ---- numbers ------------------------------------------------------------------------------ */
/* Decimal <-> double in double-double arithmetic (about 104 bits): correctly rounded except
 * within 2^-104 of a tie, and the writer picks the shortest digits that read back exactly. */

static const double cms__p10[23] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

typedef struct { double hi, lo; } cms__dd;

static double cms__ldexp(double x, int k) { /* x * 2^k */
    union { uint64_t u; double d; } p;
    for (; k > 1000 || k < -1000; k += k > 0 ? -1000 : 1000) {
        p.u = (uint64_t)(1023 + (k > 0 ? 1000 : -1000)) << 52;
        x *= p.d;
    }
    p.u = (uint64_t)(1023 + k) << 52;
    return x * p.d;
}
static cms__dd cms__dd_norm(double hi, double lo) {
    double s = hi + lo;
    return (cms__dd){s, lo - (s - hi)};
}
static cms__dd cms__dd_mul(cms__dd a, cms__dd b) {
    double p = a.hi * b.hi, c = 134217729.0 * a.hi, ah = c - (c - a.hi), al = a.hi - ah;
    c = 134217729.0 * b.hi;
    double bh = c - (c - b.hi), bl = b.hi - bh; /* Dekker: p + err == a.hi * b.hi exactly */
    double err = ((ah * bh - p) + ah * bl + al * bh) + al * bl;
    return cms__dd_norm(p, err + (a.hi * b.lo + a.lo * b.hi));
}
static cms__dd cms__dd_div(cms__dd a, cms__dd b) {
    double q1 = a.hi / b.hi;
    cms__dd p = cms__dd_mul((cms__dd){q1, 0}, b);
    double r = ((a.hi - p.hi) - p.lo) + a.lo; /* a.hi - p.hi is exact (Sterbenz) */
    return cms__dd_norm(q1, r / b.hi);
}
/* 10^k (k >= 0) as p * 2^*b2, with p kept small so nothing overflows. */
static cms__dd cms__pow10(int k, int *b2) {
    cms__dd p = {1, 0};
    for (*b2 = 0; k > 22; k -= 22, *b2 += 73) p = cms__dd_mul(p, (cms__dd){1e22 / 9444732965739290427392.0, 0});
    return cms__dd_mul(p, (cms__dd){cms__p10[k], 0});
}
/* m * 10^e, rounded to the nearest double. */
static double cms__decimal(unsigned long long m, int e) {
    if (!m || e < -400) return 0;
    if (e > 400) return 1e308 * 10;
    double mh = (double)m;
    if (m < 1ull << 53 && e >= -22 && e <= 22) return e < 0 ? mh / cms__p10[-e] : mh * cms__p10[e];
    int b2;
    cms__dd md = {mh, (double)(long long)(m - (unsigned long long)mh)}, p = cms__pow10(e < 0 ? -e : e, &b2);
    cms__dd r = e < 0 ? cms__dd_div(md, p) : cms__dd_mul(md, p);
    double v = cms__ldexp(r.hi, e < 0 ? -b2 : b2), tiny = 4.9406564584124654e-324;
    if (v < 2.2250738585072014e-308) { /* subnormal: r.hi was rounded twice; round hi + lo once */
        double rest = (r.hi - cms__ldexp(v, b2)) + r.lo, half = cms__ldexp(tiny, b2 - 1);
        v += rest > half ? tiny : rest < -half ? -tiny : 0;
    }
    return v;
}

/* The shortest digits (at most 17) that read back as x; NaN and infinities are null. */
static void cms__put_double(cms_buf *b, double x) {
    if (x != x || x - x != 0) { cms_buf_put(b, "null", 4); return; }
    if (x < 0) { cms_buf_putc(b, '-'); x = -x; }
    if (x < 1e17 && x == (double)(unsigned long long)x) { cms__put_u64(b, (unsigned long long)x, 0, 10); return; }
    union { double d; uint64_t u; } bits = {x};
    int e2 = (int)(bits.u >> 52 & 0x7FF) - 1023, sub = e2 == -1023, e10, b2, p;
    if (sub) { bits.d = x * 18014398509481984.0; e2 = (int)(bits.u >> 52 & 0x7FF) - 1023 - 54; }
    double f = cms__ldexp(x, -e2); /* x = f * 2^e2, 1 <= f < 2 */
    unsigned long long d;
    for (e10 = (e2 * 78913) >> 18;; e10++) { /* floor(e2 * log10(2)), or one more */
        int k = 16 - e10;
        cms__dd pw = cms__pow10(k < 0 ? -k : k, &b2), z;
        z = k < 0 ? cms__dd_div((cms__dd){f, 0}, pw) : cms__dd_mul((cms__dd){f, 0}, pw);
        int s = k < 0 ? e2 - b2 : e2 + b2;
        z.hi = cms__ldexp(z.hi, s);
        z.lo = cms__ldexp(z.lo, s);
        if (z.hi >= 1e17) continue;
        double t = __builtin_floor(z.hi), rem = (z.hi - t) + z.lo;
        d = (unsigned long long)t + (unsigned long long)(long long)__builtin_floor(rem + 0.5);
        break; /* 17 digits: x ~ d * 10^(e10-16) */
    }
    int e = e10, n;
    for (p = sub ? 1 : 15; p < 17; p++) { /* shorter: d rounded to p digits, or its neighbour */
        unsigned long long scale = (unsigned long long)cms__p10[17 - p], q = d / scale;
        int up = d % scale * 2 >= scale, ep = e10, i;
        for (i = 0; i < 2; i++) {
            unsigned long long dp = q + (unsigned long long)(up ^ i);
            ep = e10;
            if (dp >= (unsigned long long)cms__p10[p]) { dp /= 10; ep++; }
            if (cms__decimal(dp, ep - p + 1) == x) { d = dp; break; }
        }
        if (i < 2) { e = ep; break; }
    }
    if (d >= 100000000000000000ull) { d /= 10; e++; p = 17; }
    char dig[20];
    for (n = p; n > 0; d /= 10) dig[--n] = (char)('0' + d % 10);
    for (n = p; n > 1 && dig[n - 1] == '0'; n--) {}
    if (e >= -5 && e < 17) {
        if (e < 0) {
            cms_buf_put(b, "0.00000", (size_t)(1 - e));
            cms_buf_put(b, dig, (size_t)n);
        } else {
            cms_buf_put(b, dig, (size_t)(n < e + 1 ? n : e + 1));
            for (int z = n; z < e + 1; z++) cms_buf_putc(b, '0');
            if (n > e + 1) { cms_buf_putc(b, '.'); cms_buf_put(b, dig + e + 1, (size_t)(n - e - 1)); }
        }
    } else {
        cms_buf_putc(b, dig[0]);
        if (n > 1) { cms_buf_putc(b, '.'); cms_buf_put(b, dig + 1, (size_t)(n - 1)); }
        cms_buf_putc(b, 'e');
        cms__put_i64(b, e);
    }
}

/* ---- the clean give-up (abi.ABORT_OP): a static request, no allocation -------------------- */

static char cms__abort_req[600];

static void cms__abort(const char *kind, const char *msg, size_t n, size_t bytes) {
    cms_buf b = {.data = cms__abort_req, .cap = sizeof cms__abort_req - 4, .fixed = 1};
    cms_buf_puts(&b, "{\"op\":\"abort\",\"args\":{\"kind\":\"");
    cms_buf_puts(&b, kind);
    cms_buf_puts(&b, "\",\"message\":\"");
    if (msg) {
        cms__escape(&b, msg, n);
    } else {
        cms_buf_puts(&b, "out of memory allocating ");
        cms__put_u64(&b, bytes, 0, 10);
        cms_buf_puts(&b, " bytes");
    }
    b.cap = sizeof cms__abort_req;
    cms_buf_puts(&b, "\"}}");
    cms__host_call(b.data, b.len); /* ends the call */
    __builtin_trap();
}

/* ---- arena helpers ------------------------------------------------------------------------ */

CMS_API void *cms_arena_alloc(size_t n) {
    void *p = cms__bump(n);
    if (!p) cms__oom(n);
    return p;
}
CMS_API char *cms_strndup(const char *s, size_t n) {
    char *p = cms_arena_alloc(n + 1);
    cms__copy(p, s, n);
    return p;
}
CMS_API char *cms_strdup(const char *s) { return cms_strndup(s, strlen(s)); }
CMS_API int cms_streq(const char *a, const char *b) {
    if (!a || !b) return a == b;
    while (*a && *a == *b) a++, b++;
    return *a == *b;
}
CMS_API char *cms_trim(const char *s) { /* without leading and trailing ASCII whitespace */
    while (*s == ' ' || (*s >= '\t' && *s <= '\r')) s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || (s[n - 1] >= '\t' && s[n - 1] <= '\r'))) n--;
    return cms_strndup(s, n);
}

CMS_API void cms_buf_vfmt(cms_buf *b, const char *f, va_list ap) {
    for (; *f; f++) {
        if (*f != '%') {
            const char *s = f;
            while (f[1] && f[1] != '%') f++;
            cms_buf_put(b, s, (size_t)(f - s + 1));
            continue;
        }
        int lng = 0, prec = -1;
        if (f[1] == '.' && f[2] == '*') { prec = va_arg(ap, int); f += 2; }
        for (f++; *f == 'l' || *f == 'z'; f++) lng++; /* z: size_t is unsigned long on wasm32 */
        switch (*f) {
        case 's': {
            const char *s = va_arg(ap, const char *);
            size_t n = 0;
            if (!s) s = "(null)";
            while (s[n] && (prec < 0 || n < (size_t)prec)) n++;
            cms_buf_put(b, s, n);
            break;
        }
        case 'c': cms_buf_putc(b, (char)va_arg(ap, int)); break;
        case 'd': case 'i':
            cms__put_i64(b, lng > 1 ? va_arg(ap, long long) : lng ? va_arg(ap, long) : va_arg(ap, int));
            break;
        case 'u': case 'x':
            cms__put_u64(b, lng > 1 ? va_arg(ap, unsigned long long) : lng ? va_arg(ap, unsigned long)
                         : va_arg(ap, unsigned), 0, *f == 'x' ? 16 : 10);
            break;
        case 'f': case 'g': cms__put_double(b, va_arg(ap, double)); break;
        case 0: f--; break;
        default: cms_buf_putc(b, *f); break; /* %% and unknown */
        }
    }
}
CMS_API CMS_PRINTF(2, 3) void cms_buf_fmt(cms_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    cms_buf_vfmt(b, fmt, ap);
    va_end(ap);
}
CMS_API CMS_PRINTF(1, 2) char *cms_fmt(const char *fmt, ...) {
    cms_buf b = {0};
    va_list ap;
    va_start(ap, fmt);
    cms_buf_vfmt(&b, fmt, ap);
    va_end(ap);
    return b.data ? b.data : cms_strndup("", 0);
}

/* ---- JSON writer -------------------------------------------------------------------------- */

static void cms__sep(cms_buf *b) { /* the comma before a member, unless it follows its key */
    if (b->after_key) { b->after_key = 0; return; }
    if (!b->depth) return;
    uint64_t bit = 1ull << (b->depth - 1);
    if (b->first & bit) b->first &= ~bit; else cms_buf_putc(b, ',');
}
static void cms__open(cms_buf *b, char c, int obj) {
    cms__sep(b);
    if (b->depth >= 64) cms__trap("JSON writer: nested deeper than 64");
    cms_buf_putc(b, c);
    uint64_t bit = 1ull << b->depth++;
    b->first |= bit;
    b->obj = obj ? b->obj | bit : b->obj & ~bit;
}
CMS_API void cms_w_obj(cms_buf *b) { cms__open(b, '{', 1); }
CMS_API void cms_w_arr(cms_buf *b) { cms__open(b, '[', 0); }
CMS_API void cms_w_end(cms_buf *b) {
    if (!b->depth) cms__trap("JSON writer: cms_w_end without an open object or array");
    b->depth--;
    cms_buf_putc(b, b->obj >> b->depth & 1 ? '}' : ']');
}
CMS_API void cms_w_strn(cms_buf *b, const char *s, size_t n) {
    cms__sep(b);
    cms_buf_putc(b, '"');
    cms__escape(b, s, n);
    cms_buf_putc(b, '"');
}
CMS_API void cms_w_key(cms_buf *b, const char *key) {
    cms_w_strn(b, key, strlen(key));
    cms_buf_putc(b, ':');
    b->after_key = 1;
}
CMS_API void cms_w_null(cms_buf *b) { cms__sep(b); cms_buf_put(b, "null", 4); }
CMS_API void cms_w_str(cms_buf *b, const char *s) { if (s) cms_w_strn(b, s, strlen(s)); else cms_w_null(b); }
CMS_API void cms_w_int(cms_buf *b, long long v) { cms__sep(b); cms__put_i64(b, v); }
CMS_API void cms_w_num(cms_buf *b, double v) { cms__sep(b); cms__put_double(b, v); }
CMS_API void cms_w_bool(cms_buf *b, int v) { cms__sep(b); cms_buf_puts(b, v ? "true" : "false"); }
static void cms__rawn(cms_buf *b, const char *json, size_t n) { cms__sep(b); cms_buf_put(b, json, n); }
CMS_API void cms_w_raw(cms_buf *b, const char *json) { cms__rawn(b, json, strlen(json)); }
CMS_API void cms_w_json(cms_buf *b, const cms_json *v) {
    if (!v || v->type == CMS_NULL) { cms_w_null(b); return; }
    switch (v->type) {
    case CMS_BOOL: cms_w_bool(b, v->u.b); break;
    case CMS_NUMBER: if (v->is_int) cms_w_int(b, v->u.i); else cms_w_num(b, v->u.num); break;
    case CMS_STRING: cms_w_strn(b, v->u.str, v->len); break;
    default: {
        const cms_json *c = v + 1;
        if (v->type == CMS_OBJECT) cms_w_obj(b); else cms_w_arr(b);
        for (uint32_t i = 0; i < v->len; i++, c += c->next) {
            if (v->type == CMS_OBJECT) { cms_w_strn(b, c->key, c->key_len); cms_buf_putc(b, ':'); b->after_key = 1; }
            cms_w_json(b, c);
        }
        cms_w_end(b);
    }
    }
}
CMS_API void cms_w_kobj(cms_buf *b, const char *k) { cms_w_key(b, k); cms_w_obj(b); }
CMS_API void cms_w_karr(cms_buf *b, const char *k) { cms_w_key(b, k); cms_w_arr(b); }
CMS_API void cms_w_kstr(cms_buf *b, const char *k, const char *s) { cms_w_key(b, k); cms_w_str(b, s); }
CMS_API void cms_w_kint(cms_buf *b, const char *k, long long v) { cms_w_key(b, k); cms_w_int(b, v); }
CMS_API void cms_w_knum(cms_buf *b, const char *k, double v) { cms_w_key(b, k); cms_w_num(b, v); }
CMS_API void cms_w_kbool(cms_buf *b, const char *k, int v) { cms_w_key(b, k); cms_w_bool(b, v); }
CMS_API void cms_w_knull(cms_buf *b, const char *k) { cms_w_key(b, k); cms_w_null(b); }
CMS_API void cms_w_kraw(cms_buf *b, const char *k, const char *json) { cms_w_key(b, k); cms_w_raw(b, json); }
CMS_API void cms_w_kjson(cms_buf *b, const char *k, const cms_json *v) { cms_w_key(b, k); cms_w_json(b, v); }

CMS_API char *cms_stringify(const cms_json *v) {
    cms_buf b = {0};
    cms_w_json(&b, v);
    return b.data;
}

/* ---- JSON reader -------------------------------------------------------------------------- */

static const cms_json cms__null_node = {.type = CMS_NULL};
static const cms_json cms__empty_object = {.type = CMS_OBJECT};
static const cms_json cms__empty_array = {.type = CMS_ARRAY};

typedef struct { char *p, *end; cms_json *nodes; uint32_t count, cap; } cms__parser;

static uint32_t cms__node(cms__parser *ps) {
    if (ps->count == ps->cap) {
        uint32_t cap = ps->cap ? ps->cap * 2 : 16;
        size_t old = ps->cap * sizeof(cms_json), size = cap * sizeof(cms_json);
        if ((uintptr_t)ps->nodes + old == cms__top && cms__reserve((uintptr_t)ps->nodes + size)) {
            cms__top = (uintptr_t)ps->nodes + size; /* nothing else allocates while parsing */
        } else {
            cms_json *nodes = cms_arena_alloc(size);
            if (old) cms__copy(nodes, ps->nodes, old);
            ps->nodes = nodes;
        }
        ps->cap = cap;
    }
    return ps->count++;
}

static void cms__ws(cms__parser *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\r' || *ps->p == '\t')) ps->p++;
}

static int cms__hex4(const char *p, const char *end, unsigned *out) {
    unsigned v = 0;
    if (end - p < 4) return 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v = v << 4 | (unsigned)(c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                : c >= 'A' && c <= 'F' ? c - 'A' + 10 : 99);
        if ((c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F')) return 0;
    }
    *out = v;
    return 1;
}

static char *cms__put_utf8(char *w, unsigned cp) {
    if (cp < 0x80) { *w++ = (char)cp; }
    else if (cp < 0x800) { *w++ = (char)(0xC0 | cp >> 6); *w++ = (char)(0x80 | (cp & 0x3F)); }
    else if (cp < 0x10000) {
        *w++ = (char)(0xE0 | cp >> 12); *w++ = (char)(0x80 | (cp >> 6 & 0x3F)); *w++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *w++ = (char)(0xF0 | cp >> 18); *w++ = (char)(0x80 | (cp >> 12 & 0x3F));
        *w++ = (char)(0x80 | (cp >> 6 & 0x3F)); *w++ = (char)(0x80 | (cp & 0x3F));
    }
    return w;
}

/* A string at ps->p (on the quote), unescaped in place (never longer) and NUL-terminated. */
static int cms__pstring(cms__parser *ps, char **out, uint32_t *len) {
    char *r = ps->p + 1, *w = r, *end = ps->end;
    for (;;) {
        if (r >= end) return 0;
        unsigned char c = (unsigned char)*r;
        if (c == '"') break;
        if (c >= 0x20 && c < 0x80 && c != '\\') { *w++ = *r++; continue; }
        if (c < 0x20) return 0;
        if (c >= 0x80) {
            size_t k = cms__utf8_len((unsigned char *)r, (size_t)(end - r));
            if (!k) return 0;
            while (k--) *w++ = *r++;
            continue;
        }
        if (r + 1 >= end) return 0;
        char e = r[1];
        r += 2;
        if (e == 'u') {
            unsigned cp, lo;
            if (!cms__hex4(r, end, &cp)) return 0;
            r += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && end - r >= 6 && r[0] == '\\' && r[1] == 'u'
                && cms__hex4(r + 2, end, &lo) && lo >= 0xDC00 && lo < 0xE000) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                r += 6;
            } else if (cp >= 0xD800 && cp < 0xE000) {
                cp = 0xFFFD; /* a lone surrogate has no UTF-8 form */
            }
            w = cms__put_utf8(w, cp);
        } else {
            const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
            int i = 0;
            while (from[i] && from[i] != e) i++;
            if (!from[i]) return 0;
            *w++ = to[i];
        }
    }
    *w = 0;
    *out = ps->p + 1;
    *len = (uint32_t)(w - (ps->p + 1));
    ps->p = r + 1;
    return 1;
}

static int cms__pnumber(cms__parser *ps, cms_json *node) {
    char *p = ps->p, *end = ps->end;
    unsigned long long m = 0;
    int neg = 0, digits = 0, e10 = 0, exact = 1;
    if (p < end && *p == '-') { neg = 1; p++; }
    if (p >= end || *p < '0' || *p > '9' || (*p == '0' && p + 1 < end && p[1] >= '0' && p[1] <= '9')) return 0;
    for (; p < end && *p >= '0' && *p <= '9'; p++) {
        if (digits < 19) { m = m * 10 + (unsigned)(*p - '0'); digits += m != 0; }
        else { e10++; exact = 0; }
    }
    if (p < end && *p == '.') {
        exact = 0;
        if (++p >= end || *p < '0' || *p > '9') return 0;
        for (; p < end && *p >= '0' && *p <= '9'; p++)
            if (digits < 19) { m = m * 10 + (unsigned)(*p - '0'); digits += m != 0; e10--; }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        int eneg = 0, ev = 0;
        exact = 0;
        if (++p < end && (*p == '+' || *p == '-')) eneg = *p++ == '-';
        if (p >= end || *p < '0' || *p > '9') return 0;
        for (; p < end && *p >= '0' && *p <= '9'; p++) if (ev < 100000) ev = ev * 10 + (*p - '0');
        e10 += eneg ? -ev : ev;
    }
    ps->p = p;
    node->type = CMS_NUMBER;
    if (exact && m <= (neg ? 0x8000000000000000ull : 0x7FFFFFFFFFFFFFFFull)) {
        node->is_int = 1;
        node->u.i = neg ? (long long)(0ull - m) : (long long)m;
    } else {
        double v = cms__decimal(m, e10);
        node->u.num = neg ? -v : v;
    }
    return 1;
}

static int cms__pvalue(cms__parser *ps, int depth, uint32_t *at) {
    cms__ws(ps);
    if (ps->p >= ps->end) return 0;
    uint32_t i = cms__node(ps);
    char c = *ps->p;
    *at = i;
    if (c == '{' || c == '[') {
        int obj = c == '{';
        char close = obj ? '}' : ']';
        uint32_t prev = 0, n = 0;
        if (depth >= CMS_MAX_DEPTH) return 0;
        ps->nodes[i].type = obj ? CMS_OBJECT : CMS_ARRAY;
        ps->p++;
        cms__ws(ps);
        if (ps->p < ps->end && *ps->p == close) { ps->p++; return 1; }
        for (;;) {
            char *key = 0;
            uint32_t klen, child;
            if (obj) {
                cms__ws(ps);
                if (ps->p >= ps->end || *ps->p != '"' || !cms__pstring(ps, &key, &klen) || klen > 0xFFFF) return 0;
                cms__ws(ps);
                if (ps->p >= ps->end || *ps->p != ':') return 0;
                ps->p++;
            }
            if (!cms__pvalue(ps, depth + 1, &child)) return 0;
            ps->nodes[child].key = key; /* nodes may have moved: always index */
            ps->nodes[child].key_len = (uint16_t)klen;
            if (n++) ps->nodes[prev].next = child - prev;
            prev = child;
            cms__ws(ps);
            if (ps->p >= ps->end) return 0;
            if (*ps->p == ',') { ps->p++; continue; }
            if (*ps->p++ != close) return 0;
            break;
        }
        ps->nodes[i].len = n;
        return 1;
    }
    if (c == '"') {
        char *s;
        uint32_t n;
        if (!cms__pstring(ps, &s, &n)) return 0;
        ps->nodes[i].type = CMS_STRING;
        ps->nodes[i].u.str = s;
        ps->nodes[i].len = n;
        return 1;
    }
    if (c == 't' || c == 'f' || c == 'n') {
        const char *word = c == 't' ? "true" : c == 'f' ? "false" : "null";
        size_t n = c == 'f' ? 5 : 4;
        if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n)) return 0;
        ps->p += n;
        ps->nodes[i].type = c == 'n' ? CMS_NULL : CMS_BOOL;
        ps->nodes[i].u.b = c == 't';
        return 1;
    }
    return cms__pnumber(ps, &ps->nodes[i]);
}

/* Parse text that the library owns and may change (strings are unescaped where they are). */
static const cms_json *cms__parse_inplace(char *text, size_t len) {
    cms__parser ps = {text, text + len, 0, 0, 0};
    uint32_t root;
    if (!text || !cms__pvalue(&ps, 0, &root)) return 0;
    cms__ws(&ps);
    return ps.p == ps.end ? ps.nodes : 0;
}
CMS_API const cms_json *cms_parse(const char *text, size_t len) {
    return cms__parse_inplace(cms_strndup(text, len), len);
}

CMS_API cms_type_t cms_type(const cms_json *v) { return v ? (cms_type_t)v->type : CMS_MISSING; }
CMS_API int cms_is_null(const cms_json *v) { return !v || v->type == CMS_NULL; }
CMS_API uint32_t cms_len(const cms_json *v) {
    return v && (v->type == CMS_ARRAY || v->type == CMS_OBJECT || v->type == CMS_STRING) ? v->len : 0;
}
CMS_API const cms_json *cms_first(const cms_json *v) {
    return v && (v->type == CMS_ARRAY || v->type == CMS_OBJECT) && v->len ? v + 1 : 0;
}
CMS_API const cms_json *cms_next(const cms_json *child) { return child && child->next ? child + child->next : 0; }
CMS_API const cms_json *cms_get(const cms_json *obj, const char *key) {
    if (!obj || obj->type != CMS_OBJECT) return 0;
    size_t n = strlen(key);
    for (const cms_json *c = cms_first(obj); c; c = cms_next(c))
        if (c->key_len == n && !memcmp(c->key, key, n)) return c;
    return 0;
}
CMS_API const cms_json *cms_at(const cms_json *arr, size_t i) {
    const cms_json *c = arr && arr->type == CMS_ARRAY ? cms_first(arr) : 0;
    while (c && i--) c = cms_next(c);
    return c;
}
CMS_API const char *cms_as_str(const cms_json *v, const char *def) {
    return v && v->type == CMS_STRING ? v->u.str : def;
}
CMS_API long long cms_as_int(const cms_json *v, long long def) {
    if (!v || v->type != CMS_NUMBER) return def;
    if (v->is_int) return v->u.i;
    double d = v->u.num;
    return d >= -9223372036854775808.0 && d < 9223372036854775808.0 && d == (double)(long long)d
        ? (long long)d : def;
}
CMS_API double cms_as_num(const cms_json *v, double def) {
    if (!v || v->type != CMS_NUMBER) return def;
    return v->is_int ? (double)v->u.i : v->u.num;
}
CMS_API int cms_as_bool(const cms_json *v, int def) { return v && v->type == CMS_BOOL ? v->u.b : def; }

/* ---- the call: result, error, log, host calls, kv ----------------------------------------- */

CMS_API const cms_json *cms_param(const cms_ctx *ctx, const char *key) { return cms_get(ctx->params, key); }
CMS_API cms_buf *cms_result(cms_ctx *ctx) {
    cms_buf empty = {0};
    ctx->result_ = empty;
    ctx->has_result_ = 1;
    return &ctx->result_;
}
CMS_API void cms_result_json(cms_ctx *ctx, const char *json) { cms_w_raw(cms_result(ctx), json); }
CMS_API void cms_error(cms_ctx *ctx, const char *code, const char *message) {
    ctx->error_code_ = code;
    ctx->error_message_ = message ? message : "";
}
CMS_API __attribute__((noreturn)) void cms_fail(cms_ctx *ctx, const char *message) {
    (void)ctx;
    cms__abort("trap", message, strlen(message), 0);
}
CMS_API void cms_log(cms_ctx *ctx, int level, const char *message) {
    (void)ctx;
    cms__host_log(level, message, strlen(message));
}
CMS_API CMS_PRINTF(3, 4) void cms_logf(cms_ctx *ctx, int level, const char *fmt, ...) {
    cms_buf b = {0};
    va_list ap;
    va_start(ap, fmt);
    cms_buf_vfmt(&b, fmt, ap);
    va_end(ap);
    cms_log(ctx, level, cms_buf_str(&b));
}

CMS_API int cms_call_ok(const cms_json *answer) { return cms_as_bool(cms_get(answer, "ok"), 0); }
CMS_API const char *cms_call_error(const cms_json *answer) {
    return cms_call_ok(answer) ? 0 : cms_as_str(cms_get(cms_get(answer, "error"), "code"), "bad_answer");
}
CMS_API const char *cms_call_message(const cms_json *answer) {
    return cms_as_str(cms_get(cms_get(answer, "error"), "message"), "");
}
CMS_API const cms_json *cms_call_result(const cms_json *answer) { return cms_get(answer, "result"); }
CMS_API const char *cms_host_error(const cms_ctx *ctx) { return ctx->host_error_; }

CMS_API const cms_json *cms_call(cms_ctx *ctx, const char *op, const char *args_json) {
    cms_buf req = {0};
    cms_w_obj(&req);
    cms_w_kstr(&req, "op", op);
    cms_w_kraw(&req, "args", args_json ? args_json : "{}");
    cms_w_end(&req);
    uint64_t packed = cms__host_call(req.data, req.len);
    const cms_json *answer = cms__parse_inplace((char *)(uintptr_t)(packed >> 32), (uint32_t)packed);
    if (!answer || answer->type != CMS_OBJECT) {
        static const char bad[] = "{\"ok\":false,\"error\":{\"code\":\"bad_answer\","
                                  "\"message\":\"the host's answer is not a JSON object\"}}";
        answer = cms_parse(bad, sizeof bad - 1);
    }
    ctx->host_error_ = cms_call_error(answer);
    return answer;
}

static const cms_json *cms__kv(cms_ctx *ctx, const char *op, const char *name, const char *key,
                               const char *scope, const char *value_json) {
    cms_buf args = {0};
    cms_w_obj(&args);
    cms_w_kstr(&args, name, key);
    if (scope) cms_w_kstr(&args, "scope", scope);
    if (value_json) cms_w_kraw(&args, "value", value_json);
    cms_w_end(&args);
    const cms_json *answer = cms_call(ctx, op, args.data);
    if (!cms_call_ok(answer)) return 0;
    return cms_call_result(answer) ? cms_call_result(answer) : &cms__null_node;
}
CMS_API const cms_json *cms_kv_get(cms_ctx *ctx, const char *key, const char *scope) {
    const cms_json *result = cms__kv(ctx, "kv.get", "key", key, scope, 0);
    const cms_json *value = cms_get(result, "value");
    return !result ? 0 : value ? value : &cms__null_node;
}
CMS_API int cms_kv_set(cms_ctx *ctx, const char *key, const char *scope, const char *value_json) {
    return cms__kv(ctx, "kv.set", "key", key, scope, value_json ? value_json : "null") != 0;
}
CMS_API int cms_kv_delete(cms_ctx *ctx, const char *key, const char *scope) {
    return cms__kv(ctx, "kv.delete", "key", key, scope, 0) != 0;
}
CMS_API const cms_json *cms_kv_list(cms_ctx *ctx, const char *prefix, const char *scope) {
    const cms_json *result = cms__kv(ctx, "kv.list", "prefix", prefix, scope, 0);
    const cms_json *keys = cms_get(result, "keys");
    return !result ? 0 : keys ? keys : &cms__empty_array;
}

/* ---- UI blocks ---------------------------------------------------------------------------- */

enum { CMS__UI_NONE, CMS__UI_PAIRS, CMS__UI_TABLE, CMS__UI_ROW, CMS__UI_ITEMS, CMS__UI_LINES,
       CMS__UI_EVENTS, CMS__UI_FORM, CMS__UI_FIELDS, CMS__UI_BUTTONS };

CMS_API void cms_ui_end(cms_ctx *ctx) { /* finish the current block */
    while (ctx->ui_.depth > 1) cms_w_end(&ctx->ui_);
    ctx->ui_state_ = CMS__UI_NONE;
}
static cms_buf *cms__block(cms_ctx *ctx, const char *type, const char *text, const char *tone) {
    cms_buf *b = &ctx->ui_;
    cms_ui_end(ctx);
    if (!b->depth) cms_w_arr(b);
    cms_w_obj(b);
    cms_w_kstr(b, "type", type);
    if (text) cms_w_kstr(b, "text", text);
    if (tone) cms_w_kstr(b, "tone", tone);
    return b;
}
static cms_buf *cms__in(cms_ctx *ctx, int state, const char *misuse) {
    if (ctx->ui_state_ != state) cms__trap(misuse);
    return &ctx->ui_;
}
static void cms__opt(cms_buf *b, const char *key, const char *s) { if (s) cms_w_kstr(b, key, s); }
#define cms__s(s) ((s) ? (s) : "")

CMS_API void cms_ui_heading(cms_ctx *ctx, const char *text, int level) {
    cms_buf *b = cms__block(ctx, "heading", cms__s(text), 0);
    if (level) cms_w_kint(b, "level", level);
}
CMS_API void cms_ui_text(cms_ctx *ctx, const char *text, const char *tone) { cms__block(ctx, "text", cms__s(text), tone); }
CMS_API void cms_ui_alert(cms_ctx *ctx, const char *text, const char *tone) { cms__block(ctx, "alert", cms__s(text), tone); }
CMS_API void cms_ui_badge(cms_ctx *ctx, const char *text, const char *tone) { cms__block(ctx, "badge", cms__s(text), tone); }
CMS_API void cms_ui_link(cms_ctx *ctx, const char *text, const char *href) {
    cms_w_kstr(cms__block(ctx, "link", cms__s(text), 0), "href", cms__s(href));
}
CMS_API void cms_ui_timer(cms_ctx *ctx, const char *label, const char *since) {
    cms_buf *b = cms__block(ctx, "timer", 0, 0);
    cms__opt(b, "label", label);
    cms_w_kstr(b, "since", cms__s(since));
}
CMS_API void cms_ui_block_json(cms_ctx *ctx, const char *json) {
    cms_ui_end(ctx);
    if (!ctx->ui_.depth) cms_w_arr(&ctx->ui_);
    cms_w_raw(&ctx->ui_, json);
}

static void cms__list_block(cms_ctx *ctx, const char *type, const char *key, int state) {
    cms_w_karr(cms__block(ctx, type, 0, 0), key);
    ctx->ui_state_ = (unsigned char)state;
}
CMS_API void cms_ui_key_value(cms_ctx *ctx) { cms__list_block(ctx, "key_value", "items", CMS__UI_PAIRS); }
CMS_API void cms_ui_pair(cms_ctx *ctx, const char *key, const char *value) {
    cms_buf *b = cms__in(ctx, CMS__UI_PAIRS, "cms_ui_pair outside cms_ui_key_value");
    cms_w_obj(b);
    cms_w_kstr(b, "key", cms__s(key));
    cms_w_kstr(b, "value", cms__s(value));
    cms_w_end(b);
}
CMS_API void cms_ui_list(cms_ctx *ctx, int ordered) {
    cms_buf *b = cms__block(ctx, "list", 0, 0);
    if (ordered) cms_w_kbool(b, "ordered", 1);
    cms_w_karr(b, "items");
    ctx->ui_state_ = CMS__UI_ITEMS;
}
CMS_API void cms_ui_item(cms_ctx *ctx, const char *text) {
    cms_w_str(cms__in(ctx, CMS__UI_ITEMS, "cms_ui_item outside cms_ui_list"), cms__s(text));
}
CMS_API void cms_ui_terminal(cms_ctx *ctx) { cms__list_block(ctx, "terminal", "lines", CMS__UI_LINES); }
CMS_API void cms_ui_line(cms_ctx *ctx, const char *text) {
    cms_w_str(cms__in(ctx, CMS__UI_LINES, "cms_ui_line outside cms_ui_terminal"), cms__s(text));
}
CMS_API void cms_ui_timeline(cms_ctx *ctx) { cms__list_block(ctx, "timeline", "items", CMS__UI_EVENTS); }
CMS_API void cms_ui_event(cms_ctx *ctx, const char *time, const char *title, const char *text,
                          const char *tone) {
    cms_buf *b = cms__in(ctx, CMS__UI_EVENTS, "cms_ui_event outside cms_ui_timeline");
    cms_w_obj(b);
    cms_w_kstr(b, "time", cms__s(time));
    cms_w_kstr(b, "title", cms__s(title));
    cms__opt(b, "text", text);
    cms__opt(b, "tone", tone);
    cms_w_end(b);
}

CMS_API void cms_ui_table(cms_ctx *ctx, const char *const *columns) {
    cms_buf *b = cms__block(ctx, "table", 0, 0);
    cms_w_karr(b, "columns");
    while (columns && *columns) cms_w_str(b, *columns++);
    cms_w_end(b);
    cms_w_karr(b, "rows");
    ctx->ui_state_ = CMS__UI_TABLE;
}
CMS_API void cms_ui_row(cms_ctx *ctx) {
    if (ctx->ui_state_ == CMS__UI_ROW) { cms_w_end(&ctx->ui_); ctx->ui_state_ = CMS__UI_TABLE; }
    cms_w_arr(cms__in(ctx, CMS__UI_TABLE, "cms_ui_row outside cms_ui_table"));
    ctx->ui_state_ = CMS__UI_ROW;
}
#define cms__cell(ctx) cms__in(ctx, CMS__UI_ROW, "a table cell outside cms_ui_row")
CMS_API void cms_ui_cell(cms_ctx *ctx, const char *s) { cms_w_str(cms__cell(ctx), s); }
CMS_API void cms_ui_cell_int(cms_ctx *ctx, long long v) { cms_w_int(cms__cell(ctx), v); }
CMS_API void cms_ui_cell_num(cms_ctx *ctx, double v) { cms_w_num(cms__cell(ctx), v); }
CMS_API void cms_ui_cell_bool(cms_ctx *ctx, int v) { cms_w_bool(cms__cell(ctx), v); }
CMS_API void cms_ui_cell_null(cms_ctx *ctx) { cms_w_null(cms__cell(ctx)); }

CMS_API void cms_ui_form(cms_ctx *ctx, const char *action, const char *title) {
    cms_buf *b = cms__block(ctx, "form", 0, 0);
    cms_w_kstr(b, "action", cms__s(action));
    cms__opt(b, "title", title);
    ctx->ui_state_ = CMS__UI_FORM;
}
CMS_API void cms_ui_field(cms_ctx *ctx, const cms_field *f) {
    cms_buf *b = &ctx->ui_;
    if (ctx->ui_state_ == CMS__UI_FORM) { cms_w_karr(b, "fields"); ctx->ui_state_ = CMS__UI_FIELDS; }
    cms__in(ctx, CMS__UI_FIELDS, "cms_ui_field outside cms_ui_form, or after its buttons");
    cms_w_obj(b);
    cms_w_kstr(b, "name", cms__s(f->name));
    cms_w_kstr(b, "label", f->label ? f->label : cms__s(f->name));
    cms__opt(b, "kind", f->kind);
    if (f->value) cms_w_kstr(b, "value", f->value);
    else if (f->value_json) cms_w_kraw(b, "value", f->value_json);
    cms__opt(b, "placeholder", f->placeholder);
    if (f->required) cms_w_kbool(b, "required", 1);
    if (f->options) {
        cms_w_karr(b, "options");
        for (const cms_option *o = f->options; o->value; o++) {
            cms_w_obj(b);
            cms_w_kstr(b, "value", o->value);
            cms_w_kstr(b, "label", o->label ? o->label : o->value);
            cms_w_end(b);
        }
        cms_w_end(b);
    }
    cms_w_end(b);
}
CMS_API void cms_ui_button(cms_ctx *ctx, const cms_button *btn) {
    cms_buf *b = &ctx->ui_;
    if (ctx->ui_state_ == CMS__UI_FIELDS) { cms_w_end(b); ctx->ui_state_ = CMS__UI_FORM; }
    if (ctx->ui_state_ == CMS__UI_FORM) { cms_w_karr(b, "buttons"); ctx->ui_state_ = CMS__UI_BUTTONS; }
    cms__in(ctx, CMS__UI_BUTTONS, "cms_ui_button outside cms_ui_form");
    cms_w_obj(b);
    cms_w_kstr(b, "label", cms__s(btn->label));
    cms__opt(b, "action", btn->action);
    cms__opt(b, "style", btn->style);
    cms__opt(b, "value", btn->value);
    cms_w_end(b);
}

/* ---- cms_handle --------------------------------------------------------------------------- */

static uint64_t cms__answer(cms_ctx *ctx) {
    cms_buf out = {0};
    cms_w_obj(&out);
    if (ctx->error_code_) {
        cms_w_kbool(&out, "ok", 0);
        cms_w_kobj(&out, "error");
        cms_w_kstr(&out, "code", ctx->error_code_);
        cms_w_kstr(&out, "message", ctx->error_message_);
        cms_w_end(&out);
    } else {
        cms_w_kbool(&out, "ok", 1);
        if (ctx->has_result_ && ctx->result_.len) {
            while (ctx->result_.depth) cms_w_end(&ctx->result_);
            cms_w_key(&out, "result");
            cms__rawn(&out, ctx->result_.data, ctx->result_.len);
        }
        if (ctx->ui_.depth) {
            cms_ui_end(ctx);
            cms_w_end(&ctx->ui_);
            cms_w_key(&out, "ui");
            cms__rawn(&out, ctx->ui_.data, ctx->ui_.len);
        }
    }
    cms_w_end(&out);
    return (uint64_t)(uintptr_t)out.data << 32 | (uint32_t)out.len;
}

static uint64_t cms__dispatch(char *input, size_t len, const cms_action *actions, size_t count) {
    cms_ctx ctx = {0};
    const cms_json *env = cms__parse_inplace(input, len);
    const cms_json *action = cms_get(env, "action"), *params = cms_get(env, "params"),
                   *context = cms_get(env, "context");
    if (cms_type(env) != CMS_OBJECT || cms_as_int(cms_get(env, "abi"), 0) != 1
        || !cms_len(action) || action->type != CMS_STRING
        || (params && params->type != CMS_OBJECT) || (context && context->type != CMS_OBJECT)) {
        cms_error(&ctx, "bad_input", "the input is not an ABI v1 envelope "
                                     "{\"abi\":1,\"action\":...,\"params\":{...},\"context\":{...}}");
        return cms__answer(&ctx);
    }
    ctx.action = action->u.str;
    ctx.params = params ? params : &cms__empty_object;
    ctx.context = context ? context : &cms__empty_object;
    for (size_t i = 0; i < count; i++) {
        if (cms_streq(actions[i].name, ctx.action)) {
            actions[i].fn(&ctx);
            return cms__answer(&ctx);
        }
    }
    cms_error(&ctx, "unknown_action", cms_fmt("this plugin has no action \"%s\"", ctx.action));
    return cms__answer(&ctx);
}

/* CMS_ACTIONS(CMS_ACTION("name", function), ...) defines cms_handle over this action table. */
#define CMS_ACTION(name, fn) { name, fn }
#define CMS_ACTIONS(...)                                                                        \
    static const cms_action cms__actions[] = {__VA_ARGS__};                                     \
    CMS_EXPORT("cms_handle") uint64_t cms_handle(char *input, size_t len) {                     \
        return cms__dispatch(input, len, cms__actions, sizeof cms__actions / sizeof *cms__actions); \
    }

#endif /* CMS_PLUGIN_H */
