"""Split the raw CSV into train and test sets with standardised features."""
import csv
import json
import os
import sys

raw, out_dir = sys.argv[1], sys.argv[2]
with open(raw) as f:
    rows = list(csv.DictReader(f))
features = ["sqft", "rooms", "age"]
stats = {}
for name in features:
    values = [float(r[name]) for r in rows]
    mean = sum(values) / len(values)
    std = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
    stats[name] = {"mean": mean, "std": std}
os.makedirs(out_dir, exist_ok=True)
for split, part in (("train", rows[:160]), ("test", rows[160:])):
    with open(os.path.join(out_dir, f"{split}.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(features + ["price"])
        for r in part:
            w.writerow([f"{(float(r[n]) - stats[n]['mean']) / stats[n]['std']:.6f}" for n in features]
                       + [r["price"]])
with open(os.path.join(out_dir, "stats.json"), "w") as f:
    json.dump(stats, f, indent=2, sort_keys=True)
print(f"prepared {len(rows)} rows into {out_dir}")
