"""Which backbone and size to start with, for this dataset on this machine, and why.

The rule of thumb (as in Keras' and fastai's transfer-learning guides): on a CPU a light backbone at a
moderate size gives a usable model in minutes, while ResNet50 at 224 px takes an hour or more;
on a GPU the heavier backbone is worth it. Images smaller than the input size gain nothing from being
upscaled, so the size follows the images. On a CPU the light backbone is one whose ImageNet weights
this machine has: MobileNetV2 ×1.0 when Keras has already downloaded its file for that size, else
MobileNetV2 ×0.35, whose weights ship with LabelTune and serve any size offline. The epochs follow the
dataset's size only as far as measured (:func:`recipe_epochs`). The minutes come from the backbones' multiply-adds and this
machine's speed: measured (the estimate's timings in the workspace) when it has been, else an assumed
speed per CPU core.

The advice is the default: the Train page's form starts from it (and has "Apply this advice"), and
``python -m core train`` uses it for every setting it is not given.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from core.datasets.catalog import short_sides
from core.runs.backbones import BACKBONES, keras_models_dir
from core.runs.config import Planning, TrainConfig
from core.store.workspace import Workspace
from core.training.estimate import device_signature, has_gpu, usable_cpus
from core.training.pipeline import load_training_data
from core.training.plan import fine_tune_pays, size_candidates
from core.training.store import step_timings

# Training multiply-adds per second per CPU core, in billions: a ResNet50 step at 224 px, batch 16
# (3 x 4.1 GMACs forward-and-backward per image) takes about 13 s on this project's 2-core machine.
CPU_GMACS_PER_CORE = 3 * 4.1 * 16 / 13 / 2
GPU_GMACS = 20_000.0  # an order of magnitude for one recent GPU with mixed precision
# Forward-only multiply-adds per second per CPU core of a transformer's frozen feature pass
# (bench/bench_foundation.py on this project's 2-core machine: DINOv2-S/14 144, DINOv2-B/14 158 GMACs/s in
# all; ResNet50's convolutions 101).
CPU_FORWARD_GMACS_PER_CORE = 70.0
# The foundation backbone the CPU advice prices: the lightest, whose frozen features with a linear head
# reach 81.1 % ImageNet top-1 (DINOv2's model card; not measured here).
FOUNDATION_ON_CPU = ("dinov2_small", 224)
BALANCED = TrainConfig(dataset="-")  # the default recipe's epochs


def recipe_epochs(n_train: int) -> dict[str, int]:
    """Head and fine-tuning epochs for a training set of ``n_train`` images: the balanced recipe's at every
    size. A shorter recipe for small sets (5 + 3 below 500 images) was measured and lost: on a 245-image
    subset of clothing-small it reached 0.593 test accuracy against 0.686 for 15 + 10 (two seeds,
    bench/bench_recipe.py, BENCHMARKS.md), while early stopping already ends a phase that stops improving."""
    return {"head_epochs": BALANCED.head_epochs, "fine_tune_epochs": BALANCED.fine_tune_epochs}


@dataclass(frozen=True)
class Advice:
    key: str  # the message: advice.cpu or advice.gpu
    params: dict[str, Any]
    backbone: str
    size: int  # the middle of the sizes the measured plan tries (what estimates before the run assume)
    epochs: dict[str, int]  # head_epochs, fine_tune_epochs
    minutes: int  # the measured plan's time limit: the advice's figure

    def values(self) -> dict[str, Any]:
        """The settings the advice sets (:data:`ADVISED_FIELDS`), over the balanced recipe."""
        return {"backbone": self.backbone, "image_size": self.size, "weights": "imagenet", **self.epochs,
                "planning": Planning.MEASURED, "max_minutes": float(self.minutes)}  # fmt: skip


# The ``TrainConfig`` fields whose default is the advice rather than a constant.
ADVISED_FIELDS = ("backbone", "image_size", "weights", "head_epochs", "fine_tune_epochs", "planning", "max_minutes")
# Given any of these, a command line takes the settings as given: no measured plan, no time limit.
CHOSEN_BY_HAND = ("backbone", "image_size", "weights", "head_epochs", "fine_tune_epochs")


def measured_rate(ws: Workspace, backbone: str) -> float | None:
    """This machine's training speed for ``backbone`` in GMACs per second, from the steps the estimates
    timed here (per backbone: a depthwise MobileNet does far fewer multiply-adds a second than VGG)."""

    rates, here = [], device_signature()
    for key, value in step_timings(ws):
        name, size = key.split("|")[:2]
        times = json.loads(value)
        if name == backbone and key.endswith(here) and times["fine_step_s"] > 0:
            work = 3 * gmacs(name, int(size)) * times["batch"]
            rates.append(work / times["fine_step_s"])
    return sorted(rates)[len(rates) // 2] if rates else None


def gmacs(backbone: str, size: int) -> float:
    """Multiply-adds of one forward pass at ``size`` px (convolutions scale with the pixel count)."""
    b = BACKBONES[backbone]
    return b.gmacs * (size / b.default_size) ** 2


def run_minutes(backbone: str, size: int, n_train: int, n_val: int, rate: float) -> float:
    """Minutes for the default recipe: the head on cached features, then the fine-tuning epochs."""
    forward = gmacs(backbone, size)
    features = (n_train + n_val) * forward
    fine = recipe_epochs(n_train)["fine_tune_epochs"] * (3 * n_train * forward + n_val * forward)
    return (features + fine) / rate / 60


# What a measured plan costs besides its multiply-adds, on this project's 2-core machine (clothing-small,
# MobileNetV2 x0.35; BENCHMARKS.md "The default run"): the models built and the heads fitted (seconds
# each), and decoding a JPEG, per megapixel and core (a 400 x 533 px photo takes about 7.5 ms of 2 cores).
PLAN_FIXED_S = 20.0
DECODE_S_PER_MEGAPIXEL = 0.07


def measured_plan_seconds(
    backbone: str,
    sizes: list[int],
    counts: dict[str, int],
    median_side: int,
    rate: float,
    cores: int,
    fine_tune: bool = True,
) -> float:
    """Seconds of a measured plan's run (``core.training.measured_plan``): a feature pass and a head per
    size tried, the recipe's fine-tuning epochs at the middle size (``fine_tune``: when it pays), the final
    predictions."""
    n_all = sum(counts.values())
    decode = DECODE_S_PER_MEGAPIXEL * (median_side**2 * 4 / 3) / 1e6 / cores
    forward = [gmacs(backbone, s) / (CPU_FORWARD_GMACS_PER_CORE * cores) for s in sizes]
    middle = sizes[len(sizes) // 2]
    passes = sum(n_all * (decode + f) for f in forward)
    epochs = recipe_epochs(counts["train"])["fine_tune_epochs"] if fine_tune else 0
    fine = epochs * (3 * counts["train"] + counts["val"])
    fine_s = fine * gmacs(backbone, middle) / rate
    finish = (counts["val"] + counts["test"]) * (decode + forward[len(sizes) // 2])
    return PLAN_FIXED_S + passes + fine_s + finish


def feature_minutes(backbone: str, size: int, images: int, cores: int) -> float:
    """Minutes of a frozen base's one pass over ``images`` on this CPU: what a foundation backbone's head-only
    run costs (its head then trains on the cached features in seconds)."""
    return images * gmacs(backbone, size) / (CPU_FORWARD_GMACS_PER_CORE * cores) / 60


def advise(ws: Workspace, counts: dict[str, int], median_side: int, gpu: bool, n_classes: int = 2) -> Advice:
    """The backbone and the measured plan for a dataset of ``counts`` images per split in ``n_classes``
    classes whose median short side is ``median_side``, on this machine (``gpu``): its sizes, and its time
    limit, the advice's figure."""

    cores = usable_cpus()
    n_train, n_val = counts["train"], counts["val"]
    default = GPU_GMACS if gpu else CPU_GMACS_PER_CORE * cores
    heavy = ("resnet50", 224)
    if gpu:
        name, alt = "resnet50", ("efficientnet_b0", 224)
    else:
        tried = size_candidates(BACKBONES["mobilenet_v2_1.0"], median_side)
        known = all(has_imagenet_file(1.0, s) for s in tried)  # Keras has a file per size for this one
        name, alt = "mobilenet_v2_1.0" if n_train + n_val <= 20_000 and known else "mobilenet_v2_0.35", heavy
    sizes = size_candidates(BACKBONES[name], median_side)
    pick = (name, sizes[len(sizes) // 2])
    rate = measured_rate(ws, name) or default
    fine_tune = fine_tune_pays(counts, n_classes)
    minutes = math.ceil(measured_plan_seconds(name, sizes, counts, median_side, rate, cores, fine_tune) / 60)
    params = {
        "images": n_train + n_val,
        "device": "GPU" if gpu else f"{cores}-core CPU",
        "backbone": BACKBONES[pick[0]].friendly,
        "size": pick[1],
        "sizes": ", ".join(str(s) for s in sizes),
        "minutes": minutes,
        "alt": BACKBONES[alt[0]].friendly,
        "alt_size": alt[1],
        "alt_minutes": max(round(run_minutes(*alt, n_train, n_val, measured_rate(ws, alt[0]) or default)), 1),
        "median": median_side,
        "foundation": BACKBONES[FOUNDATION_ON_CPU[0]].friendly,
        "foundation_minutes": max(round(feature_minutes(*FOUNDATION_ON_CPU, n_train + n_val, cores)), 1),
        **{f"{k}": v for k, v in recipe_epochs(n_train).items()},
    }
    return Advice("advice.gpu" if gpu else "advice.cpu", params, *pick, recipe_epochs(n_train), minutes)


def has_imagenet_file(alpha: float, size: int) -> bool:
    """Whether Keras has MobileNetV2 ×``alpha``'s no-top ImageNet file for ``size`` px on this machine."""

    return (keras_models_dir() / f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha}_{size}_no_top.h5").is_file()


def median_short_side(ws: Workspace, dataset_id: int) -> int:
    sides = sorted(short_sides(ws, dataset_id))
    return sides[len(sides) // 2] if sides else 0


def advise_dataset(ws: Workspace, dataset: str, data: Any = None) -> Advice:
    """:func:`advise` for a dataset as it is now (``data``, if the caller loaded it), on this machine."""

    data = data or load_training_data(ws, dataset)
    return advise(ws, data.counts(), median_short_side(ws, data.dataset_id), has_gpu(), len(data.classes))
