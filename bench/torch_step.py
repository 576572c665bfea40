#!/usr/bin/python3
"""PyTorch eager timings of the notebook's exercise-4 training step
(makemore part 4: forward with F.cross_entropy, .mean, .var; batch norm),
single-threaded (torch.set_num_threads(1), and openblas_set_num_threads(1)
on the OpenBLAS torch calls for matmuls). See bench/README.md.

  /usr/bin/python3 bench/torch_step.py step [--sizes HxN,...] [--modes manual,autograd,notebook]
                                            [--reps R] [--rep-ms MS] [--warm-ms MS] [--lr LR] [--seed S]
  /usr/bin/python3 bench/torch_step.py train [--steps N] [--data names.txt]

step: times one training step (forward + backward + SGD update) on a fixed
random batch, as bench_step does for generated code: warm-up, then R
repetitions of K steps, median per step; the parameters are restored before
every repetition; glibc's malloc is kept from returning memory to the OS
between steps (--malloc default to leave it alone, see tune_malloc). Modes:
  manual    the notebook's exercise-4 solution (dlogits from F.softmax, the
            fused batch-norm backward, ...) under torch.no_grad(), with dC
            accumulated by index_add_ (the notebook's double loop, vectorised)
  notebook  the same with the notebook's literal Python loop over Xb for dC
  autograd  the same forward, then loss.backward() and p.data += -lr * p.grad
Parameters are the notebook's init as `init --seed S` draws it, the batch is
bench_step's (the test tools' xoshiro256**), so loss0 equals the C rows'.

train: the notebook's whole exercise 4 (200000 steps with the manual backward,
lr 0.1 then 0.01, batch-norm calibration over the training set, loss of every
split), for the peak RSS of a full PyTorch run.
"""
import argparse
import ctypes
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "oracle"))
import notebook  # noqa: E402  (the notebook's data and init cells)

BLOCK, VOCAB, EMBD = 3, 27, 10
MASK = (1 << 64) - 1


# ------------------------- the test tools' generator (tests/reference/ref_rng.c)

class Rng:
    """xoshiro256** seeded through splitmix64; the same draws as tests/reference/ref_rng.c
    (the fixed batch that bench_step and bench_ref draw)."""

    def __init__(self, seed):
        x = seed & MASK
        self.s = []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & MASK
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
            self.s.append(z ^ (z >> 31))

    def next(self):
        s = self.s
        r = (((s[1] * 5) & MASK) << 7 | ((s[1] * 5) & MASK) >> 57) & MASK
        result = (r * 9) & MASK
        t = (s[1] << 17) & MASK
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = ((s[3] << 45) | (s[3] >> 19)) & MASK
        return result

    def below(self, n):
        threshold = ((1 << 64) - n) % n
        while True:
            x = self.next()
            if x >= threshold:
                return x % n


def init_params(hidden, seed):
    """The notebook's init cell with g seeded S, as `init --seed S` draws it."""
    return notebook.init(hidden, VOCAB, seed)[0]


def fixed_batch(n, seed):
    rng = Rng(seed + 1000)
    xb = [rng.below(VOCAB) for _ in range(n * BLOCK)]
    yb = [rng.below(VOCAB) for _ in range(n)]
    return torch.tensor(xb, dtype=torch.long).view(n, BLOCK), torch.tensor(yb, dtype=torch.long)


# ------------------------------------------------------------ the notebook's step

def forward(P, Xb, Yb):
    C, W1, b1, W2, b2, bngain, bnbias = P
    emb = C[Xb]  # embed the characters into vectors
    embcat = emb.view(emb.shape[0], -1)  # concatenate the vectors
    hprebn = embcat @ W1 + b1  # hidden layer pre-activation
    bnmean = hprebn.mean(0, keepdim=True)
    bnvar = hprebn.var(0, keepdim=True, unbiased=True)
    bnvar_inv = (bnvar + 1e-5) ** -0.5
    bnraw = (hprebn - bnmean) * bnvar_inv
    hpreact = bngain * bnraw + bnbias
    h = torch.tanh(hpreact)  # hidden layer
    logits = h @ W2 + b2  # output layer
    loss = F.cross_entropy(logits, Yb)  # loss function
    return emb, embcat, bnvar_inv, bnraw, h, logits, loss


def manual_step(P, Xb, Yb, lr, loop=False):
    """Exercise 4 with the notebook's manual backward; loop=True keeps its
    Python double loop for dC."""
    C, W1, b1, W2, b2, bngain, bnbias = P
    n = Xb.shape[0]
    with torch.no_grad():
        emb, embcat, bnvar_inv, bnraw, h, logits, loss = forward(P, Xb, Yb)
        for p in P:
            p.grad = None
        dlogits = F.softmax(logits, 1)
        dlogits[range(n), Yb] -= 1
        dlogits /= n
        # 2nd layer backprop
        dh = dlogits @ W2.T
        dW2 = h.T @ dlogits
        db2 = dlogits.sum(0)
        # tanh
        dhpreact = (1.0 - h**2) * dh
        # batchnorm backprop
        dbngain = (bnraw * dhpreact).sum(0, keepdim=True)
        dbnbias = dhpreact.sum(0, keepdim=True)
        dhprebn = bngain * bnvar_inv / n * (n * dhpreact - dhpreact.sum(0)
                                           - n / (n - 1) * bnraw * (dhpreact * bnraw).sum(0))
        # 1st layer
        dembcat = dhprebn @ W1.T
        dW1 = embcat.T @ dhprebn
        db1 = dhprebn.sum(0)
        # embedding
        demb = dembcat.view(emb.shape)
        dC = torch.zeros_like(C)
        if loop:
            for k in range(Xb.shape[0]):
                for j in range(Xb.shape[1]):
                    ix = Xb[k, j]
                    dC[ix] += demb[k, j]
        else:
            dC.index_add_(0, Xb.view(-1), demb.view(-1, C.shape[1]))
        grads = [dC, dW1, db1, dW2, db2, dbngain, dbnbias]
        for p, grad in zip(P, grads):
            p.data += -lr * grad
    return loss


def autograd_step(P, Xb, Yb, lr):
    loss = forward(P, Xb, Yb)[-1]
    for p in P:
        p.grad = None
    loss.backward()
    for p in P:
        p.data += -lr * p.grad
    return loss


# ------------------------------------------------------------------- threads

def single_thread():
    """torch.set_num_threads(1) covers torch's own kernels, not the OpenBLAS
    that Debian's torch calls for matmuls: that keeps its own pool (one thread
    per CPU). Like the C programs, call openblas_set_num_threads(1) on the
    OpenBLAS this process has loaded (the environment is left alone).
    Returns OpenBLAS's thread count afterwards, or 0 if none is loaded."""
    torch.set_num_threads(1)
    torch.ones(2, 2) @ torch.ones(2, 2)
    libs = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1]
            if "openblas" in path.rsplit("/", 1)[-1] and path not in libs:
                libs.append(path)
    threads = 0
    for path in libs:
        lib = ctypes.CDLL(path)
        if hasattr(lib, "openblas_set_num_threads"):
            lib.openblas_set_num_threads(1)
            threads = max(threads, lib.openblas_get_num_threads())
    return threads


def tune_malloc():
    """Keeps glibc's malloc from handing freed tensors back to the OS each step.
    With its defaults, a tensor of 128 KB or more is mmap'd or ends up at the
    top of the heap, which free() trims, so the next step page-faults it in
    again: at 256 x 200 that made a step 7x slower (7.2 ms instead of 1.0 ms),
    and how much depended on which sizes the process had run before (glibc
    raises its thresholds as it sees larger blocks). The step timings measure
    PyTorch, not that, so they pin both thresholds (M_MMAP_THRESHOLD at its
    maximum, 32 MiB on 64-bit). Returns True if glibc accepted both."""
    libc = ctypes.CDLL(None)
    if not hasattr(libc, "mallopt"):
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    return bool(libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)) and bool(libc.mallopt(M_MMAP_THRESHOLD, 32 << 20))


# ------------------------------------------------------------------- timing

def time_steps(step, reset, warm_ms, rep_ms, reps):
    """bench/bench_util.h's method: warm-up, K from the warm-up's estimate,
    R repetitions of K steps, median/min/max per step in microseconds."""
    reset()
    t0 = time.perf_counter()
    warm = 0
    while warm < 3 or (time.perf_counter() - t0) * 1e3 < warm_ms:
        step()
        warm += 1
    est = (time.perf_counter() - t0) / warm
    k = max(1, int(rep_ms * 1e-3 / est + 0.5))
    per = []
    for _ in range(reps):
        reset()
        a = time.perf_counter()
        for _ in range(k):
            step()
        per.append((time.perf_counter() - a) * 1e6 / k)
    s = sorted(per)
    med = s[len(s) // 2] if len(s) % 2 else 0.5 * (s[len(s) // 2 - 1] + s[len(s) // 2])
    return k, med, s[0], s[-1]


def cmd_step(args):
    malloc = "default"
    if args.malloc == "tuned":
        malloc = "tuned" if tune_malloc() else "default(mallopt-refused)"
    modes = args.modes.split(",")
    for m in modes:
        if m not in ("manual", "notebook", "autograd"):
            sys.exit(f"error: unknown mode '{m}'")
    params_by_h = {}
    for size in args.sizes.split(","):
        h, n = (int(v) for v in size.lower().split("x"))
        if h not in params_by_h:
            params_by_h[h] = init_params(h, args.seed)
        P0 = params_by_h[h]
        Xb, Yb = fixed_batch(n, args.seed)
        flops = 6.0 * n * h * (EMBD * BLOCK + VOCAB)   # bench_util.h's count
        for mode in modes:
            P = [p.clone().requires_grad_(mode == "autograd") for p in P0]

            def reset():
                with torch.no_grad():
                    for p, p0 in zip(P, P0):
                        p.copy_(p0)

            if mode == "autograd":
                def step():
                    autograd_step(P, Xb, Yb, args.lr)
            else:
                loop = mode == "notebook"

                def step():
                    manual_step(P, Xb, Yb, args.lr, loop)
            reset()
            with torch.no_grad():
                loss0 = forward(P, Xb, Yb)[-1].item()
            k, med, lo, hi = time_steps(step, reset, args.warm_ms, args.rep_ms, args.reps)
            print(f"RESULT what=torch mode={mode} n={n} H={h} threads={torch.get_num_threads()} "
                  f"blas_threads={args.blas_threads} malloc={malloc} "
                  f"loss0={loss0:.6f} flops={flops:.0f} gflops={flops / (med * 1e3):.3f} "
                  f"reps={args.reps} k={k} us_med={med:.3f} us_min={lo:.3f} us_max={hi:.3f} "
                  f"steps_per_s={1e6 / med:.1f}", flush=True)


# ------------------------------------------------------- the whole exercise 4

def cmd_train(args):
    ((Xtr, Ytr), (Xdev, Ydev), (Xte, Yte)), _ = notebook.data(args.data)
    n_hidden, n = 200, 32
    P, g = notebook.init(n_hidden, VOCAB)
    C, W1, b1, W2, b2, bngain, bnbias = P
    t0 = time.perf_counter()
    for i in range(args.steps):
        ix = torch.randint(0, Xtr.shape[0], (n,), generator=g)
        lr = 0.1 if i < 100000 else 0.01
        loss = manual_step(P, Xtr[ix], Ytr[ix], lr)
        if i % 10000 == 0:
            print(f"{i:7d}/{args.steps:7d}: {loss.item():.4f}", flush=True)
    train_s = time.perf_counter() - t0
    with torch.no_grad():
        hprebn = C[Xtr].view(Xtr.shape[0], -1) @ W1 + b1
        bnmean = hprebn.mean(0, keepdim=True)
        bnvar = hprebn.var(0, keepdim=True, unbiased=True)
        for name, (x, y) in (("train", (Xtr, Ytr)), ("val", (Xdev, Ydev)), ("test", (Xte, Yte))):
            hpreact = bngain * (C[x].view(x.shape[0], -1) @ W1 + b1 - bnmean) * (bnvar + 1e-5) ** -0.5 + bnbias
            logits = torch.tanh(hpreact) @ W2 + b2
            print(f"{name} {F.cross_entropy(logits, y).item():.4f}")
    print(f"RESULT what=torch_train steps={args.steps} train_s={train_s:.2f} "
          f"steps_per_s={args.steps / train_s:.1f}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    st = sub.add_parser("step")
    st.add_argument("--sizes", default="200x32", help="HxN,... (n_hidden x batch)")
    st.add_argument("--modes", default="manual,autograd")
    st.add_argument("--reps", type=int, default=15)
    st.add_argument("--rep-ms", type=float, default=100)
    st.add_argument("--warm-ms", type=float, default=300)
    st.add_argument("--lr", type=float, default=0.1)
    st.add_argument("--seed", type=int, default=1)
    st.add_argument("--malloc", choices=("tuned", "default"), default="tuned",
                    help="tuned: pin glibc's trim and mmap thresholds (see tune_malloc)")
    tr = sub.add_parser("train")
    tr.add_argument("--steps", type=int, default=200000)
    tr.add_argument("--data", default="data/names.txt")
    args = ap.parse_args()
    args.blas_threads = single_thread()
    torch.manual_seed(0)
    (cmd_step if args.cmd == "step" else cmd_train)(args)


if __name__ == "__main__":
    main()
