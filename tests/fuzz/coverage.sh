#!/usr/bin/env bash
# usage: tests/fuzz/coverage.sh CORPUS_DIR [BUILD_DIR]
# Line coverage of the compiler reached by a fuzz corpus: builds the fuzz
# target with clang's source-based coverage into BUILD_DIR (default
# build-fuzz-cov), replays every input of CORPUS_DIR once, and prints
# llvm-cov's report for compiler/ (the flex and bison outputs included).
set -euo pipefail
corpus=$(cd "$1" && pwd)
build=${2:-build-fuzz-cov}
cd "$(dirname "$0")/../.."
CC=clang cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DNINJAC_FUZZ=ON \
  -DCMAKE_C_FLAGS="-fprofile-instr-generate -fcoverage-mapping -fsanitize=fuzzer-no-link" > /dev/null
cmake --build "$build" --target fuzz_ninjac -j"$(nproc)" > /dev/null
rm -f "$build"/fuzz-*.profraw
LLVM_PROFILE_FILE="$build/fuzz-%p.profraw" "$build/tests/fuzz/fuzz_ninjac" -runs=0 -close_fd_mask=2 "$corpus" \
  2>&1 | tail -1
llvm-profdata merge -sparse "$build"/fuzz-*.profraw -o "$build/fuzz.profdata"
llvm-cov report "$build/tests/fuzz/fuzz_ninjac" -instr-profile="$build/fuzz.profdata" \
  compiler/ "$build/compiler/"
