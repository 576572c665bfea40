#!/usr/bin/env bash
# bench/profile.sh - where the default mode's training step spends its time,
# per spec line, measured with perf (Debian's linux-perf).
#
#   bench/profile.sh [--build-dir DIR] [--hidden H] [--n N] [--isa avx2]
#
# Builds the step of specs/mlp_bn_fused.ninja (bench_step.c) with debug line
# tables, records it with `perf record`, and charges every sample in the
# generated code to the spec line whose comment opens its block (the
# generated C says `// mlp_bn_fused.ninja:30` or `// :30` before each
# line's code); samples in the matmul kernels, the transposes and tanh
# (runtime/ninjac_kernels.h, inlined) are shown as such, and the rest by
# symbol (libmvec, the C library). Prints percentages and the
# microseconds they stand for at the step's median time. --isa avx2
# compiles the step -mno-avx512f: the AVX2 code path on an AVX-512 machine.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=build-bench H=200 N=32 ISA_FLAGS=-march=native
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) BUILD=$2; shift ;;
    --hidden) H=$2; shift ;;
    --n) N=$2; shift ;;
    --isa) [ "$2" = avx2 ] || { echo "error: --isa takes avx2" >&2; exit 2; }; ISA_FLAGS="-march=native -mno-avx512f"; shift ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown argument '$1' (--help lists them)" >&2; exit 2 ;;
  esac
  shift
done
command -v perf > /dev/null || { echo "error: perf is not installed (apt-get install linux-perf)" >&2; exit 1; }
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build "$BUILD" --target ninjac ninjac_runtime ninjac_test_rng ninjac_bench_step > /dev/null
W=$BUILD/bench/profile
rm -rf "$W"
mkdir -p "$W"
"$BUILD/compiler/ninjac" -D n_hidden="$H" -D n="$N" specs/mlp_bn_fused.ninja -o "$W"
cat > "$W/main.c" <<'EOF'
#include "mlp_bn_fused.h"
int bench_step_main(int argc, char **argv, const NinjacModel *m, const char *variant);
int main(int argc, char **argv) { return bench_step_main(argc, argv, &mlp_bn_fused_model, "profile"); }
EOF
blas_libs=$(awk -F= '/^BLAS_LIBRARIES:/ { print $2 }' "$BUILD/CMakeCache.txt" | tr ';' ' ')
cc -g -O3 -fno-math-errno $ISA_FLAGS -Iruntime -I"$W" "$W/mlp_bn_fused.c" "$W/main.c" \
  "$BUILD/bench/libninjac_bench_step.a" "$BUILD/tests/reference/libninjac_test_rng.a" "$BUILD/runtime/libninjac_runtime.a" ${blas_libs:--lopenblas} -ljansson -lm \
  -o "$W/step"
export OPENBLAS_NUM_THREADS=1   # no idle pool thread in the samples
"$W/step" > "$W/time.txt"
us=$(sed -n 's/.* us_med=\([0-9.]*\).*/\1/p' "$W/time.txt")
perf record -q -o "$W/perf.data" "$W/step" --reps 40 > /dev/null 2>&1
perf report -i "$W/perf.data" --stdio --sort srcline,sym 2>/dev/null | grep -v '^#' | grep . > "$W/lines.txt"
echo "mlp_bn_fused.ninja, n_hidden $H, batch $N: $us us/step (median; $(sed -n 's/.*corename=\([^ ]*\).*/\1/p' "$W/time.txt") OpenBLAS, unused)"
echo
awk -v us="$us" -v gen="$W/mlp_bn_fused.c" -v spec=specs/mlp_bn_fused.ninja -v kern=runtime/ninjac_kernels.h '
  BEGIN {   # kernels header line -> the function it belongs to
    f = "gemm"
    while ((getline l < kern) > 0) {
      kn++
      if (l ~ /nj_tanhf\(float x\)/) f = "tanh (nj_tanhf)"
      else if (l ~ /nj_transpose(16)?\(/ && l ~ /NJ_INLINE/) f = "transposes (nj_transpose)"
      else if (l ~ /NJ_INLINE|#define NJ_/) f = "matmuls (nj_gemm)"
      kfn[kn] = f
    }
    # generated line -> spec line of the block it is in, and forward/backward
    fn = ""
    while ((getline l < gen) > 0) {
      n++
      if (l ~ /^void mlp_bn_fused_forward/) fn = "forward"
      else if (l ~ /^void mlp_bn_fused_backward/) fn = "backward"
      else if (l ~ /^(void|static|int|const) /) fn = "other"
      if (match(l, /\/\/ (backprop through )?mlp_bn_fused\.ninja:[0-9]+/)) { s = substr(l, RSTART, RLENGTH); sub(/.*:/, "", s); cur = s }
      else if (match(l, /^ *\/\/ :[0-9]+ /)) { s = l; sub(/^ *\/\/ :/, "", s); sub(/ .*/, "", s); cur = s }
      at[n] = cur; part[n] = fn
    }
    k = 0
    while ((getline l < spec) > 0) text[++k] = l
  }
  {
    pct = $1; sub(/%/, "", pct); src = $2
    if (src ~ /^mlp_bn_fused\.c:/) {
      ln = src; sub(/.*:/, "", ln); ln += 0
      if (part[ln] == "forward" || part[ln] == "backward") key = sprintf("%-8s line %2d: %s", part[ln], at[ln], text[at[ln]])
      else key = "the SGD update, inference and the rest of the generated code"
    } else if (src ~ /ninjac_kernels\.h:/) {
      ln = src; sub(/.*:/, "", ln); ln += 0
      key = "kernels: " kfn[ln]
    } else if (src ~ /intrin\.h:/) {   # only the kernels use intrinsics
      key = "kernels: matmuls (nj_gemm) and transposes (nj_transpose), their intrinsics"
    } else {
      key = "other: " $NF
    }
    sum[key] += pct
  }
  END {
    for (k2 in sum) printf "%6.2f%%  %6.2f us  %s\n", sum[k2], sum[k2] * us / 100, k2 | "sort -rn"
  }' "$W/lines.txt"
