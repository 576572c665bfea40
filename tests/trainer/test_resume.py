#!/usr/bin/python3
"""Resuming from a checkpoint continues the run bit for bit.

Cases (--case):
  final         run 1: 3000 steps uninterrupted (--checkpoint-every 1000);
                run 2: 2000 steps, then --resume its final (calibrated)
                checkpoint to 3000. Every tensor of the two final
                checkpoints (parameters and batch statistics) must be
                byte-identical, and so must step and batch_rng; the loss
                log of run 2 (appended on resume) must equal run 1's.
                A resume given --seed is refused (it cannot apply).
  intermediate  the intermediate checkpoint of step 1000 (not calibrated)
                resumed to 3000 must equal run 1. The trainer keeps only its
                latest checkpoint, so the step-1000 one is captured from a
                --steps 1001 run whose final save (larger: it also holds the
                batch statistics) is made to fail by a file size limit just
                below the final checkpoint's size; the failed save leaves
                the step-1000 checkpoint in place (atomic writes).
  log           resuming at step 1500 (not a multiple of the 1000-step loss
                window) still gives the log of the uninterrupted run (2200
                steps here), window means included.
  init_ckpt     `train --init CKPT` starts from CKPT's parameters at step 0
                with --batch-seed, exactly like --init with a params file
                holding the same parameters: --init is not --resume.
  init_file     `init --seed 7` then `train --init P --seed 7` is `train
                --seed 7`: the minibatches continue g after the init also
                when the init came from a file.
The learning rate decays at step 2500, after every resume point, so the
schedule is exercised across resumes too.

--optim adamw runs the cases (init_ckpt: --init of an AdamW checkpoint
starts new moments) with torch.optim.AdamW's update, decaying
its lr to 1e-4 at step 2500: the resumed runs are given neither --optim
nor the schedule, which the checkpoint must carry with both moments. The
final case also checks that such a checkpoint cannot be continued with
--optim sgd (nor an SGD one with --optim adamw): the checkpoint stays as
it was.
"""
import os
import resource
import signal

from common import Checker, file_bytes, parser, read, run, same_tensors, train, workdir, write

# No --batch-seed: the minibatches continue the init's generator, the default.
SEEDS = ["--seed", "7", "--lr-decay-step", "2500"]
RESUMED = ["--lr-decay-step", "2500"]  # the checkpoint holds the generator: --seed is refused with --resume


def main():
    p = parser(__doc__)
    p.add_argument("--trainer", required=True)
    p.add_argument("--case", required=True, choices=["final", "intermediate", "log", "init_ckpt", "init_file"])
    p.add_argument("--optim", choices=["sgd", "adamw"], default="sgd")
    a = p.parse_args()
    global SEEDS
    if a.optim == "adamw":
        SEEDS = SEEDS + ["--optim", "adamw", "--lr-decay-to", "1e-4"]
    other = "sgd" if a.optim == "adamw" else "adamw"
    d = workdir(a.workdir)
    c = Checker(f"resume.{a.case}")
    T = a.trainer
    path = lambda n: os.path.join(d, n)  # noqa: E731

    def ok_run(r, what):
        return c.ok(r.rc == 0, what, str(r))

    def compare_final(ref, got, what):
        ta, ma = read(ref)
        tb, mb = read(got)
        diff = same_tensors(ta, tb)
        c.ok(not diff, f"{what}: every tensor byte-identical to the uninterrupted run ({len(ta)} tensors)",
             f"differing: {diff}")
        keys = ["step", "batch_rng", "calibrated", "optim"]
        if a.optim == "adamw":
            keys += ["adamw.lr", "adamw.lr_decay_to", "adamw.lr_decay_step", "adamw.weight_decay", "adamw.beta1",
                     "adamw.beta2", "adamw.eps"]
            c.ok(ma.get("optim") == "adamw" and float.fromhex(ma.get("adamw.lr_decay_to", "nan")) == 1e-4,
                 f"{what}: an AdamW checkpoint with its schedule", str({k: ma.get(k) for k in keys}))
            moments = [k for k in ta if k.startswith("adamw.exp_avg")]
            c.ok(len(moments) == 2 * len([k for k in ta if not k.startswith(("stat.", "adamw."))]),
                 f"{what}: both moments of every param saved", str(moments))
        for key in keys:
            c.ok(ma.get(key) == mb.get(key), f"{what}: metadata {key} equal",
                 f"{ma.get(key)!r} vs {mb.get(key)!r}")

    if a.case in ("final", "intermediate", "log"):
        # (2200 steps are enough to show the log's 1000-step windows.)
        total = 2200 if a.case == "log" else 3000
        r = train(T, d, path("run1.st"), total, "--checkpoint-every", "1000", *SEEDS, log=path("run1.csv"),
                  data=a.data)
        if not ok_run(r, "run 1: 3000 steps uninterrupted"):
            c.finish()

    if a.case == "final":
        r = train(T, d, path("run2.st"), 2000, "--checkpoint-every", "1000", *SEEDS, log=path("run2.csv"),
                  data=a.data)
        ok_run(r, "run 2: 2000 steps")
        c.ok(read(path("run2.st"))[1].get("step") == "2000", "run 2's checkpoint is at step 2000")
        # --seed cannot change a resumed run's minibatches: it is refused, not ignored.
        before = file_bytes(path("run2.st"))
        r = train(T, d, path("run2.st"), 3000, "--resume", path("run2.st"), *SEEDS, log=path("run2.csv"),
                  data=a.data)
        c.ok(r.rc == 2 and "--seed" in r.err and file_bytes(path("run2.st")) == before,
             "--resume with --seed is refused, the checkpoint untouched", str(r))
        # Another optimizer would start without the moments: not a resume.
        r = train(T, d, path("run2.st"), 3000, "--resume", path("run2.st"), "--optim", other, *RESUMED,
                  log=path("run2.csv"), data=a.data)
        c.ok(r.rc == 1 and f"--optim {other}" in r.err and file_bytes(path("run2.st")) == before,
             f"--resume of an {a.optim} checkpoint with --optim {other} is refused, the checkpoint untouched", str(r))
        r = train(T, d, path("run2.st"), 3000, "--checkpoint-every", "1000", "--resume", path("run2.st"),
                  *RESUMED, log=path("run2.csv"), data=a.data)
        if ok_run(r, "run 2: --resume to 3000"):
            compare_final(path("run1.st"), path("run2.st"), "resumed at 2000")
            c.ok(file_bytes(path("run1.csv")) == file_bytes(path("run2.csv")),
                 "resumed run's loss log equals the uninterrupted run's")

    elif a.case == "intermediate":
        final_size = os.path.getsize(path("run1.st"))

        def limit():
            # Ignore SIGXFSZ so that the over-limit write fails with EFBIG
            # (a plain error) instead of killing the trainer.
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (final_size - 1, final_size - 1))

        args = [T, "train", "--steps", "1001", "--checkpoint-every", "1000", "--save", path("i.st"),
                "--log", "/dev/null", "--plot", "", "--samples", "0", *SEEDS]
        if a.data:
            args += ["--data", a.data]
        r = run(args, preexec_fn=limit)
        c.ok(r.rc not in (0, None) and "i.st" in r.err, "capture run: final save refused by the size limit", str(r))
        tensors, meta = read(path("i.st"))
        c.ok(meta.get("step") == "1000" and meta.get("calibrated") == "0"
             and not any(k.startswith("stat.") for k in tensors),
             "captured the intermediate checkpoint of step 1000 (not calibrated)", str(meta))
        r = train(T, d, path("i.st"), 3000, "--checkpoint-every", "1000", "--resume", path("i.st"), *RESUMED,
                  log=path("i.csv"), data=a.data)
        if ok_run(r, "--resume the step-1000 checkpoint to 3000"):
            compare_final(path("run1.st"), path("i.st"), "resumed at 1000")

    elif a.case == "log":
        r = train(T, d, path("h.st"), 1500, "--checkpoint-every", "500", *SEEDS, log=path("h.csv"), data=a.data)
        ok_run(r, "1500 steps")
        r = train(T, d, path("h.st"), total, "--checkpoint-every", "500", "--resume", path("h.st"), *RESUMED,
                  log=path("h.csv"), data=a.data)
        if ok_run(r, f"--resume at 1500 to {total}"):
            compare_final(path("run1.st"), path("h.st"), "resumed at 1500")
            want = file_bytes(path("run1.csv")).decode().splitlines()
            got = file_bytes(path("h.csv")).decode().splitlines()
            bad = [i for i in range(max(len(want), len(got)))
                   if i >= len(want) or i >= len(got) or want[i] != got[i]]
            c.ok(not bad, "log after resuming at 1500 equals the uninterrupted run's log (window means too)",
                 f"{len(bad)} lines differ; first: uninterrupted {want[bad[0]] if bad and bad[0] < len(want) else None!r}"
                 f" vs resumed {got[bad[0]] if bad and bad[0] < len(got) else None!r}" if bad else "")

    elif a.case == "init_ckpt":
        r = train(T, d, path("c1000.st"), 1000, "--checkpoint-every", "0", *SEEDS, log=path("c.csv"), data=a.data)
        ok_run(r, "1000 steps to a checkpoint")
        tensors, meta = read(path("c1000.st"))
        params = {k: v for k, v in tensors.items() if not k.startswith(("stat.", "adamw."))}
        write(path("p1000.st"), params, {"format": "ninjac-params", "version": "3", "model": meta["model"],
                                            "dims": meta["dims"]})
        # With AdamW, the checkpoint's moments must not carry over: a new run starts from none.
        cont = ["--batch-seed", "5", "--checkpoint-every", "0", "--optim", a.optim]
        r1 = train(T, d, path("from_params.st"), 500, "--init", path("p1000.st"), *cont, log=path("fp.csv"),
                   data=a.data)
        r2 = train(T, d, path("from_ckpt.st"), 500, "--init", path("c1000.st"), *cont, log=path("fc.csv"),
                   data=a.data)
        if ok_run(r1, "--init params file, 500 steps") and ok_run(r2, "--init checkpoint, 500 steps"):
            tp, mp = read(path("from_params.st"))
            tc, mc = read(path("from_ckpt.st"))
            c.ok(mp.get("step") == "500", "--init params: trained steps 0..500", str(mp.get("step")))
            c.ok(mc.get("step") == "500", "--init checkpoint: trained steps 0..500 (not resumed at 1000)",
                 f"checkpoint step {mc.get('step')}; trainer said: {r2.out.splitlines()[:2]}")
            diff = same_tensors(tp, tc)
            c.ok(not diff, "--init with a checkpoint equals --init with its parameters", f"differing: {diff}")
            c.ok(file_bytes(path("fp.csv")) == file_bytes(path("fc.csv")),
                 "both logs equal (header and 500 rows from step 0)",
                 f"params log {len(file_bytes(path('fp.csv')))} bytes, checkpoint log "
                 f"{len(file_bytes(path('fc.csv')))} bytes")

    elif a.case == "init_file":
        r = train(T, d, path("direct.st"), 500, "--checkpoint-every", "0", *SEEDS, log=path("d.csv"), data=a.data)
        ok_run(r, "train --seed 7, 500 steps")
        r = run([T, "init", "--seed", "7", "--out", path("p.st")])
        ok_run(r, "init --seed 7")
        r = train(T, d, path("via_init.st"), 500, "--checkpoint-every", "0", "--init", path("p.st"), *SEEDS,
                  log=path("i.csv"), data=a.data)
        if ok_run(r, "train --init P --seed 7, 500 steps"):
            compare_final(path("direct.st"), path("via_init.st"), "--init from init's file")
            c.ok(file_bytes(path("d.csv")) == file_bytes(path("i.csv")), "both logs equal")
    c.finish()


if __name__ == "__main__":
    main()
