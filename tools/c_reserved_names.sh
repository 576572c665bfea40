#!/bin/sh
# c_reserved_names.sh - prints compiler/c_reserved.inc: every macro name
# without a leading underscore that the C standard headers, the BLAS header
# and ninjac's own headers define (gnu11, _GNU_SOURCE, this CPU's vector ISA).
# A tensor with such a name would be rewritten by the preprocessor in the
# generated C, so ninjac gives it another C name (compiler/names.c).
#
#   tools/c_reserved_names.sh > compiler/c_reserved.inc
#
# The test names.sweep checks the list against the headers of the machine
# it runs on, so a platform with more macros fails there rather than in gcc.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cc=${CC:-cc}
blas=$(for d in /usr/include/x86_64-linux-gnu/openblas-pthread /usr/include/openblas /usr/include; do
    [ -f "$d/cblas.h" ] && { echo "$d"; break; }; done)
{
    for h in assert complex ctype errno fenv float inttypes iso646 limits locale math setjmp signal \
             stdalign stdarg stdatomic stdbool stddef stdint stdio stdlib stdnoreturn string tgmath \
             threads time uchar wchar wctype; do
        echo "#include <$h.h>"
    done
    echo '#include <cblas.h>'
    echo '#include "ninjac_model.h"'
    echo '#include "ninjac_kernels.h"'
} | "$cc" -std=gnu11 -D_GNU_SOURCE -march=native -I"$root/runtime" -I"$blas" -dM -E -x c - |
    awk '{ sub(/\(.*/, "", $2); print $2 }' | grep -v '^_' | LC_ALL=C sort -u |
    awk 'BEGIN { print "/* c_reserved.inc - written by tools/c_reserved_names.sh; do not edit. */" }
         { printf "\"%s\",\n", $0 }'
