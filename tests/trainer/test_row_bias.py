#!/usr/bin/python3
"""Inference broadcasts a [1, k] param over any number of rows, also when
the model was compiled for a training batch of one row (row_bias.ninja,
-D n=1: there the param's dim and the batch dim are both of size 1).

Trains a few steps, then `eval --split val` must print the loss PyTorch
computes from the checkpoint over the whole val split (22655 rows, in
chunks far larger than one row)."""
import re

from common import Checker, parser, run, train, workdir
from torchref import notebook_splits, torch, torch_tensors

LOSS_TOL = 1e-4   # eval prints 4 decimals; float32 chunk sums add ~1e-6


def main():
    p = parser(__doc__)
    p.add_argument("--trainer", required=True)
    a = p.parse_args()
    d = workdir(a.workdir)
    c = Checker("row_bias")
    ck = f"{d}/ck.st"
    r = train(a.trainer, d, ck, 300, "--checkpoint-every", "0", data=a.data)
    c.ok(r.rc == 0, "train 300 steps with a batch of one row", str(r))
    r = run([a.trainer, "eval", "--load", ck, "--split", "val", "--data", a.data])
    m = re.search(r"^val\s+loss\s+([0-9.]+)", r.out, re.M)
    c.ok(r.rc == 0 and m, "eval --split val prints a loss", str(r))
    if m:
        P, _ = torch_tensors(ck)
        _, _, Xdev, Ydev, _, _ = notebook_splits(a.data)
        emb = P["C"].double()[Xdev]
        logits = emb.view(emb.shape[0], -1) @ P["W"].double() + P["bias"].double()
        want = torch.nn.functional.cross_entropy(logits, Ydev).item()
        got = float(m.group(1))
        c.ok(abs(got - want) <= LOSS_TOL, f"eval's val loss {got:.4f} is PyTorch's {want:.6f} (within {LOSS_TOL})")
    c.finish()


if __name__ == "__main__":
    main()
