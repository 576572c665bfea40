"""PyTorch side of the trainer tests: the notebook's data split and forward
passes, written from the notebook (makemore part 4) independently of ninjac
and of tests/oracle. Importing this module exits with 77 (ctest's
SKIP_RETURN_CODE for these tests) when PyTorch is missing."""
import os
import random
import sys

try:
    import torch
    import torch.nn.functional as F
except ImportError as e:  # depends on the machine
    print(f"SKIP: needs PyTorch ({e}); run with /usr/bin/python3")
    sys.exit(77)

# Tests run in parallel under ctest (and beside other builds): one thread
# each is faster than oversubscribed cores.
torch.set_num_threads(1)

from common import read

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "oracle"))
import st  # noqa: E402,F401  (tests/oracle/st.py, for the tests that import it from here)


def torch_tensors(path):
    """(dict name -> torch tensor, metadata) of a safetensors file."""
    import numpy as np
    kinds = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64}
    tensors, meta = read(path)
    out = {}
    for name, t in tensors.items():
        arr = np.frombuffer(t.data, dtype=np.dtype(kinds[t.dtype]).newbyteorder("<")).reshape(t.shape)
        out[name] = torch.from_numpy(arr.astype(arr.dtype.newbyteorder("="), copy=True))
    return out, meta


# ---------------------------------------------------------------- data

def notebook_splits(path, block_size=3):
    """Xtr, Ytr, Xdev, Ydev, Xte, Yte exactly as the notebook builds them."""
    with open(path) as f:
        words = f.read().splitlines()
    chars = sorted(set("".join(words)))
    stoi = {s: i + 1 for i, s in enumerate(chars)}
    stoi["."] = 0

    def build_dataset(ws):
        X, Y = [], []
        for w in ws:
            context = [0] * block_size
            for ch in w + ".":
                ix = stoi[ch]
                X.append(context)
                Y.append(ix)
                context = context[1:] + [ix]
        return torch.tensor(X), torch.tensor(Y)

    random.seed(42)
    random.shuffle(words)
    n1 = int(0.8 * len(words))
    n2 = int(0.9 * len(words))
    return build_dataset(words[:n1]) + build_dataset(words[n1:n2]) + build_dataset(words[n2:])


# ---------------------------------------------------------------- models

def params64(tensors):
    return {k: v.double() for k, v in tensors.items() if not k.startswith("stat.")}


def forward(model, P, X, Y=None, stats=None):
    """The spec's forward pass in PyTorch, as the notebook writes it.

    model: 'mlp_bn_fused' (specs/mlp_bn_fused.ninja) or 'mlp_bn'
    (specs/mlp_bn.ninja, any n_hidden). stats=None: batch statistics of this
    batch (training mode); otherwise the frozen statistics by name (keys
    without the 'stat.' prefix). Returns every named activation; 'loss' only
    when Y is given."""
    a = {}
    a["emb"] = P["C"][X]
    a["embcat"] = a["emb"].view(a["emb"].shape[0], -1)
    a["hprebn"] = a["embcat"] @ P["W1"] + P["b1"]
    n = X.shape[0]
    if model == "mlp_bn_fused":
        if stats is None:
            a["bnmean"] = a["hprebn"].mean(0, keepdim=True)
            a["bnvar"] = a["hprebn"].var(0, keepdim=True, unbiased=True)
            a["bnvar_inv"] = (a["bnvar"] + 1e-5) ** -0.5
            mean, inv = a["bnmean"], a["bnvar_inv"]
        else:
            mean, inv = stats["bnmean"], stats["bnvar_inv"]
        a["bnraw"] = (a["hprebn"] - mean) * inv
        a["hpreact"] = P["bngain"] * a["bnraw"] + P["bnbias"]
        a["h"] = torch.tanh(a["hpreact"])
        a["logits"] = a["h"] @ P["W2"] + P["b2"]
        if Y is not None:
            a["loss"] = F.cross_entropy(a["logits"], Y)
        return a
    if model != "mlp_bn":
        raise ValueError(f"no PyTorch forward for model {model!r}")
    if stats is None:
        a["bnmeani"] = 1 / n * a["hprebn"].sum(0, keepdim=True)
        a["bndiff"] = a["hprebn"] - a["bnmeani"]
        a["bndiff2"] = a["bndiff"] ** 2
        a["bnvar"] = 1 / (n - 1) * (a["bndiff2"]).sum(0, keepdim=True)
        a["bnvar_inv"] = (a["bnvar"] + 1e-5) ** -0.5
        inv = a["bnvar_inv"]
    else:
        a["bndiff"] = a["hprebn"] - stats["bnmeani"]
        inv = stats["bnvar_inv"]
    a["bnraw"] = a["bndiff"] * inv
    a["hpreact"] = P["bngain"] * a["bnraw"] + P["bnbias"]
    a["h"] = torch.tanh(a["hpreact"])
    a["logits"] = a["h"] @ P["W2"] + P["b2"]
    if Y is None:
        return a
    a["logit_maxes"] = a["logits"].max(1, keepdim=True).values
    a["norm_logits"] = a["logits"] - a["logit_maxes"]
    a["counts"] = a["norm_logits"].exp()
    a["counts_sum"] = a["counts"].sum(1, keepdims=True)
    a["counts_sum_inv"] = a["counts_sum"] ** -1
    a["probs"] = a["counts"] * a["counts_sum_inv"]
    a["logprobs"] = a["probs"].log()
    a["loss"] = -a["logprobs"][range(n), Y].mean()
    return a


def stat_names(model):
    """The statistics the notebook's calibration cell computes, per spec."""
    return {"mlp_bn_fused": ("bnmean", "bnvar", "bnvar_inv"),
            "mlp_bn": ("bnmeani", "bnvar", "bnvar_inv")}[model]


# Whole-split computations go in chunks of rows: a [182625, 200] float64
# tensor is 292 MB, and ops on such tensors are far slower than on chunks
# that stay in cache.
CHUNK = 8192


def hprebn_rows(P, X):
    """hprebn = embcat @ W1 + b1 for each chunk of rows of X."""
    for r0 in range(0, len(X), CHUNK):
        emb = P["C"][X[r0:r0 + CHUNK]]
        yield emb.view(emb.shape[0], -1) @ P["W1"] + P["b1"]


def full_batch_stats(P, X):
    """mean, unbiased var and rms of hprebn over all rows of X, in float64.
    One pass over shifted data (shift: the first chunk's mean), so the sums
    do not cancel: with |x - shift| ~ std the result is exact to ~1e-12."""
    with torch.no_grad():
        n, s1, s2, sq = len(X), 0, 0, 0
        shift = None
        for h in hprebn_rows(P, X):
            if shift is None:
                shift = h.mean(0, keepdim=True)
            s1 = s1 + (h - shift).sum(0, keepdim=True)
            s2 = s2 + ((h - shift) ** 2).sum(0, keepdim=True)
            sq = sq + (h ** 2).sum(0, keepdim=True)
        return shift + s1 / n, (s2 - s1 ** 2 / n) / (n - 1), (sq / n).sqrt()


def split_loss(model, P, X, Y, stats):
    """Mean loss over all rows with the statistics frozen, in chunks."""
    with torch.no_grad():
        total = 0.0
        for r0 in range(0, len(X), CHUNK):
            x, y = X[r0:r0 + CHUNK], Y[r0:r0 + CHUNK]
            total += forward(model, P, x, y, stats=stats)["loss"].item() * len(x)
        return total / len(X)
