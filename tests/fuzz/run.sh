#!/usr/bin/env bash
# usage: run.sh FUZZ_BINARY WORKDIR SECONDS [extra libFuzzer flags]
# Seeds a fresh corpus in WORKDIR with every .ninja file of the repo and the
# saved regression inputs, then fuzzes for SECONDS. Crash inputs land in
# WORKDIR/crashes; copy each one into tests/fuzz/corpus/ once it is fixed.
set -euo pipefail
fuzzer=$1 work=$2 seconds=$3
shift 3
repo=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$work/corpus" "$work/crashes"
find "$repo/specs" "$repo/tests" -name '*.ninja' -exec cp {} "$work/corpus/" \; 2>/dev/null || true
cp "$repo"/tests/fuzz/corpus/* "$work/corpus/" 2>/dev/null || true
# -close_fd_mask=2: ninjac's diagnostics on stderr would drown the fuzzer's output
exec "$fuzzer" "$work/corpus" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
  -max_len=65536 -close_fd_mask=2 -dict="$repo/tests/fuzz/ninja.dict" -artifact_prefix="$work/crashes/" -print_final_stats=1 "$@"
