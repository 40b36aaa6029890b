/* model_internal.h — private state shared by src/interp/model_*.c. */
#ifndef PL_INTERP_MODEL_INTERNAL_H
#define PL_INTERP_MODEL_INTERNAL_H

#include "interp/interp.h"

struct pl_imodel {
    const pl_model *m;
    pl_runner *run;
    int max_ctx, max_batch;
    int32_t pos_id, neg_id;
    float *u_pos, *u_neg;
    pl_readout ro;
    const pl_edit *edits;   /* active during a forward */
    size_t n_edits;
    int skip_identical;     /* patching: skip writes of identical values (default 1) */
};

/* Register the dispatcher for every (point, layer) of edits (the array must
 * stay alive for the forward). */
pl_status pl_imodel_set_edits(pl_imodel *im, const pl_edit *edits, size_t n_edits);

#endif
