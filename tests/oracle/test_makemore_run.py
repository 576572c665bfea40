#!/usr/bin/python3
"""makemore.py's layout against makemore.py: the trainer of a spec whose
inputs are `idx: int[b, t]`, `targets: int[b, t]` must train as makemore.py
trains the same forward pass.

Usage:
    /usr/bin/python3 tests/oracle/test_makemore_run.py --trainer build/mm_rnn \\
        --spec specs/mm_rnn.ninja --makemore ../shared/reference/makemore.py \\
        --data data/names.txt [--steps 300] [--workdir DIR] [--report]

--report (for long runs, the README's table): the two runs' trajectories
part by more than LOSS_TOL after enough steps (rounding, amplified), so do
not stop there; print the first step past it, the largest difference, the
final train and test losses of both sides and PyTorch's wall time.

PyTorch side, as makemore.py's main does it with its defaults: torch.manual_seed(3407);
create_datasets(--data) (its torch.randperm split); the spec's params drawn
by their INIT lines from the default generator, in declaration order (the
trainer's init, which must be equal bit for bit: the generator is where the
randperm left it); InfiniteDataLoader(train_dataset, batch_size=b) (its
RandomSampler seeds its own generator from the default one); per step the
spec's forward lines run as one Python block on the batch, loss.backward(),
torch.optim.AdamW(lr 5e-4, weight_decay 0.01, betas (0.9, 0.99), eps 1e-8);
with --optim sgd, torch.optim.SGD(lr) (the trainer's --optim sgd: p -= lr * grad).

Checks: the init equals PyTorch's bit for bit; every step's loss in the
trainer's log agrees with PyTorch's within LOSS_TOL (a batch drawn in
another order is off by far more at the first step); the printed train and
test losses (whole splits, -1 targets skipped) agree within EVAL_TOL.
Exits 1 on any failure.

Why LOSS_TOL is 1e-4: as in test_adamw_run.py, the two runs differ only by
float rounding in the order of summation (measured on names.txt: at most
3.0e-6 over 300 steps with makemore's settings, 2.6e-6 with --lr 1e-2
--weight-decay 1.0; Intel Xeon, 2026-12-06), which grows slowly over a few
hundred steps.

What it can tell apart (--break makes PyTorch's side wrong on purpose):
an lr 10% high fails at step 3. Weight decay, at makemore's settings, it
cannot: Bigram's params start at zero and move by about lr per step, so
decoupled decay (p *= 1 - lr * wd, 5e-6 of p per step) changes the loss
by 9.1e-5 within 300 steps when wd is doubled, under the tolerance. So
ctest runs it a second time with --lr 1e-2 --weight-decay 1.0 on both
sides, where a doubled weight decay fails at step 3 (1.9e-4) and the
runs still agree to 2.6e-6; test_adamw_run.py checks the decay bit for
bit on lecture 2's MLP.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

try:
    import torch
except ImportError:
    print("skipped: this python3 has no torch")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "lang"))
import st  # noqa: E402
import run_torch  # noqa: E402
import vs_makemore  # noqa: E402

LOSS_TOL = 1e-4
EVAL_TOL = 5e-4
SEED = 3407  # makemore.py's default --seed


def trainer_run(trainer, work, steps, data, tag, *train_args):
    ckpt = os.path.join(work, f"{tag}.safetensors")
    log = os.path.join(work, f"{tag}.csv")
    out = subprocess.run([trainer, "train", "--steps", str(steps), *train_args, "--data", data, "--save", ckpt,
                          "--checkpoint-every", "0", "--log", log, "--plot", "", "--samples", "0"],
                         check=True, capture_output=True, text=True).stdout
    with open(log) as f:
        losses = [float(line.split(",")[1]) for line in f.read().splitlines()[1:]]
    evals = {}
    for line in out.splitlines():
        words = line.split()
        if len(words) >= 3 and words[1] == "loss" and words[0] in ("train", "test"):
            evals[words[0]] = float(words[2])
    return ckpt, losses, evals


def forward_loss(path, text, spec, params, x, y):
    (xname, _, _), (yname, _, _) = spec["inputs"]
    ns = {"torch": torch, "F": torch.nn.functional, "math": __import__("math"), **spec["dims"], **params,
          xname: x.clone(), yname: y.clone()}
    exec(compile(run_torch.forward_block(text), path, "exec"), ns)  # noqa: S102 (our own spec)
    return ns["loss"]


def split_loss(path, text, spec, params, dataset):
    """Mean over every target of the split that is not -1."""
    total, kept = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(dataset), 500):
            rows = [dataset[j] for j in range(i, min(i + 500, len(dataset)))]
            x = torch.stack([r[0] for r in rows])
            y = torch.stack([r[1] for r in rows])
            b = spec["inputs"][0][1][1]
            if x.shape[1] < b:  # the spec's rows may be longer than the data's words
                x = torch.nn.functional.pad(x, (0, b - x.shape[1]), value=0)
                y = torch.nn.functional.pad(y, (0, b - y.shape[1]), value=-1)
            n = int((y != -1).sum())
            total += forward_loss(path, text, spec, params, x, y).item() * n
            kept += n
    return total / kept


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trainer", required=True)
    ap.add_argument("--spec", required=True)
    ap.add_argument("--makemore", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--workdir")
    ap.add_argument("--lr", type=float, default=5e-4, help="both sides (makemore's default 5e-4)")
    ap.add_argument("--weight-decay", type=float, default=0.01, help="both sides (makemore's default 0.01)")
    ap.add_argument("--optim", choices=("adamw", "sgd"), default="adamw",
                    help="adamw (makemore's) or sgd: torch.optim.SGD(lr), the trainer's --optim sgd")
    ap.add_argument("--report", action="store_true",
                    help="run every step whatever the differences and report (not a check)")
    ap.add_argument("--break", dest="brk", choices=("wd", "lr"),
                    help="make PyTorch's side wrong on purpose (weight decay doubled, lr 10%% high): the test must fail")
    args = ap.parse_args()
    if not os.path.exists(args.makemore):
        print(f"skipped: {args.makemore} not found (cmake -DNINJAC_MAKEMORE_PY=PATH)")
        return 77
    torch.set_num_threads(1)
    work = args.workdir or tempfile.mkdtemp(prefix="ninjac-makemore-")
    os.makedirs(work, exist_ok=True)

    init_path, _, _ = trainer_run(args.trainer, work, 0, args.data, "init")
    optim_args = ["--optim", "sgd"] if args.optim == "sgd" else ["--weight-decay", repr(args.weight_decay)]
    _, ours, our_evals = trainer_run(args.trainer, work, args.steps, args.data, "run",
                                     "--lr", repr(args.lr), *optim_args)
    init, _ = st.read(init_path)

    mm = vs_makemore.load_makemore(args.makemore)
    text, spec = run_torch.load(args.spec, [])
    torch.manual_seed(SEED)
    with open(os.devnull, "w") as devnull:   # create_datasets prints its summary
        stdout, sys.stdout = sys.stdout, devnull
        try:
            train_set, test_set = mm.create_datasets(args.data)
        finally:
            sys.stdout = stdout
    params = {}
    for name, shape, expr in spec["params"]:
        params[name] = run_torch.make_param(expr, shape, spec["dims"], None)
    failures = 0
    for name, p in params.items():
        if not torch.equal(p.detach(), init[name]):
            print(f"init {name}: differs from PyTorch's (max |diff| {(p.detach() - init[name]).abs().max():.3g})")
            failures += 1
    for name in params:   # from here on the trainer's init: the run is what is compared
        params[name] = init[name].clone().requires_grad_(True)
    b = spec["inputs"][0][1][0]
    loader = mm.InfiniteDataLoader(train_set, batch_size=b, num_workers=0)
    lr = args.lr * (1.1 if args.brk == "lr" else 1)
    if args.optim == "sgd":
        opt = torch.optim.SGD(params.values(), lr=lr)
    else:
        opt = torch.optim.AdamW(params.values(), lr=lr, weight_decay=args.weight_decay * (2 if args.brk == "wd" else 1),
                                betas=(0.9, 0.99), eps=1e-8)
    worst, worst_step, first_past = 0.0, 0, None
    started = time.monotonic()
    for step in range(args.steps):
        x, y = loader.next()
        t = spec["inputs"][0][1][1]
        if x.shape[1] < t:
            x = torch.nn.functional.pad(x, (0, t - x.shape[1]), value=0)
            y = torch.nn.functional.pad(y, (0, t - y.shape[1]), value=-1)
        loss = forward_loss(args.spec, text, spec, params, x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        diff = abs(loss.item() - ours[step])
        if diff > worst:
            worst, worst_step = diff, step
        if diff > LOSS_TOL and first_past is None:
            first_past = step
            print(f"step {step}: loss {ours[step]:.6f}, PyTorch {loss.item():.6f}")
            if not args.report:
                failures += 1
                break
    print(f"{args.steps} steps: largest loss difference {worst:.2e} (step {worst_step}), tolerance {LOSS_TOL}")
    if args.report:
        print(f"PyTorch: {time.monotonic() - started:.1f} s for {args.steps} steps (one thread); "
              f"first step past the tolerance: {first_past}")
    for label, dataset in (("train", train_set), ("test", test_set)):
        theirs = split_loss(args.spec, text, spec, params, dataset)
        mine = our_evals.get(label)
        ok = mine is not None and abs(mine - theirs) <= EVAL_TOL
        print(f"{label} loss: trainer {mine}, PyTorch {theirs:.4f}{'' if ok else '  MISMATCH'}")
        failures += not ok and not args.report
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
