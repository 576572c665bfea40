#!/usr/bin/python3
"""`grads` on a fixed batch: what it writes, and that it matches PyTorch.

Params from `init --seed 1`, a batch written with tests/oracle/st.py (Xb I64
[n, block], Yb I64 [n], seeded). `grads` must write `loss` (F32 scalar),
`grad.<param>` for every param (its shape), `act.<name>` for every name the
spec's forward lines assign (in the default mode, less the names of lines
that ninjac's rewrite rules replaced, and the names its plan keeps in
registers: with --ninjac, `ninjac -O --dump=shape` and `--dump=plan` say
which; every name left out must be one of those), and nothing else but
other `grad.<name>`s; the
loss must equal PyTorch's forward of the spec on the same batch (relative
1e-5), act.loss must be the loss, the activations and parameter gradients
must match PyTorch's float64 autograd (tolerances below). Run twice (the
second time over the first's output) and with the batch as I32: the output
files must be byte-identical.
"""
import os
import re
import shutil

from common import Checker, assigned_names, file_bytes, param_names, parser, read, run, workdir
from torchref import forward, params64, st, torch, torch_tensors

LOSS_RTOL = 1e-5
# Activations and gradients are float32 results of sums of up to 200 terms
# (float32 unit roundoff 6e-8); as a whole-tensor relative error,
# ||got - want|| / ||want||, 1e-5 leaves a margin of ~30 over what is
# observed (~3e-7) and still catches any wrong element of consequence.
TENSOR_RTOL = 1e-5


# A gradient that is mathematically zero (b1's: BatchNorm cancels any
# shift of hprebn) comes out as float32 rounding residue (~1e-8), so the
# relative error of a gradient is taken against its own norm or 1% of the
# largest parameter gradient's norm, whichever is larger.
FLOOR = 1e-2


def rel(got, want, floor=1e-30):
    return ((got - want).norm() / max(want.norm().item(), floor)).item()


def registers(ninjac, spec):
    """The forward values a -O build of spec keeps in registers only."""
    r = run([ninjac, "-O", "--dump=plan", spec])
    if r.rc != 0:
        raise SystemExit(f"ninjac --dump=plan failed: {r}")
    forward = r.out.split("backward\n")[0]
    return set(re.findall(r" (\w+) \(register\)", forward))


def rewritten_away(ninjac, spec, acts):
    """The assigned names a -O build of spec does not write: the ones on
    lines a rewrite replaced and the ones in registers; and those of them
    that are neither (which must be none)."""
    r = run([ninjac, "-O", "--dump=shape", spec])
    if r.rc != 0:
        raise SystemExit(f"ninjac --dump=shape failed: {r}")
    kept, ranges = set(), []
    for line in r.out.splitlines():
        m = re.match(r"(\d+): (\w+) \[", line)
        if m:
            kept.add(m.group(2))
            rw = re.search(r"# rewritten: \w+ from line (\d+)", line)
            if rw:
                ranges.append((int(rw.group(1)), int(m.group(1))))
    lines = assigned_lines(spec)
    in_registers = registers(ninjac, spec)
    gone = [x for x in acts if x not in kept or x in in_registers]
    stray = [x for x in gone if x not in in_registers and not any(a <= lines[x] <= b for a, b in ranges)]
    return gone, stray


def assigned_lines(spec):
    with open(spec) as f:
        return {m.group(1): i + 1 for i, line in enumerate(f)
                for m in [re.match(r"\s*(\w+)\s*=", line.split("#", 1)[0])] if m}


def main():
    p = parser(__doc__)
    p.add_argument("--trainer", required=True)
    p.add_argument("--ninjac", help="the ninjac the trainer was built with, for the names -O rewrote away")
    a = p.parse_args()
    d = workdir(a.workdir)
    c = Checker("grads")
    T = a.trainer
    path = lambda n: os.path.join(d, n)  # noqa: E731
    r = run([T, "init", "--seed", "1", "--out", path("p.st")])
    if not c.ok(r.rc == 0, "init --seed 1", str(r)):
        c.finish()
    P32, meta = torch_tensors(path("p.st"))
    model = meta["model"]
    dims = dict(kv.split("=") for kv in meta["dims"].split())
    n, block, vocab = int(dims["n"]), int(dims["block_size"]), int(dims["vocab_size"])
    g = torch.Generator().manual_seed(5)
    X = torch.randint(0, vocab, (n, block), generator=g, dtype=torch.int64)
    Y = torch.randint(0, vocab, (n,), generator=g, dtype=torch.int64)
    X[0, :] = vocab - 1  # the bounds themselves
    Y[1] = 0
    st.write(path("b.st"), {"Xb": X, "Yb": Y})
    st.write(path("b32.st"), {"Xb": X.int(), "Yb": Y.int()})

    r = run([T, "grads", "--params", path("p.st"), "--inputs", path("b.st"), "--out", path("g.st")])
    if not c.ok(r.rc == 0, "grads", str(r)):
        c.finish()
    first = file_bytes(path("g.st"))
    shutil.copy(path("g.st"), path("g_first.st"))
    r = run([T, "grads", "--params", path("p.st"), "--inputs", path("b.st"), "--out", path("g.st")])
    c.ok(r.rc == 0 and file_bytes(path("g.st")) == first, "a second run over the first's output: same bytes")
    r = run([T, "grads", "--params", path("p.st"), "--inputs", path("b32.st"), "--out", path("g32.st")])
    c.ok(r.rc == 0 and file_bytes(path("g32.st")) == first, "the batch as I32: same bytes", str(r))

    raw, gmeta = read(path("g_first.st"))
    G, _ = torch_tensors(path("g_first.st"))
    c.ok(gmeta.get("model") == model and gmeta.get("dims") == meta["dims"], "output names the model and dims",
         str(gmeta))
    c.ok("loss" in raw and raw["loss"].dtype == "F32" and raw["loss"].shape == [], "writes loss, an F32 scalar",
         str(raw.get("loss") and (raw["loss"].dtype, raw["loss"].shape)))
    params = param_names(a.spec)
    for name in params:
        k = f"grad.{name}"
        c.ok(k in raw and raw[k].dtype == "F32" and raw[k].shape == list(P32[name].shape),
             f"writes {k} F32 {list(P32[name].shape)}", str(raw.get(k) and (raw[k].dtype, raw[k].shape)))
    acts = assigned_names(a.spec)
    if a.ninjac:
        gone, stray = rewritten_away(a.ninjac, a.spec, acts)
        c.ok(not stray, f"the names -O leaves out ({len(gone)}) lie on rewritten lines or are registers",
             f"neither: {stray}")
        acts = [x for x in acts if x not in gone]
    missing = [x for x in acts if f"act.{x}" not in raw]
    c.ok(not missing, f"writes act.<name> for all {len(acts)} names the spec assigns", f"missing: {missing}")
    stray = [k for k in raw if k != "loss" and not k.startswith("grad.") and not k.startswith("act.")]
    c.ok(not stray, "nothing else", f"unexpected: {stray}")
    stray = [k for k in raw if k.startswith("act.") and k[4:] not in acts]
    c.ok(not stray, "no act.<name> the spec does not assign", f"unexpected: {stray}")

    P = {k: v.double().requires_grad_() for k, v in params64(P32).items()}
    want = forward(model, P, X, Y)
    want["loss"].backward()
    loss = G["loss"].item()
    c.ok(abs(loss - want["loss"].item()) <= LOSS_RTOL * abs(want["loss"].item()),
         f"loss {loss:.7f} equals PyTorch's {want['loss'].item():.7f} (relative {LOSS_RTOL:.0e})")
    c.ok("act.loss" in G and G["act.loss"].item() == loss, "act.loss is the loss")
    for name in acts:
        k = f"act.{name}"
        if k in G and name in want:
            w = want[name].detach()
            e = rel(G[k].double(), w) if list(G[k].shape) == list(w.shape) else float("inf")
            c.ok(e <= TENSOR_RTOL, f"{k} {list(w.shape)} matches PyTorch (relative {e:.1e})")
    floor = FLOOR * max(P[name].grad.norm().item() for name in params)
    for name in params:
        k = f"grad.{name}"
        if k in G:
            e = rel(G[k].double(), P[name].grad, floor)
            c.ok(e <= TENSOR_RTOL, f"{k} matches PyTorch autograd (relative {e:.1e})")
    c.finish()


if __name__ == "__main__":
    main()
