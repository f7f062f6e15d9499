"""The data audit measured on clothing-small (every audit a whole ``python -m core audit`` call).

    python bench/bench_audit.py noise [--seeds 3] [--rate 0.05]
    python bench/bench_audit.py findings
    python bench/bench_audit.py scale [--sizes 1000 10000]

``noise``: for each seed, a fresh workspace; 5 % of the training labels flipped at random to another
class; the audit; recall of the flipped images within the top 2N flagged and precision of the top N
(N = the number flipped); then every suggestion in the top N accepted, and three head-only runs of the
default backbone (``train --fine-tune-epochs 0``: the feature-cache path, so nine runs take minutes)
with the clean, noisy and fixed labels: test accuracy of each.

``findings``: the originals plus copies of 20 of them in another split (resized to 50 %, re-saved as JPEG
quality 60, 5 % cropped off one corner, 5 % cropped off every side) and ten photos of another domain
(crops of scikit-learn's two sample photos, a temple and a flower) filed under clothing classes: which
copies are found, every pair among the originals above the threshold, and where the strangers rank
among the outliers.

``scale``: time and peak memory (max RSS of the call) of a whole audit at each size, features not cached
and cached, against a bare baseline in the same run: a script that only computes the same features
(the same model and input pipeline), the floor any audit pays. Sizes above the dataset's are made of
re-cropped, flipped, recoloured copies (distinct files, so distinct features to compute).
"""

from __future__ import annotations

import argparse
import io
import json
import random
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "clothing-small"
SPLIT_OF = {"train": "train", "validation": "val", "test": "test"}


def measured(command: list[str]) -> tuple[subprocess.CompletedProcess, float, int]:
    """Run ``command`` under GNU time: the result, wall seconds, and the process's peak memory (MiB)."""
    start = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "PEAK_KB %M", *command], capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    peak = [int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("PEAK_KB ")]
    return done, seconds, (peak[-1] // 1024) if peak else -1


def call(ws: Path, *args: str) -> tuple[dict, float, int]:
    """A whole command-line call: its JSON, wall seconds, and peak memory (MiB) of the process."""
    done, seconds, peak = measured([sys.executable, "-m", "core", *args, "--workspace", str(ws), "--json"])
    if done.returncode:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr[-3000:]}\n{done.stdout[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), seconds, peak


def originals() -> list[Path]:
    return sorted(p for p in DATA.rglob("*.jpg"))


def jpeg(im: Image.Image, quality: int = 92) -> bytes:
    out = io.BytesIO()
    im.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def import_zip(ws: Path, entries: list[tuple[str, bytes | Path]], tmp: Path) -> None:
    archive = tmp / f"{ws.name}.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, data in entries:
            if isinstance(data, Path):
                zf.write(data, name)
            else:
                zf.writestr(name, data)
    call(ws, "import", str(archive), "--name", "bench")


def plain_entries() -> list[tuple[str, Path]]:
    return [(p.relative_to(DATA).as_posix(), p) for p in originals()]


def bench_noise(args: argparse.Namespace) -> dict:
    from core.audit.store import audit_images
    from core.datasets import editing
    from core.store.workspace import Workspace

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            ws_path = Path(tmp) / f"noise-{seed}"
            import_zip(ws_path, plain_entries(), Path(tmp))
            ws = Workspace.open(ws_path)
            train = ["train", "--dataset", "bench", "--fine-tune-epochs", "0", "--seed", str(seed)]
            clean, clean_s, _ = call(ws_path, *train)
            _, _, images = audit_images(ws, "bench")
            classes = sorted({im.label for im in images if im.label})
            rng = random.Random(seed)
            pool = [im for im in images if im.split == "train"]
            flipped = rng.sample(pool, round(args.rate * len(pool)))
            truth = {im.id: im.label for im in flipped}
            for im in flipped:
                editing.relabel(ws, "bench", [im.id], rng.choice([c for c in classes if c != im.label]))
            noisy, _, _ = call(ws_path, *train)
            found, audit_s, audit_mb = call(ws_path, "audit", "bench", "--seed", str(seed))
            n = len(flipped)
            flagged = [i["image"] for i in found["label_issues"]]
            recall = len(set(flagged[: 2 * n]) & set(truth)) / n
            precision = len(set(flagged[:n]) & set(truth)) / n
            restored = 0
            for issue in found["label_issues"][:n]:  # accept every suggestion in the top N
                editing.relabel(ws, "bench", [issue["image"]], issue["suggested"])
                restored += truth.get(issue["image"]) == issue["suggested"]
            fixed, _, _ = call(ws_path, *train)
            row = {"seed": seed, "flipped": n, "flagged": len(flagged), "recall_top_2n": round(recall, 3),
                   "precision_top_n": round(precision, 3), "restored_to_true_label": restored,
                   "test_accuracy": {"clean": clean["test_accuracy"], "noisy": noisy["test_accuracy"],
                                     "fixed": fixed["test_accuracy"]},
                   "audit_s": round(audit_s, 1), "audit_peak_mib": audit_mb, "train_s": round(clean_s, 1)}  # fmt: skip
            print(json.dumps(row), file=sys.stderr, flush=True)
            rows.append(row)
    lost = [r["test_accuracy"]["clean"] - r["test_accuracy"]["noisy"] for r in rows]
    back = [r["test_accuracy"]["fixed"] - r["test_accuracy"]["noisy"] for r in rows]
    return {"rows": rows, "mean_recall_top_2n": round(float(np.mean([r["recall_top_2n"] for r in rows])), 3),
            "mean_precision_top_n": round(float(np.mean([r["precision_top_n"] for r in rows])), 3),
            "mean_accuracy_lost": round(float(np.mean(lost)), 4), "mean_accuracy_back": round(float(np.mean(back)), 4)}  # fmt: skip


def _copies(rng: random.Random) -> list[tuple[str, bytes]]:
    out = []
    for n, path in enumerate(rng.sample(originals(), 80)):
        kind = ("resize50", "jpeg60", "crop5_corner", "crop5_sides")[n % 4]
        im = Image.open(path).convert("RGB")
        w, h = im.size
        dx, dy = round(w * 0.05), round(h * 0.05)
        if kind == "resize50":
            made = jpeg(im.resize((w // 2, h // 2)))
        elif kind == "jpeg60":
            made = jpeg(im, 60)
        elif kind == "crop5_corner":
            made = jpeg(im.crop((dx, dy, w, h)))
        else:
            made = jpeg(im.crop((dx, dy, w - dx, h - dy)))
        split, label = path.relative_to(DATA).parts[:2]
        other = "test" if split == "train" else "train"
        out.append((f"{other}/{label}/copy-{kind}-{path.name}", made))
    return out


def _strangers(rng: random.Random) -> list[tuple[str, bytes]]:
    from sklearn.datasets import load_sample_images

    out = []
    labels = sorted({p.relative_to(DATA).parts[1] for p in originals()})
    for name, arr in zip(("china", "flower"), load_sample_images().images, strict=True):
        im = Image.fromarray(arr)
        for k in range(5):
            x, y = rng.randrange(0, im.width - 300), rng.randrange(0, im.height - 300)
            out.append((f"train/{rng.choice(labels)}/stranger-{name}-{k}.jpg", jpeg(im.crop((x, y, x + 300, y + 300)))))
    return out


def bench_findings(args: argparse.Namespace) -> dict:
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "findings"
        import_zip(ws, [*plain_entries(), *_copies(rng), *_strangers(rng)], Path(tmp))
        found, seconds, peak = call(ws, "audit", "bench")
    kinds = ("resize50", "jpeg60", "crop5_corner", "crop5_sides")
    copies_found = dict.fromkeys(kinds, 0)
    among_originals = []
    for pair in found["near_duplicates"]:
        names = [f.rsplit("/", 1)[-1] for f in pair["files"]]
        copy = [n for n in names if n.startswith("copy-")]
        if len(copy) == 1:
            kind, original = copy[0].split("-", 2)[1:]
            if original in names:
                copies_found[kind] += 1
        elif not copy and not any(n.startswith("stranger-") for n in names):
            among_originals.append({"files": pair["files"], "labels": pair["labels"], "similarity": pair["similarity"]})
    ranks = [n for n, o in enumerate(found["outliers"]) if o["file"].rsplit("/", 1)[-1].startswith("stranger-")]
    return {"copies_found_of_20": copies_found, "pairs_among_originals": among_originals,
            "outliers_flagged": len(found["outliers"]), "strangers_flagged_of_10": len(ranks),
            "stranger_ranks": ranks, "top10_outliers": [o["file"] for o in found["outliers"][:10]],
            "audit_s": round(seconds, 1), "peak_mib": peak}  # fmt: skip


def _variant(path: Path, k: int, rng: random.Random) -> bytes:
    im = Image.open(path).convert("RGB")
    w, h = im.size
    f = rng.uniform(0.75, 0.95)
    x, y = rng.randrange(0, int(w * (1 - f)) + 1), rng.randrange(0, int(h * (1 - f)) + 1)
    im = im.crop((x, y, x + int(w * f), y + int(h * f)))
    im = ImageOps.mirror(im) if k % 2 else im
    return jpeg(
        ImageEnhance.Color(ImageEnhance.Brightness(im).enhance(rng.uniform(0.8, 1.2))).enhance(rng.uniform(0.7, 1.3))
    )


BARE = """
import sys, time, numpy as np
from core.audit.config import AUDIT_BACKBONE, AUDIT_SIZE
from core.audit.store import audit_images
from core.store.workspace import Workspace
from core.training.model import build_model
from core.training.features import extractor_of
from core.training.pipeline import Split, make_dataset
ws = Workspace.open(sys.argv[1])
_, _, images = audit_images(ws, "bench")
model = build_model(AUDIT_BACKBONE, n_classes=2, size=AUDIT_SIZE, weights="imagenet", dropout=0.0, seed=0).model
split = Split(paths=[str(ws.path_of(im.path)) for im in images], labels=[0] * len(images))
ds = make_dataset(split, n_classes=1, size=AUDIT_SIZE, resize="pad", batch_size=32, training=False, seed=0, cache=False)
x = extractor_of(model).predict(ds.map(lambda a, b: a), verbose=0)
print('{"images": %d}' % len(x))
"""


def bench_scale(args: argparse.Namespace) -> dict:
    rng = random.Random(0)
    files = originals()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            entries: list[tuple[str, bytes | Path]] = []
            for n in range(size):
                path = files[n % len(files)]
                rel = path.relative_to(DATA)
                if n < len(files):
                    entries.append((rel.as_posix(), path))
                else:
                    entries.append((f"{rel.parent.as_posix()}/v{n // len(files)}-{path.name}", _variant(path, n, rng)))
            ws = Path(tmp) / f"scale-{size}"
            import_zip(ws, entries, Path(tmp))
            done, bare_s, bare_mb = measured([sys.executable, "-c", BARE, str(ws)])
            assert done.returncode == 0, done.stderr[-2000:]
            _, cold_s, cold_mb = call(ws, "audit", "bench")
            found, warm_s, warm_mb = call(ws, "audit", "bench")
            row = {"images": size, "bare_features_s": round(bare_s, 1), "audit_uncached_s": round(cold_s, 1),
                   "audit_cached_s": round(warm_s, 1), "uncached_vs_bare": round(cold_s / bare_s, 2),
                   "cached_vs_bare": round(warm_s / bare_s, 2), "bare_peak_mib": bare_mb,
                   "audit_uncached_peak_mib": cold_mb, "audit_cached_peak_mib": warm_mb,
                   "pairs": len(found["near_duplicates"]), "issues": len(found["label_issues"])}  # fmt: skip
            print(json.dumps(row), file=sys.stderr, flush=True)
            rows.append(row)
    return {"rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser()
    verbs = parser.add_subparsers(dest="verb", required=True)
    p = verbs.add_parser("noise")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--rate", type=float, default=0.05)
    verbs.add_parser("findings")
    p = verbs.add_parser("scale")
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    args = parser.parse_args()
    result = {"noise": bench_noise, "findings": bench_findings, "scale": bench_scale}[args.verb](args)
    print(json.dumps({args.verb: result}, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
