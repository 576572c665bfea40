#!/usr/bin/env bash
# Regenerates generated/ (ninjac's committed output for every spec in specs/)
# with the ninjac built in ${BUILD:-build}. Review the diff, then commit.
set -euo pipefail
cd "$(dirname "$0")/.."
ninjac=${BUILD:-build}/compiler/ninjac
[ -x "$ninjac" ] || { echo "build ninjac first: cmake --build ${BUILD:-build} --target ninjac" >&2; exit 1; }
rm -f generated/*.c generated/*.h
for spec in specs/*.ninja; do
  "$ninjac" "$spec" -o generated
done
git status --short generated
