#!/usr/bin/python3
"""--optim adamw is torch.optim.AdamW: PyTorch, training the same spec from
the same init on the same minibatches with torch.optim.AdamW, must give the
same loss at every step.

Usage:
    /usr/bin/python3 tests/oracle/test_adamw_run.py --trainer build/mlp \\
        --data data/names.txt [--steps 5000] [--workdir DIR] [--lr 5e-4 ...]

The spec is specs/mlp.ninja at its default dims (lecture 2's MLP, n_hidden
200: no batch statistics, so that nothing but the optimizer is new here;
tests/oracle/test_notebook_run.py covers the BatchNorm spec with SGD).
PyTorch side: the notebook's data (random.seed(42) shuffle, 80/10/10
split); the spec's init lines computed with g =
torch.Generator().manual_seed(2147483647), which the minibatches continue
(torch.randint); F.cross_entropy; loss.backward(); torch.optim.AdamW with
makemore.py's settings (lr 5e-4, weight_decay 0.01, betas (0.9, 0.99), eps
1e-8), or the ones given, on every param, as makemore.py has it.

Checks: the first EXACT_STEPS updates equal torch.optim.AdamW's bit for
bit, params and both moments, when torch is given the trainer's own
gradients (`grads` on the batch of the step, then `train --resume` one
step further); the trainer's init equals PyTorch's bit for bit; every step's loss
in the trainer's log agrees with PyTorch's within LOSS_TOL; the printed
train and val losses agree within EVAL_TOL. Exits 1 on any failure.

Why LOSS_TOL is 1e-4: the two runs differ only by float rounding (the
trainer's matmuls sum in another order than OpenBLAS under PyTorch; the
AdamW update itself rounds as torch's kernels do, see runtime/optim.c), so
their losses drift apart by rounding errors that grow slowly; the SGD
oracle holds the same 1e-4 over 20000 steps. The nearest wrong optimizers
are far outside it: with --selftest this script runs PyTorch against
itself with L2 weight decay (torch.optim.Adam, weight decay coupled into
the gradient) instead of AdamW's decoupled one, and without bias
correction, and reports how far each strays from AdamW within the same
steps; both must exceed LOSS_TOL many times over, or the tolerance could
not tell them apart.
"""
import argparse
import os
import subprocess
import sys
import tempfile

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print("skipped: this python3 has no torch")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import notebook  # noqa: E402
import runs  # noqa: E402
import st  # noqa: E402

EXACT_STEPS = 5
LOSS_TOL = 1e-4
EVAL_TOL = 5e-4
N_EMBD, N_HIDDEN, BATCH, BLOCK = 10, 200, 32, 3
NAMES = ("C", "W1", "b1", "W2", "b2")


def spec_init(vocab_size, seed=2147483647):
    """specs/mlp.ninja's param lines, as PyTorch computes them."""
    g = torch.Generator().manual_seed(seed)
    fan_in = N_EMBD * BLOCK
    C = torch.randn((vocab_size, N_EMBD), generator=g)
    W1 = torch.randn((fan_in, N_HIDDEN), generator=g) * (5 / 3) / ((fan_in) ** 0.5)   # two tensor ops, as written
    b1 = torch.randn(N_HIDDEN, generator=g) * 0.01
    W2 = torch.randn((N_HIDDEN, vocab_size), generator=g) * 0.01
    b2 = torch.randn(vocab_size, generator=g) * 0
    return [C, W1, b1, W2, b2], g


def forward(params, X, Y):
    C, W1, b1, W2, b2 = params
    emb = C[X]
    h = torch.tanh(emb.view(emb.shape[0], -1) @ W1 + b1)
    return F.cross_entropy(h @ W2 + b2, Y)


class NoBiasCorrection(torch.optim.Optimizer):
    """Adam's moments with decoupled weight decay but no bias correction:
    one of the wrong optimizers of --selftest."""

    def __init__(self, params, lr, betas, eps, weight_decay):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                s = self.state[p]
                if not s:
                    s["m"], s["v"] = torch.zeros_like(p), torch.zeros_like(p)
                p.mul_(1 - group["lr"] * group["weight_decay"])
                s["m"].mul_(b1).add_(p.grad, alpha=1 - b1)
                s["v"].mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                p.addcdiv_(s["m"], s["v"].sqrt().add_(group["eps"]), value=-group["lr"])


def torch_run(steps, train, val, vocab_size, hyper, optimizer=torch.optim.AdamW):
    Xtr, Ytr = train
    params, g = spec_init(vocab_size)
    init = {k: v.clone() for k, v in zip(NAMES, params)}
    for p in params:
        p.requires_grad = True
    opt = optimizer(params, **hyper)
    lossi = []
    for _ in range(steps):
        ix = torch.randint(0, Xtr.shape[0], (BATCH,), generator=g)
        loss = forward(params, Xtr[ix], Ytr[ix])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        lossi.append(loss.item())
    with torch.no_grad():
        evals = {split: forward(params, x, y).item() for split, (x, y) in (("train", train), ("val", val))}
    return init, lossi, evals


def torch_fuses():
    """Whether PyTorch runs its AVX2 or AVX-512 kernels, whose multiply-adds
    runtime/optim.c copies; its kernels for CPUs without AVX2 (or under
    ATEN_CPU_CAPABILITY=default) fuse none, and round in the last bit
    otherwise."""
    usage = [line for line in torch.__config__.show().splitlines() if "CPU capability usage" in line]
    return bool(usage) and ("AVX2" in usage[0] or "AVX512" in usage[0])


def exact_steps(args, work, train, vocab_size, hyper):
    """Runs the trainer EXACT_STEPS steps, one at a time, beside
    torch.optim.AdamW stepping with the trainer's gradients; returns the
    number of tensors that differ in any bit."""
    if not torch_fuses():
        print("PyTorch runs its kernels without FMA here: the bit-for-bit steps are not checked")
        return 0
    Xtr, Ytr = train
    _, g = spec_init(vocab_size)                      # the minibatches continue g
    p = lambda n: os.path.join(work, n)               # noqa: E731
    subprocess.run([args.trainer, "init", "--out", p("exact_init.st")], check=True)
    got, _ = st.read(p("exact_init.st"))
    params = [got[k].clone() for k in NAMES]
    opt = torch.optim.AdamW(params, **hyper)
    current, differ = p("exact_init.st"), 0
    for step in range(EXACT_STEPS):
        ix = torch.randint(0, Xtr.shape[0], (BATCH,), generator=g)
        st.write(p("batch.st"), {"Xb": Xtr[ix], "Yb": Ytr[ix]})
        subprocess.run([args.trainer, "grads", "--params", current, "--inputs", p("batch.st"),
                        "--out", p("grads.st")], check=True, capture_output=True)
        grads, _ = st.read(p("grads.st"))
        for name, t in zip(NAMES, params):
            t.grad = grads["grad." + name]
        opt.step()
        train_args = ["--resume", current] if step else ["--optim", "adamw", *hyper_args(args)]
        subprocess.run([args.trainer, "train", "--steps", str(step + 1), "--data", args.data, *train_args,
                        "--save", p("exact.st"), "--checkpoint-every", "0", "--log", p("exact.csv"), "--plot", "",
                        "--samples", "0"], check=True, capture_output=True)
        current = p("exact.st")
        ours, _ = st.read(current)
        for name, t in zip(NAMES, params):
            state = opt.state[t]
            for label, want, have in ((name, t, ours[name]),
                                      ("exp_avg." + name, state["exp_avg"], ours["adamw.exp_avg." + name]),
                                      ("exp_avg_sq." + name, state["exp_avg_sq"], ours["adamw.exp_avg_sq." + name])):
                if not torch.equal(want, have):
                    bad = (want != have).sum().item()
                    print(f"step {step}: {label}: {bad} of {want.numel()} elements differ from torch.optim.AdamW's "
                          f"(max |diff| {(want - have).abs().max().item():.3e})")
                    differ += 1
    print(f"{EXACT_STEPS} steps on the trainer's gradients: params and moments "
          f"{'bit-identical to torch.optim.AdamW' if not differ else 'DIFFER'}")
    return differ


def hyper_args(args):
    return ["--lr", repr(args.lr), "--weight-decay", repr(args.weight_decay), "--betas", args.betas,
            "--eps", repr(args.eps)]


def max_diff(a, b):
    diffs = [abs(x - y) for x, y in zip(a, b)]
    worst = max(range(len(diffs)), key=diffs.__getitem__)
    return diffs[worst], worst


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trainer")
    ap.add_argument("--data", required=True)
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--workdir")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--betas", default="0.9,0.99")
    ap.add_argument("--eps", type=float, default=1e-8)
    ap.add_argument("--selftest", action="store_true", help="how far the wrong optimizers stray (no trainer)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    b1, b2 = (float(x) for x in args.betas.split(","))
    hyper = dict(lr=args.lr, betas=(b1, b2), eps=args.eps, weight_decay=args.weight_decay)
    (train, val, _), vocab_size = notebook.data(args.data)
    init, lossi, evals = torch_run(args.steps, train, val, vocab_size, hyper)

    if args.selftest:
        failures = 0
        for name, optimizer in (("L2 weight decay (torch.optim.Adam)", torch.optim.Adam),
                                ("no bias correction", NoBiasCorrection)):
            _, wrong, _ = torch_run(args.steps, train, val, vocab_size, hyper, optimizer)
            d, at = max_diff(wrong, lossi)
            print(f"{name}: max |loss - AdamW's| = {d:.2e} at step {at}; LOSS_TOL {LOSS_TOL}")
            failures += d < 10 * LOSS_TOL
        return 1 if failures else 0

    work = args.workdir or tempfile.mkdtemp(prefix="ninjac-adamw-")
    os.makedirs(work, exist_ok=True)
    failures = exact_steps(args, work, train, vocab_size, hyper)
    init_path, ours, ours_eval = runs.trainer_run(args.trainer, work, args.steps, args.data, "--optim", "adamw",
                                                  *hyper_args(args))
    failures += runs.compare(init_path, init, ours, lossi, ours_eval, evals, LOSS_TOL, EVAL_TOL)
    print("same run as PyTorch's" if not failures else f"{failures} check(s) failed; files in {work}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
