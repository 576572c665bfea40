#!/usr/bin/python3
"""lang_status.py - how far ninjac is from issue 12's target specs (tests/lang).

    tools/lang_status.py [--ninjac build/compiler/ninjac] [--markdown docs/language_gaps.md] [SPEC...]

For each spec (default: tests/lang/*.ninja and the target specs that moved
to specs/: the lectures' and makemore.py's models) it runs `ninjac --check` and
prints one row: spec, compiles yes/no, the first diagnostic (file:line:col and
message), and whether that diagnostic is located on a construct that is
really unsupported.

"Really unsupported" is decided, not assumed: CONSTRUCTS below lists the
Python/PyTorch constructs the target specs use that are candidates for
issue 12, each with
  * a detector over the spec's forward block, parsed as Python (ast), that
    finds where a spec uses the construct (line:col spans);
  * a probe: a minimal spec that uses the construct and nothing else new.
    The probe goes through `ninjac --check`; if it compiles, the construct
    works today and is not a gap.
A diagnostic is "on the gap" when its line:col falls inside a span of a
construct whose probe fails; otherwise the row names the first gap of the
spec (in file order) that the diagnostic should have pointed at.

Then the gap table: construct -> issue 12 item -> the specs that use it,
ranked by how many specs need it. Batched `@` (3-D/4-D operands) is found by
running the forward under PyTorch (tests/lang/run_torch.py) and recording
the operand ranks of every `@`. Needs the Python that has PyTorch (as tests/oracle does).
--markdown writes both tables into a Markdown file (docs/language_gaps.md).
"""
import argparse
import ast
import datetime
import glob
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "oracle"))
sys.path.insert(0, os.path.join(ROOT, "tests", "lang"))
# issue 12's target specs that compile and train, moved to specs/ (issue 13)
TRAINED_TARGETS = ["lecture1_bigram", "lecture2_mlp", "lecture3_bn", "lecture5_wavenet", "mm_bigram",
                   "mm_mlp", "mm_rnn", "mm_gru", "mm_bow", "mm_transformer"]
try:
    import oracle  # noqa: E402  (parse_spec; tests/oracle imports torch)
    from run_torch import forward_block  # noqa: E402  (declarations blanked, as run_torch.py executes a spec)
except ImportError as e:
    sys.exit(f"lang_status: needs PyTorch, as tests/oracle/oracle.py does ({e}); run it with /usr/bin/python3")


# ------------------------------------------------------------------ detectors
# Each detector gets (node, ctx) for every ast node of the forward block and
# returns a span (line, col0, end_line, end_col0) or None. ctx holds the names
# bound so far (declarations, assignments in textual order) and loop variables.

def _span(node, end=None):
    end = end or node
    return (node.lineno, node.col_offset, end.end_lineno, end.end_col_offset)


def _dotted(node):
    """'torch.tril' for torch.tril, 'F.linear' for F.linear, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def func_call(*names):
    def det(node, ctx):
        if isinstance(node, ast.Call) and _dotted(node.func) in names:
            return _span(node)
    return det


def method_call(*names, receiver_is_input=False):
    def det(node, ctx):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in names and _dotted(node.func) not in ctx["modules"]):
            if receiver_is_input and not (isinstance(node.func.value, ast.Name)
                                          and node.func.value.id in ctx["inputs"]):
                return None
            return _span(node)
    return det


def det_view_infer(node, ctx):
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("view", "reshape") and node.args
            and isinstance(node.args[0], ast.UnaryOp) and isinstance(node.args[0].op, ast.USub)
            and isinstance(node.args[0].operand, ast.Constant) and node.args[0].operand.value == 1):
        return _span(node)


def det_reassign(node, ctx):
    if isinstance(node, ast.Assign):
        for t in node.targets:
            names = t.elts if isinstance(t, ast.Tuple) else [t]
            for n in names:
                if isinstance(n, ast.Name) and n.id in ctx["bound"]:
                    return _span(n)


def det_augassign(node, ctx):
    if isinstance(node, ast.AugAssign):
        return _span(node)


def det_tuple_unpack_shape(node, ctx):
    if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Tuple):
        v = node.value
        if (isinstance(v, ast.Attribute) and v.attr == "shape") or \
           (isinstance(v, ast.Call) and isinstance(v.func, ast.Attribute) and v.func.attr == "size"):
            return _span(node)


def det_for_range(node, ctx):
    if isinstance(node, ast.For):
        return (node.lineno, node.col_offset, node.iter.end_lineno, node.iter.end_col_offset + 1)


def det_list(node, ctx):
    if isinstance(node, ast.Assign) and isinstance(node.value, ast.List):
        return _span(node.value)
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "append"):
        return _span(node)


def det_list_arg(node, ctx):
    if (isinstance(node, ast.Call) and _dotted(node.func) in ("torch.stack", "torch.cat")
            and node.args and isinstance(node.args[0], ast.Name)):
        return _span(node)


def det_slice(node, ctx):
    if isinstance(node, ast.Subscript):
        elts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if any(isinstance(e, ast.Slice) or (isinstance(e, ast.Constant) and e.value is Ellipsis)
               for e in elts):
            return _span(node)


def det_loopvar_index(node, ctx):
    if (isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Name)
            and node.slice.id in ctx["loopvars"]):
        return _span(node)


def det_computed_index(node, ctx):
    """table[t] where t is an integer tensor the forward computed (not an input as given)."""
    if (isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Name)
            and node.slice.id in ctx["int_computed"]):
        return _span(node)


def det_index_assign(node, ctx):
    if isinstance(node, ast.Assign) and any(isinstance(t, ast.Subscript) for t in node.targets):
        return _span(node)


def det_split(node, ctx):
    """q, k, v = x.split(n, dim=2): the whole statement (the unpacking is part of it)."""
    if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Attribute) and node.value.func.attr == "split"):
        return _span(node)


def det_compare(node, ctx):
    if isinstance(node, ast.Compare):
        return _span(node)


def det_float_inf(node, ctx):
    if (isinstance(node, ast.Call) and _dotted(node.func) == "float" and node.args
            and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
        return _span(node)


def det_math(node, ctx):
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "math":
        return _span(node)


def det_kw(name):
    def det(node, ctx):
        if isinstance(node, ast.keyword) and node.arg == name:
            return (node.lineno, node.col_offset, node.end_lineno, node.end_col_offset)
    return det


def det_batched_matmul(node, ctx):
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
        ranks = ctx["matmul_ranks"].get(node.lineno, [])
        if any(a > 3 or b > 2 or a < 2 or b < 2 for a, b in ranks):
            return _span(node)


# ------------------------------------------------------------------- the list
# (key, construct, issue 12 item, detector, probe). A probe is a spec body
# after PROBE_HEAD; "{TAIL}" is replaced by PROBE_TAIL. Items: the numbered
# list of `issues show 12`.
PROBE_HEAD = """dim n = 4
input X: int[n, 3] < 5
input Y: int[n] < 5
param E: [5, 6] = randn()
param W: [18, 5] = randn()
"""
PROBE_TAIL = """logits = h @ W
loss = F.cross_entropy(logits, Y)"""
E = "e = E[X]\n"
H = E + "h = e.view(e.shape[0], -1)\n"
H0 = E + "h0 = e.view(e.shape[0], -1)\n"

CONSTRUCTS = [
    ("reassign", "reassigning a name (`x = x @ W`, shadowing a param or dim)", 1, det_reassign,
     H + "h = h * 2\n{TAIL}"),  # h reassigned
    ("augassign", "augmented assignment `+=`", 1, det_augassign,
     H + "logits = h @ W\nlogits += 1\nloss = F.cross_entropy(logits, Y)"),
    ("view_infer", "`view(-1, k)` / `reshape(-1, k)` / `view(-1)` (batch inferred)", 2, det_view_infer,
     E + "h = e.view(-1, 18)\n{TAIL}"),
    ("size", "`.size()` / `.size(d)`", 2, method_call("size"),
     E + "h = e.view(e.size(0), -1)\n{TAIL}"),
    ("tuple_shape", "tuple unpacking `B, T, C = x.shape` / `= x.size()`", 2, det_tuple_unpack_shape,
     E + "B, T, C = e.shape\nh = e.view(B, T*C)\n{TAIL}"),
    ("for", "`for` loop over `range(...)`", 3, det_for_range,
     H + "for i in range(2):\n    z = h * 1\n{TAIL}"),
    ("list", "Python lists: `[]`, `.append(x)`", 3, det_list,
     H + "hs = []\nhs.append(h)\n{TAIL}"),
    ("list_arg", "`torch.stack(list, d)` / `torch.cat(list, d)` of a list variable", 3, det_list_arg,
     H + "hs = [h, h]\nlogits = torch.cat(hs, 1) @ torch.cat([W, W], 0)\nloss = F.cross_entropy(logits, Y)"),
    ("slice", "slicing `x[:, i, :]`, `bias[:, :, :T, :T]`", 4, det_slice,
     "param V: [6, 5] = randn()\n" + E + "h = e[:, 0, :]\nlogits = h @ V\nloss = F.cross_entropy(logits, Y)"),
    ("loopvar_index", "indexing a tensor by a loop variable (stacked params `W[i]`)", 4, det_loopvar_index,
     "param S: [2, 18, 5] = randn()\n" + H + "for i in range(2):\n    h2 = h @ S[i]\nlogits = h2\nloss = F.cross_entropy(logits, Y)"),
    ("arange", "`torch.arange(n)` / `torch.arange(0, t, dtype=torch.long)`", 5, func_call("torch.arange"),
     H + "logits = h @ W\nprobs = F.softmax(logits, 1)\nloss = -probs[torch.arange(n), Y].log().mean()"),
    ("computed_index", "indexing a table with a computed integer tensor (`wpe[pos]`)", 5, det_computed_index,
     "pos = torch.arange(0, 3)\npe = E[pos]\n" + E + "h = (e + pe).view(e.shape[0], -1)\n{TAIL}"),
    ("one_hot", "`F.one_hot(x, num_classes=k)`", 5, func_call("F.one_hot"),
     "param V: [5, 5] = randn()\nxenc = F.one_hot(Y, num_classes=5).float()\nlogits = xenc @ V\nloss = F.cross_entropy(logits, Y)"),
    ("float", "`.float()`", 5, method_call("float"),
     E + "h = e.view(e.shape[0], -1).float()\n{TAIL}"),
    ("roll", "`torch.roll(idx, 1, 1)`", 5, func_call("torch.roll"),
     "Xr = torch.roll(X, 1, 1)\ne = E[Xr]\nh = e.view(e.shape[0], -1)\n{TAIL}"),
    ("index_assign", "index assignment into an integer tensor (`idx[:, 0] = k`)", 5, det_index_assign,
     "X[:, 0] = 4\n" + H + "{TAIL}"),
    ("squeeze", "`.squeeze(d)`", 6, method_call("squeeze"),
     E + "h = e.view(e.shape[0], 1, 18).squeeze(1)\n{TAIL}"),
    ("unsqueeze", "`.unsqueeze(d)`", 6, method_call("unsqueeze"),
     H + "hu = h.unsqueeze(1)\nlogits = hu.view(hu.shape[0], -1) @ W\nloss = F.cross_entropy(logits, Y)"),
    ("transpose", "`.transpose(a, b)`", 6, method_call("transpose"),
     E + "et = e.transpose(1, 2)\nh = et.reshape(et.shape[0], -1)\n{TAIL}"),
    ("contiguous", "`.contiguous()`", 6, method_call("contiguous"),
     E + "h = e.contiguous().view(e.shape[0], -1)\n{TAIL}"),
    ("expand", "`.expand(...)`", 6, method_call("expand"),
     "param s: [1, 18] = zeros()\n" + H0 + "h = h0 + s.expand((h0.shape[0], -1))\n{TAIL}"),
    ("split", "`.split(k, dim)` with tuple unpacking", 6, det_split,
     H + "a, b = h.split(9, dim=1)\nlogits = torch.cat([a, b], 1) @ W\nloss = F.cross_entropy(logits, Y)"),
    ("batched_matmul", "batched `@` of 3-D/4-D tensors (3-D @ 3-D, 4-D @ 4-D)", 6, det_batched_matmul,
     "param S: [1, 6, 6] = randn()\n" + E + "e2 = e @ S\nh = e2.view(e2.shape[0], -1)\n{TAIL}"),
    ("compare", "comparisons (`== 0`, `>`) giving a mask", 7, det_compare,
     H + "m = h > 0\nlogits = (h * m) @ W\nloss = F.cross_entropy(logits, Y)"),
    ("masked_fill", "`.masked_fill(mask, v)`", 7, method_call("masked_fill"),
     "param M: [1, 5] = zeros()\n" + H + "logits = (h @ W).masked_fill(M == 0, -1e9)\nloss = F.cross_entropy(logits, Y)"),
    ("float_inf", "`float('-inf')`", 7, det_float_inf,
     H + "ninf = float('-inf')\n{TAIL}"),
    ("tril", "`torch.tril(...)`", 7, func_call("torch.tril"),
     "param V: [5, 5] = randn()\n" + H + "logits = h @ W @ torch.tril(V)\nloss = F.cross_entropy(logits, Y)"),
    ("ones", "`torch.ones(...)` in the forward pass", 7, func_call("torch.ones"),
     H + "logits = h @ W + torch.ones(5)\nloss = F.cross_entropy(logits, Y)"),
    ("zeros", "`torch.zeros(...)` in the forward pass", 7, func_call("torch.zeros"),
     H + "logits = h @ W + torch.zeros(5)\nloss = F.cross_entropy(logits, Y)"),
    ("ignore_index", "`F.cross_entropy(..., ignore_index=-1)`", 8, det_kw("ignore_index"),
     H + "logits = h @ W\nloss = F.cross_entropy(logits, Y, ignore_index=-1)"),
    ("int_method", "methods on integer inputs (`targets.view(-1)`)", 8,
     method_call("view", "reshape", receiver_is_input=True),
     H + "logits = h @ W\nloss = F.cross_entropy(logits, Y.view(-1))"),
    ("layer_norm", "`F.layer_norm(x, (n,), w, b, eps)`", 9, func_call("F.layer_norm"),
     "param g: [18] = ones()\nparam b: [18] = zeros()\n" + H0 + "h = F.layer_norm(h0, (18,), g, b, 1e-5)\n{TAIL}"),
    ("pow", "`torch.pow(x, 3.0)`", 9, func_call("torch.pow"),
     H0 + "h = torch.pow(h0, 3.0)\n{TAIL}"),
    ("math", "`math.sqrt`, `math.pi`", 9, det_math,
     H0 + "h = h0 * math.sqrt(2.0 / math.pi)\n{TAIL}"),
    ("std", "`.std(dim, keepdim)`", 9, method_call("std"),
     H0 + "h = h0 / h0.std(0, keepdim=True)\n{TAIL}"),
    ("linear", "`F.linear(x, w, b)`", 9, func_call("F.linear"),
     "param L: [5, 18] = randn()\n" + H + "logits = F.linear(h, L)\nloss = F.cross_entropy(logits, Y)"),
    ("F_act", "`F.tanh` / `F.sigmoid`", 9, func_call("F.tanh", "F.sigmoid"),
     H0 + "h = F.sigmoid(F.tanh(h0))\n{TAIL}"),
    ("mean_tuple", "`.mean((0, 1))` / `.var((0, 1))` over a 3-D tensor", None,
     lambda node, ctx: (_span(node) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and node.func.attr in ("mean", "var") and node.args
                        and isinstance(node.args[0], ast.Tuple) else None),
     E + "e2 = (e - e.mean((0,1), keepdim=True)) / e.var((0,1), keepdim=True)\nh = e2.view(e2.shape[0], -1)\n{TAIL}"),
]


# ------------------------------------------------------------------ analysis

def uses(path, text, spec, matmul_ranks):
    """Return {key: [spans]} of the constructs the spec's forward uses."""
    tree = ast.parse(forward_block(text), filename=path)
    ctx = {"bound": set(spec["dims"]) | {n for n, _, _ in spec["inputs"]} | {n for n, _, _ in spec["params"]},
           "inputs": {n for n, _, _ in spec["inputs"]}, "loopvars": set(), "int_computed": set(),
           "modules": {"torch", "F", "math"}, "matmul_ranks": matmul_ranks}
    found = {}

    def names_assigned(stmt):
        out = []
        if isinstance(stmt, (ast.Assign, ast.AugAssign)):
            for t in (stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]):
                out += [e.id for e in (t.elts if isinstance(t, ast.Tuple) else [t]) if isinstance(e, ast.Name)]
        return out

    def int_computed(stmt):
        """Names stmt binds to an integer tensor the forward computes: arange, roll."""
        out = []
        for n in names_assigned(stmt):
            v = stmt.value
            if isinstance(v, ast.Call) and (_dotted(v.func) in ("torch.arange", "torch.roll")
                                            or (isinstance(v.func, ast.Attribute) and v.func.attr == "unsqueeze"
                                                and isinstance(v.func.value, ast.Call)
                                                and _dotted(v.func.value.func) == "torch.arange")):
                out.append(n)
        return out

    def visit_stmt(stmt):
        if isinstance(stmt, ast.For):
            # from the second trip on, the body sees what its later lines computed
            for s in ast.walk(stmt):
                if isinstance(s, ast.stmt):
                    ctx["int_computed"].update(int_computed(s))
        for node in ast.walk(stmt) if not isinstance(stmt, ast.For) else [stmt, *ast.walk(stmt.target), *ast.walk(stmt.iter)]:
            for key, _, _, det, _ in CONSTRUCTS:
                span = det(node, ctx)
                if span:
                    found.setdefault(key, []).append(span)
        if isinstance(stmt, ast.For):
            ctx["loopvars"] |= {stmt.target.id} if isinstance(stmt.target, ast.Name) else set()
            for s in stmt.body:
                visit_stmt(s)
            return
        ctx["bound"].update(names_assigned(stmt))
        ctx["int_computed"].update(int_computed(stmt))
    for stmt in tree.body:
        visit_stmt(stmt)
    return found


def matmul_ranks_of(path, text, spec):
    """{line: [(rank of left, rank of right)]} of every `@` the forward runs (torch)."""
    try:
        import torch
        import run_torch
    except ImportError:
        return None
    ranks = {}
    orig = torch.Tensor.__matmul__

    def mm(a, b):
        f = sys._getframe(1)
        if f.f_code.co_filename == path:
            ranks.setdefault(f.f_lineno, []).append((a.dim(), b.dim()))
        return orig(a, b)
    torch.Tensor.__matmul__ = mm
    try:
        params = run_torch.init_params(path, spec, 1)
        run_torch.run_forward(path, text, spec, params, run_torch.random_inputs(spec, 1))
    except Exception:
        return None
    finally:
        torch.Tensor.__matmul__ = orig
    return ranks


def run_check(ninjac, path):
    p = subprocess.run([ninjac, "--check", path], capture_output=True, text=True)
    errors = [(int(m[2]), int(m[3]), m[4]) for line in p.stderr.splitlines()
              if (m := re.match(r"(.*?):(\d+):(\d+): error: (.*)", line))]
    return p.returncode == 0, (errors[0] if errors else None), errors


def probe_status(ninjac, tmp):
    status = {}
    for key, _, _, _, body in CONSTRUCTS:
        path = os.path.join(tmp, f"probe_{key}.ninja")
        lines = body.replace("{TAIL}", PROBE_TAIL).split("\n")
        decls = [ln for ln in lines if ln.startswith("param ")]
        rest = [ln for ln in lines if not ln.startswith("param ")]
        with open(path, "w") as f:
            f.write(PROBE_HEAD + "\n".join(decls + rest) + "\n")
        ok, first, _ = run_check(ninjac, path)
        where = ""
        if not ok:
            # where the probe fails: on its own construct, or on another one it needs
            with open(path) as f:
                text = f.read()
            spec = oracle.parse_spec(text, name=path)
            found = uses(path, text, spec, matmul_ranks_of(path, text, spec) or {})
            line, col = (first[0], first[1] - 1) if first else (0, 0)
            hits = [k for k, spans in found.items() for sp in spans if inside(sp, line, col)]
            # off every construct: a misplaced diagnostic, or a probe that is
            # wrong; lang_status cannot tell which, a person reads the row
            where = "own" if key in hits else (f"needs {hits[0]}" if hits else
                                               f"off: at {line}:{col + 1}: {first and first[2]}")
        status[key] = (ok, first, where)
    return status


def inside(span, line, col0):
    l0, c0, l1, c1 = span
    return (l0, c0) <= (line, col0) < (l1, c1) or (l0 == l1 == line and c0 <= col0 <= c1)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("specs", nargs="*")
    ap.add_argument("--ninjac", default=os.path.join(ROOT, "build", "compiler", "ninjac"))
    ap.add_argument("--markdown", help="write the tables into this Markdown file")
    args = ap.parse_args(argv)
    specs = args.specs or sorted(glob.glob(os.path.join(ROOT, "tests", "lang", "*.ninja")) +
                                 [os.path.join(ROOT, "specs", s + ".ninja") for s in TRAINED_TARGETS])
    if not os.access(args.ninjac, os.X_OK):
        print(f"lang_status: no ninjac at {args.ninjac} (--ninjac PATH)", file=sys.stderr)
        return 2
    label = {k: lab for k, lab, _, _, _ in CONSTRUCTS}
    item = {k: it for k, _, it, _, _ in CONSTRUCTS}
    with tempfile.TemporaryDirectory(prefix="lang_status-") as tmp:
        probes = probe_status(args.ninjac, tmp)
    gap = {k for k, (ok, _, _) in probes.items() if not ok}
    for k, (_, _, w) in probes.items():
        if w.startswith("off"):
            print(f"lang_status: probe {k}: the error lands off the construct ({w})", file=sys.stderr)

    rows, users, no_torch = [], {k: [] for k in label}, False
    for path in specs:
        name = os.path.splitext(os.path.basename(path))[0]
        rel = os.path.relpath(path, ROOT)
        with open(path) as f:
            text = f.read()
        spec = oracle.parse_spec(text, name=path)
        ranks = matmul_ranks_of(path, text, spec)
        no_torch |= ranks is None
        found = uses(path, text, spec, ranks or {})
        for k in found:
            users[k].append(name)
        ok, first, errors = run_check(args.ninjac, path)
        gaps_here = sorted((s, k) for k, spans in found.items() if k in gap for s in spans)
        if ok:
            rows.append((name, "yes", "", "", str(len({k for _, k in gaps_here}))))
            continue
        if first is None:
            rows.append((name, "no", "(no located error)", "no", str(len({k for _, k in gaps_here}))))
            continue
        line, col, msg = first
        on = [k for s, k in gaps_here if inside(s, line, col - 1)]
        diag = f"{rel}:{line}:{col}: {msg}"
        if on:
            verdict = f"yes ({label[on[0]]})"
            # gaps that come before it and got no diagnostic of their own first
            earlier = [(sp, k) for sp, k in gaps_here
                       if (sp[0], sp[1]) < (line, col - 1) and not inside(sp, line, col - 1)
                       and not any(inside(sp, el, ec - 1) for el, ec, _ in errors)]
            if earlier:
                (l0, c0, _, _), k = earlier[0]
                verdict += (f"; but {label[k]} at {l0}:{c0 + 1}, before it, gets no diagnostic"
                            f" ({len(errors)} error{'s' if len(errors) > 1 else ''} in all)")
        elif gaps_here:
            (l0, c0, _, _), k = gaps_here[0]
            verdict = f"no: the first gap is {label[k]} at {l0}:{c0 + 1}"
        else:
            verdict = "no gap of the list on this spec"
        rows.append((name, "no", diag, verdict, str(len({k for _, k in gaps_here}))))

    ranked = sorted((k for k in label if users[k]),
                    key=lambda k: (k not in gap, -len(users[k]), item[k] or 99, k))
    out = []
    out.append("| spec | compiles | first diagnostic | on the unsupported construct? | gaps used |")
    out.append("|---|---|---|---|---|")
    for r in rows:
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |")
    out.append("")
    out.append("| rank | construct | issue 12 item | works today | specs (count) |")
    out.append("|---|---|---|---|---|")
    for i, k in enumerate(ranked, 1):
        it = str(item[k]) if item[k] else "none"
        works = "yes" if k not in gap else ("no" if probes[k][2] == "own" else
                                            f"no ({probes[k][2].replace('needs ', 'probe stops at ')})"
                                            .replace("(off: at ", "(the probe's error lands off it, at ")[:110])
        out.append(f"| {i if k in gap else '-'} | {label[k]} | {it} | {works} | "
                   f"{len(users[k])}: {', '.join(users[k])} |")
    if no_torch:
        out.append("")
        out.append("(A forward failed under PyTorch: batched `@` was not detected in every spec.)")
    text_out = "\n".join(out)
    print(text_out)
    if args.markdown:
        write_markdown(args.markdown, text_out, args.ninjac)
    return 0


def write_markdown(path, tables, ninjac):
    """Replace the generated part of the Markdown file (between the markers)."""
    begin, end = "<!-- lang_status begin -->", "<!-- lang_status end -->"
    try:
        with open(path) as f:
            doc = f.read()
    except FileNotFoundError:
        doc = f"{begin}\n{end}\n"
    if begin not in doc or end not in doc:
        doc += f"\n{begin}\n{end}\n"
    head, rest = doc.split(begin, 1)
    _, tail = rest.split(end, 1)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = (f"{begin}\nWritten by `tools/lang_status.py --markdown {os.path.relpath(path, ROOT)}` "
            f"on {stamp}.\n\n{tables}\n{end}")
    with open(path, "w") as f:
        f.write(head + body + tail)


if __name__ == "__main__":
    sys.exit(main())
