#!/usr/bin/python3
"""`init` against PyTorch: the parameters must equal, bit for bit, what
PyTorch computes for the spec's param lines.

Usage:
    /usr/bin/python3 tests/oracle/test_torch_init.py --spec S.ninja --trainer T [-D name=value ...]

For each seed, runs `T init --seed S --out P` and evaluates every param's
init expression under PyTorch, in the spec's order: randn(generator=g) and
rand(generator=g) draw from torch.Generator().manual_seed(S); a draw with no
generator comes from torch's default generator, which the trainer seeds as a
new torch.Generator() is seeded (PyTorch seeds its own at random), or with S
when the spec names no generator. Then every tensor is compared with
torch.equal. Exits 1 on any difference.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402
from oracle import SpecError, load_spec  # noqa: E402

SEEDS = (2147483647, 1, 42, 2**32 + 7)


def torch_init(spec, seed):
    named = torch.Generator().manual_seed(seed)
    names_generator = any(re.search(r"generator\s*=", init) for _, _, init in spec["params"])
    default = torch.Generator() if names_generator else torch.Generator().manual_seed(seed)
    out = {}
    for name, shape, init in spec["params"]:
        def draw(fn):
            def call(*_args, generator=None):
                return fn(shape, generator=named if generator is not None else default)
            return call

        env = dict(spec["dims"], randn=draw(torch.randn), rand=draw(torch.rand),
                   zeros=lambda: torch.zeros(shape), ones=lambda: torch.ones(shape))
        env.update({g: True for g in re.findall(r"generator\s*=\s*(\w+)", init)})
        value = eval(init, {"__builtins__": {}}, env)  # noqa: S307 (our own spec)
        out[name] = torch.broadcast_to(torch.as_tensor(value, dtype=torch.float32), shape)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spec", required=True)
    ap.add_argument("--trainer", required=True)
    ap.add_argument("-D", dest="defines", action="append", default=[], metavar="name=value")
    args = ap.parse_args()
    try:
        spec = load_spec(args.spec, args.defines)
    except (OSError, SpecError) as e:
        print(f"test_torch_init: {e}", file=sys.stderr)
        return 1
    failures = 0
    with tempfile.TemporaryDirectory(prefix="ninjac-init-") as work:
        for seed in SEEDS:
            path = os.path.join(work, f"init{seed}.safetensors")
            subprocess.run([args.trainer, "init", "--seed", str(seed), "--out", path], check=True)
            got, _ = st.read(path)
            want = torch_init(spec, seed)
            for name, ref in want.items():
                same = name in got and got[name].shape == ref.shape and torch.equal(got[name], ref)
                diff = (got[name] - ref).abs().max().item() if same is False and name in got and \
                    got[name].shape == ref.shape else float("nan")
                print(f"seed {seed:<10} {name:10s} {'exact' if same else f'DIFFERS (max {diff:.3g})'}")
                failures += not same
    print(f"{failures} of {len(SEEDS) * len(spec['params'])} tensors differ from PyTorch's")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
