#!/usr/bin/env python3
"""Where the trainer writes, and what it refuses to write (issue 10).

cases:
  symlink      init --out, train --save through a symlink: the link stays,
               the file it points to is replaced (also a dangling link).
  devnull      --out /dev/null and a link to it are written to, never
               replaced: /dev/null stays a character device (restored with
               mknod if not, so that a failure cannot break the system).
  nonregular   a directory, FIFO, socket or "" as an output is refused
               before any work: no training, nothing created.
  same_file    an output that is an input or another output is refused
               before training (--log DATA, --log INIT, --plot DATA,
               --log X --save X, grads --out PARAMS); inputs stay intact.
  tmp_symlink  a symlink planted at CKPT.tmp.<pid> is not followed; new
               files get 0666 & ~umask, replaced ones keep their mode.
  signal       SIGTERM or SIGINT while checkpoints are written: exit
               status 128 + signal, no *.tmp.* file left.
  fifo_input   a FIFO as --load, --init, --data or grads --params is
               refused at once (it used to hang).
  plot         a run under 1000 steps draws the loss of every step; no
               gnuplot, or a failing one, is said as such and leaves no
               PNG (never a 0-byte one).
"""
import glob
import os
import random
import signal
import socket
import stat
import subprocess
import time

from common import Checker, file_bytes, parser, run, train, workdir

STEPS = 30


def main():
    p = parser(__doc__)
    p.add_argument("--trainer", required=True)
    p.add_argument("--case", required=True, choices=["symlink", "devnull", "nonregular", "same_file", "tmp_symlink",
                                                     "signal", "fifo_input", "plot"])
    a = p.parse_args()
    d = workdir(a.workdir)
    c = Checker(f"outputs.{a.case}")
    T = a.trainer
    path = lambda n: os.path.join(d, n)  # noqa: E731
    tmps = lambda: sorted(glob.glob(os.path.join(d, "**", "*.tmp.*"), recursive=True))  # noqa: E731

    def tr(save, *extra, log=None, steps=STEPS):
        return train(T, d, save, steps, "--checkpoint-every", "0", *extra, log=log, data=a.data)

    def refused(r, what, *names):
        c.ok(r.rc is not None and r.rc > 0 and "error" in r.err and all(n in r.err for n in names),
             f"{what}: refused with an error naming {names}", str(r))
        c.ok("trained" not in r.out, f"{what}: refused before training", str(r))

    if a.case == "symlink":
        r = run([T, "init", "--out", path("direct.st"), "--seed", "3"])
        c.ok(r.rc == 0, "init to a file", str(r))
        want = file_bytes(path("direct.st"))
        with open(path("real.st"), "wb") as f:
            f.write(b"stale")
        os.symlink("real.st", path("link.st"))
        r = run([T, "init", "--out", path("link.st"), "--seed", "3"])
        c.ok(r.rc == 0, "init --out a symlink", str(r))
        c.ok(os.path.islink(path("link.st")) and os.readlink(path("link.st")) == "real.st", "the link stays")
        c.ok(file_bytes(path("real.st")) == want, "the file it points to holds the new parameters")
        os.makedirs(path("sub"))
        os.symlink("sub/new.st", path("dangling.st"))
        r = tr(path("dangling.st"), log=path("l.csv"))
        c.ok(r.rc == 0, "train --save a dangling symlink", str(r))
        c.ok(os.path.islink(path("dangling.st")) and os.path.isfile(path("sub/new.st")),
             "the link stays and its target is created")
        c.ok(not tmps(), "no *.tmp.* file", str(tmps()))

    elif a.case == "devnull":
        def devnull_ok(what):
            st = os.lstat("/dev/null")
            good = stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)
            if not good and os.geteuid() == 0:
                os.unlink("/dev/null")
                os.mknod("/dev/null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
                os.chmod("/dev/null", 0o666)
            c.ok(good, f"{what}: /dev/null is still the null device")

        os.symlink("/dev/null", path("null.st"))
        for label, target in (("--out /dev/null", "/dev/null"), ("--out a link to /dev/null", path("null.st"))):
            r = run([T, "init", "--out", target])
            c.ok(r.rc == 0, f"init {label}", str(r))
            devnull_ok(f"init {label}")
        c.ok(os.path.islink(path("null.st")), "the link to /dev/null stays a link")
        r = tr("/dev/null", log="/dev/null")
        c.ok(r.rc == 0, "train --save /dev/null --log /dev/null", str(r))
        devnull_ok("train --save /dev/null")
        c.ok(not glob.glob("/dev/null.tmp.*"), "no temporary beside /dev/null")

    elif a.case == "nonregular":
        os.makedirs(path("adir"))
        os.mkfifo(path("fifo"))
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(path("sock"))
        for label, target in (("a directory", path("adir")), ("a FIFO", path("fifo")), ("a socket", path("sock")),
                              ("an empty path", "")):
            r = run([T, "init", "--out", target], timeout=20)
            refused(r, f"init --out {label}", target)
            for opt in ("--save", "--log", "--plot"):
                if opt == "--plot" and target == "":
                    continue  # --plot "" means no plot
                if opt == "--log" and label == "a FIFO":
                    continue  # a stream may be a FIFO (with a reader)
                args = {"--save": path("ck.st"), "--log": path("l.csv"), "--plot": ""}
                args[opt] = target
                r = run([T, "train", "--steps", STEPS, "--checkpoint-every", "0", "--samples", "0",
                         "--data", a.data] + [x for kv in args.items() for x in kv], timeout=20)
                refused(r, f"train {opt} {label}", opt)
                c.ok(not os.path.exists(path("ck.st")) and not os.path.exists(path("l.csv")),
                     f"train {opt} {label}: nothing written")
        r = run([T, "train", "--steps", STEPS, "--save", path("ck.st"), "--log", path("fifo"), "--plot", "",
                 "--samples", "0", "--data", a.data], timeout=20)
        refused(r, "train --log a FIFO without a reader (no hang)", path("fifo"))
        c.ok(sorted(os.listdir(d)) == ["adir", "fifo", "sock"] and not os.listdir(path("adir")), "nothing created",
             str(sorted(os.listdir(d))))
        sock.close()

    elif a.case == "same_file":
        with open(a.data, "rb") as f:
            names = f.read()
        with open(path("names.txt"), "wb") as f:
            f.write(names)
        data = path("names.txt")
        r = run([T, "init", "--out", path("p.st")])
        c.ok(r.rc == 0, "init", str(r))
        params = file_bytes(path("p.st"))
        os.symlink("names.txt", path("names_link.txt"))
        cases = [
            ("--data X --log X", ["--save", path("ck.st"), "--data", data, "--log", data, "--plot", ""],
             ["--log", "--data"]),
            ("--data X --log LINK-TO-X", ["--save", path("ck.st"), "--data", data, "--log", path("names_link.txt"),
                                           "--plot", ""], ["--log", "--data"]),
            ("--log P --init P", ["--save", path("ck.st"), "--data", a.data, "--init", path("p.st"),
                                  "--log", path("p.st"), "--plot", ""], ["--log", "--init"]),
            ("--plot X --data X", ["--save", path("ck.st"), "--data", data, "--log", path("l.csv"),
                                   "--plot", data], ["--plot", "--data"]),
            ("--log X --save X", ["--save", path("x"), "--data", a.data, "--log", path("x"), "--plot", ""],
             ["--log", "--save"]),
            ("--plot X --log X", ["--save", path("ck.st"), "--data", a.data, "--log", path("x"),
                                  "--plot", path("x")], ["--log", "--plot"]),
        ]
        for label, args, opts in cases:
            r = run([T, "train", "--steps", STEPS, "--checkpoint-every", "0", "--samples", "0"] + args)
            refused(r, label, *opts)
        r = run([T, "grads", "--params", path("p.st"), "--inputs", path("p.st"), "--out", path("p.st")])
        refused(r, "grads --out PARAMS", "--out", "--params")
        c.ok(file_bytes(data) == names, "the data file is intact")
        c.ok(file_bytes(path("p.st")) == params, "the parameter file is intact")
        c.ok(not os.path.exists(path("x")) and not os.path.exists(path("ck.st")), "no output written")
        r = tr(path("ck.st"), log=path("l.csv"))
        r2 = tr(path("ck.st"), "--resume", path("ck.st"), log=path("l.csv"), steps=2 * STEPS)
        c.ok(r.rc == 0 and r2.rc == 0, "--save may be the checkpoint --resume continues", str(r2))

    elif a.case == "tmp_symlink":
        with open(path("victim"), "wb") as f:
            f.write(b"victim")
        ck = path("ck.st")
        # exec keeps the shell's pid: the link is planted at the trainer's own CKPT.tmp.<pid>.
        script = (f'umask 022; ln -s "$1" "$2.tmp.$$"; exec "$3" init --out "$2"')
        r = run(["bash", "-c", script, "bash", path("victim"), ck, T])
        c.ok(r.rc == 0, "init with a symlink planted at CKPT.tmp.<pid>", str(r))
        c.ok(file_bytes(path("victim")) == b"victim", "the link's target is untouched")
        c.ok(os.path.isfile(ck) and not os.path.islink(ck), "the checkpoint is a new regular file")
        c.ok(stat.S_IMODE(os.stat(ck).st_mode) == 0o644, "a new file gets 0666 & ~umask (0644)",
             oct(os.stat(ck).st_mode))
        os.chmod(ck, 0o600)
        r = run(["bash", "-c", 'umask 022; exec "$1" init --out "$2" --seed 7', "bash", T, ck])
        c.ok(r.rc == 0 and stat.S_IMODE(os.stat(ck).st_mode) == 0o600, "a replaced file keeps its mode (0600)",
             oct(os.stat(ck).st_mode))
        for t in tmps():
            os.unlink(t)   # the planted link

    elif a.case == "signal":
        rng = random.Random(11)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGTERM, signal.SIGINT, signal.SIGTERM, signal.SIGTERM):
            # A checkpoint every step: most of the run is spent writing them.
            proc = subprocess.Popen([T, "train", "--steps", "1000000000", "--checkpoint-every", "1", "--save",
                                     path("ck.st"), "--log", path("l.csv"), "--plot", "", "--samples", "0",
                                     "--data", a.data], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.time() + 30
            while not os.path.exists(path("ck.st")) and time.time() < deadline:
                time.sleep(0.01)
            time.sleep(rng.uniform(0.05, 0.3))
            proc.send_signal(sig)
            try:
                rc = proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = proc.wait()
            c.ok(rc == 128 + sig, f"{signal.Signals(sig).name}: exit status {128 + sig}", f"got {rc}")
            c.ok(not tmps(), f"{signal.Signals(sig).name}: no *.tmp.* file left", str(tmps()))
            for t in tmps():
                os.unlink(t)
            os.unlink(path("ck.st"))

    elif a.case == "fifo_input":
        r = run([T, "init", "--out", path("p.st")])
        c.ok(r.rc == 0, "init", str(r))
        os.mkfifo(path("fifo"))
        for label, args in (("eval --load", ["eval", "--load", path("fifo"), "--data", a.data]),
                            ("sample --load", ["sample", "--load", path("fifo"), "--data", a.data]),
                            ("train --init", ["train", "--init", path("fifo"), "--data", a.data]),
                            ("train --resume", ["train", "--resume", path("fifo"), "--data", a.data]),
                            ("train --data", ["train", "--data", path("fifo")]),
                            ("grads --params", ["grads", "--params", path("fifo"), "--inputs", path("p.st"),
                                                "--out", path("g.st")])):
            if args[0] == "train":
                args += ["--steps", STEPS, "--save", path("ck.st"), "--log", path("l.csv"), "--plot", "",
                         "--samples", "0"]
            r = run([T] + args, timeout=20)
            c.ok(r.rc is not None and r.rc > 0 and "FIFO" in r.err and path("fifo") in r.err,
                 f"{label} a FIFO: refused at once, naming it", str(r))

    elif a.case == "plot":
        have_gnuplot = any(os.access(os.path.join(x, "gnuplot"), os.X_OK)
                           for x in os.environ.get("PATH", "").split(":") if x)
        if have_gnuplot:
            r = tr(path("ck.st"), "--plot", path("short.png"), log=path("l.csv"))
            c.ok(r.rc == 0 and "loss curve: " + path("short.png") in r.out, f"{STEPS} steps: a loss curve", str(r))
            c.ok(os.path.isfile(path("short.png")) and file_bytes(path("short.png"))[:4] == b"\x89PNG",
                 "it is a PNG with something in it")
            c.ok("warning" not in r.err, "without a warning", r.err)
        else:
            print("note: no gnuplot on PATH; the drawing itself is not tested")
        r = run([T, "train", "--steps", STEPS, "--checkpoint-every", "0", "--save", path("ck.st"),
                 "--log", path("l.csv"), "--plot", path("none.png"), "--samples", "0", "--data", a.data],
                env={**os.environ, "PATH": "/nonexistent"})
        c.ok(r.rc == 0 and "gnuplot is not installed" in r.err, "no gnuplot: said as such", str(r))
        c.ok(not os.path.exists(path("none.png")), "no gnuplot: no PNG file")
        os.makedirs(path("bin"))
        with open(path("bin/gnuplot"), "w") as f:
            f.write("#!/bin/sh\ncat > /dev/null\necho 'cannot draw today' >&2\nexit 1\n")
        os.chmod(path("bin/gnuplot"), 0o755)
        r = run([T, "train", "--steps", STEPS, "--checkpoint-every", "0", "--save", path("ck.st"),
                 "--log", path("l.csv"), "--plot", path("fail.png"), "--samples", "0", "--data", a.data],
                env={**os.environ, "PATH": path("bin") + ":" + os.environ.get("PATH", "")})
        c.ok(r.rc == 0 and "gnuplot failed" in r.err and "cannot draw today" in r.err,
             "a failing gnuplot: said, with its message", str(r))
        c.ok(not os.path.exists(path("fail.png")), "a failing gnuplot: no PNG file")
        c.ok(not tmps(), "no *.tmp.* file", str(tmps()))
    c.finish()


if __name__ == "__main__":
    main()
