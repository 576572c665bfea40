#!/usr/bin/python3
"""The trainer's default run is the notebook's exercise 4 run: PyTorch,
running the notebook's own cells for the same number of steps, must agree.

Usage:
    /usr/bin/python3 tests/oracle/test_notebook_run.py --trainer build/mlp_bn_fused \\
        --data data/names.txt [--steps 20000] [--workdir DIR]

PyTorch side, as the notebook writes it: random.seed(42) shuffle and the
80/10/10 split; g = torch.Generator().manual_seed(2147483647) for C, W1, b1,
W2, b2 and for every minibatch (torch.randint); bngain and bnbias from
torch's default generator, here a new torch.Generator() as the trainer
seeds it; loss.backward() and p.data += -lr * p.grad with lr 0.1, then 0.01
from step 100000; then BatchNorm calibrated over the whole training split
and F.cross_entropy over train and val.

Checks: the trainer's init equals PyTorch's bit for bit; every step's loss
in the trainer's CSV log agrees with PyTorch's within LOSS_TOL (only float
rounding separates the two runs, so a wrong minibatch, learning rate or
gradient shows up at once as a difference of 1e-2 or more); the printed
train and val losses agree within EVAL_TOL. Exits 1 on any failure.
"""
import argparse
import os
import sys
import tempfile

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import notebook  # noqa: E402
import runs  # noqa: E402

LOSS_TOL = 1e-4
EVAL_TOL = 5e-4
N_HIDDEN, BATCH = 200, 32


def notebook_run(steps, train, val, vocab_size):
    Xtr, Ytr = train
    parameters, g = notebook.init(N_HIDDEN, vocab_size)
    C, W1, b1, W2, b2, bngain, bnbias = parameters
    init = {k: v.clone() for k, v in zip(("C", "W1", "b1", "W2", "b2", "bngain", "bnbias"), parameters)}
    for p in parameters:
        p.requires_grad = True
    lossi = []
    for i in range(steps):
        ix = torch.randint(0, Xtr.shape[0], (BATCH,), generator=g)
        Xb, Yb = Xtr[ix], Ytr[ix]
        emb = C[Xb]
        embcat = emb.view(emb.shape[0], -1)
        hprebn = embcat @ W1 + b1
        bnmean = hprebn.mean(0, keepdim=True)
        bnvar = hprebn.var(0, keepdim=True, unbiased=True)
        bnvar_inv = (bnvar + 1e-5) ** -0.5
        bnraw = (hprebn - bnmean) * bnvar_inv
        hpreact = bngain * bnraw + bnbias
        h = torch.tanh(hpreact)
        logits = h @ W2 + b2
        loss = F.cross_entropy(logits, Yb)
        for p in parameters:
            p.grad = None
        loss.backward()
        lr = 0.1 if i < 100000 else 0.01
        for p in parameters:
            p.data += -lr * p.grad
        lossi.append(loss.item())
    with torch.no_grad():
        hpre = C[Xtr].view(Xtr.shape[0], -1) @ W1 + b1
        bnmean, bnvar = hpre.mean(0, keepdim=True), hpre.var(0, keepdim=True, unbiased=True)
        evals = {}
        for split, (x, y) in (("train", train), ("val", val)):
            hpreact = bngain * (C[x].view(x.shape[0], -1) @ W1 + b1 - bnmean) * (bnvar + 1e-5) ** -0.5 + bnbias
            evals[split] = F.cross_entropy(torch.tanh(hpreact) @ W2 + b2, y).item()
    return init, lossi, evals


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trainer", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--workdir")
    args = ap.parse_args()
    torch.set_num_threads(1)
    work = args.workdir or tempfile.mkdtemp(prefix="ninjac-notebook-")
    os.makedirs(work, exist_ok=True)
    init_path, ours, ours_eval = runs.trainer_run(args.trainer, work, args.steps, args.data)

    (train, val, _), vocab_size = notebook.data(args.data)
    init, lossi, evals = notebook_run(args.steps, train, val, vocab_size)

    failures = runs.compare(init_path, init, ours, lossi, ours_eval, evals, LOSS_TOL, EVAL_TOL)
    print("same run as PyTorch's" if not failures else f"{failures} check(s) failed; files in {work}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
