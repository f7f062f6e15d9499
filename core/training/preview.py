"""The augmentation preview: a grid of a few training images as the run's augmentation changes them.

The picture is cached per dataset version and augmentation shape (preset, size, resize), so it is
made once; :func:`make_preview` needs TensorFlow and runs in ``python -m core augment-preview``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from core.store.workspace import Workspace
from core.training.config import TrainConfig
from core.training.pipeline import load_training_data

ROWS = 4  # images: the first training image of up to four classes
VIEWS = 4  # augmented views of each, beside the original


def preview_path(ws: Workspace, config: TrainConfig) -> Path:
    """Where the preview of ``config``'s augmentation on its dataset's current version lives."""
    data = load_training_data(ws, config.dataset)
    shape = {"augment": config.augment, "size": config.size, "resize": config.resize, "seed": config.seed}
    digest = hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:12]
    return ws.cache_dir / "previews" / f"{data.dataset_id}-v{data.version}-{digest}.png"


def make_preview(ws: Workspace, config: TrainConfig) -> Path:
    """Draw the grid (each row: the image as the model sees it, then ``VIEWS`` augmented views)."""
    import numpy as np
    from PIL import Image

    from core.training.augment import AugmentConfig, preview

    data = load_training_data(ws, config.dataset)
    paths = []
    for label in range(len(data.classes)):
        first = next((p for p, y in zip(data.train.paths, data.train.labels, strict=True) if y == label), None)
        if first is not None:
            paths.append(first)
        if len(paths) == ROWS:
            break
    size, gap = config.size, 4
    plain = preview(paths, AugmentConfig.preset("none"), size, config.resize, views=1)
    views = preview(paths, config.augment_config, size, config.resize, views=VIEWS, seed=config.seed)
    grid = np.full((len(paths) * (size + gap), (VIEWS + 1) * (size + gap) + gap, 3), 255, np.uint8)
    for row in range(len(paths)):
        for col, pixels in enumerate([plain[row, 0], *views[row]]):
            x = col * (size + gap) + (2 * gap if col else 0)  # a wider gap after the original
            grid[row * (size + gap) : row * (size + gap) + size, x : x + size] = pixels
    out = preview_path(ws, config)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.png")
    Image.fromarray(grid).save(tmp)
    tmp.replace(out)
    return out
