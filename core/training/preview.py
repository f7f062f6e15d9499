"""The augmentation preview: a grid of a few training images as the run's augmentation changes them.

The picture is cached per dataset version and augmentation shape (preset, size, resize), so it is
made once; ``core.training.augment.write_preview`` draws it (TensorFlow) in ``python -m core augment-preview``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from core.runs.config import TrainConfig
from core.store.workspace import Workspace
from core.training.pipeline import TrainingData, load_training_data

ROWS = 4  # images: the first training image of up to four classes
VIEWS = 4  # augmented views of each, beside the original


def preview_path(ws: Workspace, config: TrainConfig, data: TrainingData | None = None) -> Path:
    """Where the preview of ``config``'s augmentation on its dataset's current version lives (``data``:
    the dataset as already loaded, if the caller has it)."""
    data = data or load_training_data(ws, config.dataset)
    shape = {"augment": config.augment, "size": config.size, "resize": config.resize, "seed": config.seed}
    digest = hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:12]
    return ws.cache_dir / "previews" / f"{data.dataset_id}-v{data.version}-{digest}.png"
