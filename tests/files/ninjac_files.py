#!/usr/bin/env python3
"""What ninjac writes and refuses to write (issue 10, items 5, 6, 10).

usage: ninjac_files.py NINJAC SPEC WORKDIR FAIL_RENAME_SHIM
Each check runs ninjac on a copy of SPEC (a valid spec) in WORKDIR:
  * an output that is the spec itself (model.c -o ., model.h -o .) is
    refused and the spec stays;
  * a spec name that is not a C identifier (tiny.v2.ninja) or that would
    hide a header (stdint, string, ninjac_model, ninjac_kernels, main) is
    refused with a clear error, nothing written;
  * -o FILE says "not a directory";
  * a FIFO as the spec is refused at once (no hang);
  * a symlink planted at NAME.h.tmp.<pid> is not followed;
  * under a file size limit the .c fails with EFBIG, named, exit 1 (not
    SIGXFSZ), and both old files stay as they were (written as a pair);
  * when the rename of the .c fails after the .h was renamed into place
    (FAIL_RENAME_SHIM, preloaded, makes it fail), exit 1 naming m.c, and
    the .h gets its old contents back; with no old files, neither file is
    left behind;
  * SIGTERM the moment a temporary has been created (the shim raises it):
    exit 143 and no temporary left.
"""
import os
import resource
import shutil
import signal
import subprocess
import sys

ninjac, spec, work, fail_rename = sys.argv[1:5]
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
failures = []


def ok(cond, what, detail=""):
    print(("ok: " if cond else "FAIL: ") + what + ("" if cond else f"\n      {detail}"))
    if not cond:
        failures.append(what)


def run(args, cwd=work, **kw):
    try:
        return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=30, **kw)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(args, None, "", "TIMEOUT")


def show(r):
    return f"rc={r.returncode} stderr={r.stderr[-500:]!r}"


with open(spec, "rb") as f:
    text = f.read()


def fresh(name):
    d = os.path.join(work, name.replace(".", "_") + "_dir")
    os.makedirs(d)
    with open(os.path.join(d, name), "wb") as f:
        f.write(text)
    return d


for name in ("model.c", "model.h"):
    d = fresh(name)
    r = run([ninjac, name, "-o", "."], cwd=d)
    ok(r.returncode == 1 and "spec" in r.stderr and name in r.stderr, f"ninjac {name} -o .: refused", show(r))
    ok(open(os.path.join(d, name), "rb").read() == text, f"ninjac {name} -o .: the spec is intact")

for name, why in (("tiny.v2", "not a C identifier"), ("stdint", "<stdint.h>"), ("string", "<string.h>"),
                  ("ninjac_model", "<ninjac_model.h>"), ("ninjac_kernels", "<ninjac_kernels.h>"),
                  ("main", "<main.h>")):
    d = fresh(name + ".ninja")
    r = run([ninjac, name + ".ninja", "-o", "."], cwd=d)
    ok(r.returncode == 1 and why in r.stderr, f"spec named {name}: refused ({why})", show(r))
    ok(os.listdir(d) == [name + ".ninja"], f"spec named {name}: nothing written", str(os.listdir(d)))

d = fresh("m.ninja")
with open(os.path.join(d, "afile"), "w") as f:
    f.write("x")
r = run([ninjac, "m.ninja", "-o", "afile"], cwd=d)
ok(r.returncode == 1 and "not a directory" in r.stderr, "-o FILE: says it is not a directory", show(r))

os.mkfifo(os.path.join(d, "fifo.ninja"))
r = run([ninjac, "fifo.ninja", "-o", "."], cwd=d)
ok(r.returncode == 1 and "FIFO" in r.stderr, "a FIFO spec: refused at once", show(r))
os.unlink(os.path.join(d, "fifo.ninja"))

with open(os.path.join(d, "victim"), "w") as f:
    f.write("victim")
r = run(["bash", "-c", 'ln -s victim "m.h.tmp.$$"; exec "$1" m.ninja -o .', "bash", ninjac], cwd=d)
ok(r.returncode == 0, "ninjac with a symlink planted at m.h.tmp.<pid>", show(r))
ok(open(os.path.join(d, "victim")).read() == "victim", "the link's target is untouched")
ok(os.path.isfile(os.path.join(d, "m.h")) and not os.path.islink(os.path.join(d, "m.h")), "m.h is a regular file")
for n in os.listdir(d):
    if ".tmp." in n:
        os.unlink(os.path.join(d, n))

h_size = os.path.getsize(os.path.join(d, "m.h"))
c_size = os.path.getsize(os.path.join(d, "m.c"))
for n in ("m.h", "m.c"):
    with open(os.path.join(d, n), "w") as f:
        f.write("old " + n)
limit = (h_size + c_size) // 2 if h_size < c_size else None
ok(limit is not None and h_size < limit < c_size, "the .h fits under the limit and the .c does not")


def limited():
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)   # as from a shell: the default action
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


r = run([ninjac, "m.ninja", "-o", "."], cwd=d, preexec_fn=limited)
ok(r.returncode == 1 and "m.c" in r.stderr and "File too large" in r.stderr,
   "over the file size limit: exit 1 and an error naming m.c (not SIGXFSZ)", show(r))
ok([open(os.path.join(d, n)).read() for n in ("m.h", "m.c")] == ["old m.h", "old m.c"],
   "both old files stay as they were")
ok(not [n for n in os.listdir(d) if ".tmp." in n], "no temporary left", str(os.listdir(d)))

shim = dict(os.environ, LD_PRELOAD=os.path.abspath(fail_rename), NJ_TEST_FAIL_RENAME="/m.c")
r = run([ninjac, "m.ninja", "-o", "."], cwd=d, env=shim)
ok(r.returncode == 1 and "m.c" in r.stderr and "Input/output error" in r.stderr,
   "the rename of m.c fails: exit 1 and an error naming m.c", show(r))
ok([open(os.path.join(d, n)).read() for n in ("m.h", "m.c")] == ["old m.h", "old m.c"],
   "after the rename of m.c failed, m.h has its old contents back")
ours = lambda: sorted(n for n in os.listdir(d) if n.startswith("m."))  # noqa: E731
ok(ours() == ["m.c", "m.h", "m.ninja"], "no temporary or backup left", str(ours()))
for n in ("m.h", "m.c"):
    os.unlink(os.path.join(d, n))
r = run([ninjac, "m.ninja", "-o", "."], cwd=d, env=shim)
ok(r.returncode == 1 and ours() == ["m.ninja"],
   "with no old files, a failed rename of m.c leaves neither file", show(r) + str(ours()))

term = dict(os.environ, LD_PRELOAD=os.path.abspath(fail_rename), NJ_TEST_TERM_AFTER_CREATE="1")
r = run([ninjac, "m.ninja", "-o", "."], cwd=d, env=term)
ok(r.returncode == 128 + signal.SIGTERM and ours() == ["m.ninja"],
   "SIGTERM the moment a temporary is created: exit 143, no temporary left", show(r) + str(ours()))

if failures:
    print(f"\n{len(failures)} expectation(s) failed")
    sys.exit(1)
print("\nall expectations held")
