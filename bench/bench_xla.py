"""XLA against Keras' default CPU path for one backbone and input size, fine-tuning everything.

    python bench/bench_xla.py resnet50 32

Fits 96 random images (batch 32) once to compile, then times a second epoch, with
``jit_compile=False`` (Keras' default on a CPU-only machine) and ``True``.
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from core.training.model import build_model, set_unfrozen  # noqa: E402


def main() -> None:
    backbone, size = sys.argv[1], int(sys.argv[2])
    x = np.random.default_rng(0).uniform(0, 255, (96, size, size, 3)).astype("float32")
    y = np.eye(3, dtype="float32")[np.arange(96) % 3]
    for jit in (False, True):
        built = build_model(backbone, n_classes=3, size=size, weights="none", dropout=0.2, seed=0)
        set_unfrozen(built, "all")
        built.model.compile(optimizer="adam", loss="categorical_crossentropy", jit_compile=jit)
        built.model.fit(x[:32], y[:32], batch_size=32, epochs=1, verbose=0)
        start = time.perf_counter()
        built.model.fit(x, y, batch_size=32, epochs=1, verbose=0)
        print(f"{backbone} {size}px jit_compile={jit}: {96 / (time.perf_counter() - start):.1f} img/s", flush=True)


if __name__ == "__main__":
    main()
