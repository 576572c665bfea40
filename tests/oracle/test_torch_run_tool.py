#!/usr/bin/python3
"""test_torch_run_tool.py - tools/torch_run.py (the README's "PyTorch, same
run" column) replays the trainer's run: the same init, the same loss at
every step within 1e-4, the same final train and val losses (printed to 4
decimals) within 2e-4.

    test_torch_run_tool.py --trainer build/lecture3_bn --spec specs/lecture3_bn.ninja
        --workdir DIR [--steps 300]
"""
import argparse
import csv
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def losses_printed(text, who):
    found = dict(re.findall(r"^(train|val)\s+loss\s+(\S+)$", text, re.M))
    if set(found) != {"train", "val"}:
        sys.exit(f"FAIL: {who} printed no train and val losses:\n{text}")
    return {k: float(v) for k, v in found.items()}


def log_losses(path):
    with open(path) as f:
        return [float(row["loss"]) for row in csv.DictReader(f)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trainer", required=True)
    ap.add_argument("--spec", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--steps", type=int, default=300)
    args = ap.parse_args()
    args.trainer, args.spec = os.path.abspath(args.trainer), os.path.abspath(args.spec)   # both run in workdir
    shutil.rmtree(args.workdir, ignore_errors=True)
    os.makedirs(args.workdir)

    ours_log = os.path.join(args.workdir, "trainer.csv")
    ours = subprocess.run([args.trainer, "train", "--steps", str(args.steps), "--samples", "0",
                           "--save", os.path.join(args.workdir, "run.st"), "--log", ours_log,
                           "--plot", os.path.join(args.workdir, "run.png")],
                          cwd=args.workdir, capture_output=True, text=True)
    if ours.returncode != 0:
        sys.exit(f"FAIL: the trainer exited {ours.returncode}:\n{ours.stderr}")
    torch_log = os.path.join(args.workdir, "torch.csv")
    theirs = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "torch_run.py"), "--trainer", args.trainer,
                             "--spec", args.spec, "--steps", str(args.steps), "--log", torch_log],
                            cwd=args.workdir, capture_output=True, text=True)
    if theirs.returncode != 0:
        sys.exit(f"FAIL: torch_run.py exited {theirs.returncode}:\n{theirs.stderr}")

    failures = 0
    inits = re.findall(r"^init (\w+): (.*)$", theirs.stdout, re.M)
    differ = [name for name, verdict in inits if verdict != "the same as the trainer"]
    if not inits or differ:
        print(f"FAIL: torch_run.py's init draws: {differ or 'none printed'}")
        failures += 1
    else:
        print(f"ok: torch_run.py drew the trainer's init ({len(inits)} params)")

    a, b = log_losses(ours_log), log_losses(torch_log)
    worst = max(((abs(x - y), k) for k, (x, y) in enumerate(zip(a, b))), default=(float("inf"), -1))
    if len(a) != args.steps or len(b) != args.steps or worst[0] > 1e-4:
        print(f"FAIL: per-step losses: {len(a)} and {len(b)} steps, largest difference {worst[0]:.3g} at step {worst[1]}")
        failures += 1
    else:
        print(f"ok: {args.steps} steps, largest per-step difference {worst[0]:.2g} (step {worst[1]})")

    mine, torch_ = losses_printed(ours.stdout, "the trainer"), losses_printed(theirs.stdout, "torch_run.py")
    for split in ("train", "val"):
        if abs(mine[split] - torch_[split]) > 2e-4:
            print(f"FAIL: {split} loss: trainer {mine[split]}, torch_run.py {torch_[split]}")
            failures += 1
        else:
            print(f"ok: {split} loss {mine[split]} (torch_run.py {torch_[split]})")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
