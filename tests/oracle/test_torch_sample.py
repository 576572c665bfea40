#!/usr/bin/python3
"""`sample` against PyTorch: the notebook's sampling cell, run on the same
checkpoint with the same seed, must print the same names.

Usage:
    /usr/bin/python3 tests/oracle/test_torch_sample.py --trainer build/mlp_bn_fused \\
        --data data/names.txt [--workdir DIR]

Trains 2000 steps (a model that spells something), then for each seed runs
`sample --load CKPT -n 20 --seed S` and, under PyTorch, the notebook's cell:
g = torch.Generator().manual_seed(S); per character the frozen BatchNorm
forward with the checkpoint's stat.bnmean (bnmeani in the atomic
spec) and stat.bnvar, probs =
F.softmax(logits, dim=1), ix = torch.multinomial(probs, 1, generator=g),
until '.'. Both draw from the same generator, so only a near tie between
two probabilities (after float rounding on either side) could separate
them; one differing name fails the test. A trainer of
tests/trainer/bigram_pairs.ninja (lecture 1's pairs) is compared with
lecture 1's sampling loop instead: a context of one character.
Then, for --temperature and --top-k, two more runs where PyTorch divides
the logits by the temperature and sets those below the k-th largest to
-inf before the softmax, as makemore.py's generate() does.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402

SEEDS = (2147483647 + 10, 1, 2)
# (seed, temperature, top_k): makemore.py's generate() options
OPTION_RUNS = ((5, 0.7, 5), (6, 1.3, 0))


def logits_to_probs(logits, temperature, top_k):
    """makemore.py's generate(): scale, crop to the top k, softmax."""
    if temperature != 1.0:
        logits = logits / temperature
    if top_k:
        v, _ = torch.topk(logits, top_k)
        logits = logits.clone()
        logits[logits < v[:, [-1]]] = -float('Inf')
    return F.softmax(logits, dim=-1)


def torch_bigram_names(t, seed, itos, count=20, temperature=1.0, top_k=0):
    """Lecture 1's sampling loop for tests/trainer/bigram_pairs.ninja (the
    row of W of the last character, softmax, multinomial), with F.softmax
    as the notebook samples."""
    W = t["W"]
    g = torch.Generator().manual_seed(seed)
    names = []
    for _ in range(count):
        out, ix = [], 0
        while True:
            probs = logits_to_probs(W[torch.tensor([ix])], temperature, top_k)
            ix = torch.multinomial(probs, num_samples=1, generator=g).item()
            if ix == 0:
                break
            out.append(ix)
        names.append("".join(itos[i] for i in out))
    return names


def torch_names(t, seed, itos, block_size=3, count=20, temperature=1.0, top_k=0):
    if "W" in t:
        return torch_bigram_names(t, seed, itos, count, temperature, top_k)
    C, W1, b1, W2, b2 = (t[k] for k in ("C", "W1", "b1", "W2", "b2"))
    bngain, bnbias, bnvar = t["bngain"], t["bnbias"], t["stat.bnvar"]
    bnmean = t["stat.bnmean"] if "stat.bnmean" in t else t["stat.bnmeani"]   # fused / atomic spec
    g = torch.Generator().manual_seed(seed)
    names = []
    for _ in range(count):
        out, context = [], [0] * block_size
        while True:
            emb = C[torch.tensor([context])]
            embcat = emb.view(emb.shape[0], -1)
            hpreact = embcat @ W1 + b1
            hpreact = bngain * (hpreact - bnmean) * (bnvar + 1e-5) ** -0.5 + bnbias
            h = torch.tanh(hpreact)
            logits = h @ W2 + b2
            probs = logits_to_probs(logits, temperature, top_k)
            ix = torch.multinomial(probs, num_samples=1, generator=g).item()
            context = context[1:] + [ix]
            if ix == 0:
                break
            out.append(ix)
        names.append("".join(itos[i] for i in out))
    return names


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trainer", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--workdir")
    args = ap.parse_args()
    torch.set_num_threads(1)
    work = args.workdir or tempfile.mkdtemp(prefix="ninjac-sample-")
    os.makedirs(work, exist_ok=True)
    ckpt = os.path.join(work, "ckpt.safetensors")
    subprocess.run([args.trainer, "train", "--steps", "2000", "--data", args.data, "--save", ckpt,
                    "--checkpoint-every", "0", "--log", os.path.join(work, "loss.csv"), "--plot", "",
                    "--samples", "0"], check=True, stdout=subprocess.DEVNULL)
    tensors, _ = st.read(ckpt)
    itos = dict(enumerate(["."] + sorted(set(open(args.data).read()) - {"\n"})))
    failures = 0
    for seed, temperature, top_k in [(s, 1.0, 0) for s in SEEDS] + list(OPTION_RUNS):
        options = [] if (temperature, top_k) == (1.0, 0) else ["--temperature", str(temperature), "--top-k", str(top_k)]
        ours = subprocess.run([args.trainer, "sample", "--load", ckpt, "-n", "20", "--seed", str(seed),
                               "--data", args.data] + options, check=True, capture_output=True,
                              text=True).stdout.split("\n")[:20]
        theirs = torch_names(tensors, seed, itos, temperature=temperature, top_k=top_k)
        same = sum(a == b for a, b in zip(ours, theirs))
        print(f"seed {seed} {' '.join(options)}: {same}/20 names equal: {' '.join(ours)}")
        if same != 20:
            print(f"  PyTorch: {' '.join(theirs)}")
        failures += same != 20
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
