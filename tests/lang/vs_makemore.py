#!/usr/bin/python3
"""Check the specs/mm_*.ninja specs against the author's makemore.py modules.

Usage:
    /usr/bin/python3 tests/lang/vs_makemore.py --makemore PATH/makemore.py [--seed S] SPEC.ninja...

For each spec named mm_<model>.ninja:
  1. Build the author's model (Bigram, MLP, RNN 'rnn', RNN 'gru', BoW,
     Transformer) from makemore.py with a ModelConfig made of the spec's dims,
     after torch.manual_seed(S): torch's own default init.
  2. Copy its state_dict into the spec's params by name: the key with '.' ->
     '_', the `transformer.` prefix dropped, the Blocks' `h.<i>.` params
     stacked along a leading dim (h_ln_1_weight[i]), Bigram's `logits` as
     self_logits. Registered buffers (the causal masks) are not params.
     Every spec param must be filled exactly once, every model param used.
  3. Make a batch as makemore's CharDataset does: random words of length 1 to
     block_size - 1 over 1..26, x = <START>=0, the word, 0 padding; y = the
     word, 0 (the end), then -1 padding.
  4. Run the author's model(x, y) and the spec's forward block (run_torch.py)
     on the same params and batch, backward both; the losses and every
     param's gradient must agree to float32 rounding (rtol 1e-5, atol 1e-6
     times the gradient's scale).

makemore.py imports torch.utils.tensorboard at the top; a stub stands in for
it when tensorboard is not installed (the models do not use it).
Exit status: 0 if all agree, 1 otherwise, 77 if torch or makemore.py is missing.
"""
import argparse
import importlib.util
import os
import re
import sys
import types
import warnings

try:
    import torch
except ImportError:
    print("vs_makemore: PyTorch is not installed; skipped", file=sys.stderr)
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_torch  # noqa: E402
from run_torch import oracle  # noqa: E402

warnings.filterwarnings("ignore", message=r"nn\.functional\.\w+ is deprecated")

MODELS = {  # spec name -> how makemore.py's main() builds the model
    "mm_bigram": lambda m, c: m.Bigram(c),
    "mm_mlp": lambda m, c: m.MLP(c),
    "mm_rnn": lambda m, c: m.RNN(c, cell_type="rnn"),
    "mm_gru": lambda m, c: m.RNN(c, cell_type="gru"),
    "mm_bow": lambda m, c: m.BoW(c),
    "mm_transformer": lambda m, c: m.Transformer(c),
}


def load_makemore(path):
    if "torch.utils.tensorboard" not in sys.modules:
        try:
            import torch.utils.tensorboard  # noqa: F401
        except ImportError:
            stub = types.ModuleType("torch.utils.tensorboard")
            stub.SummaryWriter = None
            sys.modules["torch.utils.tensorboard"] = stub
    spec = importlib.util.spec_from_file_location("makemore_reference", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def make_model(mm, name, dims):
    """makemore.py's model for spec mm_<model> (step 1), with a ModelConfig of the spec's dims."""
    config = mm.ModelConfig(block_size=dims["block_size"], vocab_size=dims["vocab_size"],
                            **{k: dims[k] for k in ("n_layer", "n_embd", "n_embd2", "n_head") if k in dims})
    return MODELS[name](mm, config)


def param_name(key):
    """The spec param (name, layer or None) of a state_dict key (see step 2)."""
    name = key.replace(".", "_")
    name = name[len("transformer_"):] if name.startswith("transformer_") else name
    name = "self_logits" if name == "logits" else name
    if m := re.fullmatch(r"h_(\d+)_(.+)", name):
        return "h_" + m[2], int(m[1])
    return name, None


def spec_params_from(model, spec, path):
    """Map the model's parameters onto the spec's params (see step 2)."""
    shapes = {n: shape for n, shape, _ in spec["params"]}
    out = {n: torch.zeros(shape) for n, shape in shapes.items()}
    filled = {n: set() for n in shapes}
    for key, p in model.named_parameters():
        name, layer = param_name(key)
        if name not in shapes:
            raise oracle.SpecError(f"{path}: the model's {key} has no param {name}")
        dst = out[name] if layer is None else out[name][layer]
        if list(dst.shape) != list(p.shape):
            raise oracle.SpecError(f"{path}: {key} is {list(p.shape)}, param {name} "
                                   f"{'' if layer is None else f'[{layer}] '}is {list(dst.shape)}")
        dst.copy_(p.detach())
        filled[name].add(layer)
    for n, layers in filled.items():
        want = {None} if shapes[n] == [] or not n.startswith("h_") else set(range(shapes[n][0]))
        if layers != want:
            raise oracle.SpecError(f"{path}: param {n} not filled from the model (got {sorted(map(str, layers))})")
    return {n: v.requires_grad_(True) for n, v in out.items()}


def makemore_batch(spec, seed):
    """x and y as CharDataset.__getitem__ makes them, for random words."""
    (xname, xshape, vocab), (yname, _, _) = spec["inputs"]
    b, t = xshape
    g = torch.Generator().manual_seed(seed + 7)
    x = torch.zeros(b, t, dtype=torch.long)
    y = torch.zeros(b, t, dtype=torch.long)
    for r in range(b):
        n = int(torch.randint(1, t, (1,), generator=g))
        word = torch.randint(1, vocab, (n,), generator=g)
        x[r, 1:1 + n] = word
        y[r, :n] = word
        y[r, n + 1:] = -1  # index -1 will mask the loss at the inactive locations
    return {xname: x, yname: y}


def check(path, mm, seed):
    name = os.path.splitext(os.path.basename(path))[0]
    text, spec = run_torch.load(path, {})
    torch.manual_seed(seed)
    model = make_model(mm, name, spec["dims"])
    params = spec_params_from(model, spec, path)
    batch = makemore_batch(spec, seed)
    _, ref = model(*[v.clone() for v in batch.values()])
    ref.backward()
    loss, _ = run_torch.run_forward(path, text, spec, params, batch)
    ok = torch.allclose(loss.detach(), ref.detach(), rtol=1e-5, atol=0)
    worst = ""
    for n, p in params.items():
        ref_grad = torch.zeros_like(p)
        for key, q in model.named_parameters():
            k = key.replace(".", "_").removeprefix("transformer_")
            k = "self_logits" if k == "logits" else k
            if m := re.fullmatch(r"h_(\d+)_(.+)", k):
                if "h_" + m[2] == n:
                    ref_grad[int(m[1])] = q.grad
            elif k == n:
                ref_grad = q.grad
        scale = max(1.0, ref_grad.abs().max().item())
        if not torch.allclose(p.grad, ref_grad, rtol=1e-5, atol=1e-6 * scale):
            ok = False
            worst += f" grad.{n} differs by {(p.grad - ref_grad).abs().max().item():g};"
    print(f"{name:16s} makemore {ref.item():.6f}  spec {loss.item():.6f}  "
          f"{'agree' if ok else 'DIFFER:' + worst}")
    return ok


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("specs", nargs="+")
    ap.add_argument("--makemore", required=True)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args(argv)
    if not os.path.exists(args.makemore):
        print(f"vs_makemore: {args.makemore} not found; skipped", file=sys.stderr)
        return 77
    mm = load_makemore(args.makemore)
    failed = 0
    for path in args.specs:
        name = os.path.splitext(os.path.basename(path))[0]
        if name not in MODELS:
            print(f"vs_makemore: {path}: not a makemore model spec", file=sys.stderr)
            failed += 1
            continue
        try:
            failed += not check(path, mm, args.seed)
        except (OSError, oracle.SpecError) as e:
            print(f"{name:16s} FAIL: {e}")
            failed += 1
    print(f"vs_makemore: {len(args.specs)} specs, {failed} failed (seed {args.seed})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
