#!/usr/bin/env bash
# The trainer's command line.
#
#   test_cli.sh TRAINER WORKDIR
#
# `TRAINER --help` and `TRAINER CMD --help` (and -h) exit 0 and list every
# command / option; no arguments, an unknown command, an unknown option of
# any command, an option without its value, a malformed number or a missing
# required option exit 2 with an error on stderr. All of it runs in an empty
# directory that must stay empty (the defaults write to out/NAME/...), so
# nothing refused may have started to train or write.
set -u
T=$1 W=$2
rm -rf "$W" && mkdir -p "$W/cwd" || exit 1
[ "${NINJAC_KEEP_WORK:-}" = 1 ] || trap 'rm -rf "$W"' EXIT
cd "$W/cwd" || exit 1
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

# expect STATUS DESCRIPTION -- ARGS...: runs TRAINER ARGS (bounded), checks the status.
expect() {
  local want=$1 what=$2
  shift 3
  timeout 30 "$T" "$@" > "$W/stdout" 2> "$W/stderr" < /dev/null
  local rc=$?
  if [ $rc -ne "$want" ]; then
    fail "$what: exit status $rc, expected $want (stderr: $(head -c 300 "$W/stderr"))"
    return 1
  fi
  if [ "$want" -eq 2 ] && ! grep -qi "error\|usage" "$W/stderr"; then
    fail "$what: status 2 but nothing on stderr"
    return 1
  fi
  ok "$what: exit status $rc"
}

# lists WHAT WORD...: every WORD appears on stdout.
lists() {
  local what=$1 missing=""
  shift
  for w in "$@"; do
    grep -qE -- "(^|[[:space:]])$w([[:space:]]|$)" "$W/stdout" || missing+=" $w"
  done
  if [ -n "$missing" ]; then fail "$what does not list:$missing"; else ok "$what lists $*"; fi
}

declare -A OPTS=(
  [init]="--seed --out"
  [train]="--init --seed --steps --batch-seed --optim --lr --lr-decay-step --lr-decay-to --weight-decay --betas --eps --data --save --checkpoint-every --resume --log --plot --samples --no-nan-check"
  [eval]="--load --split --data"
  [sample]="--load -n --seed --data"
  [grads]="--params --inputs --out"
)

expect 0 "--help" -- --help && lists "--help" init train eval sample grads
expect 0 "-h" -- -h && lists "-h" init train eval sample grads
expect 2 "no arguments" --
expect 2 "an unknown command" -- frobnicate
expect 2 "a command in capitals" -- TRAIN
for cmd in init train eval sample grads; do
  # shellcheck disable=SC2086
  expect 0 "$cmd --help" -- $cmd --help && lists "$cmd --help" ${OPTS[$cmd]}
  expect 0 "$cmd -h" -- $cmd -h
  expect 2 "$cmd with an unknown option" -- $cmd --frobnicate
  expect 2 "$cmd with a stray argument" -- $cmd stray
done
expect 2 "train --steps without its value" -- train --steps
expect 2 "train --steps abc" -- train --steps abc
expect 2 "train --steps 12abc" -- train --steps 12abc
expect 2 "train --steps -5" -- train --steps -5
expect 2 "train --steps 99999999999999999999" -- train --steps 99999999999999999999
expect 2 "train --lr -0.1" -- train --lr -0.1
expect 2 "train --lr nan" -- train --lr nan
expect 2 "train --lr inf" -- train --lr inf
expect 2 "train --lr 1e39 (beyond float)" -- train --lr 1e39
expect 2 "train --lr-decay-to 1e39" -- train --lr-decay-to 1e39
expect 2 "train --lr ''" -- train --lr ""
expect 2 "train --checkpoint-every x" -- train --checkpoint-every x
expect 2 "train --init and --resume together" -- train --init a.st --resume b.st
expect 2 "train --batch-seed with --resume" -- train --batch-seed 1 --resume b.st
expect 2 "train --seed with --resume (the checkpoint holds the generator)" -- train --seed 5 --resume b.st
expect 2 "train --samples 4294967298 (beyond int)" -- train --samples 4294967298
expect 2 "sample -n 4294967298 (beyond int, not 2)" -- sample --load x.st -n 4294967298
expect 2 "init without --out" -- init --seed 1
expect 2 "init --seed -1" -- init --seed -1 --out p.st
expect 2 "eval without --load" -- eval
expect 2 "eval --split nonsense" -- eval --load x.st --split nonsense
expect 2 "sample without --load" -- sample
expect 2 "sample -n x" -- sample --load x.st -n x
expect 2 "grads without --out" -- grads --params p.st --inputs b.st
# The optimizer's options (makemore's AdamW: torch's limits, and values a float holds).
expect 2 "train --optim adam" -- train --optim adam
expect 2 "train --optim ''" -- train --optim ""
expect 2 "train --optim sgd --weight-decay 0.1 (an adamw option)" -- train --optim sgd --weight-decay 0.1
expect 2 "train --betas 0.9,0.99 without --optim adamw (sgd)" -- train --betas 0.9,0.99
expect 2 "train --eps 1e-8 without --optim adamw (sgd)" -- train --eps 1e-8
for bad in -1 nan inf 1e39 "" 0.1x; do
  expect 2 "train --optim adamw --weight-decay '$bad'" -- train --optim adamw --weight-decay "$bad"
done
for bad in 0.9 0.9,0.99,0.999 0.9, ,0.99 "0.9, 0.99" " 0.9,0.99" 0.9,0.99x 1,0.99 0.9,1 1.5,0.9 -0.1,0.9 \
           nan,0.9 0.9,inf "" ,; do
  expect 2 "train --optim adamw --betas '$bad'" -- train --optim adamw --betas "$bad"
done
for bad in 0 1e-50 -1e-8 inf nan 1e39 x; do
  expect 2 "train --optim adamw --eps '$bad'" -- train --optim adamw --eps "$bad"
done
expect 2 "train --optim adamw --lr 1e39" -- train --optim adamw --lr 1e39
expect 2 "train --optim adamw --lr -5e-4" -- train --optim adamw --lr -5e-4

left=$(ls -A "$W/cwd")
if [ -n "$left" ]; then fail "the refused commands wrote into the working directory: $left"; else ok "nothing written"; fi

# says WHAT PATTERN: stdout has a line matching PATTERN (grep -E).
says() {
  if grep -qE -- "$2" "$W/stdout"; then ok "$1"; else fail "$1: no line matches '$2' in: $(grep optimizer "$W/stdout")"; fi
}
# The optimizer line names a later rate only where there is one: AdamW
# keeps its rate unless --lr-decay-to is given (as makemore.py trains).
mkdir -p "$W/run" && cd "$W/run" || exit 1
expect 0 "train --steps 0 (sgd)" -- train --steps 0 --save s.st && \
  says "sgd's line names its schedule" '^optimizer: sgd, lr 0[.]1 [(]0[.]01 from step 100000[)]$'
expect 0 "train --steps 0 --optim adamw" -- train --steps 0 --optim adamw --save a.st && \
  says "adamw's line has one rate" '^optimizer: adamw, lr 0[.]0005, weight decay'
expect 0 "train --steps 0 --optim adamw --lr-decay-to 1e-4" -- train --steps 0 --optim adamw --lr-decay-to 1e-4 --save d.st && \
  says "adamw's line names a schedule asked for" '^optimizer: adamw, lr 0[.]0005 [(]0[.]0001 from step 100000[)], weight decay'

if [ $failures -gt 0 ]; then
  echo; echo "cli: $failures expectation(s) failed"; exit 1
fi
echo; echo "cli: all expectations held"
