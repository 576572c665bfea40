#!/usr/bin/python3
"""Check tests/lang/deep_bn.ninja and specs/lecture5_wavenet.ninja against the lectures' own classes.

Usage:
    /usr/bin/python3 tests/lang/vs_lectures.py --reference DIR [--seed S]

DIR holds the notebooks as scripts (part3_bn.py, part5_cnn1.py; `### cell N`
between cells). For each of the two specs:
  1. Execute the author's cells that define the layer classes and build the
     model with its init (lecture 3: cell 13, the Linear/BatchNorm1d/Tanh
     classes and the six-layer `layers`; lecture 5: cells 7-9, the classes,
     torch.manual_seed(42) and the hierarchical `model`), with vocab_size and
     block_size from the spec's dims.
  2. Copy the author's tensors into the spec's params (the mapping below:
     which layer's weight/gamma/beta is which param; deep_bn's middle layers
     stacked along a leading dim).
  3. Run the author's forward on a random batch, as the training cell writes
     it (lecture 3 cell 14: `emb = C[Xb]; x = emb.view(emb.shape[0], -1);
     for layer in layers: x = layer(x); loss = F.cross_entropy(x, Yb)`;
     lecture 5 cell 10: `logits = model(Xb); loss = F.cross_entropy(logits, Yb)`),
     and the spec's forward block (run_torch.py) on the same params and batch;
     backward both. Loss and every param's gradient must agree to float32
     rounding.
Exit status: 0 if both agree, 1 otherwise, 77 if torch or DIR is missing.
"""
import argparse
import contextlib
import io
import os
import re
import sys

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print("vs_lectures: PyTorch is not installed; skipped", file=sys.stderr)
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run_torch  # noqa: E402
from run_torch import oracle  # noqa: E402


def cells(path):
    """{cell number: source} of a notebook written as a script (IPython magics dropped)."""
    out, cur = {}, None
    with open(path) as f:
        for line in f:
            if m := re.match(r"### cell (\d+)", line):
                cur = int(m[1])
                out[cur] = ""
            elif cur is not None and not line.lstrip().startswith("%"):
                out[cur] += line
    return out


def deep_bn(ref, d):
    ns = {"torch": torch, "vocab_size": d["vocab_size"], "block_size": d["block_size"]}
    with contextlib.redirect_stdout(io.StringIO()):  # the cell prints the param count
        exec(cells(os.path.join(ref, "part3_bn.py"))[13], ns)  # noqa: S102 (the author's cell)
    assert ns["n_embd"] == d["n_embd"] and ns["n_hidden"] == d["n_hidden"], "sizes differ from the cell's"
    L = ns["layers"]
    mapping = {"C": ns["C"], "W1": L[0].weight, "gamma1": L[1].gamma, "beta1": L[1].beta,
               "Wh": [L[3 * (i + 1)].weight for i in range(4)],
               "gammah": [L[3 * (i + 1) + 1].gamma for i in range(4)],
               "betah": [L[3 * (i + 1) + 1].beta for i in range(4)],
               "W6": L[15].weight, "gamma6": L[16].gamma, "beta6": L[16].beta}

    def forward(Xb, Yb):
        C = ns["C"]
        emb = C[Xb] # embed the characters into vectors
        x = emb.view(emb.shape[0], -1) # concatenate the vectors
        for layer in L:
            x = layer(x)
        return F.cross_entropy(x, Yb) # loss function
    return mapping, forward, ns["parameters"]


def wavenet(ref, d):
    c = cells(os.path.join(ref, "part5_cnn1.py"))
    ns = {"torch": torch, "vocab_size": d["vocab_size"], "block_size": d["block_size"]}
    with contextlib.redirect_stdout(io.StringIO()):  # cell 9 prints the param count
        for n in (7, 8, 9):
            exec(c[n], ns)  # noqa: S102 (the author's cells)
    assert ns["n_embd"] == d["n_embd"] and ns["n_hidden"] == d["n_hidden"], "sizes differ from the cell's"
    L = ns["model"].layers
    mapping = {"C": L[0].weight,
               "W1": L[2].weight, "gamma1": L[3].gamma, "beta1": L[3].beta,
               "W2": L[6].weight, "gamma2": L[7].gamma, "beta2": L[7].beta,
               "W3": L[10].weight, "gamma3": L[11].gamma, "beta3": L[11].beta,
               "W4": L[13].weight, "b4": L[13].bias}
    model = ns["model"]

    def forward(Xb, Yb):
        logits = model(Xb)
        return F.cross_entropy(logits, Yb) # loss function
    return mapping, forward, ns["parameters"]


CHECKS = {"deep_bn": deep_bn, "wavenet": wavenet}
# where each spec is: tests/lang, or specs/ once it trains (issue 13)
PATHS = {"deep_bn": os.path.join(HERE, "deep_bn.ninja"),
         "wavenet": os.path.join(HERE, "..", "..", "specs", "lecture5_wavenet.ninja")}


def check(name, ref, seed):
    path = os.path.normpath(PATHS[name])
    text, spec = run_torch.load(path, {})
    torch.manual_seed(seed)
    mapping, forward, author_params = CHECKS[name](ref, spec["dims"])
    for p in author_params:
        p.requires_grad = True
    shapes = {n: s for n, s, _ in spec["params"]}
    if set(mapping) != set(shapes):
        raise oracle.SpecError(f"{path}: params {sorted(shapes)} vs mapped {sorted(mapping)}")
    params = {}
    for n, src in mapping.items():
        t = torch.stack([s.detach() for s in src]) if isinstance(src, list) else src.detach()
        if list(t.shape) != shapes[n]:
            raise oracle.SpecError(f"{path}: param {n} is {shapes[n]}, the author's {list(t.shape)}")
        params[n] = t.clone().requires_grad_(True)
    batch = run_torch.random_inputs(spec, seed)
    (xn, _, _), (yn, _, _) = spec["inputs"]
    ref_loss = forward(batch[xn].clone(), batch[yn].clone())
    ref_loss.backward()
    loss, _ = run_torch.run_forward(path, text, spec, params, batch)
    ok = torch.allclose(loss.detach(), ref_loss.detach(), rtol=1e-5, atol=0)
    bad = ""
    for n, src in mapping.items():
        g = torch.stack([s.grad for s in src]) if isinstance(src, list) else src.grad
        scale = max(1.0, g.abs().max().item())
        if not torch.allclose(params[n].grad, g, rtol=1e-5, atol=1e-6 * scale):
            ok = False
            bad += f" grad.{n} differs by {(params[n].grad - g).abs().max().item():g};"
    print(f"{name:10s} author {ref_loss.item():.6f}  spec {loss.item():.6f}  "
          f"{'agree' if ok else 'DIFFER:' + bad}")
    return ok


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reference", required=True)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args(argv)
    if not all(os.path.exists(os.path.join(args.reference, f)) for f in ("part3_bn.py", "part5_cnn1.py")):
        print(f"vs_lectures: no part3_bn.py/part5_cnn1.py in {args.reference}; skipped", file=sys.stderr)
        return 77
    failed = 0
    for name in CHECKS:
        try:
            failed += not check(name, args.reference, args.seed)
        except (OSError, AssertionError, oracle.SpecError) as e:
            print(f"{name:10s} FAIL: {e}")
            failed += 1
    print(f"vs_lectures: {len(CHECKS)} specs, {failed} failed (seed {args.seed})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
