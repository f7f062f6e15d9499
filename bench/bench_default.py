"""The default run against the best frozen-feature probe, over seeds (issue 28 §1).

    python bench/bench_default.py [--data clothing|sample|FOLDER] [--seeds 3] [--sizes 160,224,288]

For each seed, in a fresh workspace each (the run pays for its own feature passes): the advice for this
machine (its backbone, size and minutes), then ``python -m core train --dataset bench --seed S`` with every
other setting at its default, timed as a whole call (start to exit); the run's own training seconds,
validation and test accuracy, its size and fine-tuning epochs and the line that says why; then the same
saved model with flip-averaged predictions (test-time augmentation).

The probe, once per benchmark (frozen features do not depend on the seed): the advised backbone's
frozen features at each of ``--sizes``, a logistic regression on them (scikit-learn, standardised
features, C chosen by 5-fold cross-validation on the training split), its validation and test accuracy.

``sample`` is the bundled sample dataset (``python -m core sample-dataset``); ``clothing`` is
``../shared/data/clothing-small``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
CLOTHING = ROOT.parent / "shared" / "data" / "clothing-small"

from bench_tune import call  # noqa: E402  (a whole command-line call, timed)


def new_workspace(ws: Path, data: str, archive: Path | None) -> str:
    """A fresh workspace holding the benchmark's dataset; returns the dataset's name."""
    if data == "sample":
        call(ws, "sample-dataset")
        return "clothing-sample"
    call(ws, "import", str(archive), "--name", "bench")
    return "bench"


def run_row(ws: Path, dataset: str, seed: int) -> dict:
    from core.runs import store as runs
    from core.store.workspace import Workspace
    from core.training.advice import advise_dataset
    from core.training.plan import plan_line

    workspace = Workspace.open(ws)
    advice = advise_dataset(workspace, dataset)
    report, seconds = call(ws, "train", "--dataset", dataset, "--seed", str(seed))
    run = runs.get_run(workspace, report["run"])
    plan = run.device.get("plan", {})
    return {
        "seed": seed,
        "advice": {"backbone": advice.backbone, "size": advice.size, "minutes": advice.params["minutes"]},
        "size": run.config.size,
        "fine_tune_epochs": run.config.fine_tune_epochs,
        "epochs_run": run.epochs_run,
        "val_accuracy": report["val_accuracy"],
        "test_accuracy": report["test_accuracy"],
        "train_seconds": round(run.train_seconds, 1),
        "call_seconds": round(seconds, 1),
        "within_advice_20pct": run.train_seconds <= 1.2 * 60 * advice.params["minutes"],
        "plan": plan_line(plan, "en") or None,
        "sizes_tried": [{k: t[k] for k in ("size", "val_accuracy", "feature_s")} for t in plan.get("sizes", [])],
        "tta": tta(workspace, report["run"]),
    }


def tta(ws, run_id: str) -> dict[str, float]:
    """Validation and test accuracy of the run's saved model with flip-averaged predictions, computed (and
    stored) as the app computes them (``core.training.inference.predict_splits(flip=True)``)."""
    from core.training.inference import predict_splits

    found = predict_splits(ws, run_id, ("val", "test"), flip=True)
    return {f"{split}_accuracy": round(p.accuracy, 4) for split, p in found.items()}


def probe(ws: Path, dataset: str, backbone: str, sizes: list[int]) -> list[dict]:
    """A logistic regression on the frozen features at each size: the reference the default must beat."""
    import keras
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from core.runs.config import TrainConfig
    from core.store.workspace import Workspace
    from core.training import features
    from core.training.model import prepare_model
    from core.training.pipeline import load_training_data

    workspace = Workspace.open(ws)
    data = load_training_data(workspace, dataset)
    rows = []
    for size in sizes:
        config = TrainConfig(dataset=dataset, backbone=backbone, weights="imagenet", image_size=size)
        began = time.perf_counter()
        prepared = prepare_model(config, data)
        feats = features.load_or_build(workspace, config, data, prepared.built.model, prepared.memory_cache)
        feature_s = time.perf_counter() - began
        keras.backend.clear_session()
        began = time.perf_counter()
        search = GridSearchCV(
            make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000)),
            {"logisticregression__C": [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0]},
            cv=5,
        )
        search.fit(feats.train_x, feats.train_y)
        rows.append({
            "size": size,
            "C": search.best_params_["logisticregression__C"],
            "val_accuracy": round(search.score(feats.val_x, feats.val_y), 4),
            "test_accuracy": round(search.score(feats.test_x, feats.test_y), 4),
            "feature_seconds": round(feature_s, 1),
            "fit_seconds": round(time.perf_counter() - began, 1),
        })  # fmt: skip
        print(json.dumps({"probe": rows[-1]}), file=sys.stderr, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="clothing", help="clothing, sample, or a folder of split/class/image")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--sizes", default="160,224,288")
    parser.add_argument("--no-probe", action="store_true")
    args = parser.parse_args()

    from bench_train import zip_folder

    rows, reference = [], []
    with tempfile.TemporaryDirectory() as tmp:
        archive = None
        if args.data != "sample":
            archive = zip_folder(CLOTHING if args.data == "clothing" else Path(args.data), Path(tmp) / "data.zip")
        for seed in range(args.seeds):
            ws = Path(tmp) / f"ws-{seed}"
            dataset = new_workspace(ws, args.data, archive)
            rows.append(run_row(ws, dataset, seed))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
        if not args.no_probe:
            sizes = [int(s) for s in args.sizes.split(",")]
            reference = probe(Path(tmp) / "ws-0", dataset, rows[0]["advice"]["backbone"], sizes)
    out: dict = {"data": args.data, "rows": rows, "probe": reference}
    out["mean_test_accuracy"] = round(statistics.mean(r["test_accuracy"] for r in rows), 4)
    out["mean_tta_test_accuracy"] = round(statistics.mean(r["tta"]["test_accuracy"] for r in rows), 4)
    if reference:
        out["best_probe_test_accuracy"] = max(p["test_accuracy"] for p in reference)
        best_val = max(reference, key=lambda p: (p["val_accuracy"], -p["size"]))
        out["probe_chosen_on_val"] = {"size": best_val["size"], "test_accuracy": best_val["test_accuracy"]}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
