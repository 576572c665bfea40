#!/usr/bin/env python3
"""Limits are errors, not crashes: each input below is far past one of
ninjac's limits, and ninjac must refuse it with a diagnostic naming the
limit, exit status 1, and no file written, inside an address-space limit of
1 GiB (a CPU-time limit only catches hangs; nothing here is timed).

usage: limits.py NINJAC WORKDIR [--no-memory-limit]
(sanitizer builds reserve terabytes of address space: they pass
--no-memory-limit and rely on the sanitizers instead)
"""
import os
import resource
import shutil
import subprocess
import sys

HEADER = "dim n = 4\ninput X: int[n, 3] < 5\nparam C: [5, 2] = randn()\n"


def chain(count):
    return "x0 = C[X]\n" + "".join(f"x{i} = x{i - 1} * 1.0001\n" for i in range(1, count))


# name: (spec bytes, the message ninjac must give, at file:line:col when a line is known)
CASES = {
    "lines_100000": ((HEADER + chain(100000) + "loss = x99999.sum()\n").encode(),
                     ":10001:1: error: a spec has at most 10000 statements"),
    "parens_100000": ((HEADER + "loss = " + "(" * 100000 + "C[X].sum()" + ")" * 100000 + "\n").encode(),
                      ":4:208: error: brackets nested more than 200 deep"),
    "sum_of_100000_terms": ((HEADER + "e = C[X]\nloss = (" + " + ".join(["e"] * 100000) + ").sum()\n").encode(),
                            ":5:9: error: expression nested more than 400 deep"),
    "minus_100000": ((HEADER + "loss = " + "-" * 100000 + "C[X].sum()\n").encode(),
                     "error: statement too deeply nested"),
    "ops_over_limit": ((HEADER + "e = C[X]\n" + "".join(
        f"x{i} = (" + " + ".join(["e"] * 300) + ")\n" for i in range(100)) + "loss = x1.sum()\n").encode(),
                       "error: the model has more than 20000 operations"),
    "dim_product_overflows": (b"dim a = 65536*65536*65536*65536*65536\n" + HEADER.encode() + b"loss = C[X].sum()\n",
                              ":1:26: error: constant expression overflows"),
    "shape_product_overflows": (b"dim n = 4\ndim a = 2147483647\ninput X: int[n, 3] < 5\n"
                                b"param C: [a, a, a, a] = randn()\nloss = C[X].sum()\n",
                                ":4:11: error: tensor of shape [2147483647, 2147483647, 2147483647, 2147483647] "
                                "is too large"),
    "integer_literal_too_large": (b"dim n = 4\ninput X: int[n, 32222222222222222222222222222222] < 5\n"
                                  b"param C: [5, 2] = randn()\nloss = C[X].sum()\n",
                                  ":2:17: error: integer constant 3.22e+31 is too large"),
    "broadcast_product_overflows": (b"dim n = 4\ndim a = 2147483647\ninput X: int[n, 3] < 5\n"
                                    b"param U: [a, 1] = randn()\nparam V: [1, a] = randn()\n"
                                    b"loss = (U + V).sum()\n",
                                    ":6:11: error: tensor of shape [2147483647, 2147483647] is too large"),
    "identifier_1MB": ((HEADER + "x" * (1 << 20) + " = C[X]\nloss = C[X].sum()\n").encode(),
                       ":4:1: error: name is 1048576 characters long; the limit is 256"),
    "nul_byte": ((HEADER + "loss = C[X].sum()\0\n").encode(), ":4:18: error: unexpected byte 0x00"),
    "invalid_utf8": (HEADER.encode() + b"loss = C[X].sum() \xff\xfe\xc3\n", ":4:19: error: unexpected byte 0xFF"),
    "truncated_utf8_at_eof": (HEADER.encode() + b"loss = C[X].sum() \xe2\x82", ":4:19: error: unexpected byte 0xE2"),
    "spec_over_64MB": ((HEADER + "#" * (65 << 20) + "\n").encode(), "error: the spec is larger than 64 MB"),
}


MEMORY_LIMIT = "--no-memory-limit" not in sys.argv


def limit_resources():
    if MEMORY_LIMIT:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    resource.setrlimit(resource.RLIMIT_CPU, (60, 60))   # a hang, not a speed test


def main():
    ninjac, work = sys.argv[1], sys.argv[2]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    failures = []
    for name, (text, expected) in CASES.items():
        spec = os.path.join(work, name + ".ninja")
        out = os.path.join(work, name + ".out")
        os.makedirs(out)
        with open(spec, "wb") as f:
            f.write(text)
        r = subprocess.run([ninjac, spec, "-o", out], capture_output=True, preexec_fn=limit_resources)
        stderr = r.stderr.decode("ascii", "replace")
        first = stderr.splitlines()[0] if stderr else ""
        problems = []
        if r.returncode != 1:
            problems.append(f"exit status {r.returncode} (a negative status is a signal), expected 1")
        if expected not in first:
            problems.append(f"first diagnostic is {first[:200]!r}; expected it to contain {expected!r}")
        if os.listdir(out):
            problems.append(f"wrote {os.listdir(out)}")
        print(f"{'ok  ' if not problems else 'FAIL'} {name}: {first[:120]}")
        for p in problems:
            print(f"       {p}")
        if problems:
            failures.append(name)
        os.remove(spec)
    if failures:
        print(f"{len(failures)} of {len(CASES)} limits failed: {', '.join(failures)}")
        return 1
    print(f"all {len(CASES)} limits give a diagnostic and exit 1")
    return 0


if __name__ == "__main__":
    sys.exit(main())
