"""Score the model on the held-out split."""
import csv
import json
import os
import sys

model_path, data_dir, metrics_path = sys.argv[1], sys.argv[2], sys.argv[3]
model = json.load(open(model_path))
with open(os.path.join(data_dir, "test.csv")) as f:
    rows = [[float(v) for v in r] for r in list(csv.reader(f))[1:]]
errors = [abs(sum(w * x for w, x in zip(model["weights"], r[:-1])) + model["bias"] - r[-1] / 1000.0)
          for r in rows]
metrics = {"mae_k": round(sum(errors) / len(errors), 3), "n": len(rows)}
with open(metrics_path, "w") as f:
    json.dump(metrics, f, indent=2)
print(f"test MAE {metrics['mae_k']} k$ on {metrics['n']} houses")
