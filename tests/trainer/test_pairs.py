#!/usr/bin/python3
"""Lecture 1's pairs layout: a spec with inputs xs: int[n], ys: int[n]
(tests/trainer/bigram_pairs.ninja) trains on pairs of consecutive
characters of '.' + word + '.'.

Cases (--case):
  data     the pairs of each split are lecture 1's: as many as its loop
           (`chs = ['.'] + list(w) + ['.']; zip(chs, chs[1:])`) makes over
           the notebook's split (random.seed(42) shuffle, 80/10/10), 228146
           over all of names.txt as the lecture counts, and the same pairs:
           `eval` of the init's W gives the mean cross-entropy Python
           computes over those pairs in double (EVAL_TOL: float rounding of
           the trainer's float softmax; one wrong pair in a thousand moves
           it by more).
  train    SGD (lr 10, then 1 from step 20000; 40000 steps) from the
           randn init (loss ~3.76 as in the lecture) reaches the bigram's
           best: the train loss can never be below the counting model's
           (the maximum-likelihood bigram, which Python computes from the
           training pairs) and must end within NEAR of it.
  sample   context of one character: a W whose row i puts all the
           probability on character i + 1 samples the alphabet
           "abc...z" (only if the context is the last character drawn),
           and a trained checkpoint samples the names asked for.
  refuse   (--other TRAINER of tests/trainer/no_layout.ninja) a spec whose
           inputs fit no layout is refused by train, eval and sample with
           the layouts named; nothing is written.
"""
import math
import os
import re
import sys

from common import Checker, Tensor, parser, read, run, train, workdir, write

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "oracle"))
import words  # noqa: E402  (the notebook's split, standard library only)

LECTURE_PAIRS = 228146   # makemore part 1: the number of bigrams in names.txt
EVAL_TOL = 1e-4
NEAR = 0.02


def splits(path):
    """The notebook's split of the words, and the vocabulary (stoi)."""
    (train, val, test), stoi = words.split(path)
    return {"train": train, "val": val, "test": test}, stoi


def pairs(words, stoi):
    """Lecture 1's loop."""
    out = []
    for w in words:
        chs = ["."] + list(w) + ["."]
        for ch1, ch2 in zip(chs, chs[1:]):
            out.append((stoi[ch1], stoi[ch2]))
    return out


def mean_nll(W, V, ps):
    """Mean cross-entropy of softmax(W[x]) at y, in double."""
    rows = {}
    total = 0.0
    for x, y in ps:
        if x not in rows:
            r = W[x * V:(x + 1) * V]
            m = max(r)
            rows[x] = (r, m + math.log(sum(math.exp(v - m) for v in r)))
        r, lse = rows[x]
        total += lse - r[y]
    return total / len(ps)


def eval_losses(out):
    return {k: (float(v), int(n)) for k, v, n in re.findall(r"^(train|val|test)\s+loss\s+([0-9.]+)\s+\((\d+) examples\)",
                                                          out, re.M)}


def main():
    p = parser(__doc__)
    p.add_argument("--trainer", required=True)
    p.add_argument("--other", help="the trainer of no_layout.ninja (case refuse)")
    p.add_argument("--case", required=True, choices=["data", "train", "sample", "refuse"])
    a = p.parse_args()
    d = workdir(a.workdir)
    c = Checker(f"pairs.{a.case}")
    T = a.trainer
    path = lambda n: os.path.join(d, n)  # noqa: E731

    if a.case == "data":
        sp, stoi = splits(a.data)
        want = {k: pairs(ws, stoi) for k, ws in sp.items()}
        total = sum(len(v) for v in want.values())
        c.ok(total == LECTURE_PAIRS, f"Python's loop makes {LECTURE_PAIRS} pairs of names.txt, as lecture 1 counts",
             f"{total}")
        r = run([T, "init", "--seed", "5", "--out", path("p.st")])
        r2 = run([T, "eval", "--load", path("p.st"), "--data", a.data])
        if c.ok(r.rc == 0 and r2.rc == 0, "init and eval", f"{r}\n{r2}"):
            got = eval_losses(r2.out)
            W = read(path("p.st"))[0]["W"]
            V = W.shape[1]
            for k in ("train", "val", "test"):
                loss, n = got.get(k, (None, None))
                c.ok(n == len(want[k]), f"{k}: {len(want[k])} pairs, as Python's loop makes", f"trainer: {n}")
                ref = mean_nll(W.values(), V, want[k])
                c.ok(loss is not None and abs(loss - ref) <= EVAL_TOL,
                     f"{k}: eval loss {loss} is the mean cross-entropy of Python's pairs {ref:.6f}",
                     f"|diff| {abs(loss - ref) if loss is not None else None}; tolerance {EVAL_TOL}")

    elif a.case == "train":
        sp, stoi = splits(a.data)
        tr = pairs(sp["train"], stoi)
        count, ctx = {}, {}
        for x, y in tr:
            count[x, y] = count.get((x, y), 0) + 1
            ctx[x] = ctx.get(x, 0) + 1
        best = -sum(math.log(count[x, y] / ctx[x]) for x, y in tr) / len(tr)
        r = train(T, d, path("ck.st"), 40000, "--lr", "10", "--lr-decay-to", "1", "--lr-decay-step", "20000",
                  "--checkpoint-every", "0", log=path("loss.csv"), data=a.data)
        if c.ok(r.rc == 0, "40000 SGD steps", str(r)):
            first = float(open(path("loss.csv")).read().splitlines()[1].split(",")[1])
            c.ok(first > 3.3, f"the first step's loss {first:.4f} is the randn init's (lecture 1: 3.76)")
            losses = {k: float(v) for k, v in re.findall(r"^(train|val)\s+loss\s+([0-9.]+)$", r.out, re.M)}
            tl = losses.get("train")
            c.ok(tl is not None and best - 1e-4 <= tl <= best + NEAR,
                 f"train loss {tl} is within {NEAR} above the counting model's {best:.4f} (and not below it)")
            print(f"val loss {losses.get('val')}")

    elif a.case == "sample":
        r = run([T, "init", "--out", path("p.st")])
        tensors, meta = read(path("p.st"))
        V = tensors["W"].shape[0]
        W = [(100.0 if j == (i + 1) % V else 0.0) for i in range(V) for j in range(V)]
        write(path("alphabet.st"), {"W": Tensor.of("F32", [V, V], W)}, meta)
        r = run([T, "sample", "--load", path("alphabet.st"), "-n", "3", "--data", a.data])
        c.ok(r.rc == 0 and r.out.splitlines() == ["abcdefghijklmnopqrstuvwxyz"] * 3,
             "W[i] -> i + 1 samples the alphabet: the context is the last character", str(r))
        r = train(T, d, path("ck.st"), 5000, "--lr", "10", "--checkpoint-every", "0", log=path("loss.csv"),
                  data=a.data)
        r2 = run([T, "sample", "--load", path("ck.st"), "-n", "20", "--data", a.data])
        names = r2.out.splitlines()
        c.ok(r.rc == 0 and r2.rc == 0 and len(names) == 20 and all(re.fullmatch(r"[a-z]*", n) for n in names),
             "a trained checkpoint samples 20 names", f"{r}\n{r2}")
        print("\n".join(names))

    elif a.case == "refuse":
        for args in (["train", "--data", a.data, "--save", path("x.st"), "--log", path("x.csv"), "--plot", ""],
                     ["eval", "--load", path("p.st"), "--data", a.data],
                     ["sample", "--load", path("p.st"), "--data", a.data]):
            r = run([a.other, "init", "--out", path("p.st")])
            before = sorted(os.listdir(d))
            r = run([a.other] + args)
            c.ok(r.rc == 1 and "fit none of the trainer's data layouts" in r.err and "xs: int[n], ys: int[n]" in r.err
                 and "x1: int[4] < 27, x2: int[4] < 27, y: int[4] < 27" in r.err and sorted(os.listdir(d)) == before,
                 f"{args[0]}: a spec with inputs of no layout is refused, nothing written", str(r))
    c.finish()


if __name__ == "__main__":
    main()
