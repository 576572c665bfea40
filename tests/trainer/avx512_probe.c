/* Runs AVX-512 instructions and exits 0: test_cpu.py's control that qemu's
 * Zen 3 has no AVX-512 (there this dies of SIGILL). Built with -mavx512f;
 * the numbers depend on argc, so the compiler cannot fold them away. */
#include <immintrin.h>
#include <stdio.h>

int main(int argc, char **argv) {
    (void)argv;
    float in[16], out[16];
    for (int i = 0; i < 16; i++)
        in[i] = (float)(i + argc - 1);
    __m512 v = _mm512_loadu_ps(in);
    _mm512_storeu_ps(out, _mm512_add_ps(v, _mm512_permutexvar_ps(_mm512_set1_epi32(15), v)));
    float sum = 0;
    for (int i = 0; i < 16; i++)
        sum += out[i];
    printf("AVX-512: %g\n", sum);   /* without arguments, 0 + ... + 15 + 16 * 15 */
    return sum == 360.0f ? 0 : 1;
}
