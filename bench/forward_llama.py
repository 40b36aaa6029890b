"""forward_llama.py — llama.cpp's prefill and decode speed through the
llama-cpp-python package, measured like bench/forward.c: prefill of P random
tokens in one batch (n_batch = P), best of R; decode of G tokens one at a
time after a 16-token prompt, best of R.

  python forward_llama.py MODEL THREADS [P [G [R]]]

llama.cpp's extra weight buffer types (AMX, CPU repacking) are switched off
unless LLAMA_EXTRA_BUFTS=1: on this machine its AMX matmul crashes
(SIGSEGV in ggml_backend_amx_mul_mat) on SmolLM2's Q4_1 weights.
"""
import os
import random
import sys
import time

import llama_cpp


def no_extra_bufts():
    orig = llama_cpp.llama_cpp.llama_model_default_params

    def patched():
        p = orig()
        p.use_extra_bufts = False
        return p

    llama_cpp.llama_cpp.llama_model_default_params = patched
    llama_cpp.llama_model_default_params = patched


def main():
    if os.environ.get("LLAMA_EXTRA_BUFTS") != "1":
        no_extra_bufts()
    path, threads = sys.argv[1], int(sys.argv[2])
    P = int(sys.argv[3]) if len(sys.argv) > 3 else 512
    G = int(sys.argv[4]) if len(sys.argv) > 4 else 128
    R = int(sys.argv[5]) if len(sys.argv) > 5 else 3
    llm = llama_cpp.Llama(model_path=path, n_threads=threads, n_threads_batch=threads, n_batch=P, n_ubatch=P,
                          n_ctx=P + G + 32, verbose=False)
    rng = random.Random(1)
    nv = llm.n_vocab()
    toks = [rng.randrange(nv) for _ in range(max(P, 16 + G))]
    best_p = best_g = 1e30
    for _ in range(R):
        llm.reset()
        llm._ctx.kv_cache_clear()
        t0 = time.perf_counter()
        llm.eval(toks[:P])
        best_p = min(best_p, time.perf_counter() - t0)
    for _ in range(R):
        llm.reset()
        llm._ctx.kv_cache_clear()
        llm.eval(toks[:16])
        t0 = time.perf_counter()
        for g in range(G):
            llm.eval([toks[16 + g]])
        best_g = min(best_g, time.perf_counter() - t0)
    print("llama.cpp prefill %d tokens: %.1f tokens/s" % (P, P / best_p))
    print("llama.cpp decode %d tokens: %.1f tokens/s" % (G, G / best_g))
    print("RESULT prefill_tps=%.3f decode_tps=%.3f" % (P / best_p, G / best_g))


if __name__ == "__main__":
    main()
