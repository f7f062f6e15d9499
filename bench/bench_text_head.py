"""Does starting the head from the class prompts' text embeddings help with few labels? Zero-shot, a head
from random weights and a head from the text embeddings, trained on ``k`` images per class (clothing-small),
over seeds, with an image-text preset (SigLIP 2 by default).

    python bench/bench_text_head.py --preset PATH_OR_NAME [--per-class 5,20] [--seeds 3] [--data DIR]

Needs the preset's real weights (a folder from ``python -m core fetch-preset siglip2_base_patch16_224`` on
a machine with internet): with random weights the three rows measure nothing. The classes are described
by their folder names (clothing-small's: dress, hat, ...); the head phase only, on cached features (what
the text head changes), 15 epochs, the recipe's rate. Prints validation and test accuracy per row and the
means; the text head stays an opt-in setting (``--text-head``) until these figures say it helps.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "clothing-small"


def few_shot_zip(data: Path, target: Path, per_class: int, seed: int) -> Path:
    """``per_class`` training images of each class (a seeded sample); validation and test whole."""
    files = sorted(p for p in data.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    by_class: dict[str, list[Path]] = {}
    for p in files:
        if p.relative_to(data).parts[0] == "train":
            by_class.setdefault(p.parent.name, []).append(p)
    keep = {p for paths in by_class.values() for p in random.Random(seed).sample(paths, min(per_class, len(paths)))}
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as zf:
        for path in files:
            if path in keep or path.relative_to(data).parts[0] != "train":
                zf.write(path, path.relative_to(data).as_posix())
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", required=True, help="an image-text preset: a folder, a name or a handle")
    parser.add_argument("--per-class", default="5,20")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--size", type=int, default=0, help="0: the preset's own size")
    args = parser.parse_args()

    from core.datasets.ingest import import_archive
    from core.runs.config import TrainConfig
    from core.store.workspace import Workspace
    from core.training.jobs import train_here
    from core.training.zero_shot import zero_shot_config

    rows = []
    for k in (int(v) for v in args.per_class.split(",")):
        for seed in range(args.seeds):
            with tempfile.TemporaryDirectory() as tmp:
                ws = Workspace.open(Path(tmp) / "ws")
                import_archive(ws, few_shot_zip(args.data, Path(tmp) / "d.zip", k, seed), name="few")
                common = {"dataset": "few", "backbone": args.preset, "image_size": args.size, "seed": seed}
                configs = {
                    "zero_shot": zero_shot_config("few", args.preset, image_size=args.size, seed=seed),
                    "random_head": TrainConfig(**common, head_epochs=15, fine_tune_epochs=0),
                    "text_head": TrainConfig(**common, head_epochs=15, fine_tune_epochs=0, text_head=True),
                }
                for name, config in configs.items():
                    run = train_here(ws, config)
                    assert run.status == "completed", run.error
                    rows.append({"per_class": k, "seed": seed, "head": name, **{
                        s: round(run.final.get(f"{s}_accuracy", float("nan")), 4) for s in ("val", "test")}})  # fmt: skip
                    print(json.dumps(rows[-1]), flush=True)
    print("\n| images per class | head | val accuracy (mean) | test accuracy (mean) |\n| --- | --- | --- | --- |")
    for k in sorted({r["per_class"] for r in rows}):
        for head in ("zero_shot", "random_head", "text_head"):
            picked = [r for r in rows if r["per_class"] == k and r["head"] == head]
            val, test = (statistics.mean(r[s] for r in picked) for s in ("val", "test"))
            print(f"| {k} | {head} | {val:.3f} | {test:.3f} |")


if __name__ == "__main__":
    main()
