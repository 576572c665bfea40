#!/usr/bin/env python3
"""ops.table: what is derived from the op table (compiler/ops.def) agrees with it.

`ninjac --list-ops` checks the table itself (templates against its math and
reads columns) and prints it. This test then checks, against that output:
  - README.md holds the same table between its --list-ops markers;
  - every op in the table occurs in the --dump=shape of some tests/ops/*.ninja
    (so that tests/fd checks its gradient in both modes);
  - the "supported:" lists of the pinned diagnostics (tests/bad) name exactly
    the table's method and function spellings;
  - every C math function of the table is refused as an input name (the
    generated code calls it);
  - the fuzz dictionary (tests/fuzz/ninja.dict) has every call spelling;
  - the files and functions docs/design.md's "Where to make a change" names
    exist.

usage: check_op_table.py NINJAC SOURCE_DIR WORKDIR
"""
import os
import re
import subprocess
import sys

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, **kw)


def table_rows(text):
    rows = []
    for line in text.splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows.append({"op": cells[0], "python": re.findall(r"`([^`]*)`", cells[2]), "math": cells[3].split()})
    return rows


def check_readme(source, listing):
    readme = open(os.path.join(source, "README.md")).read()
    m = re.search(r"<!-- ninjac --list-ops -->\n(.*?)<!-- end of ninjac --list-ops -->", readme, re.S)
    if not m:
        fail("README.md has no <!-- ninjac --list-ops --> block")
    elif m.group(1) != listing:
        fail("README.md's op table differs from `ninjac --list-ops`: paste the new output")


def check_op_tests(ninjac, source, rows):
    ops_dir = os.path.join(source, "tests", "ops")
    seen = set()
    for f in sorted(os.listdir(ops_dir)):
        if f.endswith(".ninja"):
            r = run([ninjac, os.path.join(ops_dir, f), "--dump=shape"])
            if r.returncode:
                fail(f"tests/ops/{f} does not compile: {r.stderr.strip()}")
            seen |= set(re.findall(r"= ([a-z_]+)\(", r.stdout))
    for row in rows:
        if row["op"] not in seen:
            fail(f"op {row['op']} occurs in no tests/ops/*.ninja: add one (tests/fd checks it)")


def spellings(rows):
    methods, calls = set(), set()
    for row in rows:
        for s in row["python"]:
            m = re.fullmatch(r"x\.([a-z_]+)\(.*\)", s)
            if m:
                methods.add(m.group(1))
            m = re.fullmatch(r"((?:torch|F)\.[a-z_]+)\(.*\)", s)
            if m:
                calls.add(m.group(1))
    return methods, calls


def supported_list(source, bad):
    text = open(os.path.join(source, "tests", "bad", bad + ".expected")).read()
    m = re.search(r"\(supported: ([^)]*)\)", text)
    return set(re.split(r"[ ,]+", m.group(1).strip())) if m else set()


def check_diagnostics(source, rows):
    methods, calls = spellings(rows)
    if supported_list(source, "unsupported_method") != methods:
        fail(f"tests/bad/unsupported_method.expected lists other methods than the table: {sorted(methods)}")
    for bad in ("unsupported_function", "unsupported_f_function"):
        if supported_list(source, bad) != calls:
            fail(f"tests/bad/{bad}.expected lists other functions than the table: {sorted(calls)}")


def check_reserved(ninjac, rows, work):
    names = set()
    for row in rows:
        for fn in row["math"]:
            names |= {fn, fn + "f"}
    for name in sorted(names):
        spec = os.path.join(work, f"input_{name}.ninja")
        with open(spec, "w") as f:
            f.write(f"dim n = 2\ninput {name}: int[n] < 3\nparam C: [3, 2] = randn()\nloss = C[{name}].sum()\n")
        r = run([ninjac, "--check", spec])
        if r.returncode == 0 or "the generated C uses that name itself" not in r.stderr:
            fail(f"an input named {name} (a C math function of the table) is not refused: {r.stderr.strip()}")


def check_fuzz_dict(source, rows):
    words = open(os.path.join(source, "tests", "fuzz", "ninja.dict")).read()
    # libFuzzer refuses the whole dictionary over one bad line (fuzz.smoke
    # runs only in tools/test.sh's fuzz build): every entry one quoted string
    for n, line in enumerate(words.splitlines(), 1):
        if line and not line.startswith("#") and not re.fullmatch(r'(\w+=)?"([^"\\]|\\.)*"', line):
            fail(f"tests/fuzz/ninja.dict:{n}: not a quoted entry: {line}")
    methods, calls = spellings(rows)
    for w in sorted({f'".{m}("' for m in methods} | {f'"{c}("' for c in calls}):
        if w not in words:
            fail(f"tests/fuzz/ninja.dict lacks {w}")


def check_design(source):
    text = open(os.path.join(source, "docs", "design.md")).read()
    m = re.search(r"## Where to make a change\n(.*?)\n## ", text, re.S)
    if not m:
        fail("docs/design.md has no 'Where to make a change' section")
        return
    section = m.group(1)
    code = ""
    for d in ("compiler", "runtime"):
        for f in os.listdir(os.path.join(source, d)):
            if re.search(r"\.(c|h|y|l|def)$", f):
                code += open(os.path.join(source, d, f)).read()
    for token in re.findall(r"`([^`]+)`", section):
        if re.fullmatch(r"[\w/]+\.(c|h|y|l|def)", token):
            found = any(os.path.exists(os.path.join(source, d, token)) for d in ("", "compiler", "runtime"))
            if not found:
                fail(f"docs/design.md names {token}, which does not exist")
        elif re.fullmatch(r"[a-z]+_[a-z_]+", token) and not re.search(r"\b%s\b" % token, code):
            fail(f"docs/design.md names {token}, which no compiler or runtime source defines")
    if "ops.def" not in section:
        fail("docs/design.md's 'Where to make a change' does not send new ops to compiler/ops.def")


def main():
    ninjac, source, work = sys.argv[1:4]
    os.makedirs(work, exist_ok=True)
    r = run([ninjac, "--list-ops"])
    if r.returncode:
        print(r.stderr)
        sys.exit("FAIL: ninjac --list-ops: the op table is inconsistent")
    rows = table_rows(r.stdout)
    if len(rows) < 30:
        sys.exit(f"FAIL: --list-ops printed {len(rows)} ops")
    check_readme(source, r.stdout)
    check_op_tests(ninjac, source, rows)
    check_diagnostics(source, rows)
    check_reserved(ninjac, rows, work)
    check_fuzz_dict(source, rows)
    check_design(source)
    if failures:
        sys.exit(f"{len(failures)} failures")
    print(f"ok: {len(rows)} ops agree with README, tests/ops, tests/bad, names, the fuzz dictionary and design.md")


if __name__ == "__main__":
    main()
