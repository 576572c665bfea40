#!/usr/bin/python3
"""Corrupt or mismatched files are refused, and nothing is overwritten.

Bad files are given to the commands that read such files:
  eval --load F, train --resume F, train --init F, grads --params F
  (sample --load F for checkpoint contents, grads --inputs F for batches).
Each run must exit nonzero (not by a signal, not by hanging), print an error
on stderr that names F (and, where a reason is listed below, says it), and
leave every file in the work directory byte-identical -- in particular the
files the command would write, which exist beforehand: the --save target
and the --log of train, the --out of grads -- with no file added (no
checkpoint, no *.tmp.*, no plot).

Cases (--case), split so that each stays short under sanitizers too:
  format      a checkpoint damaged as a file: empty, truncated in the header
              or the data, one byte short or long, header length past the
              end or absurd, malformed JSON, JSON not an object; a missing
              file, a directory -- to all four commands
  params      a params file (init's output) whose tensors or metadata do not
              fit: F64 or I32, transposed shape, wrong rank, fewer rows, a
              missing or an extra tensor, renamed, another model or dims in
              the metadata, unknown format, versions 2 and 4, a NaN or an inf
              -- to eval, --init, grads
  checkpoint  a checkpoint with the same defects -- to eval and --resume
  checkpoint_meta  checkpoint contents: the calibrated flag vs the stat.*
              tensors, stats of the wrong shape, dtype or name, a NaN stat,
              step, batch_rng, loss_window_sum and vocab metadata -- to
              eval, sample and --resume; a params file given to --resume;
              and a good checkpoint with data whose characters differ from
              its vocab in the same number -- to eval, sample, --resume and
              --init
  checkpoint_adamw  an AdamW checkpoint's optimizer state: an unknown optim,
              missing, misshapen, non-finite or negative moments, moments
              in an SGD checkpoint, missing or out-of-range hyperparameters
              -- to eval, sample and --resume
  inputs      grads --inputs: values outside [0, vocab) (27, -1, 2^32),
              wrong dtype, shape or rank, missing or extra tensor, damaged
  other_spec  files of another spec: mlp_bn's (n_hidden 64 or 200; same
              tensor names) for mlp_bn_fused and the other way round
  other_dims  the same spec at other dims: mlp_bn (n_hidden=64) vs
              mlp_bn_h200, both ways
  (other_spec and other_dims need --fused, --atomic and --h200.)
"""
import os
import re
import shutil
import struct

from common import Checker, Tensor, parser, read, run, write, workdir


def snapshot_tree(d):
    """Every file and directory under d: the bytes of the files directly in
    d (the outputs a command could write), size, mtime and inode of the rest."""
    out = {}
    for root, dirs, files in os.walk(d):
        for n in files + dirs:
            path = os.path.join(root, n)
            s = os.stat(path)
            out[os.path.relpath(path, d)] = (s.st_size, s.st_mtime_ns, s.st_ino, n in dirs)
            if root == d and n in files:
                with open(path, "rb") as f:
                    out[n] += (f.read(),)
    return out


class Bench:
    """A trainer under test with its own pre-existing output files."""

    def __init__(self, c, d, trainer, data):
        self.c, self.d, self.T, self.data = c, d, trainer, data
        os.makedirs(d)
        self.p = lambda n: os.path.join(d, n)  # noqa: E731
        self.ok = True
        r = run([trainer, "train", "--steps", "100", "--checkpoint-every", "0", "--save", self.p("good.st"),
                 "--log", self.p("out.csv"), "--plot", "", "--samples", "0", "--data", data])
        self.ok &= c.ok(r.rc == 0, f"{os.path.basename(trainer)}: a good checkpoint", str(r))
        r = run([trainer, "init", "--seed", "3", "--out", self.p("params.st")])
        self.ok &= c.ok(r.rc == 0, f"{os.path.basename(trainer)}: a good params file", str(r))
        if not self.ok:
            return
        _, meta = read(self.p("params.st"))
        dims = dict(kv.split("=") for kv in meta["dims"].split())
        n, block, vocab = int(dims["n"]), int(dims["block_size"]), int(dims["vocab_size"])
        self.vocab = vocab
        xs = [(7 * i + 3) % vocab for i in range(n * block)]
        ys = [(5 * i + 1) % vocab for i in range(n)]
        self.batch = {"Xb": Tensor.of("I64", [n, block], xs), "Yb": Tensor.of("I64", [n], ys)}
        write(self.p("batch.st"), self.batch)
        r = run([trainer, "grads", "--params", self.p("params.st"), "--inputs", self.p("batch.st"),
                 "--out", self.p("grads.st")])
        self.ok &= c.ok(r.rc == 0, f"{os.path.basename(trainer)}: good grads output", str(r))
        shutil.copy(self.p("good.st"), self.p("out.st"))
        os.makedirs(self.p("bad"))
        # The refusing runs read a small data file with the same vocabulary:
        # the data is loaded before the file under test, and loading all of
        # names.txt 150 times would dominate the test's time.
        with open(data) as f:
            words = f.read().splitlines()
        alphabet, chosen = set("".join(words)), []
        for w in words:
            if set(w) - set("".join(chosen)):
                chosen.append(w)
            if set("".join(chosen)) == alphabet:
                break
        with open(self.p("small.txt"), "w") as f:
            f.write("\n".join(chosen * 4) + "\n")
        self.small = self.p("small.txt")

    def site(self, label, data=None):
        """argv builder of the command that reads the bad file."""
        p, T, data = self.p, self.T, ["--data", data or self.small]
        train = ["--steps", "150", "--checkpoint-every", "50", "--save", p("out.st"), "--log", p("out.csv"),
                 "--plot", p("plot.png"), "--samples", "1"] + data
        return {"eval --load": lambda f: [T, "eval", "--load", f] + data,
                "sample --load": lambda f: [T, "sample", "--load", f, "-n", "1"] + data,
                "train --resume": lambda f: [T, "train", "--resume", f] + train,
                "train --init": lambda f: [T, "train", "--init", f] + train,
                "grads --params": lambda f: [T, "grads", "--params", f, "--inputs", p("batch.st"),
                                             "--out", p("grads.st")],
                "grads --inputs": lambda f: [T, "grads", "--params", p("params.st"), "--inputs", f,
                                             "--out", p("grads.st")]}[label]

    def refuse(self, name, path, sites, reason=None, data=None):
        """Every site must refuse path (read with data, by default the small
        file); reason: a regex the message must match."""
        before = snapshot_tree(self.d)
        for label in sites:
            r = run(self.site(label, data)(path))
            after = snapshot_tree(self.d)
            changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
            problems = []
            if r.rc is None:
                problems.append("hung")
            elif r.rc == 0:
                problems.append("exit status 0")
            elif r.rc < 0:
                problems.append(f"killed by signal {-r.rc}")
            if path not in r.err:
                problems.append("stderr does not name the file")
            if "error" not in r.err.lower():
                problems.append("stderr says no 'error'")
            if reason and not re.search(reason, r.err, re.I):
                problems.append(f"stderr does not say /{reason}/")
            if changed:
                problems.append(f"files changed or appeared: {changed}")
                before = after
            self.c.ok(not problems, f"{os.path.basename(self.T)} {label} refuses {name}",
                      "; ".join(problems) + f"\n      {r}")


def corrupt_common(b, base, kind):
    """Corruptions any safetensors file can have; base is a good file."""
    raw = open(base, "rb").read()
    (hlen,) = struct.unpack("<Q", raw[:8])
    header = raw[8:8 + hlen]
    out = []

    def put(name, data, reason=None):
        path = os.path.join(b.d, "bad", f"{kind}_{name}.st")
        with open(path, "wb") as f:
            f.write(data)
        out.append((name, path, reason))

    put("empty", b"", r"bytes")
    put("truncated_in_header", raw[:8 + hlen // 2], r"header length|truncated")
    put("truncated_in_data", raw[:(8 + hlen + len(raw)) // 2], r"past the end|data")
    put("one_byte_short", raw[:-1], r"past the end|data")
    put("one_byte_long", raw + b"\0", r"data")
    put("header_length_past_end", struct.pack("<Q", len(raw)) + raw[8:], r"header length")
    put("header_length_huge", struct.pack("<Q", 1 << 62) + raw[8:], r"header length")
    put("malformed_json", raw[:8] + header.replace(b":", b";", 1) + raw[8 + hlen:], r"JSON")
    put("json_not_object", struct.pack("<Q", 8) + b"[1,2,3] " + raw[8 + hlen:], r"object")
    out.append(("a missing file", os.path.join(b.d, "bad", "no_such_file.st"), r"no such file|cannot open"))
    out.append(("a directory", os.path.join(b.d, "bad"), r"directory|regular file"))
    return out


def corrupt_tensors(b, base, kind):
    """Well-formed files whose tensors or metadata do not fit the spec."""
    t, meta = read(base)
    out = []

    def put(name, tensors, m=meta, reason=None):
        path = os.path.join(b.d, "bad", f"{kind}_{name}.st")
        write(path, tensors, m)
        out.append((name, path, reason))

    def f64(x):
        return Tensor.of("F64", x.shape, x.values())

    params = [k for k in t if not k.startswith("stat.")]
    hidden = t["b1"].shape[0]
    put("all_F64", {k: f64(v) for k, v in t.items()}, reason=r"F64")
    put("W1_F64", {k: (f64(v) if k == "W1" else v) for k, v in t.items()}, reason=r"F64")
    put("W1_I32", {k: (Tensor("I32", v.shape, v.data) if k == "W1" else v) for k, v in t.items()}, reason=r"I32")
    put("W1_transposed_shape", {k: (Tensor(v.dtype, v.shape[::-1], v.data) if k == "W1" else v)
                                for k, v in t.items()}, reason=r"shape")
    put("b1_rank_2", {k: (Tensor(v.dtype, [1, hidden], v.data) if k == "b1" else v) for k, v in t.items()},
        reason=r"shape")
    put("C_fewer_rows", {k: (Tensor(v.dtype, [v.shape[0] - 1, v.shape[1]], v.data[:-4 * v.shape[1]])
                             if k == "C" else v) for k, v in t.items()}, reason=r"shape")
    put("missing_b2", {k: v for k, v in t.items() if k != "b2"}, reason=r"b2")
    put("missing_all_params", {k: v for k, v in t.items() if k not in params}, reason=r"no tensor|has no")
    put("extra_tensor", dict(t, extra=Tensor.of("F32", [2], [1.0, 2.0])), reason=r"extra")
    put("extra_param_like", dict(t, W3=Tensor.of("F32", [2], [1.0, 2.0])), reason=r"W3")
    put("renamed_W1", {("W1x" if k == "W1" else k): v for k, v in t.items()}, reason=r"W1")
    put("other_model", t, dict(meta, model="mlp_other"), reason=r"mlp_other")
    put("other_dims", t, dict(meta, dims=meta["dims"].replace("n_embd=10", "n_embd=12")), reason=r"dims")
    put("unknown_format", t, dict(meta, format="pytorch-state-dict"), reason=r"format|pytorch")
    put("format_version_2", t, dict(meta, version="2"), reason=r"version")
    put("format_version_4", t, dict(meta, version="4"), reason=r"version")

    def poke(name, index, value):
        x = t[name].values()
        x[index] = value
        return dict(t, **{name: Tensor.of("F32", t[name].shape, x)})
    put("W1_nan", poke("W1", 7, float("nan")), reason=r"non-finite.*W1\[7\]")
    put("b1_inf", poke("b1", 0, float("-inf")), reason=r"non-finite.*b1\[0\] = -inf")
    return out


def corrupt_checkpoint(b, base):
    t, meta = read(base)
    stats = [k for k in t if k.startswith("stat.")]
    out = []

    def put(name, tensors, m, reason=None):
        path = os.path.join(b.d, "bad", f"checkpoint_{name}.st")
        write(path, tensors, m)
        out.append((name, path, reason))

    put("calibrated_without_stats", {k: v for k, v in t.items() if k not in stats}, meta, r"stat")
    put("calibrated_missing_one_stat", {k: v for k, v in t.items() if k != stats[-1]}, meta, r"stat")
    put("stats_but_not_calibrated", t, dict(meta, calibrated="0"), r"calibrated|stat")
    put("stat_wrong_shape", {k: (Tensor(v.dtype, v.shape[::-1], v.data) if k == stats[0] else v)
                             for k, v in t.items()}, meta, r"shape")
    put("stat_F64", {k: (Tensor.of("F64", v.shape, v.values()) if k == stats[0] else v) for k, v in t.items()},
        meta, r"F64")
    put("unknown_stat", dict(t, **{"stat.nonsense": Tensor.of("F32", [1], [0.0])}), meta, r"nonsense")
    put("no_step", t, {k: v for k, v in meta.items() if k != "step"}, r"step")
    put("step_not_a_number", t, dict(meta, step="twelve"), r"step")
    put("no_batch_rng", t, {k: v for k, v in meta.items() if k != "batch_rng"}, r"batch_rng")
    put("batch_rng_short", t, dict(meta, batch_rng="1 2 3"), r"batch_rng")
    put("batch_rng_xoshiro_words", t, dict(meta, batch_rng=" ".join(["0123456789abcdef"] * 4)), r"batch_rng")
    good = meta["batch_rng"]  # "seed S draws N index I mt" and 624 words of 8 hex digits
    put("batch_rng_without_state", t, dict(meta, batch_rng="seed 1 draws 5"), r"batch_rng")
    put("batch_rng_negative_draws", t, dict(meta, batch_rng=good.replace(" draws ", " draws -", 1)), r"batch_rng")
    put("batch_rng_index_625", t, dict(meta, batch_rng=re.sub(r"index \d+", "index 625", good)), r"batch_rng")
    put("batch_rng_word_short", t, dict(meta, batch_rng=good[:-1]), r"batch_rng")
    put("batch_rng_word_not_hex", t, dict(meta, batch_rng=good[:-1] + "g"), r"batch_rng")
    put("batch_rng_623_words", t, dict(meta, batch_rng=good[:-9]), r"batch_rng")
    put("batch_rng_625_words", t, dict(meta, batch_rng=good + " 00000000"), r"batch_rng")
    put("batch_rng_all_zero", t, dict(meta, batch_rng=good.split(" mt ")[0] + " mt" + " 00000000" * 624), r"batch_rng")
    put("batch_rng_draws_overflow", t, dict(meta, batch_rng=re.sub(r"draws \d+", "draws 99999999999999999999",
                                                                     good)), r"batch_rng")
    put("batch_rng_seed_negative", t, dict(meta, batch_rng=re.sub(r"^seed \d+", "seed -1", good)), r"batch_rng")
    put("no_loss_window_sum", t, {k: v for k, v in meta.items() if k != "loss_window_sum"}, r"loss_window_sum")
    put("loss_window_sum_nan", t, dict(meta, loss_window_sum="nan"), r"loss_window_sum")
    put("loss_window_sum_inf", t, dict(meta, loss_window_sum="inf"), r"loss_window_sum")
    # draws one below INT64_MAX: counting on would overflow a signed integer
    put("batch_rng_draws_int64_max", t, dict(meta, batch_rng=re.sub(r"draws \d+", "draws 9223372036854775806",
                                                                      good)), r"batch_rng")
    # mt19937 reads only the top bit of word 0: with it clear and the other
    # 623 words zero, the generator only ever outputs 0
    put("batch_rng_degenerate", t, dict(meta, batch_rng=good.split(" mt ")[0] + " mt 7fffffff" + " 00000000" * 623),
        r"batch_rng")
    x = t[stats[0]].values()
    x[1] = float("nan")
    put("stat_nan", dict(t, **{stats[0]: Tensor.of("F32", t[stats[0]].shape, x)}), meta,
        r"non-finite.*" + re.escape(stats[0][len("stat."):]) + r"\[1\]")
    vocab = meta.get("vocab", "." + "".join(sorted(set(open(b.small).read()) - {"\n"})))
    put("no_vocab", t, {k: v for k, v in meta.items() if k != "vocab"}, r"vocab")
    put("vocab_without_dot", t, dict(meta, vocab=vocab[1:]), r"vocab")
    put("vocab_unsorted", t, dict(meta, vocab="." + vocab[:0:-1]), r"vocab")
    return out


def corrupt_adamw(b, base):
    t, meta = read(base)
    moments = [k for k in t if k.startswith("adamw.")]
    out = []

    def put(name, tensors, m, reason):
        path = os.path.join(b.d, "bad", f"adamw_{name}.st")
        write(path, tensors, m)
        out.append((name, path, reason))

    first, second = [k for k in moments if k.startswith("adamw.exp_avg.")][0], \
        [k for k in moments if k.startswith("adamw.exp_avg_sq.")][0]
    put("optim_adam", t, dict(meta, optim="adam"), r"optim 'adam'")
    put("no_moments", {k: v for k, v in t.items() if k not in moments}, meta, r"exp_avg")
    put("missing_exp_avg_sq", {k: v for k, v in t.items() if k != second}, meta, re.escape(second))
    put("moments_in_sgd_checkpoint", t, dict(meta, optim="sgd"), r"AdamW moments")
    put("moments_without_optim", t, {k: v for k, v in meta.items() if k != "optim"}, r"AdamW moments")
    put("moment_wrong_shape", {k: (Tensor(v.dtype, v.shape[::-1] + [1], v.data) if k == first else v)
                               for k, v in t.items()}, meta, r"shape")
    x = t[second].values()
    x[2] = -1.0
    put("exp_avg_sq_negative", dict(t, **{second: Tensor.of("F32", t[second].shape, x)}), meta, r"negative")
    x = t[first].values()
    x[0] = float("inf")
    put("exp_avg_inf", dict(t, **{first: Tensor.of("F32", t[first].shape, x)}), meta, r"non-finite.*moment")
    put("no_beta1", t, {k: v for k, v in meta.items() if k != "adamw.beta1"}, r"adamw\.beta1")
    put("beta2_one", t, dict(meta, **{"adamw.beta2": "0x1p+0"}), r"betas")
    put("eps_zero", t, dict(meta, **{"adamw.eps": "0x0p+0"}), r"eps")
    put("lr_nan", t, dict(meta, **{"adamw.lr": "nan"}), r"adamw\.lr")
    put("lr_decay_step_negative", t, dict(meta, **{"adamw.lr_decay_step": "-1"}), r"lr_decay_step")
    put("weight_decay_negative", t, dict(meta, **{"adamw.weight_decay": "-0x1p-7"}), r"weight-decay")
    return out


def inputs_case(b):
    site = ["grads --inputs"]
    X, Y = b.batch["Xb"], b.batch["Yb"]
    xs, ys = X.values(), Y.values()
    vocab = b.vocab

    def put(name, tensors, reason):
        path = b.p(f"bad/inputs_{re.sub('[^A-Za-z0-9]+', '_', name)}.st")
        write(path, tensors)
        b.refuse(name, path, site, reason)

    def with_x(i, v, dtype="I64"):
        vs = list(xs)
        vs[i] = v
        return {"Xb": Tensor.of(dtype, X.shape, vs), "Yb": Y}

    put(f"Xb value {vocab}", with_x(4, vocab), rf"Xb.*{vocab}")
    put("Xb value -1", with_x(0, -1), r"Xb.*-1")
    put("Xb value -1 (I32)", with_x(len(xs) - 1, -1, "I32") | {"Yb": Tensor.of("I32", Y.shape, ys)},
        r"Xb.*-1")
    put("Xb value 2^32 (wraps to 0 as int32)", with_x(2, 1 << 32), r"Xb.*4294967296")
    put("Xb value 2^63-1", with_x(3, (1 << 63) - 1), r"Xb")
    put(f"Yb value {vocab}", {"Xb": X, "Yb": Tensor.of("I64", Y.shape, ys[:-1] + [vocab])}, rf"Yb.*{vocab}")
    put("Yb value -1", {"Xb": X, "Yb": Tensor.of("I64", Y.shape, [-1] + ys[1:])}, r"Yb.*-1")
    put("Xb F32", {"Xb": Tensor.of("F32", X.shape, [float(v) for v in xs]), "Yb": Y}, r"F32")
    put("Yb F64", {"Xb": X, "Yb": Tensor.of("F64", Y.shape, [float(v) for v in ys])}, r"F64")
    put("Xb U64", {"Xb": Tensor("U64", X.shape, X.data), "Yb": Y}, r"U64")
    put("Xb one row short", {"Xb": Tensor("I64", [X.shape[0] - 1, X.shape[1]],
                                          X.data[:-8 * X.shape[1]]), "Yb": Y}, r"shape")
    put("Xb rank 3", {"Xb": Tensor("I64", X.shape + [1], X.data), "Yb": Y}, r"shape")
    put("Xb transposed", {"Xb": Tensor("I64", X.shape[::-1], X.data), "Yb": Y}, r"shape")
    put("Yb rank 2", {"Xb": X, "Yb": Tensor("I64", Y.shape + [1], Y.data)}, r"shape")
    put("missing Yb", {"Xb": X}, r"Yb")
    put("no tensors", {}, r"Xb")
    put("extra tensor Zb", {"Xb": X, "Yb": Y, "Zb": Y}, r"Zb")
    for name, path, reason in corrupt_common(b, b.p("batch.st"), "inputs"):
        b.refuse(name, path, site, reason)


ALL = ["eval --load", "train --resume", "train --init", "grads --params"]
PARAMS = ["eval --load", "train --init", "grads --params"]


def main():
    p = parser(__doc__)
    p.add_argument("--trainer", help="the trainer under test (format ... inputs)")
    p.add_argument("--fused", help="mlp_bn_fused (other_spec, other_dims)")
    p.add_argument("--atomic", help="mlp_bn")
    p.add_argument("--h200", help="mlp_bn_h200")
    p.add_argument("--case", required=True, choices=["format", "params", "checkpoint", "checkpoint_meta",
                                                     "checkpoint_adamw", "inputs", "other_spec", "other_dims"])
    a = p.parse_args()
    d = workdir(a.workdir)
    c = Checker(f"bad_files.{a.case}")

    if a.case in ("format", "params", "checkpoint", "checkpoint_meta", "checkpoint_adamw", "inputs"):
        b = Bench(c, os.path.join(d, "t"), a.trainer, a.data)
        if not b.ok:
            c.finish()
        if a.case == "format":
            for name, path, reason in corrupt_common(b, b.p("good.st"), "format"):
                b.refuse(name, path, ALL, reason)
        elif a.case == "params":
            for name, path, reason in corrupt_tensors(b, b.p("params.st"), "params"):
                b.refuse(name, path, PARAMS, reason)
        elif a.case == "checkpoint":
            for name, path, reason in corrupt_tensors(b, b.p("good.st"), "checkpoint"):
                b.refuse(name, path, ["eval --load", "train --resume"], reason)
        elif a.case == "checkpoint_adamw":
            r = run([a.trainer, "train", "--optim", "adamw", "--steps", "100", "--checkpoint-every", "0", "--save",
                     b.p("adamw.st"), "--log", b.p("adamw.csv"), "--plot", "", "--samples", "0", "--data", a.data])
            if c.ok(r.rc == 0, "an AdamW checkpoint", str(r)):
                for name, path, reason in corrupt_adamw(b, b.p("adamw.st")):
                    b.refuse(name, path, ["eval --load", "sample --load", "train --resume"], reason)
        elif a.case == "checkpoint_meta":
            for name, path, reason in corrupt_checkpoint(b, b.p("good.st")):
                b.refuse(name, path, ["eval --load", "sample --load", "train --resume"], reason)
            b.refuse("a params file (not a checkpoint)", b.p("params.st"), ["train --resume"], r"checkpoint")
            # 'q' becomes 'Q': as many characters, so only the vocab tells
            other = b.p("other_chars.txt")
            with open(b.small) as f, open(other, "w") as g:
                g.write(f.read().replace("q", "Q"))
            b.refuse("its checkpoint with data of other characters", b.p("good.st"),
                     ["eval --load", "sample --load", "train --resume", "train --init"], r"characters", data=other)
        else:
            inputs_case(b)
    else:
        if not (a.fused and a.atomic and a.h200):
            p.error(f"--case {a.case} needs --fused, --atomic and --h200")
        if a.case == "other_spec":
            # (the files' source, the trainer given them, what the message must say)
            why = [("atomic", "fused", r"mlp_bn"), ("h200", "fused", r"mlp_bn"),
                   ("fused", "h200", r"mlp_bn_fused"), ("fused", "atomic", r"mlp_bn_fused")]
        else:
            why = [("atomic", "h200", r"dims|n_hidden"), ("h200", "atomic", r"dims|n_hidden")]
        paths = {"fused": a.fused, "atomic": a.atomic, "h200": a.h200}
        names = sorted({x for w in why for x in w[:2]})
        benches = {k: Bench(c, os.path.join(d, k), paths[k], a.data) for k in names}
        if not all(b.ok for b in benches.values()):
            c.finish()
        for src, dst, reason in why:
            s, t = benches[src], benches[dst]
            t.refuse(f"{src}'s checkpoint", s.p("good.st"), ALL, reason)
            t.refuse(f"{src}'s params", s.p("params.st"), PARAMS, reason)
            # Without metadata only the shapes can tell: h200 and fused share all of them.
            if {src, dst} != {"h200", "fused"}:
                tensors, _ = read(s.p("params.st"))
                path = t.p(f"bad/{src}_params_no_metadata.st")
                write(path, tensors)
                t.refuse(f"{src}'s params without metadata", path, ["train --init", "grads --params"], r"shape")
    c.finish()


if __name__ == "__main__":
    main()
