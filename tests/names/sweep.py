#!/usr/bin/env python3
"""names.sweep: every name a user can write gives C that compiles, or a located error.

For each role a name can play in a spec (dim, input, param, tensor) this
writes specs that use many candidate names at once, runs ninjac on them and
compiles what it writes with the trainers' flags and -Werror (front end
only: -fsyntax-only). The names are
what C trips over: keywords, every macro the C headers, the BLAS header and
ninjac's headers define on this machine, every identifier the generated code
uses, names with leading underscores, and names whose gradient d<name> is one
of those. ninjac may refuse a name, but only with an error located at the
name's own line; every other name must compile.

usage: sweep.py NINJAC RUNTIME_DIR WORKDIR [--cc CC] [--blas-include DIR]
"""
import argparse
import keyword
import os
import re
import subprocess
import sys

STD_HEADERS = """assert complex ctype errno fenv float inttypes iso646 limits locale math setjmp signal
stdalign stdarg stdatomic stdbool stddef stdint stdio stdlib stdnoreturn string tgmath threads time
uchar wchar wctype""".split()

ISSUE_NAMES = """o do ouble efault efine efined linux unix NULL EOF NAN INFINITY M_PI RAND_MAX I complex
int32_t errno assert offsetof bool true false stdin stdout stderr CblasTrans CblasNoTrans CblasRowMajor
HUGE_VAL FLT_MAX DBL_MIN asm typeof inline restrict _Bool _Complex _Imaginary _Atomic _Noreturn
_Static_assert _Thread_local _Alignas _Alignof _Generic __asm__ __asm __inline __inline__ __restrict
__typeof__ __attribute__ __extension__ __linux__ __FILE__ __LINE__ __STDC__ _Pragma __func__ _x __x
i j k l m n p a g s w rows stop inputs which chunk acc mean pass r0 best argmax dot mx sum lr in
expf logf tanhf powf sqrtf exp log tanh pow sqrt fabs fabsf memcpy memset calloc free
nj_gemm nj_tanhf nj_transpose cblas_sgemm cblas_dgemm NinjacModel NjParam NjTensor NjInput
params acts grads stats inputs_table infer_upto forward_any backward_any sgd_any infer_any
calibrate_any mm_scratch loss_probs x_argmax x_mean x_t1 dx ddx sweep_params sweep_forward
main float double int char void auto register goto""".split()


def header_macros(cc, includes):
    text = "".join(f"#include <{h}.h>\n" for h in STD_HEADERS)
    text += '#include <cblas.h>\n#include "ninjac_model.h"\n#include "ninjac_kernels.h"\n'
    cmd = [cc, "-std=gnu11", "-D_GNU_SOURCE", "-march=native", "-dM", "-E", "-x", "c", "-"]
    cmd += [f"-I{d}" for d in includes]
    out = subprocess.run(cmd, input=text, capture_output=True, text=True, check=True).stdout
    names = {line.split()[1].split("(")[0] for line in out.splitlines() if line.startswith("#define ")}
    return {n for n in names if not n.startswith("_")}   # ninjac renames all of those alike: a few suffice


def identifiers(text):
    text = re.sub(r"//.*|/\*.*?\*/|\"(\\.|[^\"\\])*\"|'(\\.|[^'\\])*'", " ", text, flags=re.S)
    return set(re.findall(r"\b[A-Za-z_][A-Za-z0-9_]*\b", text))


def spec_names(path):
    """The names a spec declares (they are in ninjac's output as themselves)."""
    text = open(path).read()
    return set(re.findall(r"^(?:dim|input|param)?\s*([A-Za-z_][A-Za-z0-9_]*)\s*[=:]", text, re.M))


def generated_identifiers(ninjac, source, runtime, work):
    """Every identifier of ninjac's output for the project's specs, in every mode,
    but the specs' own names and the models' (NAME_...) ones."""
    names = set()
    own = set()
    for h in ("ninjac_model.h", "ninjac_kernels.h"):
        names |= identifiers(open(os.path.join(runtime, h)).read())
    specs = os.path.join(source, "specs")
    for spec in sorted(os.listdir(specs)):
        for i, mode in enumerate(([], ["-O0"], ["--dtype", "f64"], ["--gemm=blas"])):
            out = os.path.join(work, "ids", f"{spec}.{i}")
            os.makedirs(out, exist_ok=True)
            subprocess.run([ninjac, *mode, os.path.join(specs, spec), "-o", out], check=True)
            for f in os.listdir(out):
                names |= identifiers(open(os.path.join(out, f)).read())
        own |= spec_names(os.path.join(specs, spec))
        model = spec[:-len(".ninja")]
        own |= {n for n in names if n.startswith(model + "_") or n.startswith("NINJAC_GENERATED_")}
    own |= {n for n in names if re.fullmatch(r"(d|accumulate_)?[A-Za-z0-9_]+_t[0-9]+", n)}
    return {n for n in names - own if not n.startswith("d") or n[1:] not in own}


def spec_text(role, names):
    """A spec that uses every name in `names` in `role`; returns (text, line of each name)."""
    lines = ["dim zq_n = 4"]
    where = {}

    def add(line, name=None):
        lines.append(line)
        if name:
            where[len(lines)] = name

    prev = "zq_c0"
    if role == "dim":
        add(f"dim {names[0]} = 4", names[0])
        for k, name in enumerate(names[1:], 1):
            add(f"dim {name} = {2 + k % 3}", name)
        add(f"input zq_X: int[{names[0]}] < 3")
    else:
        add("input zq_X: int[zq_n] < 3")
    add("param zq_W: [5, 3] = randn()")
    add(f"{prev} = zq_W[zq_X]")
    for k, name in enumerate(names):
        c = f"zq_c{k + 1}"
        if role == "dim":
            add(f"param zq_p{k}: [{name}] = randn()")
            add(f"{c} = {prev} + zq_p{k}.sum()")
        elif role == "param":
            add(f"param {name}: [3] = randn() * 0.1", name)
            add(f"{c} = {prev} + {name}")
        elif role == "input":
            add(f"input {name}: int[zq_n] < 3", name)
            use = f"zq_W[{name}]" if k % 2 else f"{prev}[range(zq_n), {name}].view(zq_n, 1)"
            add(f"{c} = {prev} + {use}")
        else:   # tensor: plain, with a temporary, a max (argmax aux), a var (mean aux), a batch statistic
            rhs = [f"{prev} * 1.5", f"{prev} * 0.5 + 1.0", f"{prev}.max(1, keepdim=True).values",
                   f"{prev}.var(1, keepdim=True)", f"{prev}.mean(0, keepdim=True)"][k % 5]
            add(f"{name} = {rhs}", name)
            add(f"{c} = {prev} + {name}")
        prev = c
    add(f"loss = {prev}.mean()")
    return "\n".join(lines) + "\n", where


TIMEOUT = 120   # one ninjac run of a few hundred lines takes well under a second: against hangs only
DIAG = re.compile(r"^[^:\n]+\.ninja:(\d+):(\d+): error: ", re.M)


def run_ninjac(ninjac, spec, out, mode):
    os.makedirs(out, exist_ok=True)
    return subprocess.run([ninjac, *mode, spec, "-o", out], capture_output=True, text=True, timeout=TIMEOUT)


def compile_c(cc, flags, includes, out, name):
    # -fsyntax-only: names break the front end; the optimiser would take minutes on specs this long
    src = os.path.join(out, f"{name}.c")
    cmd = [cc, "-std=gnu11", *flags, "-Wall", "-Wextra", "-Werror", "-fsyntax-only", src]
    cmd += [f"-I{d}" for d in [out, *includes]]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        return r.stderr
    # the header after every standard header: their macros must not rewrite it
    hdr = "".join(f"#include <{h}.h>\n" for h in STD_HEADERS) + f'#include "{name}.h"\n'
    cmd = [cc, "-std=gnu11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror", "-fsyntax-only", "-x", "c", "-"]
    cmd += [f"-I{d}" for d in [out, *includes]]
    r = subprocess.run(cmd, input=hdr, capture_output=True, text=True)
    return r.stderr if r.returncode else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ninjac")
    ap.add_argument("source")
    ap.add_argument("work")
    ap.add_argument("--cc", default="cc")
    ap.add_argument("--blas-include", default="/usr/include/x86_64-linux-gnu/openblas-pthread")
    ap.add_argument("--batch", type=int, default=600)
    args = ap.parse_args()
    runtime = os.path.join(args.source, "runtime")
    includes = [runtime, args.blas_include]
    os.makedirs(args.work, exist_ok=True)

    macros = header_macros(args.cc, includes)
    names = set(ISSUE_NAMES) | macros
    names |= generated_identifiers(args.ninjac, args.source, runtime, args.work)
    names |= {n[1:] for n in names if len(n) > 1 and n[0] == "d" and re.match(r"[A-Za-z_]", n[1])}
    names -= {"loss", "logits", "torch", "F", "math", "range", "dim", "input", "param"}   # the spec's own words
    # Python's keywords are no names in valid PyTorch: the lexer refuses them
    # wherever they stand (tests/bad/python_constructs), not at a declaration.
    names -= set(keyword.kwlist)
    names = sorted(n for n in names if not n.startswith("zq_"))
    print(f"{len(names)} names x 4 roles")

    modes = {"O": ([], ["-O3", "-fno-math-errno", "-march=native"]), "O0": (["-O0"], ["-ffp-contract=off"])}
    failures = 0
    for role in ("dim", "input", "param", "tensor"):
        refused = set()
        # A spec has at most 31 inputs. Inputs take the path of params for macros in
        # capitals, so every tenth of those suffices there; long chains of
        # statistics cost ninjac time, so tensors come in smaller batches.
        size = {"input": 30, "tensor": 100}.get(role, args.batch)
        role_names = names
        if role == "input":
            caps = [n for n in names if n.isupper() and n in macros]
            role_names = [n for n in names if n not in caps] + caps[::10]
        for b in range(0, len(role_names), size):
            batch = role_names[b:b + size]
            for mode, (nflags, cflags) in modes.items():
                for attempt in range(3):   # drop refused names, run again: the rest must compile
                    todo = [n for n in batch if n not in refused]
                    text, where = spec_text(role, todo)
                    spec = os.path.join(args.work, f"sweep_{role}.ninja")
                    open(spec, "w").write(text)
                    out = os.path.join(args.work, f"{role}.{b}.{mode}")
                    try:
                        r = run_ninjac(args.ninjac, spec, out, nflags)
                    except subprocess.TimeoutExpired:
                        print(f"FAIL {role}: ninjac did not finish in {TIMEOUT} s")
                        failures += 1
                        break
                    if r.returncode == 0:
                        break
                    located = {where.get(int(line)) for line, _ in DIAG.findall(r.stderr)}
                    if None in located or not located:
                        print(f"FAIL {role}: ninjac exit {r.returncode} without an error at a name's line:\n"
                              f"{r.stderr[:3000]}")
                        failures += 1
                        break
                    refused |= located
                if r.returncode != 0:
                    continue
                err = compile_c(args.cc, cflags, includes, out, f"sweep_{role}")
                if err:
                    print(f"FAIL {role} ({mode}): ninjac exit 0 but the C does not compile:\n{err[:4000]}")
                    failures += 1
        print(f"{role}: {len(role_names) - len(refused)} names compile, {len(refused)} refused with a located error:"
              f" {' '.join(sorted(refused))}")
    if failures:
        print(f"names.sweep: {failures} failures")
        return 1
    print("names.sweep: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
