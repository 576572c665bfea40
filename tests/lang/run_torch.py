#!/usr/bin/python3
"""Run a spec's forward pass under PyTorch as one Python block; report the loss.

Usage:
    /usr/bin/python3 tests/lang/run_torch.py [--seed S] [-D name=value ...] SPEC.ninja...

For each spec:
  1. Its declarations are parsed by tests/oracle/oracle.py's parse_spec (dims
     with -D overrides, inputs, params).
  2. Every other line of the file is kept where it is (declaration lines become
     blank lines, so line numbers stay the spec's) and the whole text is
     executed as ONE Python block: `for` loops, reassignment, `+=`, lists,
     tuple unpacking work as in Python.
  3. Params are made as their INIT says, at init (unlike the oracle, constant
     inits are not perturbed): randn(generator=g)/rand(generator=g) draw from
     torch.Generator().manual_seed(S), randn()/rand() from torch's default
     generator seeded with S, in declaration order; zeros()/ones() are
     constants; the rest of the expression is evaluated as Python with the
     dims in scope. Inputs are uniform random ints in [0, bound).
  4. The namespace holds torch, F (torch.nn.functional), math, the dims, the
     params (float32 leaves with requires_grad) and the inputs (int64).
  5. `loss` must be a finite scalar tensor; loss.backward() must run and give
     every param a gradient (a param the loss does not reach is a spec bug).

Prints one row per spec: name, loss at init, params, forward lines. Exit
status: 0 if every spec passes, 1 if any fails, 77 if torch is missing.
"""
import argparse
import math
import os
import re
import sys
import warnings

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print("run_torch: PyTorch is not installed; skipped", file=sys.stderr)
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "oracle"))
import oracle  # noqa: E402  (parse_spec, parse_defines, SpecError)

# makemore.py's F.tanh/F.sigmoid are the author's; torch only warns about them
warnings.filterwarnings("ignore", message=r"nn\.functional\.\w+ is deprecated")

RE_DECL = re.compile(r"(dim|input|param)\s+\w+\s*[:=]")


def forward_block(text):
    """The spec's text with every declaration blanked out (line numbers kept)."""
    lines = text.splitlines()
    out, depth, in_decl = [], 0, False
    for line in lines:
        code = oracle._strip_comment(line)
        if not in_decl and RE_DECL.match(code):
            in_decl, depth = True, 0
        if in_decl:
            depth += sum(code.count(c) for c in "([{") - sum(code.count(c) for c in ")]}")
            out.append("")
            if depth <= 0:
                in_decl = False
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def make_param(init, shape, dims, gen):
    """Evaluate a param's INIT at the param's shape (no perturbation)."""
    def draw(fn):
        def f(*_a, generator=None, **_k):
            return fn(shape, generator=gen if generator is not None else None)
        return f

    env = dict(dims, randn=draw(torch.randn), rand=draw(torch.rand),
               zeros=lambda *a, **k: torch.zeros(shape), ones=lambda *a, **k: torch.ones(shape))
    # `generator=g` names the spec's seeded generator: any non-None stands for it
    env.update({g: True for g in re.findall(r"generator\s*=\s*(\w+)", init)})
    value = eval(init, {"__builtins__": {}}, env)  # noqa: S307 (our own spec)
    value = torch.broadcast_to(torch.as_tensor(value, dtype=torch.float32), shape).clone()
    return value.float().requires_grad_(True)


def load(path, defines):
    """Return (text, parsed declarations)."""
    with open(path) as f:
        text = f.read()
    return text, oracle.parse_spec(text, dict(defines), name=path)


def init_params(path, spec, seed):
    torch.manual_seed(seed)                      # randn()/rand(): the default generator
    gen = torch.Generator().manual_seed(seed)    # randn(generator=g)
    params = {}
    for name, shape, init in spec["params"]:
        try:
            params[name] = make_param(init, shape, spec["dims"], gen)
        except Exception as e:
            raise oracle.SpecError(f"{path}: param {name}: init '{init}' failed: {type(e).__name__}: {e}")
    return params


def random_inputs(spec, seed):
    igen = torch.Generator().manual_seed(seed + 1)
    return {n: torch.randint(0, bound, shape, generator=igen) for n, shape, bound in spec["inputs"]}


def run_forward(path, text, spec, params, inputs):
    """Execute the forward block, backward the loss; return (loss, namespace)."""
    ns = {"torch": torch, "F": F, "math": math, **spec["dims"], **params,
          **{n: v.clone() for n, v in inputs.items()}}
    block = forward_block(text)
    try:
        exec(compile(block, path, "exec"), ns)  # noqa: S102 (our own spec)
    except Exception as e:
        tb = e.__traceback__
        line = None
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == path:
                line = tb.tb_lineno
            tb = tb.tb_next
        if isinstance(e, SyntaxError):
            line = e.lineno
        src = text.splitlines()[line - 1].strip() if line else ""
        raise oracle.SpecError(f"{path}:{line}: forward failed: {type(e).__name__}: {e}\n  {src}")
    loss = ns.get("loss")
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1 or not loss.is_floating_point():
        raise oracle.SpecError(f"{path}: the forward must assign a scalar float tensor 'loss'")
    if not math.isfinite(loss.item()):
        raise oracle.SpecError(f"{path}: loss is {loss.item()} at init")
    loss.backward()
    unreached = [n for n, p in params.items() if p.grad is None]
    if unreached:
        raise oracle.SpecError(f"{path}: the loss does not depend on param(s) {', '.join(unreached)}")
    return loss, ns


def run_spec(path, seed, defines):
    """Return (loss, nparams, nlines); raises oracle.SpecError on any failure."""
    text, spec = load(path, defines)
    params = init_params(path, spec, seed)
    loss, _ = run_forward(path, text, spec, params, random_inputs(spec, seed))
    nlines = sum(1 for ln in forward_block(text).splitlines() if oracle._strip_comment(ln).strip())
    return loss.item(), sum(p.numel() for p in params.values()), nlines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("specs", nargs="+")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("-D", dest="defines", action="append", default=[], metavar="name=value")
    args = ap.parse_args(argv)
    try:
        defines = oracle.parse_defines(args.defines)
    except oracle.SpecError as e:
        print(f"run_torch: {e}", file=sys.stderr)
        return 1
    failed = 0
    print(f"{'spec':18s} {'loss at init':>12s} {'params':>9s} {'lines':>5s}")
    for path in args.specs:
        name = os.path.splitext(os.path.basename(path))[0]
        try:
            loss, nparams, nlines = run_spec(path, args.seed, dict(defines))
        except (OSError, oracle.SpecError) as e:
            failed += 1
            print(f"{name:18s} FAIL: {e}")
            continue
        print(f"{name:18s} {loss:12.4f} {nparams:9d} {nlines:5d}")
    print(f"run_torch: {len(args.specs)} specs, {failed} failed (seed {args.seed})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
