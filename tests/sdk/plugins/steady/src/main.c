/* steady: a healthy plugin that uses a lot of memory, the same amount on every call (a 3 MiB
 * working buffer, under its 4 MiB limit). The leak verdicts must never flag it. */
#include "cms_plugin.h"

static void render(cms_ctx *ctx) {
    size_t kib = (size_t)cms_as_int(cms_param(ctx, "kib"), 3072);
    unsigned char *buffer = cms_arena_alloc(kib * 1024);
    unsigned long long sum = 0;
    for (size_t i = 0; i < kib * 1024; i += 4096) {
        buffer[i] = (unsigned char)i;
        sum += buffer[i];
    }
    cms_buf *result = cms_result(ctx);
    cms_w_obj(result);
    cms_w_kint(result, "kib", (long long)kib);
    cms_w_kint(result, "checksum", (long long)sum);
    cms_w_end(result);
}

CMS_ACTIONS(CMS_ACTION("render", render))
