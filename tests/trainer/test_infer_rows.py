#!/usr/bin/python3
"""Inference runs a model on chunks of any number of rows: the batch dim
of batched @ (attention's [B, nh, T, T] @ [B, nh, T, hs], BoW's
[B, T, T] @ [B, T, C]) and of .split's parts must run to `rows`, not to the
training batch size (attn_words.ninja: makemore.py's layout, batch 8).

Trains a few steps, then `eval --split test` must print the loss that
PyTorch computes with the spec's own forward lines (tests/oracle/oracle.py
runs them), in float64 from the checkpoint, over the whole test split at
once: makemore.py's split of the words (torch.manual_seed(3407), randperm,
the last min(1000, 10%) for testing) and its rows (padded with 0, targets
-1 after the end token). Then `sample` must draw from its [b, t, vocab]
logits."""
import os
import re
import sys

from common import Checker, parser, run, train, workdir
from torchref import torch, torch_tensors

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "oracle"))
import oracle  # noqa: E402

LOSS_TOL = 1e-4   # eval prints 4 decimals; float32 chunk sums add ~1e-6


def makemore_test_rows(path, block_size):
    """(idx, targets) of makemore.py's test split, rows block_size long."""
    words = [w.strip() for w in open(path).read().splitlines()]
    words = [w for w in words if w]
    stoi = {ch: i + 1 for i, ch in enumerate(sorted(set("".join(words))))}
    torch.manual_seed(3407)
    rp = torch.randperm(len(words)).tolist()
    test = [words[i] for i in rp[-min(1000, int(len(words) * 0.1)):]]
    x = torch.zeros(len(test), block_size, dtype=torch.long)
    y = torch.full((len(test), block_size), -1, dtype=torch.long)
    for r, w in enumerate(test):
        ix = torch.tensor([stoi[ch] for ch in w], dtype=torch.long)
        x[r, 1:1 + len(ix)] = ix
        y[r, :len(ix)] = ix
        y[r, len(ix)] = 0
    return x, y


def main():
    p = parser(__doc__)
    p.add_argument("--trainer", required=True)
    p.add_argument("--model-spec", required=True)
    a = p.parse_args()
    d = workdir(a.workdir)
    c = Checker("infer_rows")
    ck = f"{d}/ck.st"
    r = train(a.trainer, d, ck, 30, "--checkpoint-every", "0", data=a.data)
    c.ok(r.rc == 0, "train 30 steps", str(r))
    r = run([a.trainer, "eval", "--load", ck, "--split", "test", "--data", a.data])
    m = re.search(r"^test\s+loss\s+([0-9.]+)", r.out, re.M)
    c.ok(r.rc == 0 and m, "eval --split test prints a loss", str(r))
    if m:
        spec = oracle.load_spec(a.model_spec, [])
        P, _ = torch_tensors(ck)
        params = {n: P[n] for n, _, _ in spec["params"]}
        idx, targets = makemore_test_rows(a.data, spec["dims"]["block_size"])
        names = [n for n, _, _ in spec["inputs"]]
        ns, _ = oracle.run_forward(spec, params, dict(zip(names, (idx, targets))), dtype=torch.float64)
        want = ns["loss"].item()
        got = float(m.group(1))
        c.ok(abs(got - want) <= LOSS_TOL,
             f"eval's test loss {got:.4f} over {len(idx)} rows is PyTorch's {want:.6f} (within {LOSS_TOL})")
    # sampling reads the [b, t, vocab] logits at each position (makemore.py's generate())
    r = run([a.trainer, "sample", "--load", ck, "-n", "7", "--data", a.data])
    c.ok(r.rc == 0 and len(r.out.splitlines()) == 7, "sample -n 7 prints 7 names from [b, t, vocab] logits", str(r))
    c.finish()


if __name__ == "__main__":
    main()
