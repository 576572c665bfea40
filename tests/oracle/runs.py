"""A trainer run beside PyTorch's, compared: shared by the tests that train
the same model both ways (test_notebook_run.py, test_adamw_run.py)."""
import os
import re
import subprocess

import torch

import st


def trainer_run(trainer, work, steps, data, *train_args):
    """`init` (the trainer's init with its default seed) and `train` from it
    in work; returns (init file, every step's loss from the log, the printed
    train and val losses)."""
    init_path, log = os.path.join(work, "init.safetensors"), os.path.join(work, "loss.csv")
    subprocess.run([trainer, "init", "--out", init_path], check=True)
    out = subprocess.run([trainer, "train", "--steps", str(steps), *train_args, "--data", data,
                          "--save", os.path.join(work, "ckpt.safetensors"), "--checkpoint-every", "0",
                          "--log", log, "--plot", "", "--samples", "0"],
                         check=True, capture_output=True, text=True).stdout
    evals = {k: float(v) for k, v in re.findall(r"^(train|val)\s+loss\s+([0-9.]+)$", out, re.M)}
    losses = [float(line.split(",")[1]) for line in open(log).read().splitlines()[1:]]
    return init_path, losses, evals


def compare(init_path, init, ours, lossi, ours_eval, evals, loss_tol, eval_tol):
    """Prints the comparison; returns the number of failed checks: the init
    file bit for bit against init, every step's loss within loss_tol, the
    train and val losses within eval_tol."""
    failures = 0
    got, _ = st.read(init_path)
    for name, ref in init.items():
        same = torch.equal(got[name], ref)
        print(f"init {name:7s} {'exact' if same else 'DIFFERS'}")
        failures += not same
    if len(ours) != len(lossi):
        print(f"the log has {len(ours)} steps, PyTorch ran {len(lossi)}")
        return failures + 1
    diffs = [abs(a - b) for a, b in zip(ours, lossi)]
    worst = max(range(len(diffs)), key=diffs.__getitem__)
    print(f"step losses: max |ninjac - PyTorch| = {diffs[worst]:.2e} at step {worst} "
          f"({ours[worst]:.6f} vs {lossi[worst]:.6f}); tolerance {loss_tol}")
    for k in range(0, len(ours), max(1, len(ours) // 5)):
        print(f"  step {k:6d}: ninjac {ours[k]:.6f}  PyTorch {lossi[k]:.6f}")
    failures += diffs[worst] > loss_tol
    for split in ("train", "val"):
        d = abs(ours_eval[split] - evals[split])
        print(f"{split} loss: ninjac {ours_eval[split]:.4f}, PyTorch {evals[split]:.4f} (|diff| {d:.1e}; "
              f"tolerance {eval_tol})")
        failures += d > eval_tol
    return failures
