#!/usr/bin/env bash
# tools/compile_times.sh - the C compiler's time on each spec's generated C
# at the trainers' flags (cmake/NinjacModel.cmake's ninjac_model_compile_options
# under CMAKE_BUILD_TYPE=Release and NINJAC_GENERATED_WERROR): the default
# mode and -O0. Prints the generated C's size, CPU seconds (user + sys, what
# to compare on a loaded machine), wall time and peak RSS of cc.
#
#   tools/compile_times.sh [--ninjac PATH] [SPEC...]    (default: specs/*.ninja tests/lang/*.ninja)
#
# Issue 12 item 3: every spec compiles in under 60 s on the 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
NINJAC=build/compiler/ninjac
if [ "${1:-}" = --ninjac ]; then NINJAC=$2; shift 2; fi
[ $# -gt 0 ] || set -- specs/*.ninja tests/lang/*.ninja
command -v /usr/bin/time > /dev/null || { echo "error: needs GNU time (/usr/bin/time)" >&2; exit 1; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
common="-O3 -DNDEBUG -Wall -Wextra -std=gnu11"
printf "| spec | mode | C (KiB) | cc CPU s | cc wall s | cc peak RSS (MiB) |\n|---|---|---:|---:|---:|---:|\n"
for spec in "$@"; do
  name=$(basename "$spec" .ninja)
  for mode in default -O0; do
    d=$work/$name$mode; mkdir -p "$d"
    if [ $mode = -O0 ]; then opt=(-O0); flags="$common -ffp-contract=off"
    else opt=(); flags="$common -O3 -fno-math-errno -ffp-contract=fast -march=native"; fi
    "$NINJAC" "${opt[@]}" "$spec" -o "$d" > /dev/null
    /usr/bin/time -f "%U %S %e %M" -o "$d/time" cc -I"$d" -Iruntime $flags -Wall -Wextra -Werror \
        -c "$d/$name.c" -o "$d/$name.o"
    read -r u s e m < "$d/time"
    printf "| %s | %s | %d | %.1f | %.1f | %d |\n" "$name" "$mode" $(( $(stat -c %s "$d/$name.c") / 1024 )) \
        "$(echo "$u + $s" | bc)" "$e" $(( m / 1024 ))
  done
done
