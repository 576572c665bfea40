#!/usr/bin/python3
"""PyTorch oracle for ninjac trainers: checks loss, gradients and activations.

Usage:
    /usr/bin/python3 tests/oracle/oracle.py --spec specs/X.ninja --trainer build/X \\
        [-D name=value ...] [--seed S] [--workdir DIR] [--require-intermediates]

Steps:
  1. Parse the spec's declarations (dims, with -D overrides applied; later
     dims are re-evaluated from the overridden ones) and forward lines.
  2. Make seeded random params (each param's init expression evaluated with
     randn()/rand()/zeros()/ones() returning tensors of the param's shape;
     params whose init is constant get a 0.1*randn perturbation so gradients
     are not degenerate) and a random valid batch (uniform ints in [0, bound);
     a cross_entropy target with ignore_index=K takes K in a quarter of it).
     Write P.safetensors (F32) and B.safetensors (I64 for even seeds, I32 for
     odd ones) into the workdir (default: a temporary directory, kept only
     on failure).
  3. Run `TRAINER grads --params P --inputs B --out G`.
  4. Run the forward lines under PyTorch (float32), retain the grad of every
     assigned float tensor, call loss.backward().
  5. Compare `loss`, every `grad.<param>` (required), every other `grad.<name>`
     and `act.<name>` the trainer wrote (with --require-intermediates every
     float tensor assigned by a forward line must have a `grad.<name>`).
     Prints one row per tensor, notebook style, and exits 1 on any mismatch,
     missing tensor or shape mismatch, 0 otherwise.

The -D values must be the ones the trainer was built with.
"""
import argparse
import ast
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402


class SpecError(Exception):
    pass


# ---------------------------------------------------------------- spec parsing

def _strip_comment(line):
    """Drop a '#' comment (outside string literals)."""
    quote = None
    for i, c in enumerate(line):
        if quote:
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c == "#":
            return line[:i]
    return line


def logical_lines(text):
    """Yield (first line number, statement), joining lines while brackets are open."""
    buf, start, depth = [], 0, 0
    for no, line in enumerate(text.splitlines(), 1):
        code = _strip_comment(line).rstrip()
        if not code.strip() and not buf:
            continue
        if not buf:
            start = no
        else:
            code = code.strip()
        buf.append(code)
        depth += sum(code.count(c) for c in "([{") - sum(code.count(c) for c in ")]}")
        if depth <= 0:
            yield start, " ".join(buf)
            buf, depth = [], 0
    if buf:
        raise SpecError(f"line {start}: unclosed bracket at end of file")


def eval_int(expr, dims, where):
    """Evaluate an integer expression: ints, earlier dims, + - * // and parentheses."""
    ops = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
           ast.Mult: lambda a, b: a * b, ast.FloorDiv: lambda a, b: a // b}

    def ev(node):
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in dims:
                raise SpecError(f"{where}: unknown dim '{node.id}'")
            return dims[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in ops:
            return ops[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = ev(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        raise SpecError(f"{where}: not an integer expression: {expr.strip()}")
    try:
        return ev(ast.parse(expr.strip(), mode="eval").body)
    except SyntaxError:
        raise SpecError(f"{where}: bad integer expression: {expr.strip()}")


def _shape(text, dims, where):
    return [eval_int(e, dims, where) for e in text.split(",")] if text.strip() else []


RE_DIM = re.compile(r"dim\s+(\w+)\s*=\s*(.+)$")
RE_INPUT = re.compile(r"input\s+(\w+)\s*:\s*int\s*\[(.*)\]\s*<\s*(.+)$")
RE_PARAM = re.compile(r"param\s+(\w+)\s*:\s*\[(.*)\]\s*=\s*(.+)$")


def parse_spec(text, overrides=None, name="spec"):
    """Return dict(dims, inputs=[(name, shape, bound)], params=[(name, shape, init)],
    forward=[(lineno, stmt)]). overrides: dict dim -> int."""
    overrides = dict(overrides or {})
    spec = {"dims": {}, "inputs": [], "params": [], "forward": []}
    dims = spec["dims"]
    for no, stmt in logical_lines(text):
        where = f"{name}:{no}"
        if stmt[:1].isspace() and spec["forward"]:
            # a loop's body: the loop runs under PyTorch as one statement
            last_no, last = spec["forward"][-1]
            spec["forward"][-1] = (last_no, last + "\n" + stmt)
            continue
        stmt = stmt.strip()
        if m := RE_DIM.match(stmt):
            dims[m[1]] = overrides.pop(m[1]) if m[1] in overrides else eval_int(m[2], dims, where)
        elif m := RE_INPUT.match(stmt):
            spec["inputs"].append((m[1], _shape(m[2], dims, where), eval_int(m[3], dims, where)))
        elif m := RE_PARAM.match(stmt):
            spec["params"].append((m[1], _shape(m[2], dims, where), m[3].strip()))
        elif re.match(r"(dim|input|param)\s+\w+\s*[:=]", stmt):
            raise SpecError(f"{where}: malformed declaration: {stmt}")
        else:
            spec["forward"].append((no, stmt))
    if overrides:
        raise SpecError(f"{name}: -D for undeclared dim(s): {', '.join(overrides)}")
    return spec


# ------------------------------------------------------ random params and batch

def init_param(init, shape, dims, gen):
    """Evaluate a param's init expression; perturb constant inits."""
    used_random = []

    def randn(*_a, **_k):
        used_random.append(1)
        return torch.randn(shape, generator=gen)

    def rand(*_a, **_k):
        used_random.append(1)
        return torch.rand(shape, generator=gen)

    env = dict(dims, randn=randn, rand=rand,
               zeros=lambda *a, **k: torch.zeros(shape), ones=lambda *a, **k: torch.ones(shape))
    env.update({g: None for g in re.findall(r"generator\s*=\s*(\w+)", init)})  # draws come from gen
    value = eval(init, {"__builtins__": __builtins__}, env)  # noqa: S307 (our own spec)
    value = torch.broadcast_to(torch.as_tensor(value, dtype=torch.float32), shape).clone()
    if not used_random:
        value += 0.1 * torch.randn(shape, generator=gen)
    return value.float()


def make_data(spec, seed):
    gen = torch.Generator().manual_seed(seed)
    params = {n: init_param(init, shape, spec["dims"], gen) for n, shape, init in spec["params"]}
    itype = torch.int64 if seed % 2 == 0 else torch.int32
    inputs = {n: torch.randint(0, bound, shape, generator=gen)
              for n, shape, bound in spec["inputs"]}
    # An input on a line with ignore_index=K (a cross_entropy target) also
    # takes K: put it in about a quarter of the elements, never the first.
    for _, stmt in spec["forward"]:
        if m := re.search(r"ignore_index\s*=\s*(-\d+)", stmt):
            for n in set(re.findall(r"\b\w+\b", stmt)) & inputs.keys():
                drop = torch.rand(inputs[n].shape, generator=gen) < 0.25
                drop.view(-1)[0] = False
                inputs[n][drop] = int(m[1])
    return params, {n: v.to(itype) for n, v in inputs.items()}


# ---------------------------------------------------------------- forward pass

def run_forward(spec, params, inputs, dtype=torch.float32, name="spec"):
    """Run the forward lines and loss.backward(). Returns (namespace, assigned names
    in order). Every assigned float tensor that requires grad has its grad retained."""
    old_default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        ns = {"torch": torch, "F": F, "math": math, **spec["dims"]}
        for n, v in params.items():
            ns[n] = v.detach().to(dtype).clone().requires_grad_(True)
        leaves = {n: ns[n] for n in params}
        for n, v in inputs.items():
            ns[n] = v.long()
        assigned = []
        for no, stmt in spec["forward"]:
            before = dict(ns)
            try:
                exec(compile(stmt, f"{name}:{no}", "exec"), ns)  # noqa: S102
            except Exception as e:
                raise SpecError(f"{name}:{no}: forward line failed: {type(e).__name__}: {e}\n  {stmt}")
            for k, v in ns.items():
                if k not in ("__builtins__", "__params__") and before.get(k) is not v:
                    if k in assigned:
                        assigned.remove(k)
                    assigned.append(k)
                    if isinstance(v, torch.Tensor) and v.is_floating_point() and v.requires_grad:
                        v.retain_grad()
        loss = ns.get("loss")
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise SpecError(f"{name}: forward lines must assign a scalar tensor 'loss'")
        loss.backward()
        ns["__params__"] = leaves   # a param's name may be bound again by the forward
    finally:
        torch.set_default_dtype(old_default)
    return ns, assigned


def float_intermediates(ns, assigned):
    """Forward-line variables that are float tensors requiring grad (excluding loss)."""
    return [k for k in assigned if k != "loss" and isinstance(ns[k], torch.Tensor)
            and ns[k].is_floating_point() and ns[k].requires_grad]


def ref_grad(t):
    return t.grad if t.grad is not None else torch.zeros_like(t)


# ------------------------------------------------------------------ comparison

# Tolerance for pass/fail. Both sides compute in float32 (eps ~1.2e-7), but
# PyTorch and the generated C sum in different orders (blocked BLAS vs. plain
# loops, pairwise vs. sequential reductions over up to thousands of terms) and
# call different libm exp/log/tanh (1-2 ulp apart); backprop then chains a few
# dozen such ops. The typical relative error this accumulates is ~1e-6..1e-5,
# so rtol=1e-4 leaves headroom while a real bug (wrong term, missing factor,
# off-by-one) shows up at O(1e-2) or larger. The absolute part is scaled by
# the tensor's magnitude, atol = 1e-5 * max(1, max|ref|): an element's
# rounding error comes from sums involving the tensor's *large* entries, so
# elements that nearly cancel to ~0 carry an absolute error proportional to
# the tensor's scale, not to their own size; a fixed atol would flag them for
# large tensors and be meaninglessly loose for tiny ones.
RTOL, ATOL = 1e-4, 1e-5


def compare(ref, got):
    """Return (exact, approx_default, maxdiff, ok) for float tensors of equal numel."""
    ref, got = ref.detach().double(), got.detach().double().reshape(ref.shape)
    exact = bool(torch.equal(ref, got))
    approx = bool(torch.allclose(got, ref))
    maxdiff = (got - ref).abs().max().item() if ref.numel() else 0.0
    scale = max(1.0, ref.abs().max().item()) if ref.numel() else 1.0
    ok = bool(torch.allclose(got, ref, rtol=RTOL, atol=ATOL * scale))
    return exact, approx, maxdiff, ok


def same_shape(a, b):
    """Shapes agree; a one-element scalar may be [] or [1] on either side."""
    a, b = list(a), list(b)
    return a == b or (a in ([], [1]) and b in ([], [1]))


def alias_key(key, ns, assigned, got):
    """The trainer's key for the same tensor under another assigned name, or key."""
    kind, _, base = key.partition(".")
    if kind not in ("act", "grad") or not isinstance(ns.get(base), torch.Tensor):
        return key
    for other in assigned:
        if other != base and ns.get(other) is ns[base] and f"{kind}.{other}" in got:
            return f"{kind}.{other}"
    return key


def check(spec, ns, assigned, got, require_intermediates):
    """Print the table; return (total, failed)."""
    param_names = [n for n, _, _ in spec["params"]]
    # a forward line may bind a param's name again (W = W * 2): grad.W is the
    # param's, compared above; the forward version is the trainer's W_l<line>
    inter = [n for n in float_intermediates(ns, assigned) if n not in param_names]
    rows = [("loss", ns["loss"], True)]
    rows += [(f"grad.{n}", ref_grad(ns["__params__"][n]), True) for n in param_names]
    rows += [(f"grad.{n}", ref_grad(ns[n]), require_intermediates) for n in inter]
    rows += [(f"act.{n}", ns[n], False) for n in assigned if isinstance(ns[n], torch.Tensor)]
    known = {r[0] for r in rows}
    for key in got:  # act./grad. of other names the trainer chose to write
        base = key.split(".", 1)[1] if "." in key else None
        if key not in known and key.startswith(("act.", "grad.")) and isinstance(ns.get(base), torch.Tensor):
            rows.append((key, ns[base] if key.startswith("act.") else ref_grad(ns[base]), False))
            known.add(key)
    total = failed = 0
    for key, ref, required in rows:
        if key not in got:
            # `hprev = ht` binds a second name to the same tensor: the trainer
            # writes it once, under the name ninjac kept (ht)
            alias = alias_key(key, ns, assigned, got)
            if alias != key:
                got = {**got, key: got[alias]}
        if key not in got:
            if required:
                total += 1
                failed += 1
                print(f"{key:15s} | MISSING from trainer output")
            continue
        total += 1
        g = got[key]
        problem = None
        if not same_shape(g.shape, ref.shape):
            problem = f"shape mismatch: trainer {list(g.shape)} vs pytorch {list(ref.shape)}"
        elif (key == "loss" or key.startswith("grad.")) and g.dtype != torch.float32:
            problem = f"dtype {st.dtype_name(g)}, expected F32"
        if problem:
            failed += 1
            print(f"{key:15s} | {problem}")
            continue
        exact, approx, maxdiff, ok = compare(ref, g)
        failed += not ok
        print(f"{key:15s} | exact: {str(exact):5s} | approximate: {str(approx):5s} | "
              f"maxdiff: {maxdiff:g}{'' if ok else '  <-- FAIL'}")
    for key in sorted(set(got) - known):
        print(f"note: trainer wrote unexpected tensor '{key}' (not compared)")
    return total, failed


# ------------------------------------------------------------------------ main

def parse_defines(items):
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise SpecError(f"-D expects name=value, got '{item}'")
        try:
            out[name.strip()] = int(value)
        except ValueError:
            raise SpecError(f"-D {name}: value must be an integer, got '{value}'")
    return out


def load_spec(path, defines):
    with open(path) as f:
        return parse_spec(f.read(), parse_defines(defines), name=path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spec", required=True)
    ap.add_argument("--trainer", required=True)
    ap.add_argument("-D", dest="defines", action="append", default=[], metavar="name=value")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--workdir")
    ap.add_argument("--require-intermediates", action="store_true")
    args = ap.parse_args(argv)

    try:
        spec = load_spec(args.spec, args.defines)
    except (OSError, SpecError) as e:
        print(f"oracle: {e}", file=sys.stderr)
        return 1
    workdir = args.workdir or tempfile.mkdtemp(prefix="ninjac-oracle-")
    os.makedirs(workdir, exist_ok=True)
    ppath, bpath, gpath = (os.path.join(workdir, f) for f in
                           ("P.safetensors", "B.safetensors", "G.safetensors"))
    params, inputs = make_data(spec, args.seed)
    meta = {"spec": args.spec, "seed": str(args.seed)}
    st.write(ppath, params, meta)
    st.write(bpath, inputs, meta)

    def done(rc):
        if rc == 0 and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        elif rc:
            print(f"oracle: files kept in {workdir}", file=sys.stderr)
        return rc

    cmd = [args.trainer, "grads", "--params", ppath, "--inputs", bpath, "--out", gpath]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        print(f"oracle: cannot run trainer: {e}", file=sys.stderr)
        return done(1)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        print(f"oracle: trainer failed (exit {proc.returncode}): {' '.join(cmd)}", file=sys.stderr)
        return done(1)
    try:
        got, _ = st.read(gpath)
        ns, assigned = run_forward(spec, params, inputs, name=args.spec)
    except (OSError, st.SafetensorsError, SpecError) as e:
        print(f"oracle: {e}", file=sys.stderr)
        return done(1)

    print(f"oracle: {args.spec}, seed {args.seed}, inputs {'I64' if args.seed % 2 == 0 else 'I32'}"
          + "".join(f", -D {d}" for d in args.defines))
    if "loss" in got:
        print(f"loss: trainer {got['loss'].reshape(-1)[0].item():.6f}, "
              f"pytorch {ns['loss'].item():.6f}")
    total, failed = check(spec, ns, assigned, got, args.require_intermediates)
    print(f"oracle: {total} tensors, {total - failed} passed, {failed} failed")
    return done(1 if failed else 0)


if __name__ == "__main__":
    sys.exit(main())
