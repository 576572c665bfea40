#!/usr/bin/python3
"""`sample` in makemore.py's words layout against makemore.py's own
generate() and print_samples() under PyTorch, on the same checkpoint and seed.

Usage:
    /usr/bin/python3 tests/oracle/test_words_sample.py --trainer build/mm_rnn \\
        --spec specs/mm_rnn.ninja --makemore ../shared/reference/makemore.py \\
        --data data/names.txt [--steps 500] [--lr 1e-2] [--workdir DIR] [--break seed|temperature]

Trains --steps AdamW steps (--lr 1e-2 by default, stronger than makemore's
5e-4, so that the names have some structure and the cut at the first 0 is
met in most rows), then for each (seed, temperature, top-k) of
test_torch_sample.py runs `sample --load CKPT -n 20 --seed S` and, under
PyTorch, what runtime/trainer.c's sample_words claims to be:
  * the spec's makemore.py model (vs_makemore.make_model) with the
    checkpoint's params copied into its parameters (vs_makemore.param_name);
  * torch.manual_seed(S) just before print_samples(num=20): the trainer
    seeds a new generator with --seed, while makemore.py's print_samples
    draws from the default generator wherever the run left it (after the
    split, the init and the batches). The documented behaviour (README,
    "The trainer": "a generator seeded with --seed") is what is checked;
  * makemore.py's print_samples itself, on the module with its globals
    (args.top_k: -1 for none, as makemore's --top-k; train_dataset and
    test_dataset from create_datasets after torch.manual_seed(3407), the
    trainer's split; model), which calls generate(model, zeros(20, 1),
    max_word_length steps, do_sample=True): every row drawn at every step,
    each row cut at its first 0. print_samples passes no temperature; for
    --temperature the generate() it calls is wrapped to pass it (the
    trainer's --temperature is generate()'s).
Checks, per run: the trainer's 20 lines equal generate()'s rows, cut as
print_samples cuts them, row by row; and print_samples' printout (grouped
in train / in test / new) equals the printout of print_samples fed the
trainer's names instead of generate()'s. Both sides draw every q ~ Exp(1)
of torch.multinomial from the same mt19937 stream, rows in order, so only
a near tie between two p / q (float rounding of the model on either side)
could separate them; one differing name fails.

--break makes PyTorch's side wrong on purpose (the generator seeded S + 1,
or the temperature 10% high): the test must fail. Exit status: 0 if every
run agrees, 1 otherwise, 77 without torch or makemore.py.
"""
import argparse
import contextlib
import io
import os
import subprocess
import sys
import tempfile
import types

try:
    import torch
except ImportError:
    print("skipped: this python3 has no torch")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "lang"))
import st  # noqa: E402
import run_torch  # noqa: E402
import vs_makemore  # noqa: E402
from test_makemore_run import SEED, trainer_run  # noqa: E402
from test_torch_sample import OPTION_RUNS, SEEDS  # noqa: E402

COUNT = 20


def load_checkpoint(model, ckpt, spec):
    """Copy the checkpoint's spec params into the model's parameters."""
    used = set()
    with torch.no_grad():
        for key, p in model.named_parameters():
            name, layer = vs_makemore.param_name(key)
            src = ckpt[name] if layer is None else ckpt[name][layer]
            p.copy_(src.reshape(p.shape))
            used.add(name)
    missing = {n for n, _, _ in spec["params"]} - used
    if missing:
        raise SystemExit(f"params not in the model: {sorted(missing)}")


def run_print_samples(mm, generate):
    """makemore.py's print_samples(num=COUNT) with `generate` as its generate(); its printout."""
    mm.generate = generate
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        mm.print_samples(num=COUNT)
    return out.getvalue()


def trainer_sample(args, ckpt_path, seed, options):
    """The trainer's `sample`: its COUNT lines."""
    out = subprocess.run([args.trainer, "sample", "--load", ckpt_path, "-n", str(COUNT), "--seed", str(seed),
                          "--data", args.data] + options, check=True, capture_output=True, text=True).stdout
    lines = out.split("\n")
    if len(lines) < COUNT + 1:
        raise SystemExit(f"sample printed {len(lines) - 1} lines, not {COUNT}")
    return lines[:COUNT]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trainer", required=True)
    ap.add_argument("--spec", required=True)
    ap.add_argument("--makemore", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--workdir")
    ap.add_argument("--break", dest="brk", choices=("seed", "temperature"),
                    help="make PyTorch's side wrong on purpose (seed S + 1, temperature 10%% high): the test must fail")
    args = ap.parse_args()
    if not os.path.exists(args.makemore):
        print(f"skipped: {args.makemore} not found (cmake -DNINJAC_MAKEMORE_PY=PATH)")
        return 77
    torch.set_num_threads(1)
    work = args.workdir or tempfile.mkdtemp(prefix="ninjac-words-sample-")
    os.makedirs(work, exist_ok=True)
    ckpt_path, _, evals = trainer_run(args.trainer, work, args.steps, args.data, "run", "--lr", repr(args.lr))
    print(f"trainer: {args.steps} steps, lr {args.lr}: train loss {evals.get('train')}, test loss {evals.get('test')}")
    ckpt, _ = st.read(ckpt_path)

    mm = vs_makemore.load_makemore(args.makemore)
    _, spec = run_torch.load(args.spec, [])
    name = os.path.splitext(os.path.basename(args.spec))[0]
    model = vs_makemore.make_model(mm, name, spec["dims"])
    load_checkpoint(model, ckpt, spec)
    model.eval()
    torch.manual_seed(SEED)   # the trainer's split: makemore.py's create_datasets after its --seed
    with contextlib.redirect_stdout(io.StringIO()):
        mm.train_dataset, mm.test_dataset = mm.create_datasets(args.data)
    mm.model = model
    steps = mm.train_dataset.get_output_length() - 1
    original_generate = mm.generate

    failures = 0
    for seed, temperature, top_k in [(s, 1.0, 0) for s in SEEDS] + list(OPTION_RUNS):
        options = [] if (temperature, top_k) == (1.0, 0) else ["--temperature", str(temperature), "--top-k", str(top_k)]
        ours = trainer_sample(args, ckpt_path, seed, options)

        # PyTorch: makemore.py's print_samples, its generate() recorded
        mm.args = types.SimpleNamespace(device="cpu", top_k=top_k if top_k else -1)
        drawn = []

        def recording_generate(*a, **k):
            k["temperature"] = temperature * (1.1 if args.brk == "temperature" else 1)
            drawn.append(original_generate(*a, **k))
            return drawn[-1]

        torch.manual_seed(seed + (args.brk == "seed"))
        their_print = run_print_samples(mm, recording_generate)
        theirs = []
        for row in drawn[0][:, 1:].tolist():   # print_samples' cut
            row = row[:row.index(0)] if 0 in row else row
            theirs.append(mm.train_dataset.decode(row))

        # the trainer's names through the same print_samples
        rows = torch.zeros(COUNT, steps + 1, dtype=torch.long)
        for r, word in enumerate(ours):
            rows[r, 1:1 + len(word)] = mm.train_dataset.encode(word)
        our_print = run_print_samples(mm, lambda *a, **k: rows.clone())

        same = sum(a == b for a, b in zip(ours, theirs))
        print(f"seed {seed} {' '.join(options)}: {same}/{COUNT} names equal"
              f"{'' if our_print == their_print else ', print_samples differs'}: {' '.join(ours)}")
        if same != COUNT or our_print != their_print:
            print(f"  PyTorch: {' '.join(theirs)}")
            failures += 1
    mm.generate = original_generate
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
