/* load_hf.c — HF directories (config.json + *.safetensors). */
#include "model/model_impl.h"

pl_status pl_model_load_hf(pl_model *m, const char *dir);
pl_status pl_model_load_hf(pl_model *m, const char *dir) {
    (void)m;
    return pl_error(PL_ERR_UNSUPPORTED, "%s: HF directories are not supported yet", dir);
}
