"""A run's folder, ``runs/<id>/``, and every file in it, named once.

What lives there: ``config.json`` (the recipe, the classes and the dataset version, as created);
``model.keras`` (the run's one model: the best checkpoint); ``metrics.jsonl`` (every metrics row, also
in the store); ``predictions.npz`` (the model's stored predictions, ``core.runs.predictions``);
``state.json`` and ``head_phase.weights.h5`` (what a resume needs); ``backup/`` (Keras'
BackupAndRestore, per phase); ``tensorboard/`` (when asked for); ``teacher-*.npz`` (a teacher's cached
soft targets); ``export/`` (the last export, ``core.export``). A job's own output is its log in
``jobs/<id>.log`` (``core.jobs``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.store.workspace import Workspace


def _file(name: str) -> property:
    """A file (or folder) of every run's folder, by its one name."""
    return property(lambda self: self.path / name, doc=f"``{name}`` in the run's folder")


@dataclass(frozen=True)
class RunFolder:
    path: Path

    @classmethod
    def of(cls, ws: Workspace, run_id: str) -> RunFolder:
        return cls(ws.runs_dir / run_id)

    config = _file("config.json")
    model = _file("model.keras")
    metrics = _file("metrics.jsonl")
    predictions = _file("predictions.npz")
    state = _file("state.json")
    head_weights = _file("head_phase.weights.h5")
    backup = _file("backup")
    tensorboard = _file("tensorboard")
    export = _file("export")

    def teacher_targets(self, digest: str) -> Path:
        """This run's soft targets as a teacher, for one student's data (``core.training.distill``)."""
        return self.path / f"teacher-{digest}.npz"

    def read_state(self) -> dict[str, Any]:
        return json.loads(self.state.read_text()) if self.state.exists() else {}

    def write_state(self, **values: Any) -> None:
        write_json_atomic(self.state, {**self.read_state(), **values})


def write_json_atomic(path: Path, value: Any) -> None:
    """Write JSON to a temporary file beside ``path``, then rename: a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, ensure_ascii=False, indent=2), encoding="utf-8")
    os.replace(tmp, path)
