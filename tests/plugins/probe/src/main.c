/* Probe: a test plugin that forwards host ops and reports their answers. */
#include "cms_plugin.h"

static void panel(cms_ctx *ctx) {
    const cms_json *client = cms_get(ctx->context, "client");
    cms_ui_heading(ctx, client ? cms_as_str(cms_get(client, "name"), "?") : "No client", 2);
    cms_ui_text(ctx, "<b>not bold</b>", "neutral");
    cms_ui_form(ctx, "call", NULL);
    cms_ui_field(ctx, &(cms_field){.name = "count", .label = "Count", .kind = "number"});
    cms_ui_button(ctx, &(cms_button){.label = "Run", .style = "primary"});
}

static void call(cms_ctx *ctx) {
    const cms_json *calls = cms_param(ctx, "calls");
    cms_buf *result = cms_result(ctx);
    cms_w_obj(result);
    cms_w_karr(result, "answers");
    for (const cms_json *c = cms_first(calls); c; c = cms_next(c)) {
        const cms_json *args = cms_get(c, "args");
        cms_w_json(result, cms_call(ctx, cms_as_str(cms_get(c, "op"), ""), args ? cms_stringify(args) : NULL));
    }
    cms_w_end(result);
    cms_w_kint(result, "count", cms_as_int(cms_param(ctx, "count"), 0));
    cms_w_kjson(result, "context", ctx->context);
    cms_w_end(result);
    cms_ui_text(ctx, cms_fmt("count %lld", cms_as_int(cms_param(ctx, "count"), 0)), "info");
    const char *then = cms_as_str(cms_param(ctx, "then"), "ok");
    if (cms_streq(then, "trap")) cms_fail(ctx, "probe fails after its calls");
    if (cms_streq(then, "error")) cms_error(ctx, "probe_error", "probe answers ok:false");
}

CMS_ACTIONS(CMS_ACTION("panel", panel), CMS_ACTION("call", call))
