"""The tree of small files rows 3 and 4 of bench/targets.py and bench/floors.py time: `files`
files of 4-16 KiB of seeded random bytes, 200 a directory, so that both scripts, given the
same --work, measure the same bytes."""
import os
import random


def small_files(tree, files):
    """Make the tree at `tree` unless it is there already."""
    if os.path.isdir(tree):
        return
    rng = random.Random(19)
    for i in range(files):
        d = os.path.join(tree, f"d{i // 200:03}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i:05}.bin"), "wb") as f:
            f.write(rng.randbytes(rng.randint(4096, 16384)))
