/* oom: allocates until memory runs out. cms_arena_alloc never returns NULL: when memory.grow is
 * refused it ends the call with fault memory_limit ("out of memory allocating N bytes"). */
#include "cms_plugin.h"

static void hog(cms_ctx *ctx) {
    size_t chunk = (size_t)cms_as_int(cms_param(ctx, "chunk"), 64 * 1024);
    for (;;) {
        char *block = cms_arena_alloc(chunk);
        block[chunk - 1] = 1; /* use it */
    }
}

CMS_ACTIONS(CMS_ACTION("hog", hog))
