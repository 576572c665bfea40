"""Shared helpers of the trainer's end-to-end tests (tests/trainer/).

Every test script:
  * takes --workdir DIR (a directory under the build tree that it empties
    first and removes at the end, kept only when NINJAC_KEEP_WORK=1), the
    trainer(s) under test as paths, and usually --data and --spec;
  * records every failed expectation with Checker (so one run reports all
    of them), prints "ok:" lines for the ones that held, and exits 1 if
    anything failed, 0 otherwise;
  * bounds every trainer run with a timeout; no expectation depends on how
    fast anything runs.

This module needs only the standard library (PyTorch takes seconds to
import); the tests that compare with PyTorch use torchref.py.
"""
import argparse
import atexit
import json
import os
import shutil
import struct
import subprocess
import sys

RUN_TIMEOUT = 60  # seconds; a trainer run that takes longer is a failure (hang)


# ---------------------------------------------------------------- checking

class Checker:
    def __init__(self, name):
        self.name = name
        self.failures = []

    def ok(self, cond, what, detail=""):
        if cond:
            print(f"ok: {what}")
        else:
            self.fail(what + (f"\n      {detail}" if detail else ""))
        return cond

    def fail(self, what):
        print(f"FAIL: {what}")
        self.failures.append(what)

    def finish(self):
        if self.failures:
            print(f"\n{self.name}: {len(self.failures)} expectation(s) failed:")
            for f in self.failures:
                print(f"  - {f.splitlines()[0]}")
            sys.exit(1)
        print(f"\n{self.name}: all expectations held")
        sys.exit(0)


def parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--workdir", required=True, help="scratch directory (emptied, then removed)")
    p.add_argument("--data", help="names.txt")
    p.add_argument("--spec", help="the .ninja spec the trainer was built from")
    return p


def workdir(path):
    """Empties path and removes it at exit unless NINJAC_KEEP_WORK=1."""
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    if os.environ.get("NINJAC_KEEP_WORK") != "1":
        atexit.register(shutil.rmtree, path, True)
    return path


# ---------------------------------------------------------------- running

class Result:
    def __init__(self, args, rc, out, err):
        self.args, self.rc, self.out, self.err = args, rc, out, err

    def __str__(self):
        cmd = " ".join(self.args)
        return f"$ {cmd}\n      rc={self.rc}\n      stdout: {self.out[-600:]!r}\n      stderr: {self.err[-600:]!r}"


def run(args, cwd=None, timeout=RUN_TIMEOUT, **kw):
    """Runs a command to completion; a timeout counts as rc None."""
    args = [str(a) for a in args]
    try:
        p = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, **kw)
        return Result(args, p.returncode, p.stdout, p.stderr)
    except subprocess.TimeoutExpired as e:
        return Result(args, None, str(e.stdout or ""), f"TIMEOUT after {timeout}s")


def train(trainer, d, save, steps, *extra, log=None, data=None):
    """`trainer train` with everything it writes inside d; no plot, no samples."""
    args = [trainer, "train", "--steps", steps, "--save", save,
            "--log", log or os.path.join(d, "loss.csv"), "--plot", "", "--samples", "0"]
    if data:
        args += ["--data", data]
    return run(args + list(extra))


# ---------------------------------------------------------------- files

class Tensor:
    """One tensor of a safetensors file: dtype name, shape, raw bytes."""
    SIZES = {"F32": 4, "F64": 8, "I32": 4, "I64": 8, "U64": 8}
    FORMATS = {"F32": "f", "F64": "d", "I32": "i", "I64": "q", "U64": "Q"}

    def __init__(self, dtype, shape, data):
        self.dtype, self.shape, self.data = dtype, list(shape), bytes(data)

    def values(self):
        n = len(self.data) // self.SIZES[self.dtype]
        return list(struct.unpack(f"<{n}{self.FORMATS[self.dtype]}", self.data))

    @classmethod
    def of(cls, dtype, shape, values):
        return cls(dtype, shape, struct.pack(f"<{len(values)}{cls.FORMATS[dtype]}", *values))

    def __eq__(self, other):
        return (self.dtype, self.shape, self.data) == (other.dtype, other.shape, other.data)


def read(path):
    """(dict name -> Tensor in file order, metadata dict) of a safetensors
    file; raises ValueError on anything malformed."""
    raw = file_bytes(path)
    if len(raw) < 8:
        raise ValueError(f"{path}: {len(raw)} bytes")
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise ValueError(f"{path}: header length {n} past the end")
    header = json.loads(raw[8:8 + n].decode())
    meta = header.pop("__metadata__", {})
    data = raw[8 + n:]
    tensors, covered = {}, 0
    for name, e in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"]):
        b, end = e["data_offsets"]
        count = 1
        for s in e["shape"]:
            count *= s
        if b != covered or end - b != count * Tensor.SIZES[e["dtype"]]:
            raise ValueError(f"{path}: tensor {name}: bad data_offsets {b, end}")
        tensors[name] = Tensor(e["dtype"], e["shape"], data[b:end])
        covered = end
    if covered != len(data):
        raise ValueError(f"{path}: {len(data) - covered} bytes after the last tensor")
    return tensors, meta


def write(path, tensors, meta=None):
    """Writes dict name -> Tensor (the reference layout: header padded to 8)."""
    header, blobs, off = {}, [], 0
    if meta:
        header["__metadata__"] = dict(meta)
    for name, t in tensors.items():
        header[name] = {"dtype": t.dtype, "shape": t.shape, "data_offsets": [off, off + len(t.data)]}
        blobs.append(t.data)
        off += len(t.data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def same_tensors(a, b, names=None):
    """Names whose dtype, shape or bytes differ (or that one side lacks)."""
    names = sorted(set(a) | set(b)) if names is None else names
    return [n for n in names if n not in a or n not in b or a[n] != b[n]]


def file_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def snapshot(d):
    """{name: bytes} of every file in d (not recursive)."""
    return {n: file_bytes(os.path.join(d, n)) for n in sorted(os.listdir(d))
            if os.path.isfile(os.path.join(d, n))}


# ---------------------------------------------------------------- specs

def spec_lines(spec):
    with open(spec) as f:
        return f.read().splitlines()


def assigned_names(spec):
    """Names assigned by the spec's forward lines, in order."""
    names = []
    for line in spec_lines(spec):
        code = line.split("#", 1)[0].strip()
        if not code or code.split()[0] in ("dim", "input", "param"):
            continue
        lhs = code.split("=", 1)[0].strip()
        if lhs.isidentifier():
            names.append(lhs)
    return names


def param_names(spec):
    return [line.split()[1].rstrip(":") for line in spec_lines(spec) if line.startswith("param ")]


def line_of(spec, name):
    """1-based line number of the line that assigns (or declares) name."""
    for no, line in enumerate(spec_lines(spec), 1):
        code = line.split("#", 1)[0].strip()
        if code.startswith(f"param {name}:") or code.split("=", 1)[0].strip() == name:
            return no
    raise KeyError(name)


