"""A plain PyTorch-style training loop, standard library only (so it runs anywhere): a
linear model fitted by minibatch SGD on a synthetic dataset, the loss logged per step, a
checkpoint written and declared per epoch, the final model declared as the output.

    lineage run -- python examples/python/train_loop.py --epochs 3 --out out/loop
    lineage show out/loop/model.json

With torch installed the shape is the same: `loss.item()` for the metric, `torch.save`
then `lineage.output(path)` for each checkpoint.
"""

import argparse
import json
import os
import random

import lineage_ml as lineage


def batches(rows, size, rng):
    order = list(range(len(rows)))
    rng.shuffle(order)
    for start in range(0, len(order), size):
        yield [rows[i] for i in order[start : start + size]]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="out/loop")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    # The "dataset": y = 3x - 1 + noise, fixed by the seed.
    rng = random.Random(args.seed)
    rows = [(x, 3.0 * x - 1.0 + rng.gauss(0, 0.1)) for x in (rng.uniform(-1, 1) for _ in range(512))]
    lineage.param("data.rows", len(rows))

    w, b = 0.0, 0.0
    step = 0
    for epoch in range(args.epochs):
        for batch in batches(rows, args.batch_size, rng):
            grad_w = sum(2 * (w * x + b - y) * x for x, y in batch) / len(batch)
            grad_b = sum(2 * (w * x + b - y) for x, y in batch) / len(batch)
            w, b = w - args.lr * grad_w, b - args.lr * grad_b
            loss = sum((w * x + b - y) ** 2 for x, y in batch) / len(batch)
            lineage.metric("train.loss", loss, step=step)
            step += 1
        checkpoint = os.path.join(args.out, f"checkpoint-{epoch}.json")
        with open(checkpoint, "w") as f:
            json.dump({"epoch": epoch, "w": w, "b": b}, f)
        lineage.output(checkpoint)
        val = sum((w * x + b - y) ** 2 for x, y in rows) / len(rows)
        lineage.metric("val.mse", val, step=epoch)

    model = os.path.join(args.out, "model.json")
    with open(model, "w") as f:
        json.dump({"w": round(w, 6), "b": round(b, 6)}, f)
    lineage.output(model)
    print(f"w={w:.3f} b={b:.3f} val.mse={val:.4f} run={lineage.run_id()}")


if __name__ == "__main__":
    main()
