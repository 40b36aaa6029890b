/* test_interp_model.c — the model side of interp: edits, logit lens, DLA,
 * patching and ablation on stories260K and tiny fixtures (../shared), and
 * agreement with TransformerLens on a tiny HF Llama committed under
 * tests/data/interp/ (vectors from tools/ref/tlens_vectors.py). */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "interp/interp.h"
#include "model/model.h"

static pl_model *load(const char *sh, const char *rel) {
    char p[4096];
    pl_model *m = NULL;
    pl_status st = sh ? pl_model_load(t_path(p, sizeof p, sh, rel), NULL, &m) : pl_model_load(rel, NULL, &m);
    CHECK(st == PL_OK, "load %s: %s", rel, pl_errmsg());
    return st == PL_OK ? m : NULL;
}

/* a fixed pseudo-random prompt */
static void prompt(int32_t *ids, int n, int vocab, uint32_t seed) {
    for (int i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        ids[i] = (int32_t)(1 + (seed >> 8) % (uint32_t)(vocab - 1));
    }
}


/* Label tokens that matter for this prompt: the top token of its logits and
 * the top token of other's (or the runner-up). */
static void pick_labels(const pl_model *m, const int32_t *ids, const int32_t *other, int n, int32_t *pos, int32_t *neg) {
    pl_imodel *im;
    *pos = 7, *neg = 11;
    if (pl_imodel_new(m, 7, 11, 64, 0, &im) != PL_OK) return;
    size_t V = (size_t)pl_model_desc(m)->n_vocab;
    float *a = malloc(V * sizeof(float)), *b = malloc(V * sizeof(float));
    if (pl_imodel_run(im, ids, n, NULL, 0, NULL, a) == PL_OK && pl_imodel_run(im, other, n, NULL, 0, NULL, b) == PL_OK) {
        size_t ia = 0, ib = 0;
        for (size_t v = 1; v < V; v++) {
            if (a[v] > a[ia]) ia = v;
            if (b[v] - a[v] > b[ib] - a[ib]) ib = v;
        }
        if (ib == ia) ib = (ia + 1) % V;
        *pos = (int32_t)ia, *neg = (int32_t)ib;
    }
    free(a), free(b);
    pl_imodel_free(im);
}

static void test_lens_dla(const char *sh, const char *rel, int n) {
    pl_model *m = load(sh, rel);
    if (!m) return;
    const pl_arch_desc *d = pl_model_desc(m);
    pl_imodel *im;
    int32_t ids[64], pos, neg;
    prompt(ids, n, d->n_vocab, 42);
    pick_labels(m, ids, ids, n, &pos, &neg);
    CHECK_OK(pl_imodel_new(m, pos, neg, 64, 0, &im));
    /* logit lens: resid_post of the last layer at the last position is the real score */
    pl_grid g;
    double real;
    CHECK_OK(pl_imodel_lens(im, ids, n, &g, &real));
    CHECK(g.n_rows == (size_t)(3 * d->n_layer) && g.n_cols == (size_t)n, "%s: lens grid shape", rel);
    double last = PL_GRID(&g, 3 * d->n_layer - 1, n - 1);
    CHECK(fabs(last - real) <= 1e-4, "%s: lens at last layer %.8f vs real score %.8f", rel, last, real);
    printf("  %s: lens(last layer) - score = %.3g\n", rel, last - real);
    /* resid_pre of layer l+1 equals resid_post of layer l */
    CHECK(PL_GRID(&g, 3, n - 1) == PL_GRID(&g, 2, n - 1), "%s: resid_pre[1] == resid_post[0]", rel);
    pl_grid_free(&g);
    /* DLA: components sum to the score (pre-softcap) */
    pl_imodel_dla dl;
    CHECK_OK(pl_imodel_dla_run(im, ids, n, &dl));
    /* (no final soft-cap on these fixtures: the score is linear in the final normed residual) */
    double want = dl.score;
    if (want == want) {
        CHECK(fabs(dl.sum - want) <= 1e-4, "%s: DLA sum %.8f vs score %.8f", rel, dl.sum, want);
        printf("  %s: DLA sum - score = %.3g (rest component %.3g, scale %.5f)\n", rel, dl.sum - want,
               dl.contrib[dl.n_comp - 1], dl.scale);
    }
    CHECK(fabs(dl.contrib[dl.n_comp - 1]) <= 1e-4, "%s: rest component %g", rel, dl.contrib[dl.n_comp - 1]);
    CHECK(dl.n_comp == (size_t)(2 + d->n_layer * (d->n_head + 1)), "%s: components", rel);
    pl_imodel_dla_free(&dl);
    pl_imodel_free(im);
    pl_model_free(m);
}

static void test_edits(const char *sh) {
    pl_model *m = load(sh, "models/stories260K.gguf");
    if (!m) return;
    const pl_arch_desc *d = pl_model_desc(m);
    pl_imodel *im;
    int n = 20, L = d->n_layer;
    int32_t ids[64], pos, neg;
    prompt(ids, n, d->n_vocab, 5);
    pick_labels(m, ids, ids, n, &pos, &neg);
    CHECK_OK(pl_imodel_new(m, pos, neg, 64, 0, &im));
    size_t V = (size_t)d->n_vocab, D = (size_t)d->n_embd;
    float *l0 = malloc(V * sizeof(float)), *l1 = malloc(V * sizeof(float));
    double s0, s1;
    CHECK_OK(pl_imodel_run(im, ids, n, NULL, 0, &s0, l0));
    /* ablating nothing: record-only edits and setting every activation to itself change nothing */
    size_t wz = pl_imodel_width(im, PL_HOOK_Z);
    float *z = malloc((size_t)L * (size_t)n * wz * sizeof(float)), *mo = malloc((size_t)L * (size_t)n * D * sizeof(float));
    pl_edit *ed = calloc((size_t)(2 * L), sizeof *ed);
    for (int l = 0; l < L; l++) {
        ed[2 * l] = (pl_edit){PL_EDIT_RECORD, PL_HOOK_Z, l, -1, -1, z + (size_t)l * n * wz, NULL, 0, NULL, -1};
        ed[2 * l + 1] = (pl_edit){PL_EDIT_RECORD, PL_HOOK_MLP_OUT, l, -1, -1, mo + (size_t)l * n * D, NULL, 0, NULL, -1};
    }
    CHECK_OK(pl_imodel_run(im, ids, n, ed, (size_t)(2 * L), &s1, l1));
    CHECK(memcmp(l0, l1, V * sizeof(float)) == 0, "recording changes the logits");
    for (int l = 0; l < L; l++) {
        ed[2 * l] = (pl_edit){PL_EDIT_SET, PL_HOOK_Z, l, -1, -1, NULL, z + (size_t)l * n * wz, wz, NULL, -1};
        ed[2 * l + 1] = (pl_edit){PL_EDIT_SET, PL_HOOK_MLP_OUT, l, -1, -1, NULL, mo + (size_t)l * n * D, D, NULL, -1};
    }
    CHECK_OK(pl_imodel_run(im, ids, n, ed, (size_t)(2 * L), &s1, l1));
    CHECK(memcmp(l0, l1, V * sizeof(float)) == 0, "setting activations to themselves changes the logits");
    /* zero-ablating every head and MLP leaves only the embedding: score changes, and equals the lens of hook_embed */
    for (int l = 0; l < L; l++) {
        ed[2 * l] = (pl_edit){PL_EDIT_SET, PL_HOOK_Z, l, -1, -1, NULL, NULL, 0, NULL, -1};
        ed[2 * l + 1] = (pl_edit){PL_EDIT_SET, PL_HOOK_MLP_OUT, l, -1, -1, NULL, NULL, 0, NULL, -1};
    }
    CHECK_OK(pl_imodel_run(im, ids, n, ed, (size_t)(2 * L), &s1, l1));
    CHECK(fabs(s1 - s0) > 1e-3, "zero-ablating everything: score %g -> %g", s0, s1);
    float *emb = malloc((size_t)n * D * sizeof(float));
    pl_edit e1 = {PL_EDIT_RECORD, PL_HOOK_EMBED, -1, -1, -1, emb, NULL, 0, NULL, -1};
    CHECK_OK(pl_imodel_run(im, ids, n, &e1, 1, NULL, NULL));
    double se = pl_lens_score(pl_imodel_readout(im), emb + (size_t)(n - 1) * D);
    CHECK(fabs(se - s1) <= 1e-4, "all ablated: score %.7f vs lens of the embedding %.7f", s1, se);
    printf("  zero-ablate all heads+MLPs: score %.5f -> %.5f (embedding lens %.5f)\n", s0, s1, se);
    /* direction removal along the normalized unembedding difference at the last resid_post */
    float *u = malloc(D * sizeof(float));
    const pl_readout *ro = pl_imodel_readout(im);
    double nn = 0;
    for (size_t j = 0; j < D; j++) u[j] = ro->norm_w[j] * (ro->u_pos[j] - ro->u_neg[j]), nn += (double)u[j] * (double)u[j];
    for (size_t j = 0; j < D; j++) u[j] = (float)((double)u[j] / sqrt(nn));
    /* projecting out at resid_pre of layer 0 with dir = 0-vector changes nothing; the real dir changes the score */
    ed[0] = (pl_edit){PL_EDIT_PROJECT, PL_HOOK_RESID_POST, L - 1, n - 1, -1, NULL, NULL, 0, u, -1};
    CHECK_OK(pl_imodel_run(im, ids, n, ed, 1, &s1, NULL));
    CHECK(fabs(s1) < fabs(s0) * 0.5 + 1e-3, "removing the readout direction: %g -> %g", s0, s1);
    free(u);
    /* bad edits are refused */
    ed[0] = (pl_edit){PL_EDIT_SET, PL_HOOK_MLP_OUT, L, -1, -1, NULL, NULL, 0, NULL, -1};
    CHECK(pl_imodel_run(im, ids, n, ed, 1, &s1, NULL) == PL_ERR_RANGE, "layer out of range");
    ed[0] = (pl_edit){PL_EDIT_SET, PL_HOOK_MLP_OUT, 0, -1, 0, NULL, NULL, 0, NULL, -1};
    CHECK(pl_imodel_run(im, ids, n, ed, 1, &s1, NULL) == PL_ERR_INVALID, "head on mlp_out");
    free(emb), free(z), free(mo), free(ed), free(l0), free(l1);
    pl_imodel_free(im);
    pl_model_free(m);
}

static void test_patch(const char *sh, const char *rel) {
    pl_model *m = load(sh, rel);
    if (!m) return;
    const pl_arch_desc *d = pl_model_desc(m);
    pl_imodel *im;
    int n = 16, L = d->n_layer, k = 9;
    int32_t clean[64], corr[64], pos, neg;
    prompt(clean, n, d->n_vocab, 77);
    memcpy(corr, clean, sizeof clean);
    corr[k] = clean[k] == 3 ? 4 : 3;
    pick_labels(m, clean, corr, n, &pos, &neg);
    CHECK_OK(pl_imodel_new(m, pos, neg, 64, 96, &im));
    /* a run patched into itself: every patched score is the unpatched score, bitwise */
    pl_patch_result pr;
    pl_imodel_set_skip_identical(im, 0); /* really run every patch */
    pl_status st = pl_imodel_patch(im, clean, n, clean, n, PL_HOOK_RESID_PRE, 0, &pr);
    CHECK(st == PL_OK, "self-patch: %s", pl_errmsg());
    if (st != PL_OK) return;
    int same = 1;
    for (size_t i = 0; i < (size_t)L * (size_t)n; i++) same &= pr.scores[i] == pr.clean;
    CHECK(same, "%s: self-patching changes the score", rel);
    pl_patch_result_free(&pr);
    CHECK_OK(pl_imodel_patch(im, clean, n, clean, n, PL_HOOK_Z, 0, &pr));
    same = 1;
    for (size_t i = 0; i < (size_t)L * (size_t)d->n_head; i++) same &= pr.scores[i] == pr.clean;
    CHECK(same, "%s: self-patching heads changes the score", rel);
    pl_patch_result_free(&pr);
    /* one differing token: denoising resid_pre at (L0, k) restores the clean run exactly */
    CHECK_OK(pl_imodel_patch(im, clean, n, corr, n, PL_HOOK_RESID_PRE, 0, &pr));
    pl_imodel_set_skip_identical(im, 1);
    pl_patch_result pr2;
    CHECK_OK(pl_imodel_patch(im, clean, n, corr, n, PL_HOOK_RESID_PRE, 0, &pr2));
    CHECK(memcmp(pr.scores, pr2.scores, (size_t)L * (size_t)n * sizeof(double)) == 0,
          "%s: skipping identical patches changes the sweep", rel);
    pl_patch_result_free(&pr2);
    printf("  %s: clean %.5f corrupted %.5f\n", rel, pr.clean, pr.corrupted);
    CHECK(PL_GRID(&pr.recovery, 0, k) == 1.0, "%s: recovery at L0 pos %d = %.17g", rel, k, PL_GRID(&pr.recovery, 0, k));
    int zero = 1;
    for (int l = 0; l < L; l++)
        for (int p = 0; p < k; p++) zero &= PL_GRID(&pr.recovery, l, p) == 0.0;
    CHECK(zero, "%s: positions before the difference recover nothing", rel);
    /* the last layer's resid_pre at the answer position carries all but the last block */
    double last = PL_GRID(&pr.recovery, L - 1, n - 1);
    CHECK(last > 0.0, "%s: recovery at the last layer / answer position %g", rel, last);
    pl_patch_result_free(&pr);
    /* noising at (L0, k) gives the corrupted score exactly */
    CHECK_OK(pl_imodel_patch(im, clean, n, corr, n, PL_HOOK_RESID_PRE, 1, &pr));
    CHECK(PL_GRID(&pr.recovery, 0, k) == 0.0, "%s: noising recovery at L0 pos %d = %.17g", rel, k,
          PL_GRID(&pr.recovery, 0, k));
    pl_patch_result_free(&pr);
    /* unequal lengths: an inserted token; positions in the insertion have no counterpart */
    int32_t ins[65];
    memcpy(ins, clean, (size_t)k * sizeof *ins);
    ins[k] = 5;
    memcpy(ins + k + 1, clean + k, (size_t)(n - k) * sizeof *ins);
    int map[65];
    pl_patch_align(ins, n + 1, clean, n, map);
    CHECK(map[k - 1] == k - 1 && map[n] == n - 1 && map[k + 1] == k, "alignment around an insertion");
    CHECK_OK(pl_imodel_patch(im, clean, n, ins, n + 1, PL_HOOK_ATTN_OUT, 0, &pr));
    CHECK(pr.recovery.n_cols == (size_t)(n + 1), "grid over the run prompt");
    pl_patch_result_free(&pr);
    CHECK(pl_imodel_patch(im, clean, n, corr, n, PL_HOOK_PATTERN, 0, &pr) == PL_ERR_UNSUPPORTED, "pattern patching refused");
    pl_imodel_free(im);
    pl_model_free(m);
}

/* ---- TransformerLens reference --------------------------------------------- */

static double jnum(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : (double)NAN;
}

static void test_tlens(void) {
    const char *dir = "tests/data/interp/tiny-llama-hf", *vec = "tests/data/interp/tlens_vectors.json";
    FILE *f = fopen(vec, "rb");
    if (!f) {
        CHECK(0, "missing %s", vec);
        return;
    }
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *txt = malloc((size_t)sz + 1);
    CHECK(fread(txt, 1, (size_t)sz, f) == (size_t)sz, "read %s", vec);
    txt[sz] = 0;
    fclose(f);
    cJSON *j = cJSON_Parse(txt);
    free(txt);
    CHECK(j != NULL, "parse %s", vec);
    if (!j) return;
    pl_model *m = NULL;
    pl_model_opts mo = pl_model_opts_default();
    mo.quant_act = 0;
    CHECK_OK(pl_model_load(dir, &mo, &m));
    if (!m) {
        cJSON_Delete(j);
        return;
    }
    const pl_arch_desc *d = pl_model_desc(m);
    const cJSON *jc = cJSON_GetObjectItem(j, "clean"), *jr = cJSON_GetObjectItem(j, "corrupted");
    int n = cJSON_GetArraySize(jc), L = d->n_layer;
    int32_t clean[64], corr[64];
    for (int i = 0; i < n && i < 64; i++) {
        clean[i] = (int32_t)cJSON_GetArrayItem(jc, i)->valueint;
        corr[i] = (int32_t)cJSON_GetArrayItem(jr, i)->valueint;
    }
    pl_imodel *im;
    CHECK_OK(pl_imodel_new(m, (int32_t)jnum(j, "pos_id"), (int32_t)jnum(j, "neg_id"), 64, 0, &im));
    double worst[4] = {0};
    /* logit lens: [3L x n] rows resid_pre/mid/post per layer */
    pl_grid g;
    double real;
    CHECK_OK(pl_imodel_lens(im, clean, n, &g, &real));
    worst[0] = fabs(real - jnum(j, "clean_score"));
    const cJSON *lens = cJSON_GetObjectItem(j, "lens");
    for (int r = 0; r < 3 * L; r++)
        for (int p = 0; p < n; p++) {
            double want = cJSON_GetArrayItem(cJSON_GetArrayItem(lens, r), p)->valuedouble;
            double e = fabs(PL_GRID(&g, r, p) - want);
            if (e > worst[1]) worst[1] = e;
        }
    pl_grid_free(&g);
    /* DLA: embed, L*H heads interleaved with mlps, as our component order */
    pl_imodel_dla dl;
    CHECK_OK(pl_imodel_dla_run(im, clean, n, &dl));
    const cJSON *dla = cJSON_GetObjectItem(j, "dla");
    CHECK((size_t)cJSON_GetArraySize(dla) == dl.n_comp - 1, "DLA component count %d vs %zu", cJSON_GetArraySize(dla),
          dl.n_comp - 1);
    for (size_t c = 0; c + 1 < dl.n_comp && c < (size_t)cJSON_GetArraySize(dla); c++) {
        double e = fabs(dl.contrib[c] - cJSON_GetArrayItem(dla, (int)c)->valuedouble);
        if (e > worst[2]) worst[2] = e;
    }
    pl_imodel_dla_free(&dl);
    /* resid_pre patching sweep, denoising, patched scores [L x n] */
    pl_patch_result pr;
    CHECK_OK(pl_imodel_patch(im, clean, n, corr, n, PL_HOOK_RESID_PRE, 0, &pr));
    const cJSON *pt = cJSON_GetObjectItem(j, "patch_resid_pre");
    for (int l = 0; l < L; l++)
        for (int p = 0; p < n; p++) {
            double e = fabs(pr.scores[(size_t)l * (size_t)n + (size_t)p] -
                            cJSON_GetArrayItem(cJSON_GetArrayItem(pt, l), p)->valuedouble);
            if (e > worst[3]) worst[3] = e;
        }
    worst[0] = fmax(worst[0], fabs(pr.corrupted - jnum(j, "corrupted_score")));
    pl_patch_result_free(&pr);
    const char *what[4] = {"scores", "logit lens", "DLA", "resid_pre patching"};
    for (int i = 0; i < 4; i++) {
        CHECK(worst[i] <= 1e-4, "TransformerLens %s: max |diff| %.3g", what[i], worst[i]);
        printf("  vs TransformerLens: %-18s max |diff| %.2e\n", what[i], worst[i]);
    }
    pl_imodel_free(im);
    pl_model_free(m);
    cJSON_Delete(j);
}


/* ---- CLI: the model-side subcommands end to end on stories260K ---------- */

static int run_cli(const char *args) {
    const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s/phishlens --quiet %s >/dev/null 2>&1", build, args);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void test_cli(const char *sh) {
    const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
    char bin[300], dir[128], args[3000], m[1024];
    snprintf(bin, sizeof bin, "%s/phishlens", build);
    if (access(bin, X_OK) != 0) {
        SKIP("%s not built: CLI checks skipped", bin);
        return;
    }
    snprintf(dir, sizeof dir, "/tmp/pl_test_imodel.%d", (int)getpid());
    snprintf(m, sizeof m, "%s/models/stories260K.gguf", sh);
    snprintf(args, sizeof args, "mkdir -p %s", dir);
    CHECK(system(args) == 0, "mkdir");
    snprintf(args, sizeof args, "%s/r.jsonl", dir);
    FILE *f = fopen(args, "w");
    if (!f) return;
    fprintf(f, "{\"id\":\"a\",\"source\":\"s1\",\"label\":1,\"subject\":\"Verify\",\"body\":\"Click the link now to verify your bank account.\"}\n"
               "{\"id\":\"b\",\"source\":\"s1\",\"label\":0,\"subject\":\"Verify\",\"body\":\"Click the link now to verify your lunch order.\"}\n"
               "{\"id\":\"c\",\"source\":\"s2\",\"label\":0,\"subject\":\"Lunch\",\"body\":\"See you at noon by the door.\"}\n"
               "{\"id\":\"d\",\"source\":\"s2\",\"label\":1,\"subject\":\"Urgent\",\"body\":\"Your password expires today, log in here.\"}\n");
    fclose(f);
    snprintf(args, sizeof args, "interp patch -m %s --input %s/r.jsonl --clean a --corrupted b -o %s/p.json", m, dir, dir);
    CHECK(run_cli(args) == 0, "%.400s", args);
    snprintf(args, sizeof args, "interp patch -m %s --input %s/r.jsonl --clean a --corrupted b --hook z -o %s/pz.json", m, dir, dir);
    CHECK(run_cli(args) == 0, "%.400s", args);
    snprintf(args, sizeof args, "interp dla -m %s --input %s/r.jsonl -o %s/d.json", m, dir, dir);
    CHECK(run_cli(args) == 0, "%.400s", args);
    snprintf(args, sizeof args, "interp lens -m %s --input %s/r.jsonl -o %s/l.json", m, dir, dir);
    CHECK(run_cli(args) == 0, "%.400s", args);
    snprintf(args, sizeof args, "interp attn -m %s --input %s/r.jsonl --layer 1 -o %s/a.json", m, dir, dir);
    CHECK(run_cli(args) == 0, "%.400s", args);
    snprintf(args, sizeof args, "interp cache -m %s --input %s/r.jsonl --hooks resid_post,z --layers 0-1 -o %s/c.plc", m, dir, dir);
    CHECK(run_cli(args) == 0, "%.400s", args);
    snprintf(args, sizeof args, "interp probe --cache %s/c.plc --k 2 --directions %s/dirs.json -o %s/pc.json", dir, dir, dir);
    CHECK(run_cli(args) == 0, "%.400s", args);
    snprintf(args, sizeof args, "interp ablate -m %s --input %s/r.jsonl --heads 0.1,1.2 --mlps 0 --mode mean -o %s/ab.json", m, dir, dir);
    CHECK(run_cli(args) == 0, "%.400s", args);
    snprintf(args, sizeof args, "interp ablate -m %s --input %s/r.jsonl --remove-direction %s/dirs.json --layer 1 -o %s/rd.json", m, dir, dir, dir);
    CHECK(run_cli(args) == 0, "%.400s", args);
    /* errors: usage (2), missing record (not 0), unknown hook (2), bad direction file (3) */
    CHECK(run_cli("interp patch") == 2, "interp patch without -m: want exit 2");
    snprintf(args, sizeof args, "interp patch -m %s --input %s/r.jsonl --clean a --corrupted zz", m, dir);
    CHECK(run_cli(args) != 0, "missing record id must fail");
    snprintf(args, sizeof args, "interp patch -m %s --input %s/r.jsonl --clean a --corrupted b --hook nope", m, dir);
    CHECK(run_cli(args) == 2, "unknown hook: want 2");
    snprintf(args, sizeof args, "interp ablate -m %s --input %s/r.jsonl --heads 9.9", m, dir);
    CHECK(run_cli(args) == 2, "head out of range: want 2");
    snprintf(args, sizeof args, "interp ablate -m %s --input %s/r.jsonl --remove-direction %s/r.jsonl --layer 1", m, dir, dir);
    CHECK(run_cli(args) == 3, "direction file that is not JSON: want 3");
    /* the DLA output sums to the scores */
    char p[300], *txt = NULL;
    size_t len;
    snprintf(p, sizeof p, "%s/d.json", dir);
    cJSON *j = NULL;
    if (pl_read_file(p, &txt, &len) == PL_OK) j = cJSON_Parse(txt);
    free(txt);
    const cJSON *sc = cJSON_GetObjectItem(j, "scores"), *sm = cJSON_GetObjectItem(j, "sums");
    CHECK(cJSON_GetArraySize(sc) == 4 && cJSON_GetArraySize(sm) == 4, "dla json scores/sums");
    for (int i = 0; i < cJSON_GetArraySize(sc); i++)
        CHECK(fabs(cJSON_GetArrayItem(sc, i)->valuedouble - cJSON_GetArrayItem(sm, i)->valuedouble) < 1e-4, "dla sum %d", i);
    cJSON_Delete(j);
    snprintf(args, sizeof args, "rm -rf %s", dir);
    CHECK(system(args) == 0, "cleanup");
}

int main(void) {
    T_BEGIN();
    test_tlens();
    const char *sh = pl_test_shared();
    if (sh) {
        test_lens_dla(sh, "models/stories260K.gguf", 24);
        test_lens_dla(sh, "models/fixtures/tiny-llama31-random.gguf", 12);
        test_edits(sh);
        test_patch(sh, "models/stories260K.gguf");
        test_patch(sh, "models/fixtures/tiny-mistral-random.gguf");
        test_cli(sh);
    }
    return T_END();
}
