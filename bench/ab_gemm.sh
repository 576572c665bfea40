#!/bin/sh
# ab_gemm.sh OLD_REV [NEW_REV] [-- CFLAGS...]: builds bench/ab_gemm.c with
# runtime/ninjac_kernels.h as of git revision OLD_REV (ab_g0) and NEW_REV
# (ab_g1; the work tree's file if not given), into $AB_OUT (default
# /tmp/ab_gemm), compiled with CFLAGS (default -march=native; e.g.
# -march=znver3 for an AVX2-only code path). Then run, e.g.:
#   OPENBLAS_NUM_THREADS=1 /tmp/ab_gemm 256 4096
set -e
top=$(git rev-parse --show-toplevel)
old=$1; shift
new=
if [ $# -gt 0 ] && [ "$1" != "--" ]; then new=$1; shift; fi
[ "${1:-}" = "--" ] && shift
flags=${*:--march=native}
out=${AB_OUT:-/tmp/ab_gemm}
dir=$(mktemp -d)
mkdir "$dir/old" "$dir/new"
git -C "$top" show "$old:runtime/ninjac_kernels.h" > "$dir/old/ninjac_kernels.h"
if [ -n "$new" ]; then
    git -C "$top" show "$new:runtime/ninjac_kernels.h" > "$dir/new/ninjac_kernels.h"
else
    cp "$top/runtime/ninjac_kernels.h" "$dir/new/"
fi
cc=${CC:-gcc}
# the generated code's flags (cmake/NinjacModel.cmake): contraction on
$cc -std=gnu11 -O3 -ffp-contract=fast $flags -DAB_VARIANT=ab_g0 -I "$dir/old" -c "$top/bench/ab_gemm.c" -o "$dir/g0.o"
$cc -std=gnu11 -O3 -ffp-contract=fast $flags -DAB_VARIANT=ab_g1 -I "$dir/new" -c "$top/bench/ab_gemm.c" -o "$dir/g1.o"
$cc -std=gnu11 -O2 $flags "$top/bench/ab_gemm.c" "$dir/g0.o" "$dir/g1.o" -o "$out" -lopenblas
rm -r "$dir"
echo "$out: old $old, new ${new:-work tree}, $flags"
