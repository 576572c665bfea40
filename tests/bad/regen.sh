#!/bin/sh
# regen.sh - rewrites tests/bad/NAME.expected from the current compiler.
#
#   tests/bad/regen.sh [NAME...]        (from anywhere; NINJAC=path overrides
#                                        the compiler, default build/compiler/ninjac)
#
# For every tests/bad/NAME.ninja (or only the NAMEs given) it runs, from the
# repository root,
#     ninjac --check $(cat NAME.args) tests/bad/NAME.ninja 2> tests/bad/NAME.expected
# and says when the exit status differs from NAME.status (default 1); it never
# writes .status or .args files. The new texts are meant for a human to review:
# run `git diff tests/bad` and check every changed diagnostic (message,
# line:col, the caret's position and width) before committing. A test whose
# .expected holds the diagnostic the compiler *should* give (a known compiler
# bug) gets today's wrong output instead: do not commit that hunk.
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
ninjac=${NINJAC:-build/compiler/ninjac}
case $ninjac in /*) ;; *) ninjac=$root/$ninjac ;; esac
if [ ! -x "$ninjac" ]; then
    echo "regen.sh: no compiler at $ninjac (build it, or set NINJAC=path)" >&2
    exit 2
fi

if [ $# -eq 0 ]; then
    set -- $(for f in tests/bad/*.ninja; do basename "$f" .ninja; done)
fi

changed=0
for name in "$@"; do
    spec=tests/bad/$name.ninja
    if [ ! -f "$spec" ]; then
        echo "regen.sh: no $spec" >&2
        exit 2
    fi
    args=
    [ -f "tests/bad/$name.args" ] && args=$(cat "tests/bad/$name.args")
    want=1
    [ -f "tests/bad/$name.status" ] && want=$(tr -d ' \n' < "tests/bad/$name.status")
    old=$(cat "tests/bad/$name.expected" 2>/dev/null || true)
    status=0
    # $args is split like a command line on purpose (it holds e.g. "-D n=0").
    # shellcheck disable=SC2086
    "$ninjac" --check $args "$spec" 2> "tests/bad/$name.expected" || status=$?
    if [ "$status" != "$want" ]; then
        echo "regen.sh: $name: exit status $status, the test expects $want" >&2
    fi
    if [ "$old" != "$(cat "tests/bad/$name.expected")" ]; then
        echo "changed: tests/bad/$name.expected"
        changed=$((changed + 1))
    fi
done
echo "regen.sh: $changed of $# expected files changed; review with: git diff tests/bad"
