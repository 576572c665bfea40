#!/usr/bin/python3
"""torch_run.py - PyTorch replays a trainer's SGD run of a spec, for the
README's table of full runs (issue 13).

    /usr/bin/python3 tools/torch_run.py --trainer build/lecture3_bn --spec specs/lecture3_bn.ninja \\
        [--steps 200000] [--lr 0.1] [--lr-decay-step 100000] [--lr-decay-to 0.01] [--data data/names.txt]
        [-D name=value] [--log CSV]

The notebooks' layouts only (context windows X: int[n, block], Y: int[n];
lecture 1's pairs xs: int[n], ys: int[n]) and SGD, as the lectures train:
the init is the trainer's (`init`, checked against the spec's INIT lines
drawn here: g = torch.Generator().manual_seed(2147483647) for
`generator=g`, a new torch.Generator() for the rest; a spec that names no
generator draws everything from g), the minibatches continue g with
torch.randint, every step runs the spec's forward lines
as one Python block, loss.backward(), p.data += -lr * p.grad. At the end,
as the trainer does, the batch statistics (each line that takes a .mean,
.var or .std over the batch dim) are computed once over the whole
training split and frozen, and train and val losses are the spec's loss
over each whole split. Prints the losses, every 10000th step's loss and
the training loop's wall time (one thread).
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "oracle"))
sys.path.insert(0, os.path.join(ROOT, "tests", "lang"))
import run_torch  # noqa: E402
import st  # noqa: E402
import words  # noqa: E402

SEED = 2147483647
RE_STAT = re.compile(r"^\s*(\w+)\s*=.*\.(mean|var|std)\(\s*(0|\(\s*0)")


def dataset(ws, stoi, block):
    X, Y = [], []
    for w in ws:
        context = [0] * block
        for ch in w + ".":
            X.append(list(context))
            Y.append(stoi[ch])
            context = context[1:] + [stoi[ch]]
    X = torch.tensor(X)
    return (X[:, 0] if block == 1 else X), torch.tensor(Y)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trainer", required=True)
    ap.add_argument("--spec", required=True)
    ap.add_argument("--data", default=os.path.join(ROOT, "data", "names.txt"))
    ap.add_argument("--steps", type=int, default=200000)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--lr-decay-step", type=int, default=100000)
    ap.add_argument("--lr-decay-to", type=float, default=0.01)
    ap.add_argument("-D", dest="defines", action="append", default=[], metavar="name=value",
                    help="a dim as the trainer was built with (ninjac -D)")
    ap.add_argument("--log", help="write every step's loss here (step,loss)")
    args = ap.parse_args()
    torch.set_num_threads(1)

    text, spec = run_torch.load(args.spec, [(k, int(v)) for k, v in (d.split("=", 1) for d in args.defines)])
    lines = run_torch.forward_block(text).splitlines()
    code = compile("\n".join(lines) + "\n", args.spec, "exec")
    (xn, xshape, _), (yn, _, _) = spec["inputs"]
    batch_dim = re.match(r"\s*input\s+\w+\s*:\s*int\s*\[\s*(\w+)",
                         next(ln for ln in text.splitlines() if ln.lstrip().startswith("input"))).group(1)
    n = xshape[0]
    block = xshape[1] if len(xshape) > 1 else 1
    (tr, va, _), stoi = words.split(args.data)
    splits = {"train": dataset(tr, stoi, block), "val": dataset(va, stoi, block)}
    Xtr, Ytr = splits["train"]

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "init.safetensors")
        subprocess.run([args.trainer, "init", "--out", path], check=True, capture_output=True)
        init, _ = st.read(path)
    # The trainer's draws (runtime/state.c, init_params_from): a spec that
    # names a generator draws those params from g and the others from a new
    # torch.Generator(); one that names none (lecture 5: torch.manual_seed,
    # then randn() and randint without a generator) draws everything from
    # the one generator seeded SEED. The minibatches continue that generator.
    g = torch.Generator().manual_seed(SEED)
    names_g = any(re.search(r"generator\s*=", expr) for _, _, expr in spec["params"])
    default = torch.Generator() if names_g else g
    params = {}
    for name, shape, expr in spec["params"]:
        uses_g = re.search(r"generator\s*=", expr) is not None
        if uses_g:
            drawn = run_torch.make_param(expr, shape, spec["dims"], g)
        else:
            state = torch.get_rng_state()
            torch.set_rng_state(default.get_state())
            drawn = run_torch.make_param(expr, shape, spec["dims"], None)
            default.set_state(torch.get_rng_state())
            torch.set_rng_state(state)
        same = torch.equal(drawn.detach(), init[name])
        print(f"init {name}: {'the same as the trainer' if same else 'DIFFERS from the trainer; using the trainer'}")
        params[name] = init[name].clone().requires_grad_(True)

    base = {"torch": torch, "F": torch.nn.functional, "math": __import__("math"), **spec["dims"]}
    lossi = []
    t0 = time.perf_counter()
    for i in range(args.steps):
        ix = torch.randint(0, Xtr.shape[0], (n,), generator=g)
        ns = dict(base, **params, **{xn: Xtr[ix], yn: Ytr[ix]})
        exec(code, ns)  # noqa: S102 (our own spec)
        loss = ns["loss"]
        for p in params.values():
            p.grad = None
        loss.backward()
        lr = args.lr if i < args.lr_decay_step else args.lr_decay_to
        with torch.no_grad():
            for p in params.values():
                p += -lr * p.grad
        if args.log:
            lossi.append(loss.item())
        if i % 10000 == 0:
            print(f"{i:7d}/{args.steps:7d}: {loss.item():.4f}", flush=True)
    elapsed = time.perf_counter() - t0
    if args.log:
        with open(args.log, "w") as f:
            f.write("step,loss\n" + "".join(f"{k},{v:.6f}\n" for k, v in enumerate(lossi)))
    print(f"trained {args.steps} steps in {elapsed:.1f} s ({args.steps / max(elapsed, 1e-9):.0f} steps/s)")

    # calibrate: the batch statistics over the whole training split, frozen
    frozen = {}
    with torch.no_grad():
        for split in ("train", "val"):
            x, y = splits[split]
            ns = dict(base, **params, **{xn: x, yn: y, batch_dim: x.shape[0]})
            for k, line in enumerate(lines):
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                m = RE_STAT.match(line)
                if m and split != "train":
                    ns[m.group(1)] = frozen[k]
                    continue
                exec(compile("\n" * k + line.strip() + "\n", args.spec, "exec"), ns)  # noqa: S102
                if m:
                    frozen[k] = ns[m.group(1)]
            print(f"{split:5s} loss {ns['loss'].item():.4f}")


if __name__ == "__main__":
    main()
