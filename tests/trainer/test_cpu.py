#!/usr/bin/python3
"""A trainer built as an AVX2-only Zen 3 builds it runs on one (issue 10).

No session has had an AVX2-only machine, so qemu-x86_64 plays one: its
EPYC-Milan CPU model is a Zen 3, and qemu 7.2 emulates AVX2 and FMA but no
AVX-512 instruction. --trainer is mlp_bn_fused compiled with -march=znver3
and linked with the runtime compiled the same way (ninjac_runtime_zen3);
its kernels, the runtime's vector loops, libmvec and OpenBLAS (which picks
its kernels from the CPUID it sees) then all run as on that machine.

Checks:
  * control: on a machine with AVX-512, --avx512-probe (a program of a few
    AVX-512 instructions) runs here and dies under qemu's Zen 3: qemu does
    hide AVX-512, so the runs below would fail if the Zen 3 build executed
    one AVX-512 instruction;
  * `train` under qemu's Zen 3 writes the checkpoint and loss log that the
    same binary writes natively, byte for byte, and prints the same losses;
  * `eval` and `sample` of that checkpoint under qemu print what they
    print natively.

qemu is slow (tens of times); the work is sized for seconds natively, and
no expectation depends on how fast anything runs.
"""
import os
import re

from common import Checker, file_bytes, parser, run, workdir

QEMU_TIMEOUT = 900  # seconds: only catches a hang


def printed(out, *paths):
    """What a run printed, without timings and file names."""
    out = re.sub(r"steps in [0-9.]+ s", "steps in T s", out)
    out = re.sub(r"\([0-9]+ steps/s, ETA [0-9hms]+\)", "(speed)", out)
    out = re.sub(r"[0-9.]+ (ms|s)\b", "T", out)
    for k, path in enumerate(paths):
        out = out.replace(path, f"<file {k}>")
    return out


def main():
    p = parser(__doc__)
    p.add_argument("--trainer", required=True, help="mlp_bn_fused built for a Zen 3")
    p.add_argument("--avx512-probe", required=True, help="a program of AVX-512 instructions")
    p.add_argument("--qemu", required=True)
    p.add_argument("--cpu", default="EPYC-Milan")
    p.add_argument("--steps", default="200")
    a = p.parse_args()
    d = workdir(a.workdir)
    ck = Checker("cpu.zen3")
    qemu = [a.qemu, "-cpu", a.cpu]
    # Both runs take OpenBLAS's Haswell kernels, whatever this machine's
    # own environment says: the bytes compared are then the same code's.
    os.environ["OPENBLAS_CORETYPE"] = "Haswell"

    def train(prefix, trainer, tag):
        save, log = os.path.join(d, f"{tag}.safetensors"), os.path.join(d, f"{tag}.csv")
        args = [trainer, "train", "--steps", a.steps, "--seed", "7", "--save", save, "--log", log,
                "--plot", "", "--samples", "0", "--data", a.data]
        return run(prefix + args, timeout=QEMU_TIMEOUT), save, log

    with open("/proc/cpuinfo") as f:
        has_avx512 = re.search(r"\bavx512f\b", f.read()) is not None
    if has_avx512:
        r = run([a.avx512_probe])
        ck.ok(r.rc == 0, "control: the AVX-512 probe runs on this CPU", r)
        r = run(qemu + [a.avx512_probe], timeout=QEMU_TIMEOUT)
        ck.ok(r.rc not in (0, None), f"control: the AVX-512 probe dies on qemu's {a.cpu} (rc {r.rc}): "
              "the emulated CPU has no AVX-512", r)
    else:
        print("ok: (no control: this CPU has no AVX-512 either)")

    native, save_n, log_n = train([], a.trainer, "native")
    ck.ok(native.rc == 0, "the Zen 3 build trains natively", native)
    emulated, save_q, log_q = train(qemu, a.trainer, "zen3")
    ck.ok(emulated.rc == 0, f"the Zen 3 build trains on qemu's {a.cpu}", emulated)
    if native.rc != 0 or emulated.rc != 0:
        ck.finish()
    ck.ok(file_bytes(save_q) == file_bytes(save_n), "the checkpoint is the native run's, byte for byte")
    ck.ok(file_bytes(log_q) == file_bytes(log_n), "the loss log is the native run's, byte for byte")
    ck.ok(printed(emulated.out, save_q, log_q) == printed(native.out, save_n, log_n),
          "it prints the native run's losses", f"{emulated.out!r}\n      vs {native.out!r}")

    for cmd in (["eval", "--load", save_n, "--data", a.data], ["sample", "--load", save_n, "-n", "5"]):
        here = run([a.trainer] + cmd, timeout=QEMU_TIMEOUT)
        there = run(qemu + [a.trainer] + cmd, timeout=QEMU_TIMEOUT)
        ck.ok(here.rc == 0 and there.rc == 0 and printed(there.out) == printed(here.out),
              f"`{cmd[0]}` on qemu's {a.cpu} prints what it prints natively", f"{there}\n      vs {here}")
    ck.finish()


if __name__ == "__main__":
    main()
