/* hooks.c — TransformerLens-style names of the hook points (model.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"

/* The part after "blocks.L." (or the whole name for the two global points). */
static const char *const suffix[PL_HOOK_COUNT] = {
    "hook_embed",       "hook_resid_pre", "attn.hook_q",    "attn.hook_k",     "attn.hook_v",
    "attn.hook_pattern", "attn.hook_z",   "hook_attn_out",  "hook_resid_mid",  "mlp.hook_post",
    "hook_mlp_out",     "hook_resid_post", "ln_final.hook_normalized",
};

static int is_global(pl_hook_point p) { return p == PL_HOOK_EMBED || p == PL_HOOK_LN_FINAL; }

const char *pl_hook_name(pl_hook_point p, int layer, char *buf, size_t n) {
    if ((int)p < 0 || p >= PL_HOOK_COUNT) snprintf(buf, n, "?");
    else if (is_global(p)) snprintf(buf, n, "%s", suffix[p]);
    else snprintf(buf, n, "blocks.%d.%s", layer, suffix[p]);
    return buf;
}

pl_status pl_hook_parse(const char *name, pl_hook_point *p, int *layer) {
    for (int i = 0; i < PL_HOOK_COUNT; i++)
        if (is_global((pl_hook_point)i) && !strcmp(name, suffix[i])) {
            *p = (pl_hook_point)i;
            *layer = -1;
            return PL_OK;
        }
    if (strncmp(name, "blocks.", 7) == 0) {
        char *end;
        long l = strtol(name + 7, &end, 10);
        if (end != name + 7 && *end == '.' && l >= 0 && l < (1 << 20))
            for (int i = 0; i < PL_HOOK_COUNT; i++)
                if (!is_global((pl_hook_point)i) && !strcmp(end + 1, suffix[i])) {
                    *p = (pl_hook_point)i;
                    *layer = (int)l;
                    return PL_OK;
                }
    }
    return pl_error(PL_ERR_INVALID, "unknown hook point '%s'", name);
}
