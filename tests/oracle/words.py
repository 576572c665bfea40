"""The notebook's split of the names, with the standard library only (the
trainer's tests import it without PyTorch)."""
import random


def split(path):
    """random.seed(42), shuffle, 80/10/10: (train, val, test) word lists, and
    stoi ('.' is 0, the characters in sorted order from 1)."""
    words = open(path).read().splitlines()
    chars = sorted(set("".join(words)))
    stoi = {s: i + 1 for i, s in enumerate(chars)}
    stoi["."] = 0
    random.seed(42)
    random.shuffle(words)
    n1, n2 = int(0.8 * len(words)), int(0.9 * len(words))
    return (words[:n1], words[n1:n2], words[n2:]), stoi
