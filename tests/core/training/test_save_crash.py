"""A crash while the model is being saved (the worker killed by SIGKILL mid-write) leaves the previous
model file whole and loadable: saves go to a temporary file beside it, then a rename."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SAVER = """
import sys
import keras
import numpy as np
from pathlib import Path
from core.training.callbacks import save_atomic

path = Path(sys.argv[1])
model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(512), keras.layers.Dense(512), keras.layers.Dense(3)])
save_atomic(model, path)
print("saved", flush=True)
n = 0
while True:  # save again and again, each time different weights, until killed
    n += 1
    for layer in model.layers:
        layer.set_weights([np.full_like(w, n) for w in layer.get_weights()])
    save_atomic(model, path)
"""


@pytest.mark.slow  # a real TensorFlow process, killed mid-save
def test_a_worker_killed_while_saving_leaves_the_previous_model_loadable(tmp_path):
    import keras

    path = tmp_path / "model.keras"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    for delay in (0.3, 0.7, 1.1):  # a few moments into the loop of saves
        proc = subprocess.Popen([sys.executable, "-c", SAVER, str(path)], env=env, stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "saved"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        model = keras.saving.load_model(path, safe_mode=True)  # whole: not half a file
        kernel = model.layers[-1].get_weights()[0]
        assert kernel.shape == (512, 3) and len({float(v) for v in kernel.ravel()[:50]}) >= 1
