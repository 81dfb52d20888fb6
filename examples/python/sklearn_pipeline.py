"""A scikit-learn pipeline (scaler + logistic regression) on the iris dataset, which ships
with scikit-learn: its params, the cross-validation score of each fold as a series, the test
accuracy, and the fitted model (pickled) declared as the output.

    pip install scikit-learn
    lineage run -- python examples/python/sklearn_pipeline.py --C 0.5 --out out/sk
    lineage show out/sk/model.pkl
"""

import argparse
import os
import pickle

import lineage_ml as lineage
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--C", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="out/sk")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    X, y = load_iris(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=args.seed)
    pipe = make_pipeline(StandardScaler(), LogisticRegression(C=args.C, max_iter=500))
    # Every param of the pipeline, as sklearn names them (`logisticregression__C`).
    for name, value in sorted(pipe.get_params(deep=True).items()):
        if isinstance(value, (int, float, str, bool)) or value is None:
            lineage.param(f"sklearn.{name}", value)

    for fold, score in enumerate(cross_val_score(pipe, X_train, y_train, cv=5)):
        lineage.metric("cv.accuracy", float(score), step=fold)
    pipe.fit(X_train, y_train)
    lineage.metric("test.accuracy", float(pipe.score(X_test, y_test)))

    model = os.path.join(args.out, "model.pkl")
    with open(model, "wb") as f:
        pickle.dump(pipe, f)
    lineage.output(model)
    print(f"test accuracy {pipe.score(X_test, y_test):.3f} run={lineage.run_id()}")


if __name__ == "__main__":
    main()
