#!/usr/bin/python3
"""Stand-in for a ninjac trainer, used by selftest.py to exercise oracle.py.

    fake_trainer.py --spec S [-D name=value ...] [--perturb KEY] [--no-intermediates]
                    [--flatten KEY] [--scalar-loss] [--float32] [--fail] grads --params P --inputs B --out G

Computes loss and gradients with PyTorch (in float64 by default, cast to F32,
so the results differ from the oracle's float32 run by rounding, as a C
trainer's would) and writes G like an -O0 trainer: loss (shape [1]),
grad.<param>, grad.<intermediate> and act.<intermediate>.
--perturb KEY bumps one element of tensor KEY so the oracle must fail;
--flatten KEY writes tensor KEY flattened to 1-D; --scalar-loss writes loss
with shape [] instead of [1]; --no-intermediates writes only loss and param
grads; --fail exits 3.
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oracle  # noqa: E402
import st  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", required=True)
    ap.add_argument("-D", dest="defines", action="append", default=[])
    ap.add_argument("--perturb")
    ap.add_argument("--flatten")
    ap.add_argument("--scalar-loss", action="store_true")
    ap.add_argument("--no-intermediates", action="store_true")
    ap.add_argument("--float32", action="store_true")
    ap.add_argument("--fail", action="store_true")
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("grads")
    g.add_argument("--params", required=True)
    g.add_argument("--inputs", required=True)
    g.add_argument("--out", required=True)
    args = ap.parse_args()
    if args.fail:
        print("fake_trainer: failing on purpose", file=sys.stderr)
        return 3

    spec = oracle.load_spec(args.spec, args.defines)
    params, _ = st.read(args.params)
    inputs, _ = st.read(args.inputs)
    for n, shape, _ in spec["params"]:
        assert params[n].dtype == torch.float32 and list(params[n].shape) == shape, n
    for n, shape, bound in spec["inputs"]:
        v = inputs[n]
        assert v.dtype in (torch.int32, torch.int64) and list(v.shape) == shape, n
        assert v.numel() == 0 or (0 <= v.min() and v.max() < bound), n
    dtype = torch.float32 if args.float32 else torch.float64
    ns, assigned = oracle.run_forward(spec, params, inputs, dtype=dtype)

    out = {"loss": ns["loss"].detach().reshape([] if args.scalar_loss else [1])}
    out.update({f"grad.{n}": oracle.ref_grad(ns[n]) for n, _, _ in spec["params"]})
    if not args.no_intermediates:
        for n in oracle.float_intermediates(ns, assigned):
            out[f"grad.{n}"] = oracle.ref_grad(ns[n])
            out[f"act.{n}"] = ns[n].detach()
    out = {k: v.detach().float() for k, v in out.items()}
    if args.perturb:
        t = out[args.perturb].reshape(-1)
        t[0] += 1e-3 * max(1.0, t.abs().max().item())
    if args.flatten:
        out[args.flatten] = out[args.flatten].reshape(-1)
    st.write(args.out, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
