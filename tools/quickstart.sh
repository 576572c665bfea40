#!/usr/bin/env bash
# The README's first command: install, build, and run the notebook's
# exercise 4 (specs/mlp_bn_fused.ninja, n_hidden 200, 200000 SGD steps),
# then show train/val loss and 20 sampled names. Extra arguments go to
# `train` (e.g. --steps 20000).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build build -j"$(nproc)" --target mlp_bn_fused
build/mlp_bn_fused train "$@"
