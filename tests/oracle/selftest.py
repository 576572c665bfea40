#!/usr/bin/python3
"""Self-test of the oracle without a real trainer: /usr/bin/python3 tests/oracle/selftest.py

Checks the safetensors round trip, the spec parser (dims, -D overrides,
multi-line statements), the PyTorch forward on the notebook's exercise-1 spec,
and the whole oracle pipeline against fake_trainer.py: correct fakes must
pass, a perturbed gradient, a missing intermediate (with
--require-intermediates) and a failing trainer must make it exit 1.
"""
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import oracle  # noqa: E402
import st  # noqa: E402

EXAMPLE = """\
# the notebook's exercise 1
dim n = 32                  # batch size
dim block_size = 3
dim vocab_size = 27
dim n_embd = 10
dim n_hidden = 64
input Xb: int[n, block_size] < vocab_size    # integer input; values in [0, vocab_size)
input Yb: int[n] < vocab_size
param C: [vocab_size, n_embd] = randn()
param W1: [n_embd*block_size, n_hidden] = randn() * (5/3)/((n_embd*block_size)**0.5)
param b1: [n_hidden] = randn() * 0.1
param W2: [n_hidden, vocab_size] = randn() * 0.1
param b2: [vocab_size] = randn() * 0.1
param bngain: [1, n_hidden] = randn()*0.1 + 1.0
param bnbias: [1, n_hidden] = randn()*0.1

emb = C[Xb] # embed the characters into vectors
embcat = emb.view(emb.shape[0], -1) # concatenate the vectors
hprebn = embcat @ W1 + b1 # hidden layer pre-activation
bnmeani = 1/n*hprebn.sum(0, keepdim=True)
bndiff = hprebn - bnmeani
bndiff2 = bndiff**2
bnvar = 1/(n-1)*(bndiff2).sum(0, keepdim=True) # note: Bessel's correction
bnvar_inv = (bnvar + 1e-5)**-0.5
bnraw = bndiff * bnvar_inv
hpreact = bngain * bnraw + bnbias
h = torch.tanh(hpreact) # hidden layer
logits = h @ W2 + b2 # output layer
logit_maxes = logits.max(1, keepdim=True).values
norm_logits = logits - logit_maxes # subtract max for numerical stability
counts = norm_logits.exp()
counts_sum = counts.sum(1, keepdims=True)
counts_sum_inv = counts_sum**-1
probs = counts * counts_sum_inv
logprobs = probs.log()
loss = -logprobs[range(n), Yb].mean()
"""

# Dependent dims, constant inits, a statement spread over several lines.
SMALL = """\
dim n = 4
dim d = n*2 + 1             # depends on n
dim k = (d - 1) // 2
input X: int[n] < d
param E: [d, k] = randn()
param g: [k] = ones()
param z: [k] = zeros()
x = F.embedding(X,          # continued
                E) * g + z
loss = (x ** 2).mean(
)
"""

failures = []


def expect(cond, what):
    print(f"{'ok  ' if cond else 'FAIL'} {what}")
    if not cond:
        failures.append(what)


def test_safetensors(tmp):
    path = os.path.join(tmp, "rt.safetensors")
    ts = {"a": torch.randn(3, 4), "scalar": torch.tensor(2.5), "i32": torch.arange(5, dtype=torch.int32),
          "i64": torch.tensor([[-1, 2**40]]), "empty": torch.zeros(0, 3)}
    st.write(path, ts, {"k": "v"})
    back, meta = st.read(path)
    expect(meta == {"k": "v"}, "safetensors metadata round trip")
    expect(all(back[k].dtype == v.dtype and torch.equal(back[k], v) for k, v in ts.items())
           and set(back) == set(ts), "safetensors tensors round trip (F32, I32, I64, [], empty)")
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    hdr = json.loads(raw[8:8 + n])
    expect(n % 8 == 0 and hdr["a"] == {"dtype": "F32", "shape": [3, 4], "data_offsets": [0, 48]},
           "safetensors header padded to 8 and laid out as specified")


def test_parser():
    spec = oracle.parse_spec(EXAMPLE)
    expect(spec["dims"] == dict(n=32, block_size=3, vocab_size=27, n_embd=10, n_hidden=64),
           "example dims")
    expect([(n, s) for n, s, _ in spec["params"]][1] == ("W1", [30, 64])
           and spec["inputs"][0] == ("Xb", [32, 3], 27) and len(spec["forward"]) == 20,
           "example params, inputs, 20 forward lines")
    small = oracle.parse_spec(SMALL, {"n": 6})
    expect(small["dims"] == dict(n=6, d=13, k=6), "-D n=6 re-evaluates dependent dims")
    expect(len(small["forward"]) == 2 and "E) * g + z" in small["forward"][0][1],
           "multi-line statements are joined")
    for bad in ["dim m = q + 1", "dim m = 2.5"]:
        try:
            oracle.parse_spec(bad)
            expect(False, f"rejects '{bad}'")
        except oracle.SpecError:
            expect(True, f"rejects '{bad}'")
    try:
        oracle.parse_spec(SMALL, {"nope": 3})
        expect(False, "rejects -D for an undeclared dim")
    except oracle.SpecError:
        expect(True, "rejects -D for an undeclared dim")


def test_forward():
    spec = oracle.parse_spec(EXAMPLE)
    losses = []
    for seed in (1, 2, 3):
        params, inputs = oracle.make_data(spec, seed)
        ns, assigned = oracle.run_forward(spec, params, inputs)
        losses.append(ns["loss"].item())
        expect(all(ns[n].grad is not None for n, _, _ in spec["params"])
               and all(ns[n].grad is not None for n in oracle.float_intermediates(ns, assigned)),
               f"seed {seed}: every param and intermediate has a grad")
    expect(all(math.isfinite(x) and 3.0 < x < 3.7 for x in losses),
           f"example loss finite and ~3.3 at random init: {[round(x, 4) for x in losses]}")
    small = oracle.parse_spec(SMALL)
    params, inputs = oracle.make_data(small, 0)
    expect(not torch.equal(params["g"], torch.ones(3)) and (params["g"] - 1).abs().max() < 0.6,
           "constant init ones() is perturbed")
    expect(inputs["X"].dtype == torch.int64 and oracle.make_data(small, 1)[1]["X"].dtype == torch.int32,
           "inputs I64 for even seeds, I32 for odd")


def fake(tmp, spec_path, name, *opts):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(f'#!/bin/sh\nexec /usr/bin/python3 {os.path.join(HERE, "fake_trainer.py")} '
                f'--spec {spec_path} {" ".join(opts)} "$@"\n')
    os.chmod(path, 0o755)
    return path


def run_oracle(spec_path, trainer, *opts):
    cmd = [sys.executable, os.path.join(HERE, "oracle.py"), "--spec", spec_path, "--trainer", trainer, *opts]
    p = subprocess.run(cmd, capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def test_pipeline(tmp):
    ex = os.path.join(tmp, "example.ninja")
    sm = os.path.join(tmp, "small.ninja")
    open(ex, "w").write(EXAMPLE)
    open(sm, "w").write(SMALL)
    cases = [  # (what, spec, trainer options, oracle options, expected exit, expected text)
        ("fake trainer (float64) passes, I32 batch", ex, [], ["--seed", "1", "--require-intermediates"],
         0, "oracle: 46 tensors, 46 passed, 0 failed"),
        ("fake trainer passes, I64 batch, -D n=16", ex, ["-D n=16"],
         ["--seed", "2", "-D", "n=16", "--require-intermediates"], 0, "0 failed"),
        ("float32 fake, loss shape [], passes", ex, ["--float32 --scalar-loss"], ["--seed", "4"], 0, "0 failed"),
        ("small spec with -D and multi-line statements", sm, ["-D n=5"], ["-D", "n=5"], 0, "0 failed"),
        ("perturbed grad.W1 fails", ex, ["--perturb grad.W1"], ["--seed", "3"], 1, "1 failed"),
        ("perturbed grad.bnraw fails", ex, ["--perturb grad.bnraw"], [], 1, "1 failed"),
        ("perturbed act.logits fails", ex, ["--perturb act.logits"], [], 1, "1 failed"),
        ("perturbed loss fails", ex, ["--perturb loss"], [], 1, "1 failed"),
        ("no intermediates passes without --require-intermediates", ex, ["--no-intermediates"], [],
         0, "oracle: 8 tensors, 8 passed, 0 failed"),
        ("no intermediates fails with --require-intermediates", ex, ["--no-intermediates"],
         ["--require-intermediates"], 1, "MISSING"),
        ("dims mismatch (trainer n=16, oracle n=32): trainer rejects batch", ex, ["-D n=16"], [], 1,
         "trainer failed"),
        ("wrong shape of grad.W1 fails", ex, ["--flatten grad.W1"], [], 1, "shape mismatch"),
        ("failing trainer: exit 1 and its stderr shown", ex, ["--fail"], [], 1, "failing on purpose"),
    ]
    for i, (what, spec_path, topts, oopts, rc_want, text) in enumerate(cases):
        trainer = fake(tmp, spec_path, f"trainer{i}", *topts)
        rc, out = run_oracle(spec_path, trainer, "--workdir", os.path.join(tmp, f"wd{i}"), *oopts)
        ok = rc == rc_want and text in out
        expect(ok, f"oracle: {what}")
        if not ok or i == 0:
            print("    " + out.replace("\n", "\n    "))
    wd = os.path.join(tmp, "wd")
    rc, _ = run_oracle(ex, fake(tmp, ex, "trainer_wd"), "--workdir", wd)
    expect(rc == 0 and sorted(os.listdir(wd)) == ["B.safetensors", "G.safetensors", "P.safetensors"],
           "--workdir keeps P, B and G")


def main():
    with tempfile.TemporaryDirectory(prefix="ninjac-oracle-selftest-") as tmp:
        test_safetensors(tmp)
        test_parser()
        test_forward()
        test_pipeline(tmp)
    print(f"selftest: {len(failures)} failed" if failures else "selftest: all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
