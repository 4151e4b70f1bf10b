/* leaky: each call reads the whole history from kv, copies it, appends one entry, writes it
 * back, and rebuilds a transcript of 2 KB per entry. Nothing leaks inside a call (every call is
 * a fresh sandbox), but the history persists in kv, so fuel and peak memory per call keep
 * growing: what the soak's leak detector must catch. Entries are small in kv (so 1,000 calls
 * stay under the 64 KiB cms.call request limit); the 2 KB per entry are made in memory. */
#include "cms_plugin.h"

#define ENTRY_BYTES 2048

static void remember(cms_ctx *ctx) {
    const cms_json *history = cms_kv_get(ctx, "history", "agent");
    if (!history) {
        cms_error(ctx, "unavailable", "the history cannot be read right now");
        return;
    }

    /* The whole history, copied, plus one entry. */
    long long n = cms_len(history) + 1;
    cms_buf copy = {0};
    cms_w_arr(&copy);
    for (const cms_json *e = cms_first(history); e; e = cms_next(e)) cms_w_json(&copy, e);
    cms_w_obj(&copy);
    cms_w_kint(&copy, "n", n);
    cms_w_kstr(&copy, "at", cms_fmt("call %lld", n));
    cms_w_end(&copy);
    cms_w_end(&copy);
    if (!cms_kv_set(ctx, "history", "agent", cms_buf_str(&copy))) {
        cms_error(ctx, "unavailable", "the history cannot be saved right now");
        return;
    }

    /* The transcript: every entry of the (re-parsed) history, padded to 2 KB. */
    const cms_json *all = cms_parse(copy.data, copy.len);
    static char pad[ENTRY_BYTES];
    cms_buf transcript = {0};
    for (const cms_json *e = cms_first(all); e; e = cms_next(e)) {
        size_t start = transcript.len;
        cms_buf_fmt(&transcript, "%s: ", cms_as_str(cms_get(e, "at"), "?"));
        cms_buf_put(&transcript, pad, ENTRY_BYTES - (transcript.len - start));
    }

    cms_buf *result = cms_result(ctx);
    cms_w_obj(result);
    cms_w_kint(result, "entries", (long long)cms_len(all));
    cms_w_kint(result, "transcript_bytes", (long long)transcript.len);
    cms_w_end(result);
}

CMS_ACTIONS(CMS_ACTION("remember", remember))
