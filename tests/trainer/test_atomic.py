#!/usr/bin/python3
"""Checkpoints survive SIGKILL and failed writes.

Cases (--case):
  kill        50 times: start (or --resume) `train --checkpoint-every 50`,
              SIGKILL it after a random delay (seeded; 0.1-0.7 s), then:
              the checkpoint on disk, if any, must parse strictly (tensors
              tiling the data block, every param with its shape, step a
              multiple of 50 that never goes back) and load (`sample --load
              -n 1`, every 4th round); a reader that opened the checkpoint
              before the round must still read the old file whole (saves
              replace the file, never rewrite it in place); and the only *.tmp.* file allowed is the one of the
              process just killed (`CKPT.tmp.<pid>.XXXXXX`): a process killed while
              writing cannot remove its own temporary file. The test removes
              it, as a user would, before the next round. At least one
              checkpoint must have been written and training must have
              advanced, or the test tested nothing. Then the chain of kills
              and resumes is resumed once more to a final step, and every
              tensor and metadata entry of its checkpoint must equal, byte
              for byte, those of one uninterrupted run to that step: each
              resume continued bit-identically.
  log         after kills and resumes, the loss log must still be a log: the
              header once, then one well-formed row per step 0..N-1, each
              step once, in order, with the losses of an uninterrupted run.
              (Rows the killed run logged after its last checkpoint are
              redone by the resumed run.)
  efbig       `ulimit -f` below the checkpoint's size, SIGXFSZ ignored (as
              under a shell or service manager that ignores it): the
              checkpoint write fails with EFBIG; train must exit nonzero
              with an error naming the checkpoint, keep the previous
              checkpoint byte-identical and leave no *.tmp.* file.
  ulimit      the same with SIGXFSZ at its default action, which is what
              `ulimit -f N; trainer train ...` in bash gives: the same
              expectations (the trainer has to ignore SIGXFSZ itself to see
              the error instead of being killed).
  save_path   --save names an existing directory, or a path under a regular
              file: error naming it, nonzero exit, nothing replaced, no
              *.tmp.* file.
"""
import glob
import os
import random
import re
import resource
import signal
import subprocess
import time

from common import Checker, file_bytes, parser, read, run, train, workdir

EVERY = 50


def tmp_files(d):
    return sorted(glob.glob(os.path.join(d, "**", "*.tmp.*"), recursive=True))


def main():
    p = parser(__doc__)
    p.add_argument("--trainer", required=True)
    p.add_argument("--case", required=True, choices=["kill", "log", "efbig", "ulimit", "save_path"])
    p.add_argument("--rounds", type=int, default=50)
    a = p.parse_args()
    d = workdir(a.workdir)
    c = Checker(f"atomic.{a.case}")
    T = a.trainer
    path = lambda n: os.path.join(d, n)  # noqa: E731
    ck = path("ck.st")
    seeds = ["--seed", "5", "--batch-seed", "9"]
    resume_seeds = []  # a checkpoint carries its batch generator (--seed is refused with --resume)

    def start(log):
        args = [T, "train", "--steps", "1000000000", "--checkpoint-every", str(EVERY), "--save", ck, "--log", log,
                "--plot", "", "--samples", "0", "--data", a.data]
        args += ["--resume", ck, *resume_seeds] if os.path.exists(ck) else seeds
        err = open(path("stderr.txt"), "w")
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err)
        err.close()
        return proc

    def kill_round(proc, delay):
        time.sleep(delay)
        exited = proc.poll()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if exited is not None:
            c.fail(f"the trainer exited by itself (status {exited}) before the kill: "
                   f"{open(path('stderr.txt')).read()[-400:]}")
        tmps = tmp_files(d)
        allowed = f"{ck}.tmp.{proc.pid}."   # + mkstemp's six characters
        c.ok(all(t.startswith(allowed) for t in tmps), f"after kill of pid {proc.pid}: no stray *.tmp.* file",
             f"found {tmps}; allowed only {allowed}XXXXXX")
        for t in tmps:
            os.unlink(t)
        return len(tmps)

    def checkpoint_state(what):
        """Step of the checkpoint on disk (None if none), after strict checks."""
        if not os.path.exists(ck):
            return None
        try:
            tensors, meta = read(ck)
        except (ValueError, KeyError) as e:
            c.fail(f"{what}: checkpoint does not parse: {e}")
            return None
        step = meta.get("step", "")
        good = (meta.get("format") == "ninjac-checkpoint" and step.isdigit() and int(step) % EVERY == 0
                and {"C", "W1", "b1", "W2", "b2", "bngain", "bnbias"} <= set(tensors))
        c.ok(good, f"{what}: checkpoint parses (step {step})", f"metadata {meta}, tensors {sorted(tensors)}")
        return int(step) if step.isdigit() else None

    if a.case == "kill":
        rng = random.Random(20240611)
        last, written, leftovers = -1, 0, 0
        for i in range(a.rounds):
            # A reader holding the checkpoint open while the trainer saves
            # new ones must keep seeing the whole old file: saves replace the
            # file (rename), they never rewrite it in place.
            held = open(ck, "rb") if os.path.exists(ck) else None
            old = held.read() if held else None
            proc = start(path("loss.csv"))
            leftovers += kill_round(proc, rng.uniform(0.1, 0.7))
            step = checkpoint_state(f"round {i + 1}")
            if held:
                held.seek(0)
                seen = held.read()
                held.close()
                c.ok(seen == old, f"round {i + 1}: a reader that opened the checkpoint before still reads it whole",
                     f"read {len(seen)} bytes, {'same' if seen == old else 'different'} from the {len(old)} before")
            if step is None:
                continue
            written += 1
            c.ok(step >= last, f"round {i + 1}: step {step} does not go back (was {last})")
            last = step
            if i % 4 == 3 or i == a.rounds - 1:   # (the strict parse above runs every round)
                r = run([T, "sample", "--load", ck, "-n", "1", "--data", a.data])
                c.ok(r.rc == 0 and r.out.strip() != "", f"round {i + 1}: sample --load the checkpoint", str(r))
        c.ok(written > 0 and last > 0, f"checkpoints were written (in {written} of {a.rounds} rounds; "
             f"last at step {last}); {leftovers} kill(s) left a temporary file")
        final = last + 10 * EVERY
        r = train(T, d, ck, final, "--checkpoint-every", str(EVERY), "--resume", ck, *resume_seeds,
                  log=path("loss.csv"), data=a.data)
        c.ok(r.rc == 0, f"the chain resumed once more, from step {last} to {final}", str(r))
        r = train(T, d, path("ref.st"), final, "--checkpoint-every", "0", *seeds, log=path("ref.csv"), data=a.data)
        c.ok(r.rc == 0, f"one uninterrupted run of {final} steps", str(r))
        got, want = read(ck), read(path("ref.st"))
        same = {n for n in want[0] if n in got[0] and got[0][n].data == want[0][n].data}
        c.ok(set(got[0]) == set(want[0]) and same == set(want[0]),
             f"after {a.rounds} kills and resumes: all {len(want[0])} tensors byte-identical to the uninterrupted run's",
             f"differ: {sorted(set(want[0]) - same)}; only in one: {sorted(set(got[0]) ^ set(want[0]))}")
        c.ok(got[1] == want[1], "and the same metadata (step, generator state, loss window)",
             f"{got[1]} vs {want[1]}")

    elif a.case == "log":
        rng = random.Random(7)
        for i in range(40):            # until three kills after a checkpoint
            kill_round(start(path("loss.csv")), rng.uniform(0.15, 0.6))
            if os.path.exists(ck) and i >= 2:
                break
        step = checkpoint_state("after the kills")
        if step is None:
            c.fail("no checkpoint was written before the kills")
            c.finish()
        final = step + 200
        r = train(T, d, ck, final, "--checkpoint-every", str(EVERY), "--resume", ck, *resume_seeds, log=path("loss.csv"),
                  data=a.data)
        c.ok(r.rc == 0, f"resume from step {step} to {final}", str(r))
        r = train(T, d, path("ref.st"), final, "--checkpoint-every", "0", *seeds, log=path("ref.csv"), data=a.data)
        c.ok(r.rc == 0, f"uninterrupted reference run of {final} steps", str(r))
        want = file_bytes(path("ref.csv")).decode().splitlines()
        got = file_bytes(path("loss.csv")).decode(errors="replace").splitlines()
        row = re.compile(r"^(\d+),(-?\d+\.\d{6})(,-?\d+\.\d{6})?$")
        c.ok(got[:1] == want[:1], "the log starts with the header", f"first line {got[:1]}")
        bad = [ln for ln in got[1:] if not row.match(ln)]
        c.ok(not bad, "every row is well-formed", f"{len(bad)} malformed, e.g. {bad[:3]}")
        steps = [int(m.group(1)) for m in map(row.match, got[1:]) if m]
        c.ok(steps == list(range(final)), f"steps 0..{final - 1}, each once, in order",
             f"{len(steps)} rows; duplicates {len(steps) - len(set(steps))}; missing "
             f"{sorted(set(range(final)) - set(steps))[:10]}")
        pairs = lambda lines: [ln.split(",")[:2] for ln in lines[1:] if row.match(ln)]  # noqa: E731
        c.ok(pairs(got) == pairs(want), "the logged losses are those of an uninterrupted run")

    elif a.case in ("efbig", "ulimit"):
        r = train(T, d, ck, 100, "--checkpoint-every", "0", *seeds, log=path("loss.csv"), data=a.data)
        if not c.ok(r.rc == 0, "a first checkpoint at step 100", str(r)):
            c.finish()
        before = file_bytes(ck)
        limit = 16384
        c.ok(len(before) > limit, f"the checkpoint ({len(before)} bytes) is larger than the limit ({limit})")

        def limited():
            if a.case == "efbig":
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            # (subprocess restores SIGXFSZ to its default in the child, which
            # Python itself ignores: "ulimit" runs with the default action.)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        args = [T, "train", "--resume", ck, "--steps", "300", "--checkpoint-every", str(EVERY), "--save", ck,
                "--log", path("loss.csv"), "--plot", "", "--samples", "0", "--data", a.data]
        r = run(args, preexec_fn=limited)
        c.ok(r.rc is not None and r.rc > 0, "train exits with an error status (not killed by a signal)", str(r))
        c.ok(ck in r.err and "error" in r.err, "stderr names the checkpoint in an error", str(r))
        c.ok(file_bytes(ck) == before, "the previous checkpoint is byte-identical")
        c.ok(not tmp_files(d), "no *.tmp.* file is left", str(tmp_files(d)))

    elif a.case == "save_path":
        os.makedirs(path("adir"))
        with open(path("adir/keep.txt"), "w") as f:
            f.write("keep")
        with open(path("afile"), "w") as f:
            f.write("keep")
        for label, target in (("an existing directory", path("adir")),
                              ("a path under a regular file", path("afile/ck.st"))):
            r = train(T, d, target, 120, "--checkpoint-every", str(EVERY), *seeds, log=path("l.csv"), data=a.data)
            c.ok(r.rc is not None and r.rc > 0 and target.split("/ck.st")[0] in r.err and "error" in r.err,
                 f"--save {label}: error naming it", str(r))
            c.ok(file_bytes(path("adir/keep.txt")) == b"keep" and file_bytes(path("afile")) == b"keep"
                 and sorted(os.listdir(path("adir"))) == ["keep.txt"], f"--save {label}: nothing replaced")
            c.ok(not tmp_files(d), f"--save {label}: no *.tmp.* file left", str(tmp_files(d)))
    c.finish()


if __name__ == "__main__":
    main()
