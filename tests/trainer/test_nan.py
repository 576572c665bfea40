#!/usr/bin/python3
"""Training stops at the first non-finite value and keeps the last checkpoint.

Cases (--case):
  scratch   `train --lr LR --steps 200 --checkpoint-every 50` diverges:
            nonzero exit; stderr names a tensor and its origin "FILE:LINE:
            TEXT", where FILE is the spec, LINE the line that assigns or
            declares that tensor and TEXT that line (comment stripped); the
            log holds every step before the failing one and not that one; no
            checkpoint holds a non-finite value.
  message   the same run: it fails before any checkpoint was written, so the
            message must not say that "the last checkpoint (PATH) is kept".
  first     params where emb and embcat are finite and hprebn = embcat @ W1
            + b1 overflows (C = 1, W1 = 3e38, so each hprebn = 30 * 3e38 =
            inf in float32): `train --init` must stop at step 0 naming
            hprebn and its line (the first non-finite tensor in spec order).
  resume    a checkpoint of 100 good steps, then --resume with LR: nonzero
            exit; the checkpoint stays byte-identical (the failure comes
            before step 150, the next checkpoint) and the message names it.
  no_check  --no-nan-check: the same run goes on to the end (200 steps).
  update    finite loss and gradients whose SGD update overflows (W2 scaled
            by 1000 makes gradients above 1; LR 3e38 times them is inf):
            nonzero exit naming the param and "SGD update"; no checkpoint is
            written, neither the periodic one (5 steps, one checkpoint per
            step) nor the final one (1 step).
  calibration  finite params whose batch statistics overflow when
            calibrated over the training set (`train --lr LR --steps N`):
            nonzero exit naming the statistic and its spec line, no
            checkpoint written, no losses or samples printed; and eval and
            sample refuse an init whose params are scaled by 1e30.
  inference  (mlp.ninja) finite params whose inference activations
            overflow: C = 1, W1 = 1, b1 = 0 make h = tanh(30) = 1 in every
            unit, and W2 = 3e38 makes every logit 200 * 3e38 = inf. `eval`
            exits nonzero, names the first non-finite activation of the
            inference pass, whose origin is the logits line of the spec.
LR (--lr) is 1e6 (the notebook's lr times 1e7) where that diverges. The
fused spec stays finite at 1e6 for 200 steps (tanh bounds h and
F.cross_entropy is computed stably, so the loss only grows to ~4e7), so it
gets a learning rate that overflows (1e30); so does the atomic spec in the
default mode, where ninjac rewrites its cross-entropy chain as
F.cross_entropy (compiler/rewrite.c).
"""
import math
import os
import re

from common import Checker, Tensor, file_bytes, line_of, parser, read, run, spec_lines, train, workdir, write


def finite_file(path):
    tensors, _ = read(path)
    return all(math.isfinite(v) for t in tensors.values() if t.dtype == "F32" for v in t.values())


def main():
    p = parser(__doc__)
    p.add_argument("--trainer", required=True)
    p.add_argument("--lr", default="1e6")
    p.add_argument("--steps", default="1")
    p.add_argument("--case", required=True,
                   choices=["update", "scratch", "message", "first", "resume", "no_check", "calibration",
                            "inference"])
    a = p.parse_args()
    d = workdir(a.workdir)
    c = Checker(f"nan.{a.case}")
    T = a.trainer
    path = lambda n: os.path.join(d, n)  # noqa: E731
    ck, log = path("ck.st"), path("loss.csv")
    spec_base = os.path.basename(a.spec)
    lines = spec_lines(a.spec)

    def check_message(r, want_name=None, want_step=None):
        """Checks the stop message; returns the failing step (or None)."""
        m = re.search(r"error: step (\d+): (the gradient )?(\w+) became non-finite", r.err)
        o = re.search(r"from ([^\s:]+):(\d+): (.*)", r.err)
        if not c.ok(r.rc is not None and r.rc > 0, "stops with an error status", str(r)):
            return None
        if not c.ok(m is not None and o is not None, "message names a tensor and its origin", str(r)):
            return None
        step, name = int(m.group(1)), m.group(3)
        file, no, text = o.group(1), int(o.group(2)), o.group(3).strip()
        c.ok(file == spec_base, f"origin file is the spec ({file})")
        c.ok(1 <= no <= len(lines) and lines[no - 1].split("#", 1)[0].strip() == text,
             f"origin line {no} is the spec's line: {text!r}",
             f"spec line {no}: {lines[no - 1] if 1 <= no <= len(lines) else None!r}")
        try:
            declared = line_of(a.spec, name)
        except KeyError:
            declared = None
        c.ok(declared == no, f"{name} is assigned (or declared) on line {no}", f"it is on line {declared}")
        if want_name:
            c.ok(name == want_name, f"the first non-finite tensor is {want_name}", f"named {name}")
        if want_step is not None:
            c.ok(step == want_step, f"at step {want_step}", f"at step {step}")
        return step

    def check_log(step, first=0):
        rows = [ln.split(",") for ln in file_bytes(log).decode().splitlines()[1:]]
        steps = [int(r[0]) for r in rows]
        c.ok(steps[-1:] == [step - 1] if step > first else steps == [],
             f"the log ends with step {step - 1}, the last finite one", f"last logged {steps[-1:]}")

    if a.case in ("scratch", "message", "no_check"):
        extra = ["--no-nan-check"] if a.case == "no_check" else []
        r = train(T, d, ck, 200, "--lr", a.lr, "--checkpoint-every", "50", *extra, log=log, data=a.data)
        if a.case == "no_check":
            rows = file_bytes(log).decode().splitlines()[1:]
            c.ok(len(rows) == 200 and "trained 200 steps" in r.out, "--no-nan-check: all 200 steps run",
                 f"{len(rows)} rows\n      {r}")
        else:
            step = check_message(r)
            if a.case == "scratch" and step is not None:
                check_log(step)
                c.ok(not os.path.exists(ck) or finite_file(ck), "no checkpoint holds a non-finite value")
            if a.case == "message" and step is not None:
                c.ok(not os.path.exists(ck), f"failed at step {step}, before the first checkpoint (step 50)")
                c.ok(not re.search(r"checkpoint.*is kept", r.err),
                     "the message does not claim a checkpoint is kept when none was written", r.err)

    elif a.case == "first":
        r = run([T, "init", "--seed", "1", "--out", path("p.st")])
        tensors, meta = read(path("p.st"))
        n = lambda t: len(t.values())  # noqa: E731
        tensors["C"] = Tensor.of("F32", tensors["C"].shape, [1.0] * n(tensors["C"]))
        tensors["W1"] = Tensor.of("F32", tensors["W1"].shape, [3e38] * n(tensors["W1"]))
        write(path("bad.st"), tensors, meta)
        r = train(T, d, ck, 10, "--init", path("bad.st"), "--checkpoint-every", "5", log=log, data=a.data)
        check_message(r, want_name="hprebn", want_step=0)
        check_log(0)
        c.ok(not os.path.exists(ck), "no checkpoint written")

    elif a.case == "update":
        r = run([T, "init", "--seed", "1", "--out", path("p.st")])
        tensors, meta = read(path("p.st"))
        tensors["W2"] = Tensor.of("F32", tensors["W2"].shape, [1000 * v for v in tensors["W2"].values()])
        write(path("big.st"), tensors, meta)
        # one step and no periodic checkpoint: the final save is the one refused
        for steps, every in ((5, "1"), (1, "0")):
            r = train(T, d, ck, steps, "--init", path("big.st"), "--lr", a.lr, "--checkpoint-every", every, log=log,
                      data=a.data)
            c.ok(r.rc not in (0, None) and "SGD update made" in r.err and "non-finite" in r.err,
                 f"--checkpoint-every {every}: stops, saying the update made a param non-finite", str(r))
            c.ok(not os.path.exists(ck), f"--checkpoint-every {every}: no checkpoint written")

    elif a.case == "calibration":
        r = train(T, d, ck, a.steps, "--lr", a.lr, "--lr-decay-step", a.steps, "--checkpoint-every", "0", log=log,
                  data=a.data)
        m = re.search(r"error: calibrating the batch statistics .* made (\w+) non-finite", r.err)
        o = re.search(r"from ([^\s:]+):(\d+): (.*)", r.err)
        if c.ok(r.rc not in (0, None) and m is not None and o is not None,
                "stops with an error naming a batch statistic and its origin", str(r)):
            no = int(o.group(2))
            c.ok(line_of(a.spec, m.group(1)) == no, f"{m.group(1)} is assigned on line {no}")
        c.ok(not os.path.exists(ck), "no checkpoint written")
        c.ok("train loss" not in r.out and "samples:" not in r.out, "no losses or samples printed", r.out)
        r = run([T, "init", "--seed", "1", "--out", path("p.st")])
        tensors, meta = read(path("p.st"))
        write(path("big.st"), {k: Tensor.of("F32", t.shape, [1e30 * v for v in t.values()])
                               for k, t in tensors.items()}, meta)
        for cmd in (["eval", "--load", path("big.st")], ["sample", "--load", path("big.st"), "-n", "3"]):
            r = run([T] + cmd + ["--data", a.data])
            c.ok(r.rc not in (0, None) and "non-finite" in r.err and r.out.strip() == "",
                 f"{cmd[0]} refuses params whose statistics overflow, printing nothing", str(r))
    elif a.case == "inference":
        r = run([T, "init", "--seed", "1", "--out", path("p.st")])
        tensors, meta = read(path("p.st"))
        fill = {"C": 1.0, "W1": 1.0, "b1": 0.0, "W2": 3e38, "b2": 0.0}
        write(path("big.st"), {k: Tensor.of("F32", t.shape, [fill[k]] * len(t.values()))
                               for k, t in tensors.items()}, meta)
        r = run([T, "eval", "--load", path("big.st"), "--data", a.data])
        m = re.search(r"the first non-finite activation is (\w+), computed from example (\d+) on "
                      r"\(([^\s:]+):(\d+): ", r.err)
        if c.ok(r.rc not in (0, None) and m is not None, "eval fails naming an activation and its origin", str(r)):
            c.ok(int(m.group(4)) == line_of(a.spec, "logits"), f"{m.group(1)} comes from the logits line", r.err)
            c.ok(m.group(2) == "0", "in the first chunk of examples", r.err)
    elif a.case == "resume":
        r = train(T, d, ck, 100, "--checkpoint-every", "0", log=log, data=a.data)
        if not c.ok(r.rc == 0, "100 good steps", str(r)):
            c.finish()
        before = file_bytes(ck)
        r = train(T, d, ck, 300, "--resume", ck, "--lr", a.lr, "--checkpoint-every", "50", log=log, data=a.data)
        step = check_message(r)
        if step is not None:
            c.ok(100 <= step < 150, f"fails at step {step}, before the next checkpoint")
            check_log(step, first=100)
        c.ok(file_bytes(ck) == before, "the checkpoint of step 100 is byte-identical")
        c.ok(ck in r.err, "the message names the kept checkpoint", r.err)
    c.finish()


if __name__ == "__main__":
    main()
