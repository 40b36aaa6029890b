/* train_impl.h — private layout of pl_trainer, shared by the files of
 * src/train/. Not a public header. */
#ifndef PL_TRAIN_IMPL_H
#define PL_TRAIN_IMPL_H

#include "model/model_impl.h"
#include "train/train.h"

/* Saved activations of one block for T tokens. */
typedef struct {
    pl_real *xn1, *rs1;         /* [T,D], [T] attention input norm */
    pl_real *q, *k, *v;         /* [T,QD], [T,KVD] ×2 (q, k after RoPE) */
    pl_real *P;                 /* [H,T,T] */
    pl_real *z;                 /* [T,QD] */
    pl_real *o, *rs_po;         /* [T,D] o_proj output (before post-norm), [T] */
    pl_real *xmid;              /* [T,D] residual after attention */
    pl_real *xn2, *rs2;         /* [T,D], [T] */
    pl_real *g, *u, *hm;        /* [T,F] gate, up, act(gate)*up */
    pl_real *gs;                /* [T,F] sigmoid(gate) / GELU's tanh term (pl_tr_glu_fwd_s) */
    pl_real *dn, *rs_pf;        /* [T,D] down output (before post-norm), [T] */
    pl_real *lu[PL_TGT_COUNT];  /* [T,r] LoRA A·x per target */
    /* The bf16 precision without full fine-tuning stores the same
     * activations in float32 (then the double fields other than rs1, rs_po,
     * xmid, rs2, rs_pf are NULL): */
    float *fxn1, *fq, *fk, *fv, *fP, *fz, *fo, *fxn2, *fg, *fu, *fhm, *fgs, *fdn;
    float *flu[PL_TGT_COUNT];
    pl_real *mem;
} block_act;

struct pl_trainer {
    const pl_model *m;
    pl_arch_desc d;
    pl_tr_config cfg;
    int D, H, Hkv, hd, F, V, QD, KVD, r;
    pl_tr_weight (*w)[PL_TGT_COUNT];  /* [n_layer][7] frozen projections */
    pl_tr_weight out, embd;
    pl_real *norms;                 /* [n_layer][4][D] + [D] final: attn, ffn, post_attn, post_ffn */
    pl_real *inv_freq;              /* [n_rot/2] */
    pl_tr_attn attn;
    /* parameters */
    size_t n_params;
    pl_real *params, *grads;
    pl_tr_tensor *tensors;
    int n_tensors;
    int (*lora_idx)[PL_TGT_COUNT];  /* [n_layer][7] index of A in tensors (B = +1), or -1 */
    int head_idx;
    /* full fine-tuning: tensor indices of base weights, or -1 */
    int (*full_w)[PL_TGT_COUNT];    /* [n_layer][7] */
    int (*full_norm)[4];            /* [n_layer + 1][4] (final norm at [n_layer][0]) */
    int full_embd, full_out;        /* full_out == full_embd when tied */
    uint64_t step;
    /* run state, grown on demand to Tcap tokens */
    int64_t Tcap;
    block_act *acts;                /* [n_layer], or [1 + n_keep] with checkpointing */
    int n_acts;
    int n_keep;                     /* checkpointing: top layers whose activations are kept */
    pl_real *xs;                    /* [n_layer+1][T,D] block inputs (+ final residual) */
    pl_real *hf, *rsf;              /* [T,D], [T] final norm */
    pl_real *dx, *dtmp, *dwide, *dff1, *dff2, *dq, *dk, *dv; /* backward scratch */
    pl_real *xd, *du;               /* LoRA scratch [T, max(D,F,QD)], [T, r] */
    pl_real *logits;                /* [LM_CHUNK, V] */
    int32_t *pos;                   /* [T] */
    pl_real *rope_cs;               /* [Tcap, n_rot/2, 2] cos, sin of position t (pl_tr_rope_table) */
    int last_row_only;              /* within pl_trainer_example for the label / head objectives: only the
                                       top layer's last row is read (mlp_from, engine.c) */
    int no_pruning;                 /* pl_trainer_set_pruning(t, 0) */
    /* lanes (lanes.c): workers that share everything above the run state
     * (weights, parameters, tensors) with their own run state and gradient
     * buffer; lane_of is the trainer a worker belongs to (NULL for a
     * trainer made by pl_trainer_new) */
    struct pl_trainer **lanes;
    int n_lanes;
    const struct pl_trainer *lane_of;
};

/* About the bytes of run state (activations, scratch) for T tokens
 * (engine.c; what ensure_cap allocates). */
size_t pl_tr_run_state_bytes(const pl_trainer *t, int64_t T);
/* The run state (activations, scratch) freed; Tcap 0 (engine.c). */
void pl_tr_run_state_free(pl_trainer *t);
/* The workers of pl_trainer_examples freed (lanes.c). */
void pl_tr_lanes_free(pl_trainer *t);

/* PEFT module path of target k ("self_attn.q_proj", ...). */
const char *pl_tr_target_hf(int k);

/* AVX-512 kernels (simd_avx512.c; only where that file is built with its
 * flags: x86-64 outside the fuzz builds) */
#if defined(__x86_64__) && !defined(PL_FUZZ_NO_SIMD)
void pl_tr_exp_avx512(double *y, const double *x, int64_t n);
void pl_tr_bf16_avx512(uint16_t *y, const double *x, int64_t n);
void pl_tr_bf16_f32_avx512(uint16_t *yb, float *yf, const double *x, int64_t n);
void pl_tr_f32_bf16_avx512(uint16_t *y, const float *x, int64_t n);
void pl_tr_ds_row_avx512(float *d, const float *p, int64_t n, double s);
void pl_tr_rope_row_f_avx512(float *x, const double *c, int half, int neox, double sg);
void pl_tr_bf16_t_avx512(uint16_t *Ab, int64_t Kp, const float *A, int64_t lda, int64_t M, int64_t K, float alpha);
void pl_tr_scale_f32_avx512(float *y, const double *x, double s, int64_t n);
void pl_tr_add_f32_avx512(double *y, const float *x, int64_t n);
void pl_tr_silu_fwd_f_avx512(float *h, float *s, const float *g, const float *u, int64_t n);
double pl_tr_rmsnorm_row_f_avx512(float *y, const double *x, const double *w, int n, double eps);
void pl_tr_rmsnorm_bwd_row_avx512(double *dx, const double *dy, const double *x, const double *w, double r, int n);
void pl_tr_silu_fwd_bf16_avx512(uint16_t *hb, float *s, const float *g, const float *u, int64_t n);
void pl_tr_silu_bwd_bf16_avx512(uint16_t *dg, uint16_t *du, const float *dh, const float *g, const float *u,
                                const float *s, int64_t n);
void pl_tr_silu_bwd_f_avx512(float *dg, float *du, const float *dh, const float *g, const float *u, const float *s,
                             int64_t n);
void pl_tr_sgemm_avx512(int trans_a, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                        int64_t ldb, float *C, int64_t ldc, int accumulate);
#endif

#endif
