/* peak.c — this machine's compute peaks: fp32 FMA, bf16 vdpbf16ps and int8
 * vpdpbusd, on 1 thread and on all OpenMP threads (OMP_NUM_THREADS).
 * The denominators for bench/matmul.c's "fraction of peak" columns.
 * Usage: peak [seconds per probe, default 0.6]
 */
#include <stdio.h>
#include <stdlib.h>

#include "peak_impl.h"
#include "tensor/tensor.h"

int main(int argc, char **argv) {
    const double secs = argc > 1 ? atof(argv[1]) : 0.6;
    if (pl_simd_detected() < PL_SIMD_AVX512) {
        printf("peak: this CPU lacks AVX-512 F/VNNI/BF16; nothing measured\n");
        return 0;
    }
    const int nt = pl_num_threads();
    static const char *names[3] = {"fp32 FMA (vfmadd231ps)", "bf16 (vdpbf16ps)", "int8 (vpdpbusd)"};
    static const char *units[3] = {"GFLOP/s", "GFLOP/s", "GOP/s"};
    for (int k = 0; k < 3; k++) {
        const double one = peak_measure(k, 1, secs), all = peak_measure(k, nt, secs);
        printf("peak %-24s 1 thread %8.1f %s   %d threads %8.1f %s\n", names[k], one, units[k], nt, all, units[k]);
    }
    return 0;
}
