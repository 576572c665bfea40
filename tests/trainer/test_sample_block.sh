#!/usr/bin/env bash
# Sampling from a model whose context is longer than 64 characters.
#
#   test_sample_block.sh TRAINER DATA WORKDIR
#
# TRAINER is specs/mlp.ninja at block_size=100: its freshly initialised
# parameters must sample the names asked for and exit 0.
set -u
T=$1 D=$2 W=$3
rm -rf "$W" && mkdir -p "$W" || exit 1
[ "${NINJAC_KEEP_WORK:-}" = 1 ] || trap 'rm -rf "$W"' EXIT
"$T" init --seed 1 --out "$W/p.safetensors" > /dev/null || { echo "FAIL: init"; exit 1; }
"$T" sample --load "$W/p.safetensors" --data "$D" -n 5 > "$W/names" 2> "$W/err"
rc=$?
lines=$(wc -l < "$W/names")
if [ $rc -ne 0 ] || [ "$lines" -ne 5 ]; then
  echo "FAIL: sample exit $rc, $lines names (want 0 and 5): $(head -c 300 "$W/err")"
  exit 1
fi
echo "ok: 5 names sampled with a context of 100"
