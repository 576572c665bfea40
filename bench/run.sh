#!/usr/bin/env bash
# bench/run.sh - builds the benchmarks and runs them all; prints the tables
# that bench/RESULTS.md records. See bench/README.md for what is measured.
#
#   bench/run.sh [--torch-train] [--no-train] [--wait-quiet] [--rounds N] [--build-dir DIR] [--isa avx2]
#
#   --torch-train  also run the notebook's whole exercise 4 in PyTorch for its
#                  peak RSS (200000 steps: about 2 minutes more)
#   --no-train     skip the full training runs (peak RSS), for a quick look
#   --wait-quiet   before each benchmark, wait until the other CPUs are idle
#                  (at most 20 minutes in all); take a disturbed one again
#   --rounds N     interleaved rounds of the main table's rows (default 3)
#   --build-dir    the build directory (default build-bench, configured Release)
#   --isa avx2     compile generated code and ninjac's kernels with -mno-avx512f
#                  (the AVX2 code path on an AVX-512 machine; default build dir
#                  build-bench-avx2); the tables' isa column says what ran
#   --sweep-only   only the machine's rates (sgemm, nj_gemm) and the sweep
#
# Needs what tools/setup-deps.sh installs; without /usr/bin/python3's torch
# the PyTorch rows are skipped (and said so). Everything runs single-threaded
# (OpenBLAS and torch); OPENBLAS_CORETYPE and other OPENBLAS_* variables are
# left as they are. Timings are only comparable within one run on a quiet
# machine: every row says how many other CPUs were busy while it ran.
set -euo pipefail
cd "$(dirname "$0")/.."

ARGS="$*"
torch_train=0
full_train=1
wait_quiet=0
rounds=3
BUILD=""
isa=native
sweep_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --torch-train) torch_train=1 ;;
    --no-train) full_train=0 ;;
    --wait-quiet) wait_quiet=1 ;;
    --rounds) rounds=$2; shift ;;
    --build-dir) BUILD=$2; shift ;;
    --isa) isa=$2; shift ;;
    --sweep-only) sweep_only=1; full_train=0 ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown argument '$1' (--help lists them)" >&2; exit 2 ;;
  esac
  shift
done
case "$isa" in
  native) native_flags="-march=native"; BUILD=${BUILD:-build-bench} ;;
  avx2) native_flags="-march=native;-mno-avx512f"; BUILD=${BUILD:-build-bench-avx2} ;;
  *) echo "error: --isa takes avx2 (or native, the default)" >&2; exit 2 ;;
esac

if ! grep -Eq '^[[:space:]]*add_subdirectory\(bench\)' CMakeLists.txt; then
  echo "error: the top-level CMakeLists.txt does not add bench/; add the line" >&2
  echo "  add_subdirectory(bench)" >&2
  echo "after the ninjac_add_model(...) calls." >&2
  exit 2
fi

# ------------------------------------------------------------------ build
echo "== building ($BUILD, Release) ..." >&2
mkdir -p "$BUILD"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release "-DNINJAC_NATIVE_FLAGS=$native_flags" > "$BUILD/bench-configure.log" 2>&1 ||
  { cat "$BUILD/bench-configure.log" >&2; exit 1; }
cmake --build "$BUILD" -j"$(nproc)" --target bench > "$BUILD/bench-build.log" 2>&1 ||
  { tail -40 "$BUILD/bench-build.log" >&2; exit 1; }

MANIFEST=$BUILD/bench/manifest.txt
tool() { awk -v t="$1" '$1 == "tool" && $2 == t { print $3 }' "$MANIFEST"; }
BENCH_REF=$(tool bench_ref)
BENCH_SGEMM=$(tool bench_sgemm)
BENCH_EXEC=$(tool bench_exec)
NINJAC=$(tool ninjac)
TRAINER=$(tool trainer)
CC=$(awk '$1 == "cc" { print $2 }' "$MANIFEST")
GEN_FLAGS=$(awk '$1 == "gen_flags" { $1 = ""; print substr($0, 2) }' "$MANIFEST")
INCLUDES=$(awk '$1 == "include" { printf "-I%s ", $2 }' "$MANIFEST")
step_exe() { awk -v k="$1" -v h="$2" -v n="$3" '$1 == "step" && $2 == k && $3 == h && $4 == n { print $5 }' "$MANIFEST"; }

OUT=$BUILD/bench/out
rm -rf "$OUT"
mkdir -p "$OUT"
RAW=$OUT/raw.txt          # every RESULT line of this run
: > "$RAW"

# busy_between STAT0 STAT1: CPUs busy between two samples of /proc/stat's first line
busy_between() {
  awk -v a="$1" -v b="$2" -v ncpu="$(nproc)" 'BEGIN {
    split(a, x, " "); split(b, y, " "); tot = 0
    for (i = 2; i <= 9; i++) tot += y[i] - x[i]
    idle = (y[5] - x[5]) + (y[6] - x[6])
    printf "%.2f", (tot > 0 ? ncpu * (1 - idle / tot) : 0)
  }'
}
# cpu_busy: how many CPUs were busy over the next second (all processes).
cpu_busy() {
  local a
  a=$(head -1 /proc/stat); sleep 1
  busy_between "$a" "$(head -1 /proc/stat)"
}
# wait_quiet: with --wait-quiet, waits (up to 20 minutes in all) until less
# than 0.3 CPU is busy before a benchmark starts.
waited=0
wait_quiet() {
  [ "$wait_quiet" = 1 ] || return 0
  while [ "$waited" -lt 1200 ] && awk -v b="$(cpu_busy)" 'BEGIN { exit !(b > 0.3) }'; do
    sleep 4; waited=$((waited + 5))
  done
}
# run CMD...: runs a benchmark, keeps its RESULT line(s) in $RAW with
# other_cpu= appended (CPUs busy meanwhile besides the benchmark itself, which
# is single-threaded: 0 on a quiet machine), prints them to stderr. With
# --wait-quiet, a measurement disturbed by more than 0.3 CPU is taken again
# (3 attempts at most; the least disturbed one is kept).
run() {
  local out s0 other best="" best_other=9 _
  for _ in 1 2 3; do
    wait_quiet
    s0=$(head -1 /proc/stat)
    out=$("$@" | grep '^RESULT ') || { echo "error: failed: $*" >&2; exit 1; }
    other=$(awk -v b="$(busy_between "$s0" "$(head -1 /proc/stat)")" 'BEGIN { o = b - 1; printf "%.2f", (o < 0 ? 0 : o) }')
    if awk -v o="$other" -v b="$best_other" 'BEGIN { exit !(o < b) }'; then
      # shellcheck disable=SC2001  # every line of a multi-line result
      best=$(sed "s/\$/ other_cpu=$other${RUN_TAG:+ tag=$RUN_TAG}/" <<< "$out"); best_other=$other
    fi
    if [ "$wait_quiet" = 1 ] && awk -v o="$other" 'BEGIN { exit !(o > 0.3) }'; then
      echo "  (disturbed: $other other CPU busy; again)" >&2
    else
      break
    fi
  done
  printf '%s\n' "$best" >> "${RAW_TO:-$RAW}"
  printf '  %s\n' "$best" >&2
  printf '%s\n' "$best"
}
# field LINE KEY
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<< "$1" | head -1; }
# pick WHAT KEY=VALUE...: the RESULT line of $RAW with what=WHAT and every KEY=VALUE
pick() {
  local what=$1; shift
  awk -v what="$what" -v want="$*" '
    $1 == "RESULT" && index($0, " what=" what " ") {
      n = split(want, w, " "); ok = 1
      for (i = 1; i <= n; i++) if (index($0 " ", " " w[i] " ") == 0) ok = 0
      if (ok) { print; exit }
    }' "$RAW"
}

have_torch=0
PY=/usr/bin/python3
if [ -x "$PY" ] && "$PY" -c 'import torch' > /dev/null 2>&1; then
  have_torch=1
fi

# ------------------------------------------------------------ machine
sleep 5   # let the build's compilers exit
busy_before=$(cpu_busy)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
cpu_model=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
cpus=$(nproc)
info=$(run "$BENCH_SGEMM" info)
# OpenBLAS 0.3.21 runs its Prescott (SSE3) kernels on a CPU it does not
# know (an Emerald Rapids, family 6 model 207: 4.7x below its AVX-512
# kernels). The core's sgemm rate, which the limit is taken from, is then
# the better of that and the kernels that fit the CPU's ISA (with --isa
# avx2: the AVX2 kernels, the limit of an AVX2 machine).
fit_core=""
if [ "$(field "$info" corename)" = Prescott ] && [ -z "${OPENBLAS_CORETYPE+set}" ]; then
  if [ "$isa" = avx2 ]; then fit_core=Haswell
  elif grep -qw avx512f /proc/cpuinfo; then fit_core=SkylakeX
  elif grep -qw avx2 /proc/cpuinfo; then fit_core=Haswell
  fi
fi
kisa=$(field "$(run "$BENCH_SGEMM" isa)" isa)   # the kernels generated code runs (same flags)
{
  echo "date:      $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "command:   bench/run.sh${ARGS:+ $ARGS}"
  echo "machine:   $cpu_model, $cpus CPUs ($(lscpu | sed -n 's/^Core(s) per socket:[[:space:]]*//p') cores/socket, $(lscpu | sed -n 's/^Thread(s) per core:[[:space:]]*//p') thread/core), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
  echo "compiler:  $(awk '$1 == "cc_version" { $1 = ""; print substr($0, 2) }' "$MANIFEST"); generated code: $GEN_FLAGS"
  echo "kernels:   $kisa (runtime/ninjac_kernels.h as generated code compiles it; CPU flags: $(grep -m1 -ow -e avx512f /proc/cpuinfo || true) $(grep -m1 -ow -e avx2 /proc/cpuinfo || true) $(grep -m1 -ow -e asimd /proc/cpuinfo || true))"
  echo "OpenBLAS:  $(field "$info" corename) core, $(field "$info" threads) thread (openblas_set_num_threads(1)); $(sed -n 's/.*config=|\([^|]*\)|.*/\1/p' <<< "$info")"
  echo "           OPENBLAS_CORETYPE=$(field "$info" env_coretype), library $(sed -n 's/.*library=|\([^|]*\)|.*/\1/p' <<< "$info")"
  if [ $have_torch = 1 ]; then
    echo "PyTorch:   $("$PY" -c 'import torch; print(torch.__version__)'), torch.set_num_threads(1) and openblas_set_num_threads(1) on the OpenBLAS it loaded;"
    echo "           step timings with glibc's malloc trim/mmap thresholds pinned (torch_step.py --malloc tuned)"
  else
    echo "PyTorch:   not available ($PY cannot import torch): PyTorch rows skipped"
  fi
  echo "quiet?:    $busy_before of $cpus CPUs busy in the second before the benchmarks; load average $load_before"
} > "$OUT/header.txt"
cat "$OUT/header.txt" >&2

# ------------------------------------------------------------ main table
# The main table and sgemm's rate: $rounds interleaved rounds of every row, so
# that a change of the (virtual) CPU's speed during the run hits every row
# alike; each row's figure is the median over rounds of its per-round median.
ROUNDS_FILE=$OUT/rounds.txt
: > "$ROUNDS_FILE"
for r in $(seq 1 "$rounds"); do
  export RAW_TO=$ROUNDS_FILE
  if [ "$sweep_only" = 0 ]; then
  echo "== training step, n_hidden 200, batch 32: round $r of $rounds" >&2
  run "$(step_exe default 200 32)" > /dev/null
  RUN_TAG=nancheck run "$(step_exe default 200 32)" --nan-check > /dev/null
  run "$(step_exe blas 200 32)" > /dev/null
  RUN_TAG=haswell run env OPENBLAS_CORETYPE=Haswell "$(step_exe blas 200 32)" > /dev/null
  run "$(step_exe O0 200 32)" > /dev/null
  run "$BENCH_REF" --n 32 --hidden 200 > /dev/null
  run "$BENCH_SGEMM" bound --n 32 --hidden 200 > /dev/null
  RUN_TAG=haswell run env OPENBLAS_CORETYPE=Haswell "$BENCH_SGEMM" bound --n 32 --hidden 200 > /dev/null
  run "$BENCH_SGEMM" kernels --n 32 --hidden 200 > /dev/null
  if [ $have_torch = 1 ]; then
    run "$PY" bench/torch_step.py step --sizes 200x32 --modes manual,autograd,notebook > /dev/null
  fi
  fi
  echo "== sgemm and nj_gemm 2048x2048x2048: round $r of $rounds" >&2
  run "$BENCH_SGEMM" peak --size 2048 > /dev/null
  [ -n "$fit_core" ] && RUN_TAG=fitcore run env OPENBLAS_CORETYPE="$fit_core" "$BENCH_SGEMM" peak --size 2048 > /dev/null
  run "$BENCH_SGEMM" ownpeak --size 2048 > /dev/null
  unset RAW_TO
done
# One line per row: us_med = median of the rounds' medians, us_min/us_max =
# fastest/slowest repetition of any round, other_cpu = the largest.
awk '
  function num(f) { return substr(f, index(f, "=") + 1) + 0 }
  {
    key = ""; flops = 0
    for (i = 1; i <= NF; i++) {
      f = $i
      if (f ~ /^(us_med|us_min|us_max|steps_per_s|gflops|gflops_best|k|other_cpu)=/) continue
      if (f ~ /^flops=/) flops = num(f)
      key = key " " f
    }
    if (!(key in cnt)) { order[++nkeys] = key; lo[key] = 1e300; hi[key] = 0; oth[key] = 0 }
    c = ++cnt[key]
    for (i = 1; i <= NF; i++) {
      f = $i; v = num(f)
      if (f ~ /^us_med=/) med[key, c] = v
      if (f ~ /^us_min=/ && v < lo[key]) lo[key] = v
      if (f ~ /^us_max=/ && v > hi[key]) hi[key] = v
      if (f ~ /^other_cpu=/ && v > oth[key]) oth[key] = v
    }
    fl[key] = flops
  }
  END {
    for (j = 1; j <= nkeys; j++) {
      key = order[j]; n = cnt[key]
      for (a = 1; a <= n; a++) srt[a] = med[key, a]
      for (a = 2; a <= n; a++) { x = srt[a]; for (b = a - 1; b >= 1 && srt[b] > x; b--) srt[b + 1] = srt[b]; srt[b + 1] = x }
      m = n % 2 ? srt[(n + 1) / 2] : (srt[n / 2] + srt[n / 2 + 1]) / 2
      printf "%s rounds=%d us_med=%.3f us_min=%.3f us_max=%.3f steps_per_s=%.1f gflops=%.3f gflops_best=%.3f other_cpu=%.2f\n",
        substr(key, 2), n, m, lo[key], hi[key], 1e6 / m, fl[key] / (m * 1e3), fl[key] / (lo[key] * 1e3), oth[key]
    }
  }' "$ROUNDS_FILE" >> "$RAW"

# ------------------------------------------------------------ sweep
echo "== sweep" >&2
sizes=()
# --threads T of the own-kernel steps: every thread count from 2 to the
# CPUs there are (at most 8): the speed-up of the trainers' --threads.
thread_counts=()
for t in $(seq 2 "$(( $(nproc) < 8 ? $(nproc) : 8 ))"); do thread_counts+=("$t"); done
while read -r _ kind h n exe; do
  [ "$kind" = own ] || continue
  sizes+=("${h}x${n}")
  run "$exe" > /dev/null
  for t in "${thread_counts[@]}"; do run "$exe" --threads "$t" > /dev/null; done
  run "$(step_exe blas "$h" "$n")" > /dev/null
  [ "$h" = 200 ] && [ "$n" = 32 ] && [ "$sweep_only" = 0 ] && continue   # the rest was measured above
  run "$BENCH_REF" --n "$n" --hidden "$h" > /dev/null
  run "$BENCH_SGEMM" bound --n "$n" --hidden "$h" > /dev/null
  run "$BENCH_SGEMM" kernels --n "$n" --hidden "$h" > /dev/null
done < <(grep '^step ' "$MANIFEST")
if [ $have_torch = 1 ] && [ "$sweep_only" = 0 ]; then
  others=$(printf '%s\n' "${sizes[@]}" | grep -vx '200x32' | paste -sd, -)
  [ -n "$others" ] && run "$PY" bench/torch_step.py step --sizes "$others" --modes manual > /dev/null
  # PyTorch as this machine's glibc runs it by default (see tune_malloc in torch_step.py)
  all_sizes=$(printf '%s\n' "${sizes[@]}" | paste -sd, -)
  run "$PY" bench/torch_step.py step --sizes "$all_sizes" --modes manual --malloc default > /dev/null
fi

# ------------------------------------------------------------ compile times
[ "$sweep_only" = 1 ] && specs_to_time=() || specs_to_time=(specs/*.ninja)
echo "== compile times" >&2
GEN=$OUT/gen
mkdir -p "$GEN"
for spec in "${specs_to_time[@]}"; do
  name=$(basename "$spec" .ninja)
  mkdir -p "$GEN/$name"
  run "$BENCH_EXEC" --label "ninjac:$name" --runs 20 --warmup 2 -- "$NINJAC" "$spec" -o "$GEN/$name" > /dev/null
  # shellcheck disable=SC2086
  run "$BENCH_EXEC" --label "cc-O2:$name" --runs 5 --warmup 1 -- \
    "$CC" -O2 $INCLUDES -I"$GEN/$name" -c "$GEN/$name/$name.c" -o "$GEN/$name/$name.o" > /dev/null
  # shellcheck disable=SC2086
  run "$BENCH_EXEC" --label "cc-build:$name" --runs 5 --warmup 1 -- \
    "$CC" $GEN_FLAGS $INCLUDES -I"$GEN/$name" -c "$GEN/$name/$name.c" -o "$GEN/$name/$name.o" > /dev/null
done

# ------------------------------------------------------------ full training runs
if [ $full_train = 1 ]; then
  echo "== full training run (200000 steps) and eval --split all" >&2
  T=$OUT/train
  mkdir -p "$T"
  run "$BENCH_EXEC" --label train --log "$T/train.log" -- "$TRAINER" train --steps 200000 --samples 0 \
    --plot "" --log "$T/loss.csv" --save "$T/ckpt.safetensors" > /dev/null
  run "$BENCH_EXEC" --label eval --log "$T/eval.log" -- "$TRAINER" eval --load "$T/ckpt.safetensors" \
    --split all > /dev/null
  if [ $have_torch = 1 ]; then
    run "$BENCH_EXEC" --label torch-import --runs 3 -- "$PY" -c 'import torch, torch.nn.functional' > /dev/null
    if [ $torch_train = 1 ]; then
      echo "== PyTorch: the whole exercise 4 (200000 steps)" >&2
      run "$BENCH_EXEC" --label torch-train --log "$T/torch_train.log" -- "$PY" bench/torch_step.py train \
        --steps 200000 --data data/names.txt > /dev/null
      grep '^RESULT' "$T/torch_train.log" >> "$RAW" || true
    fi
  fi
fi
busy_after=$(cpu_busy)
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# ------------------------------------------------------------ tables
us() { field "$1" us_med; }
blas_core=$(field "$info" corename)
bound_main=$(us "$(pick bound n=32 H=200 "corename=$blas_core")")
torch_main=""
[ $have_torch = 1 ] && torch_main=$(us "$(pick torch mode=manual n=32 H=200 malloc=tuned)")
peak_line=$(pick peak "corename=$(field "$info" corename)")
if [ -n "$fit_core" ]; then
  fit_line=$(pick peak tag=fitcore)
  awk -v a="$(field "$fit_line" gflops)" -v b="$(field "$peak_line" gflops)" 'BEGIN { exit !(a > b) }' &&
    peak_line=$fit_line
fi
peak=$(field "$peak_line" gflops)
ownpeak_line=$(pick ownpeak)
# The limit of a step: its matmul FLOPs at sgemm's large-matrix rate above.
flops_main=$(field "$(pick generated variant=bench_step_h200_n32 nan_check=0)" flops)
limit_main=$(awk -v f="$flops_main" -v p="$peak" 'BEGIN { if (f > 0 && p > 0) printf "%.3f", f / (p * 1e3) }')

report() {
  cat "$OUT/header.txt"
  echo "           $busy_after CPUs busy in the second after them; load average $load_after"
  echo
  echo "Training step (forward + backward + SGD), mlp_bn_fused: n_hidden 200, batch 32, float32, 1 thread."
  echo "Each row: $rounds interleaved rounds; per round the median of $(field "$(pick generated n=32 H=200)" reps) repetitions of K steps after a warm-up;"
  echo "us/step = median over the rounds; [fastest, slowest repetition of any round]."
  echo "speed-up = t(PyTorch manual) / t;  x bound = t / t(six sgemm calls alone);"
  echo "x limit = t / limit, the limit = the step's matmul FLOPs at sgemm's 2048^3 rate ($limit_main us; isa = $kisa);"
  echo "other = CPUs busy with other processes while the row ran (0 on a quiet machine; 1 = a whole core)."
  echo
  printf '| %-34s | %9s | %-19s | %9s | %8s | %8s | %8s | %9s | %5s |\n' "row" "us/step" "[min, max]" "steps/s" "speed-up" "x bound" "x limit" "loss0" "other"
  printf '|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..36})" "----------:" "---------------------" "----------:" "---------:" "---------:" "---------:" "----------:" "------:"
  row() {  # label line
    local line=$2 t
    [ -n "$line" ] || return 0
    t=$(us "$line")
    awk -v label="$1" -v t="$t" -v lo="$(field "$line" us_min)" -v hi="$(field "$line" us_max)" \
        -v tm="$torch_main" -v b="$bound_main" -v lim="$limit_main" -v loss="$(field "$line" loss0)" \
        -v other="$(field "$line" other_cpu)" 'BEGIN {
      su = tm == "" ? "-" : sprintf("%.2f", tm / t)
      xl = lim == "" ? "-" : sprintf("%.2f", t / lim)
      printf "| %-34s | %9.1f | [%7.1f, %8.1f] | %9.0f | %8s | %8.2f | %8s | %9s | %5s |\n", label, t, lo, hi, 1e6 / t, su, t / b, xl, (loss == "" ? "-" : loss), other
    }'
  }
  row "generated, default mode" "$(pick generated variant=bench_step_h200_n32 nan_check=0)"
  row "  + the trainer's NaN check" "$(pick generated variant=bench_step_h200_n32 nan_check=1)"
  row "generated, --gemm=blas" "$(pick generated variant=bench_step_h200_n32_blas "corename=$blas_core")"
  row "  same, OPENBLAS_CORETYPE=Haswell" "$(pick generated variant=bench_step_h200_n32_blas tag=haswell)"
  row "generated, ninjac -O0" "$(pick generated variant=bench_step_h200_n32_O0)"
  row "hand-written reference (C)" "$(pick reference n=32 H=200)"
  if [ $have_torch = 1 ]; then
    row "PyTorch manual backward" "$(pick torch mode=manual n=32 H=200 malloc=tuned)"
    row "PyTorch loss.backward()" "$(pick torch mode=autograd n=32 H=200 malloc=tuned)"
    row "PyTorch manual, notebook's dC loop" "$(pick torch mode=notebook n=32 H=200 malloc=tuned)"
  else
    echo "| PyTorch rows skipped: $PY cannot import torch (install python3-torch) |"
  fi
  row "bound: the step's 6 sgemm calls" "$(pick bound n=32 H=200 "corename=$blas_core")"
  row "  same, OPENBLAS_CORETYPE=Haswell" "$(pick bound n=32 H=200 tag=haswell)"
  row "the 6 products by ninjac's kernels" "$(pick kernels n=32 H=200)"
  echo
  echo "The default mode's matmuls are ninjac's kernels (runtime/ninjac_kernels.h, here the $kisa copy; --gemm=auto"
  echo "takes them at every size); --gemm=blas calls cblas_sgemm as OpenBLAS runs in this environment ($blas_core),"
  echo "and the Haswell rows force OpenBLAS's AVX2 kernels."
  echo "sgemm ${peak_line:+$(field "$peak_line" size)^3}: $(printf '%.1f' "$peak") GFLOP/s (median over rounds; best call $(field "$peak_line" gflops_best)), corename $(field "$peak_line" corename), $(field "$peak_line" threads) thread."
  [ -n "$ownpeak_line" ] && echo "nj_gemm ${ownpeak_line:+$(field "$ownpeak_line" size)^3}: $(printf '%.1f' "$(field "$ownpeak_line" gflops)") GFLOP/s (median over rounds; best call $(field "$ownpeak_line" gflops_best)), $kisa kernels, shapes not constant."
  echo
  echo "Sweep: the step with ninjac's own matmul kernels (--gemm=own) and with cblas_sgemm (--gemm=blas);"
  echo "auto = which one the default mode (--gemm=auto) picks at that size, and its time. GFLOP/s counts only"
  echo "the matmuls, 6*n*H*(30+27) = 342*n*H FLOP per step, at the default mode's time; % peak = that rate /"
  echo "sgemm's 2048^3 rate above; x limit = its inverse, the step's time / its FLOPs at that rate; isa = the"
  echo "kernels' code path. kernels = the six products alone through ninjac's kernels; bound = the same"
  echo "six through cblas_sgemm. Times in us/step (medians); other = the largest 'other' of the row. PT ="
  echo "PyTorch with glibc's malloc thresholds pinned (torch_step.py tune_malloc); 'PT, glibc' = glibc's"
  echo "defaults, which return freed tensors to the OS every step."
  echo
  printf '| %4s | %4s | %6s | %9s | %9s | %8s | %15s | %7s | %6s | %7s | %9s | %9s | %7s | %10s | %7s | %10s | %6s | %11s | %5s |\n' \
    "H" "n" "isa" "own" "blas" "blas/own" "auto" "GFLOP/s" "% peak" "x limit" "kernels" "bound" "x bound" "reference" "ref/gen" "PT manual" "PT/gen" "PT, glibc" "other"
  echo "|-----:|-----:|-------:|----------:|----------:|---------:|----------------:|--------:|-------:|--------:|----------:|----------:|--------:|-----------:|--------:|-----------:|-------:|------------:|------:|"
  for s in "${sizes[@]}"; do
    h=${s%x*}; n=${s#*x}
    go=$(pick generated variant="bench_step_h${h}_n${n}_own" nj_threads=1)
    gb=$(pick generated variant="bench_step_h${h}_n${n}_blas" "corename=$blas_core")
    [ -n "$go" ] && [ -n "$gb" ] || continue
    r=$(pick reference n="$n" H="$h"); b=$(pick bound n="$n" H="$h" "corename=$blas_core")
    kk=$(pick kernels n="$n" H="$h"); p=""; d=""
    [ $have_torch = 1 ] && p=$(pick torch mode=manual n="$n" H="$h" malloc=tuned) &&
      d=$(pick torch mode=manual n="$n" H="$h" malloc=default)
    # --gemm=auto's rule (emit_ops.c, own_gemm): own kernels at every size.
    awk -v h="$h" -v n="$n" -v isa="$kisa" -v go="$(us "$go")" -v gb="$(us "$gb")" -v flops="$(field "$go" flops)" -v peak="$peak" \
        -v r="$(us "$r")" -v b="$(us "$b")" -v kk="$(us "$kk")" -v p="$([ -n "$p" ] && us "$p")" \
        -v o1="$(field "$go" other_cpu)" -v o2="$(field "$gb" other_cpu)" -v o3="$(field "$r" other_cpu)" \
        -v o4="$(field "$b" other_cpu)" -v op="$([ -n "$p" ] && field "$p" other_cpu)" -v d="$([ -n "$d" ] && us "$d")" \
        -v od="$([ -n "$d" ] && field "$d" other_cpu)" 'BEGIN {
      own = 1
      g = own ? go : gb
      gf = flops / (g * 1e3)
      o = o1; if (o2 > o) o = o2; if (o3 > o) o = o3; if (o4 > o) o = o4
      if (op != "" && op > o) o = op; if (od != "" && od > o) o = od
      printf "| %4d | %4d | %6s | %9.1f | %9.1f | %8.2f | %4s %10.1f | %7.2f | %5.1f%% | %7.2f | %9.1f | %9.1f | %7.2f | %10.1f | %7.2f | %10s | %6s | %11s | %5.2f |\n",
        h, n, isa, go, gb, gb / go, (own ? "own" : "blas"), g, gf, 100 * gf / peak, peak / gf, kk, b, g / b, r, r / g,
        (p == "" ? "-" : sprintf("%.1f", p)), (p == "" ? "-" : sprintf("%.2f", p / g)),
        (d == "" ? "-" : sprintf("%.1f", d)), o
    }'
  done
  if [ ${#thread_counts[@]} -gt 0 ]; then
    echo
    echo "Threads: the own-kernel step (the sweep's 'own') with --threads T, us/step, and its speed-up over one"
    echo "thread. Only nj_gemm's products are cut into bands (of at least 2^20 multiply-adds each), so the"
    echo "elementwise passes stay on one thread; ran = the most threads a product ran on."
    echo
    printf '| %4s | %4s | %9s |' "H" "n" "1 thread"
    for t in "${thread_counts[@]}"; do printf ' %9s | %7s | %3s |' "$t threads" "speed-up" "ran"; done
    echo
    printf '|-----:|-----:|----------:|'
    for _ in "${thread_counts[@]}"; do printf -- '----------:|--------:|----:|'; done
    echo
    for s in "${sizes[@]}"; do
      h=${s%x*}; n=${s#*x}
      one=$(pick generated variant="bench_step_h${h}_n${n}_own" nj_threads=1)
      [ -n "$one" ] || continue
      printf '| %4d | %4d | %9.1f |' "$h" "$n" "$(us "$one")"
      for t in "${thread_counts[@]}"; do
        tl=$(pick generated variant="bench_step_h${h}_n${n}_own" "nj_threads=$t")
        awk -v a="$(us "$one")" -v b="$(us "$tl")" -v r="$(field "$tl" nj_threads_ran)" \
          'BEGIN { printf " %9.1f | %7.2fx | %3d |", b, a / b, r }'
      done
      echo
    done
  fi
  if [ "$sweep_only" = 0 ]; then
    echo
    echo "Compile time (median ms; bench_exec: fork to wait4, so process start-up is included):"
    echo
    echo "| spec | ninjac (20 runs) | ninjac peak RSS | cc -O2 -c (5 runs) | cc $GEN_FLAGS -c (5 runs) |"
    echo "|---|---:|---:|---:|---:|"
    for spec in specs/*.ninja; do
      name=$(basename "$spec" .ninja)
      printf '| %s | %.1f | %.1f MiB | %.0f | %.0f |\n' "$name.ninja" \
        "$(field "$(pick exec "label=ninjac:$name")" ms_med)" \
        "$(awk -v kb="$(field "$(pick exec "label=ninjac:$name")" maxrss_kb)" 'BEGIN { print kb / 1024 }')" \
        "$(field "$(pick exec "label=cc-O2:$name")" ms_med)" \
        "$(field "$(pick exec "label=cc-build:$name")" ms_med)"
    done
  fi
  if [ $full_train = 1 ]; then
    echo
    echo "Peak RSS (ru_maxrss from wait4, what /usr/bin/time -v reports) and wall time:"
    echo
    echo "| run | peak RSS | wall |"
    echo "|---|---:|---:|"
    ex() {  # label text
      local line
      line=$(pick exec "label=$1")
      [ -n "$line" ] || return 0
      awk -v t="$2" -v kb="$(field "$line" maxrss_kb)" -v ms="$(field "$line" ms_med)" \
        'BEGIN { printf "| %s | %.1f MiB | %.1f s |\n", t, kb / 1024, ms / 1000 }'
    }
    ex train "mlp_bn_fused train --steps 200000 --samples 0 --plot \"\" (training, calibration, train and val loss)"
    ex eval "mlp_bn_fused eval --split all (calibrates over the training set, then train/val/test)"
    ex torch-import "python3 -c 'import torch' (PyTorch's floor)"
    ex torch-train "torch_step.py train: notebook's exercise 4 in PyTorch, 200000 steps + calibration + 3 splits (whole splits at once, as the notebook)"
    echo
    echo "trainer: $(grep '^trained ' "$OUT/train/train.log" | head -1); eval: $(grep -E '^(train|val|test) ' "$OUT/train/eval.log" | sed 's/ *loss */ /; s/ *(.*//' | paste -sd' ' -)"
    [ -f "$OUT/train/torch_train.log" ] &&
      echo "PyTorch: $(grep -E '^(train|val|test) ' "$OUT/train/torch_train.log" | paste -sd' ' -); $(grep '^RESULT' "$OUT/train/torch_train.log" | sed 's/.*steps_per_s=/steps\/s /')"
  fi
  disturbed=$(awk '/ what=openblas / { next } { for (i = 1; i <= NF; i++) if ($i ~ /^other_cpu=/ && substr($i, 11) + 0 > 0.3) k++ } END { print k + 0 }' "$RAW")
  if [ "$disturbed" -gt 0 ]; then
    echo
    echo "warning: $disturbed measurement(s) ran while other processes kept more than 0.3 CPU busy (column 'other')"
  fi
}
report | tee "$OUT/report.txt"
echo >&2
echo "(raw results: $RAW; report: $OUT/report.txt)" >&2
