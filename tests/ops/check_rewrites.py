#!/usr/bin/python3
"""Which lines the default mode's rewrite rules replace (compiler/rewrite.c).

Usage: check_rewrites.py NINJAC SPEC[=EXPECTED]...

For each SPEC (tests/ops/rewrite_*.ninja, and the notebook's atomic spec),
`ninjac -O --dump=shape` must print exactly the `# rewritten:` lines of
EXPECTED (default: SPEC's .expected file) (the op each
rule made, its output and the first line it replaces), and `ninjac -O0
--dump=shape` none: -O0 keeps every line as written. `--regen` rewrites the
.expected files (review the diff).
"""
import os
import re
import subprocess
import sys


def rewritten(ninjac, spec, mode):
    out = subprocess.run([ninjac, mode, "--dump=shape", spec], check=True, capture_output=True, text=True).stdout
    lines = []
    for line in out.splitlines():
        m = re.match(r"(\d+): (\w+) .*# rewritten: (\w+) from line (\d+)", line)
        if m:
            lines.append(f"{m.group(4)}-{m.group(1)}: {m.group(2)} = {m.group(3)}")
    return lines


def main():
    args = sys.argv[1:]
    regen = "--regen" in args
    args = [a for a in args if a != "--regen"]
    ninjac, specs = args[0], args[1:]
    failures = 0
    for arg in specs:
        spec, _, expected_path = arg.partition("=")
        expected_path = expected_path or os.path.splitext(spec)[0] + ".expected"
        got = rewritten(ninjac, spec, "-O")
        if regen:
            with open(expected_path, "w") as f:
                f.write("".join(x + "\n" for x in got))
            continue
        with open(expected_path) as f:
            want = f.read().splitlines()
        name = os.path.basename(spec)
        if got != want:
            failures += 1
            print(f"FAIL: {name}: -O rewrites\n  " + "\n  ".join(got) + "\nexpected\n  " + "\n  ".join(want))
        else:
            print(f"ok: {name}: -O rewrites {len(got)} chains as expected")
        at_o0 = rewritten(ninjac, spec, "-O0")
        if at_o0:
            failures += 1
            print(f"FAIL: {name}: -O0 rewrites {at_o0}")
    if not specs:
        print("FAIL: no specs")
        failures += 1
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
