#!/usr/bin/env bash
# Bad data files are refused before anything is written.
#
#   test_data_errors.sh TRAINER NAMES_TXT WORKDIR
#
# For each bad --data file (missing, empty, CRLF line ends, a digit or an
# uppercase letter making the vocabulary 28 instead of 27, a blank line,
# a non-ASCII byte, a '.' inside a word, a directory, one word only so the
# 80% training split is empty): `train` must exit nonzero (not by a signal),
# say "error" and name the file (and the reason) on stderr, and write
# nothing: no checkpoint, no log, no plot, not even their directory. `eval`
# of a good checkpoint with that --data must refuse it likewise (checked for
# a few of the files: eval reads data with the same loader). A good file
# without a final newline must be accepted (as Python's splitlines does).
# WORKDIR is emptied first and removed at the end (kept when
# NINJAC_KEEP_WORK=1).
set -u
T=$1 NAMES=$2 W=$3
rm -rf "$W" && mkdir -p "$W" || exit 1
[ "${NINJAC_KEEP_WORK:-}" = 1 ] || trap 'rm -rf "$W"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

# The good checkpoint eval loads (a few steps are enough).
"$T" train --steps 20 --checkpoint-every 0 --save "$W/good.st" --log "$W/good.csv" --plot "" --samples 0 \
    --data "$NAMES" > "$W/good.out" 2>&1 || { cat "$W/good.out"; echo "FAIL: could not train a good checkpoint"; exit 1; }

# expect_refused LABEL FILE REASON_REGEX [COMMANDS]
expect_refused() {
  local label=$1 file=$2 reason=$3 commands=${4:-"train eval"} out="$W/out" rc
  for cmd in $commands; do
    if [ "$cmd" = train ]; then
      timeout 60 "$T" train --data "$file" --steps 50 --checkpoint-every 10 --save "$out/ck.st" \
          --log "$out/loss.csv" --plot "$out/loss.png" --samples 1 > "$W/stdout" 2> "$W/stderr"
    else
      timeout 60 "$T" eval --load "$W/good.st" --data "$file" > "$W/stdout" 2> "$W/stderr"
    fi
    rc=$?
    local problems=""
    if [ $rc -eq 0 ]; then problems+=" exit status 0;"
    elif [ $rc -ge 124 ]; then problems+=" exit status $rc (signal or timeout);"; fi
    grep -qF -- "$file" "$W/stderr" || problems+=" stderr does not name $file;"
    grep -qi error "$W/stderr" || problems+=" stderr says no 'error';"
    grep -qiE -- "$reason" "$W/stderr" || problems+=" stderr does not say /$reason/;"
    if [ -e "$out" ]; then problems+=" wrote: $(find "$out" | tr '\n' ' ');"; fi
    if [ -z "$problems" ]; then
      ok "$cmd --data refuses $label: $(head -c 160 "$W/stderr")"
    else
      fail "$cmd --data $label:$problems"
      echo "      stdout: $(head -c 400 "$W/stdout")"
      echo "      stderr: $(head -c 400 "$W/stderr")"
    fi
    rm -rf "$out"
  done
}

D="$W/data"
mkdir -p "$D"
B="$D/base.txt"                 # names.txt with exactly one final newline
# shellcheck disable=SC1003
sed -e '$a\' "$NAMES" > "$B"
: > "$D/empty.txt"
sed 's/$/\r/' "$B" > "$D/crlf.txt"
{ cat "$B"; echo "abc1"; } > "$D/digit.txt"
{ cat "$B"; echo "Emma"; } > "$D/uppercase.txt"
{ head -n 100 "$B"; echo; tail -n +101 "$B"; } > "$D/blank_line.txt"
{ cat "$B"; printf 'zo\xc3\xab\n'; } > "$D/utf8.txt"
{ cat "$B"; echo "ann.marie"; } > "$D/dot.txt"
{ cat "$B"; printf 'tab\tname\n'; } > "$D/tab.txt"
echo "abcdefghijklmnopqrstuvwxyz" > "$D/one_word.txt"
mkdir -p "$D/a_directory"

expect_refused "a missing file" "$D/no_such_file.txt" "cannot open|no such file"
expect_refused "an empty file" "$D/empty.txt" "empty" train
expect_refused "CRLF line ends" "$D/crlf.txt" "CRLF"
expect_refused "a digit (vocabulary 28)" "$D/digit.txt" "vocabulary.*28|28.*vocabulary"
expect_refused "an uppercase letter (vocabulary 28)" "$D/uppercase.txt" "vocabulary.*28|28.*vocabulary" train
expect_refused "a blank line" "$D/blank_line.txt" ":101:.*empty line" train
expect_refused "a non-ASCII byte" "$D/utf8.txt" "0xc3|ASCII" train
expect_refused "a '.' inside a word" "$D/dot.txt" "'\\.'" train
expect_refused "a tab inside a word" "$D/tab.txt" "0x09|printable" train
expect_refused "a directory" "$D/a_directory" "directory" train
# One word: int(0.8 * 1) = 0 words for training; there is nothing to
# sample batches from (the trainer must not index an empty split).
expect_refused "one word only (no training examples)" "$D/one_word.txt" "training|examples|too few|empty" train

# With or without a newline after the last word, the same words.
printf '%s' "$(cat "$B")" > "$D/no_final_newline.txt"
for f in "$B" "$D/no_final_newline.txt"; do
  if "$T" train --data "$f" --steps 5 --checkpoint-every 0 --save "$W/nl.st" --log "$W/nl.csv" --plot "" \
       --samples 0 > "$W/stdout" 2> "$W/stderr" \
     && [ "$(grep -o '[0-9]* training examples' "$W/stdout")" = "$(grep -o '[0-9]* training examples' "$W/good.out")" ]; then
    ok "$(basename "$f"): read like names.txt"
  else
    fail "$(basename "$f"): $(cat "$W/stdout" "$W/stderr" | head -c 400)"
  fi
done

if [ $failures -gt 0 ]; then
  echo; echo "data_errors: $failures expectation(s) failed"; exit 1
fi
echo; echo "data_errors: all expectations held"
