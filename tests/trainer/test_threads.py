#!/usr/bin/python3
"""--threads N changes how long a run takes, never what it computes.

Cases (--case):
  train   `train --threads 1`, 2 and 3 from the same seed: the checkpoints
          (parameters and batch statistics) and the loss logs are
          byte-identical. The trainer must report that its products ran
          on more than one thread (--openmp 1: the build has OpenMP); for
          mlp_bn_fused that is the calibration's 512-row chunks, for the
          full-batch bigram its training step.
  eval    `eval --threads 2` of a checkpoint prints what `--threads 1` prints.
  bad     --threads 0, 257, x and an empty value are refused (exit 2, a
          message naming the option) before anything is written.
"""
import os
import re

from common import Checker, file_bytes, parser, run, train, workdir

THREADS_LINE = re.compile(r"^threads: .*\n", re.M)


def losses(out, *paths):
    """What a run printed, without its threads line, timings and file names."""
    out = THREADS_LINE.sub("", out)
    out = re.sub(r"steps in [0-9.]+ s", "steps in T s", out)
    out = re.sub(r"\([0-9]+ steps/s, ETA [0-9hms]+\)", "(speed)", out)
    for k, path in enumerate(paths):
        out = out.replace(path, f"<file {k}>")
    return out


def ran_on(out):
    m = re.search(r"products ran on up to (\d+)", out)
    return int(m.group(1)) if m else None


def main():
    p = parser(__doc__)
    p.add_argument("--trainer", required=True)
    p.add_argument("--case", required=True, choices=["train", "eval", "bad"])
    p.add_argument("--steps", default="300")
    p.add_argument("--openmp", type=int, choices=[0, 1], required=True)
    a = p.parse_args()
    d = workdir(a.workdir)
    ck = Checker(f"threads.{a.case}")
    seed = ["--seed", "7"]

    def run_with(threads):
        save, log = os.path.join(d, f"t{threads}.safetensors"), os.path.join(d, f"t{threads}.csv")
        r = train(a.trainer, d, save, a.steps, *seed, "--threads", str(threads), log=log, data=a.data)
        ck.ok(r.rc == 0, f"train --threads {threads}", r)
        return r, save, log

    if a.case == "train":
        r1, save1, log1 = run_with(1)
        ck.ok("threads:" not in r1.out, "one thread says nothing of threads", r1)
        for t in (2, 3):
            r, save, log = run_with(t)
            ck.ok(file_bytes(save) == file_bytes(save1), f"--threads {t}: the checkpoint of --threads 1", r)
            ck.ok(file_bytes(log) == file_bytes(log1), f"--threads {t}: the loss log of --threads 1", r)
            ck.ok(losses(r.out, save, log) == losses(r1.out, save1, log1),
                  f"--threads {t}: the losses printed with --threads 1", r)
            got = ran_on(r.out)
            ck.ok(got is not None and (got >= 2 if a.openmp else got == 1),
                  f"--threads {t}: products ran on {got} threads (expected {'2 or more' if a.openmp else 1})", r)
    elif a.case == "eval":
        _, save, _ = run_with(1)
        outs = {}
        for t in (1, 2):
            r = run([a.trainer, "eval", "--load", save, "--data", a.data, "--threads", str(t)])
            ck.ok(r.rc == 0, f"eval --threads {t}", r)
            outs[t] = r
        ck.ok(losses(outs[2].out) == outs[1].out, "eval --threads 2 prints the losses of 1", outs[2])
        ck.ok((ran_on(outs[2].out) or 0) >= 2 if a.openmp else ran_on(outs[2].out) == 1,
                 "eval --threads 2 reports the threads its products ran on", outs[2])
    else:
        save = os.path.join(d, "never.safetensors")
        for value in ("0", "257", "x", ""):
            r = train(a.trainer, d, save, "10", "--threads", value, data=a.data)
            ck.ok(r.rc == 2 and "--threads" in r.err, f"--threads '{value}' refused", r)
            r = run([a.trainer, "eval", "--load", save, "--data", a.data, "--threads", value])
            ck.ok(r.rc == 2 and "--threads" in r.err, f"eval --threads '{value}' refused", r)
        ck.ok(sorted(os.listdir(d)) == [], f"nothing written: {sorted(os.listdir(d))}")
    ck.finish()


if __name__ == "__main__":
    main()
