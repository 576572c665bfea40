#!/usr/bin/python3
"""How the default mode lays out a step (compiler/plan.c), pinned.

Usage: check_plan.py [--regen] NINJAC SPEC=EXPECTED...

For each SPEC, `ninjac --dump=plan` must print EXPECTED exactly: which ops
and gradient contributions share one loop nest, which values live in
registers, which arrays are another's (aliases), where BatchNorm's column
sums ride. The notebook's specs are pinned so that a change of the plan
(a pass over [n, H] more or less) shows in review; `--regen` rewrites the
EXPECTED files (review the diff). `ninjac -O0 --dump=plan` must say that
-O0 plans nothing, and with `--gemm=blas` no product's store adds a bias
(cblas_sgemm has none to add).
"""
import subprocess
import sys


def dump(ninjac, spec, *options):
    return subprocess.run([ninjac, *options, "--dump=plan", spec], check=True, capture_output=True, text=True).stdout


def main():
    args = sys.argv[1:]
    regen = "--regen" in args
    args = [a for a in args if a != "--regen"]
    if len(args) < 2:
        print("FAIL: usage: check_plan.py [--regen] NINJAC SPEC=EXPECTED...")
        sys.exit(1)
    ninjac, failures = args[0], 0
    for arg in args[1:]:
        spec, _, expected_path = arg.partition("=")
        got = dump(ninjac, spec, "-O")
        if regen:
            with open(expected_path, "w") as f:
                f.write(got)
            continue
        with open(expected_path) as f:
            want = f.read()
        if got != want:
            failures += 1
            print(f"FAIL: {spec}: the plan differs from {expected_path}:\n{got}")
        else:
            print(f"ok: {spec}: plan as in {expected_path}")
        at_o0 = dump(ninjac, spec, "-O0")
        if not at_o0.startswith("no plan"):
            failures += 1
            print(f"FAIL: {spec}: -O0 planned:\n{at_o0}")
        with_blas = dump(ninjac, spec, "-O", "--gemm=blas")
        if "kernels store" in with_blas:
            failures += 1
            print(f"FAIL: {spec}: with --gemm=blas a product's store adds a bias:\n{with_blas}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
