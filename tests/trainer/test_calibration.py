#!/usr/bin/python3
"""Calibration equals the direct computation over the whole training set.

After a 2000-step run, the checkpoint's stat.* tensors must equal what the
notebook's calibration cell computes over the whole training split (rebuilt
here exactly as the notebook does: random.seed(42); random.shuffle(words);
80/10/10; block 3), in float64:
    hprebn = embcat @ W1 + b1      (the notebook calls it hpreact there)
    mean   = hprebn.mean(0, keepdim=True)
    var    = hprebn.var(0, keepdim=True, unbiased=True)
    inv    = (var + 1e-5)**-0.5
and `eval` (every split) must print the loss that PyTorch computes with those
statistics frozen; so must `train` itself at the end of the run.
"""
import os
import re

from common import Checker, parser, run, train, workdir
from torchref import full_batch_stats, notebook_splits, params64, split_loss, stat_names, torch, torch_tensors

# Tolerances. The trainer computes hprebn in float32 (a 30-term dot product
# plus the bias: each element carries a relative rounding error of at most
# ~31 * 2^-24 ~= 2e-6 of the sum of its terms' magnitudes, typically ~1e-7),
# accumulates over the rows in double and rounds the result to float32
# (2^-24 ~= 6e-8). Averaging does not grow per-element errors, so
#   |mean_c - mean| <= MEAN_TOL * (rms of hprebn over the column)
#   |var_c - var|   <= VAR_TOL * var
# hold with a margin of ~10 (observed: ~1e-7 and ~2e-7), yet both are
# tight enough to catch the likely mistakes: dividing by N instead of N - 1
# (or the reverse) changes var (or the mean) by 1/N ~= 5.5e-6 here, and
# computing over another split or a batch changes them by ~1e-2.
MEAN_TOL = 1e-6
VAR_TOL = 2e-6
# bnvar_inv is 1/sqrtf(bnvar + 1e-5f) of the stored float32 bnvar: a few
# float32 roundings, so relative 4 * 2^-24.
INV_TOL = 4 * 2.0 ** -24
# eval prints losses with 4 decimals (rounding: 5e-5); the trainer's float32
# per-chunk sums add ~1e-6 relative (~3e-6 absolute at loss ~2.3).
LOSS_TOL = 1e-4


def main():
    p = parser(__doc__)
    p.add_argument("--trainer", required=True)
    a = p.parse_args()
    d = workdir(a.workdir)
    c = Checker("calibration")
    ck = os.path.join(d, "ck.st")
    r = train(a.trainer, d, ck, 2000, "--checkpoint-every", "0", "--seed", "11", data=a.data)
    if not c.ok(r.rc == 0, "2000 training steps", str(r)):
        c.finish()
    train_out = r.out
    T, meta = torch_tensors(ck)
    model = meta["model"]
    c.ok(meta.get("calibrated") == "1", "final checkpoint is calibrated", str(meta))
    P = params64(T)
    Xtr, Ytr, Xdev, Ydev, Xte, Yte = notebook_splits(a.data)
    mean, var, rms = full_batch_stats(P, Xtr)
    inv = (var + 1e-5) ** -0.5
    mean_name, var_name, inv_name = stat_names(model)
    # bnvar_inv is a statistic of its own where the spec's lines compute it
    # (-O0); the default mode's batchnorm computes it from stat.bnvar instead
    inv_stored = f"stat.{inv_name}" in T
    if not inv_stored:
        print(f"note: no stat.{inv_name}: the checkpoint's batchnorm derives it from stat.{var_name}")
        T[f"stat.{inv_name}"] = (T[f"stat.{var_name}"] + torch.tensor(1e-5, dtype=torch.float32)).rsqrt()
    want_names = [f"stat.{n}" for n in (mean_name, var_name, inv_name)]
    missing = [n for n in want_names if n not in T]
    if not c.ok(not missing, f"checkpoint holds {', '.join(want_names)}", f"missing {missing}; has {sorted(T)}"):
        c.finish()
    shape = list(mean.shape)
    for n in want_names[:3 if inv_stored else 2]:
        c.ok(list(T[n].shape) == shape and T[n].dtype == torch.float32, f"{n} is F32 {shape}",
             f"{T[n].dtype} {list(T[n].shape)}")
    got_mean, got_var, got_inv = (T[n].double() for n in want_names)
    err_mean = ((got_mean - mean).abs() / rms).max().item()
    err_var = ((got_var - var).abs() / var).max().item()
    c.ok(err_mean <= MEAN_TOL, f"{mean_name} = hprebn.mean(0) over the {len(Xtr)} training rows "
         f"(max error {err_mean:.2e} of the column rms, tolerance {MEAN_TOL:.0e})")
    c.ok(err_var <= VAR_TOL, f"{var_name} = hprebn.var(0, unbiased=True) over the training rows "
         f"(max relative error {err_var:.2e}, tolerance {VAR_TOL:.0e})")
    n = len(Xtr)
    biased = ((got_var - var * (n - 1) / n).abs() / var).max().item()
    c.ok(biased > VAR_TOL, "the tolerance tells the unbiased variance from the biased one",
         f"the biased variance would be off by only {biased:.2e}")
    if inv_stored:
        err_inv = ((got_inv - inv).abs() / inv).max().item()
        c.ok(err_inv <= 10 * VAR_TOL, f"{inv_name} = (var + 1e-5)**-0.5 (max relative error {err_inv:.2e})")
        f32 = (T[want_names[1]] + torch.tensor(1e-5, dtype=torch.float32)).double().rsqrt()
        err_own = ((got_inv - f32).abs() / f32).max().item()
        c.ok(err_own <= INV_TOL, f"{inv_name} follows from the stored {var_name} (relative {err_own:.2e})")
    extra = sorted(k for k in T if k.startswith("stat.") and k not in want_names)
    for k in extra:  # generated temporaries (e.g. stat.bnvar_inv_t1): at least finite
        c.ok(bool(torch.isfinite(T[k]).all()), f"{k} (a generated temporary) is finite")

    # eval with frozen statistics vs PyTorch
    frozen = {k[5:]: v.double() for k, v in T.items() if k.startswith("stat.")}
    want = {split: split_loss(model, P, X, Y, frozen)
            for split, X, Y in (("train", Xtr, Ytr), ("val", Xdev, Ydev), ("test", Xte, Yte))}
    r = run([a.trainer, "eval", "--load", ck, "--split", "all", "--data", a.data])
    c.ok(r.rc == 0, "eval --split all", str(r))
    for split in ("train", "val", "test"):
        m = re.search(rf"^{split}\s+loss\s+([-+0-9.eE]+|nan|inf)", r.out, re.M)
        got = float(m.group(1)) if m else None
        c.ok(got is not None and abs(got - want[split]) <= LOSS_TOL,
             f"eval {split} loss {got} equals PyTorch's {want[split]:.6f} with the checkpoint's stats frozen")
    r1 = run([a.trainer, "eval", "--load", ck, "--split", "train", "--data", a.data])
    lines = r1.out.strip().splitlines()
    c.ok(r1.rc == 0 and len(lines) == 1 and lines[0].startswith("train"),
         "eval --split train prints only the train loss", str(r1))
    for split, label in (("train", r"train loss"), ("val", r"val\s+loss")):
        m = re.search(rf"^{label} ([-+0-9.eE]+)$", train_out, re.M)
        got = float(m.group(1)) if m else None
        c.ok(got is not None and abs(got - want[split]) <= LOSS_TOL,
             f"train's final report: {split} loss {got} equals PyTorch's {want[split]:.6f}")
    c.finish()

if __name__ == "__main__":
    main()
