"""Fit a linear model by gradient descent; deterministic, so reruns give identical bytes."""
import csv
import json
import os
import sys

data_dir, config_path, model_path = sys.argv[1], sys.argv[2], sys.argv[3]
# The config is YAML, but this stdlib-only demo reads the few values it needs by hand.
cfg = {}
for line in open(config_path):
    key, _, value = line.strip().partition(":")
    if value.strip() and not key.startswith("#"):
        cfg[key] = value.strip()
lr, epochs = float(cfg["lr"]), int(cfg["epochs"])
with open(os.path.join(data_dir, "train.csv")) as f:
    rows = [[float(v) for v in r] for r in list(csv.reader(f))[1:]]
xs = [r[:-1] for r in rows]
ys = [r[-1] / 1000.0 for r in rows]
w = [0.0] * len(xs[0])
b = 0.0
for epoch in range(epochs):
    gw, gb = [0.0] * len(w), 0.0
    for x, y in zip(xs, ys):
        err = sum(wi * xi for wi, xi in zip(w, x)) + b - y
        gw = [g + err * xi for g, xi in zip(gw, x)]
        gb += err
    w = [wi - lr * g / len(xs) for wi, g in zip(w, gw)]
    b -= lr * gb / len(xs)
loss = sum((sum(wi * xi for wi, xi in zip(w, x)) + b - y) ** 2 for x, y in zip(xs, ys)) / len(xs)
os.makedirs(os.path.dirname(model_path), exist_ok=True)
with open(model_path, "w") as f:
    json.dump({"weights": [round(v, 6) for v in w], "bias": round(b, 6)}, f, indent=2)
# The run id goes beside the model, not into it, so the model's bytes stay reproducible.
with open(model_path + ".run-id", "w") as f:
    f.write(os.environ.get("LINEAGE_RUN_ID", "") + "\n")
print(f"trained {epochs} epochs, train mse {loss:.2f} (k$^2)")
