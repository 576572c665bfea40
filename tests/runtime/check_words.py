#!/usr/bin/python3
"""makemore.py's CharDataset layout (runtime/data.c, data_load_words)
against makemore.py's own code path, under PyTorch.

Usage:
    /usr/bin/python3 tests/runtime/check_words.py --dump build/tests/runtime/dump_words \\
        --data data/names.txt --workdir DIR

For names.txt, for a small file with the white space, CRLF line ends,
form feeds and blank lines that makemore.py's strip() and splitlines()
take care of, and for a few seeds: `dump_words` writes data_load_words'
arrays; PyTorch computes makemore.py's (create_datasets after
torch.manual_seed(seed): strip, drop empty lines, sorted vocabulary,
test_set_size = min(1000, int(len(words) * 0.1)), torch.randperm, then
CharDataset.__getitem__ for every word in order); every array must be
identical, and so must the vocabulary. A file of 9 words, which leaves
makemore.py no training words, must be refused. Exits 1 on any failure,
77 without torch.
"""
import argparse
import os
import subprocess
import sys

try:
    import torch
except ImportError:
    print("skipped: this python3 has no torch")
    sys.exit(77)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "oracle"))
import st  # noqa: E402


def makemore_arrays(path, seed):
    """create_datasets and CharDataset of makemore.py, step for step."""
    torch.manual_seed(seed)
    with open(path, "r") as f:
        data = f.read()
    words = [w.strip() for w in data.splitlines()]
    words = [w for w in words if w]
    chars = sorted(list(set("".join(words))))
    max_word_length = max(len(w) for w in words)
    test_set_size = min(1000, int(len(words) * 0.1))
    rp = torch.randperm(len(words)).tolist()
    train_words = [words[i] for i in rp[:-test_set_size]]
    test_words = [words[i] for i in rp[-test_set_size:]]
    stoi = {ch: i + 1 for i, ch in enumerate(chars)}

    def item(word):   # CharDataset.__getitem__
        ix = torch.tensor([stoi[w] for w in word], dtype=torch.long)
        x = torch.zeros(max_word_length + 1, dtype=torch.long)
        y = torch.zeros(max_word_length + 1, dtype=torch.long)
        x[1:1 + len(ix)] = ix
        y[:len(ix)] = ix
        y[len(ix) + 1:] = -1
        return x, y

    out = {}
    for split, ws in (("train", train_words), ("test", test_words)):
        xs, ys = zip(*(item(w) for w in ws))
        out[split + ".X"], out[split + ".Y"] = torch.stack(xs), torch.stack(ys)
    return out, "." + "".join(chars)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dump", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--workdir", required=True)
    a = ap.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    messy = os.path.join(a.workdir, "messy.txt")
    with open(messy, "w", newline="") as f:
        f.write("  emma \r\nolivia\r\n\r\n\tava\x0cisabella\n\n   \nsophia\x1cmia\x0bcharlotte \namelia\n"
                "harper\nevelyn\nabigail\nemily\nelizabeth")
    few = os.path.join(a.workdir, "few.txt")
    with open(few, "w") as f:
        f.write("".join(f"{w}\n" for w in "ann bob cid dan eve fay gus hal ivy".split()))
    failures = 0
    for path, seeds in ((a.data, (3407, 1)), (messy, (3407, 42))):
        for seed in seeds:
            out = os.path.join(a.workdir, "words.st")
            r = subprocess.run([a.dump, path, str(seed), out], capture_output=True, text=True)
            if r.returncode != 0:
                print(f"FAIL: dump_words {path} {seed}: {r.stderr}")
                failures += 1
                continue
            got, meta = st.read(out)
            want, vocab = makemore_arrays(path, seed)
            bad = [k for k in want if not torch.equal(got[k].long(), want[k])]
            if meta.get("vocab") != vocab:
                bad.append(f"vocab {meta.get('vocab')!r} vs {vocab!r}")
            shapes = {k: list(v.shape) for k, v in want.items()}
            print(f"{'FAIL' if bad else 'ok'}: {os.path.basename(path)} seed {seed}: {shapes} "
                  f"{'differ: ' + str(bad) if bad else 'identical to makemore.py'}")
            failures += bool(bad)
    r = subprocess.run([a.dump, few, "3407", os.path.join(a.workdir, "few.st")], capture_output=True, text=True)
    refused = r.returncode == 1 and "too few words (9)" in r.stderr and not os.path.exists(
        os.path.join(a.workdir, "few.st"))
    print(f"{'ok' if refused else 'FAIL'}: 9 words (no training words in makemore.py's split) refused: {r.stderr.strip()}")
    failures += not refused
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
