"""The notebook's data and init cells in PyTorch (makemore part 4), shared by
the tests that compare the trainer with PyTorch and by bench/torch_step.py."""
import torch

import words

BLOCK, N_EMBD = 3, 10


def data(path):
    """random.seed(42), shuffle, 80/10/10: ((Xtr, Ytr), (Xdev, Ydev), (Xte, Yte)), vocab_size."""
    (tr, va, te), stoi = words.split(path)

    def build(ws):
        X, Y = [], []
        for w in ws:
            context = [0] * BLOCK
            for ch in w + ".":
                X.append(context)
                Y.append(stoi[ch])
                context = context[1:] + [stoi[ch]]
        return torch.tensor(X), torch.tensor(Y)

    return (build(tr), build(va), build(te)), len(stoi)


def init(n_hidden, vocab_size=27, seed=2147483647):
    """The init cell: [C, W1, b1, W2, b2, bngain, bnbias] and g, which the
    minibatches continue. The notebook draws bngain and bnbias from torch's
    default generator, which PyTorch seeds at random; here, as in the
    trainer, from a new torch.Generator()."""
    g = torch.Generator().manual_seed(seed)
    C = torch.randn((vocab_size, N_EMBD), generator=g)
    W1 = torch.randn((N_EMBD * BLOCK, n_hidden), generator=g) * (5 / 3) / ((N_EMBD * BLOCK) ** 0.5)
    b1 = torch.randn(n_hidden, generator=g) * 0.1
    W2 = torch.randn((n_hidden, vocab_size), generator=g) * 0.1
    b2 = torch.randn(vocab_size, generator=g) * 0.1
    default = torch.Generator()
    bngain = torch.randn((1, n_hidden), generator=default) * 0.1 + 1.0
    bnbias = torch.randn((1, n_hidden), generator=default) * 0.1
    return [C, W1, b1, W2, b2, bngain, bnbias], g
