"""Classify new images with a run's model, one by one or a whole zip, through the training pixels.

Each image goes through the import's normalisation (``core.datasets.images.normalise_image``: format
allow-list, pixel limit from the header, EXIF orientation, 8-bit RGB) and then the training decode
(``core.training.pipeline.pixels_from_bytes``): the model sees exactly the pixels it would have seen
had the image been in the dataset. A bad file becomes a result with an error, never an exception
that stops the rest.
"""

from __future__ import annotations

import csv
import io
import os
import statistics
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np

from core.datasets.archive import EntrySkipped, IngestLimits, open_zip, read_entry, scan_archive
from core.datasets.images import IMAGE_EXTENSIONS, normalise_image, stored_as_is
from core.errors import ImageRejected, LabelTuneError
from core.i18n import render, stored
from core.runs import store as runs
from core.store.workspace import Workspace
from core.training.pipeline import load_pixels, pixels_from_bytes

# Below this top probability an image is flagged "not sure" unless the user sets another threshold.
DEFAULT_THRESHOLD = 0.5
DEFAULT_TOP_K = 3
# Images per forward pass in batch prediction.
BATCH = 32
# Threads decoding images while the model runs: one per core.
PREPARE_THREADS = max(1, os.cpu_count() or 1)
LATENCY_CALLS = 10


def latency_ms(predict: Any, batch: Any) -> float:
    """Median milliseconds of ``predict`` on the first item of ``batch`` over LATENCY_CALLS calls, after a
    warm-up call: the one-image latency the export table and the distillation report show."""
    predict(batch[:1])
    times = []
    for _ in range(LATENCY_CALLS):
        started = time.perf_counter()
        predict(batch[:1])
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 2)


@dataclass
class Prediction:
    image: str
    top: list[tuple[str, float]] = field(default_factory=list)
    not_sure: bool = False
    error: dict[str, Any] | None = None  # a stored message: key and parameters
    probs: np.ndarray | None = None

    def to_json(self, lang: str = "en") -> dict[str, Any]:
        if self.error:
            return {"image": self.image, "error": render(self.error, lang)}
        return {
            "image": self.image,
            "top": [{"label": label, "probability": round(p, 6)} for label, p in self.top],
            "not_sure": self.not_sure,
        }

    def to_stored(self) -> dict[str, Any]:
        """As a batch job stores it: the error as a message (key and parameters), rendered when read."""
        return {"image": self.image, "top": [[label, p] for label, p in self.top], "not_sure": self.not_sure,
                "error": self.error}  # fmt: skip

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> Prediction:
        top = [(str(label), float(p)) for label, p in data.get("top", [])]
        return cls(data["image"], top, bool(data.get("not_sure")), data.get("error"))


def stored_bytes(data: bytes, name: str) -> bytes:
    """What import would store for these bytes: an upright RGB JPEG as it is (checked from its header;
    the training decode then reads the very bytes the stored file would hold), anything else normalised."""
    return data if stored_as_is(data, name) else normalise_image(data, name, thumbnail=False).data


def model_pixels(data: bytes, name: str, size: int, resize: str) -> np.ndarray:
    """The model input of an image given as file bytes: normalised as at import, decoded as in training."""
    import tensorflow as tf

    try:
        return pixels_from_bytes(stored_bytes(data, name), size, resize)
    except tf.errors.InvalidArgumentError as exc:  # a JPEG whose body is broken
        raise ImageRejected("err.image_corrupt", name=name, reason=exc.message[:200]) from exc


class Predictor:
    """A run's model with what it needs to classify: classes, input size and resize mode."""

    def __init__(self, model: Any, classes: list[str], size: int, resize: str) -> None:
        self.model, self.classes, self.size, self.resize = model, classes, size, resize
        self._decode: Any = None  # the compiled batch decode, made on first use

    @classmethod
    def for_run(cls, ws: Workspace, run_id: str, model: Any = None, flip: bool = False) -> Predictor:
        """The run's one model (safe mode, from its own folder: ``core.training.model.load_run_model``);
        ``flip``: its predictions flip-averaged (``core.training.model.flip_averaged``)."""
        from core.training.model import flip_averaged, load_run_model

        run = runs.get_run(ws, run_id)
        model = model if model is not None else load_run_model(ws, run_id)
        return cls(flip_averaged(model) if flip else model, run.classes, run.config.size, run.config.resize)

    def pixels(self, data: bytes, name: str) -> np.ndarray:
        return model_pixels(data, name, self.size, self.resize)

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """The model on a batch, through Keras' compiled predict step (one trace, reused): several times
        faster than calling the model eagerly, and the same arithmetic."""
        return np.asarray(self.model.predict_on_batch(batch.astype(np.float32)), dtype=np.float32)

    def result(self, name: str, probs: np.ndarray, top_k: int, threshold: float) -> Prediction:
        order = np.argsort(-probs, kind="stable")[: max(1, top_k)]
        top = [(self.classes[i], float(probs[i])) for i in order]
        return Prediction(name, top, not_sure=top[0][1] < threshold, probs=probs)

    def _prepare(self, name: str, data: bytes) -> bytes | dict[str, Any]:
        try:
            return stored_bytes(data, name)
        except LabelTuneError as exc:
            return exc.stored()

    def _decode_batch(self, stored: list[bytes], names: list[str]) -> list[np.ndarray | dict[str, Any]]:
        """The training decode of a batch, as one compiled graph (no Python per image); if a body is
        broken, image by image to tell which."""
        import tensorflow as tf

        if self._decode is None:
            self._decode = tf.function(
                lambda b: tf.map_fn(lambda x: load_pixels(x, self.size, self.resize), b, fn_output_signature=tf.uint8),
                reduce_retracing=True,
            )
        try:
            return list(self._decode(tf.constant(stored)).numpy())
        except tf.errors.InvalidArgumentError:
            out: list[np.ndarray | dict[str, Any]] = []
            for data, name in zip(stored, names, strict=True):
                try:
                    out.append(model_pixels(data, name, self.size, self.resize))
                except ImageRejected as exc:
                    out.append(exc.stored())
            return out

    def predict(
        self,
        items: Iterable[tuple[str, bytes]],
        top_k: int = DEFAULT_TOP_K,
        threshold: float = DEFAULT_THRESHOLD,
        progress: Callable[[int], None] | None = None,
    ) -> list[Prediction]:
        """Classify ``(name, bytes)`` items in batches; a bad item gets an error result.

        Images are checked and normalised on a thread pool, one batch ahead (Pillow releases the GIL),
        then each batch is decoded by one compiled graph and classified."""
        out: list[Prediction] = []

        def finish(names: list[str], futures: list[Future]) -> None:
            prepared = [f.result() for f in futures]
            good = [i for i, b in enumerate(prepared) if isinstance(b, bytes)]
            if good:
                decoded = self._decode_batch([prepared[i] for i in good], [names[i] for i in good])
                for i, px in zip(good, decoded, strict=True):
                    prepared[i] = px
            ok = [i for i, px in enumerate(prepared) if isinstance(px, np.ndarray)]
            probs = self.probabilities(np.stack([prepared[i] for i in ok])) if ok else []
            rows = dict(zip(ok, probs, strict=True))
            for i, name in enumerate(names):
                if i in rows:
                    out.append(self.result(name, rows[i], top_k, threshold))
                else:
                    out.append(Prediction(name, error=prepared[i]))
            if progress:
                progress(len(out))

        with ThreadPoolExecutor(max_workers=PREPARE_THREADS, thread_name_prefix="labeltune-predict") as pool:
            previous = None
            for chunk in _chunks(items, BATCH):
                current = ([n for n, _ in chunk], [pool.submit(self._prepare, n, d) for n, d in chunk])
                if previous:
                    finish(*previous)
                previous = current
            if previous:
                finish(*previous)
        return out


def _chunks(items: Iterable[tuple[str, bytes]], size: int) -> Iterator[list[tuple[str, bytes]]]:
    chunk: list[tuple[str, bytes]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def zip_images(
    source: str | IO[bytes], archive_name: str, limits: IngestLimits | None = None
) -> Iterator[tuple[str, bytes | None, dict[str, Any] | None]]:
    """The images of a zip, read with the import's safety rules and limits: ``(name, bytes, None)`` or
    ``(name, None, error)`` for an entry that is skipped. The archive itself may be rejected
    (:class:`DatasetRejected`)."""

    limits = limits or IngestLimits()
    zf, _ = open_zip(source, archive_name, limits)
    with zf:
        scan = scan_archive(zf, archive_name, limits)
        for skipped in scan.skipped:
            yield skipped.entry, None, stored(skipped.key, entry=skipped.entry, **skipped.params)
        for entry in scan.entries:
            if entry.suffix not in IMAGE_EXTENSIONS:
                continue  # manifests and class files: not for prediction
            try:
                yield str(entry.path), read_entry(zf, entry, limits.max_image_bytes), None
            except EntrySkipped as exc:
                yield str(entry.path), None, stored(exc.key, **exc.params)


def predict_zip(
    predictor: Predictor,
    source: str | IO[bytes],
    archive_name: str,
    top_k: int = DEFAULT_TOP_K,
    threshold: float = DEFAULT_THRESHOLD,
    progress: Callable[[int], None] | None = None,
) -> list[Prediction]:
    """Every image of a zip, classified; skipped entries are results with their reason."""
    errors: list[Prediction] = []

    def readable() -> Iterator[tuple[str, bytes]]:
        for name, data, error in zip_images(source, archive_name):
            if error is not None:
                errors.append(Prediction(name, error=error))
            else:
                yield name, data

    results = predictor.predict(readable(), top_k, threshold, progress)
    return results + errors


def is_zip(name: str, data: bytes) -> bool:
    return name.lower().endswith(".zip") or zipfile.is_zipfile(io.BytesIO(data))


def to_csv(results: list[Prediction], lang: str = "en") -> str:
    """One row per image: file, top-1, its probability, the top-k, the not-sure flag, or the error."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["file", "top1", "probability", "top_k", "not_sure", "error"])
    for r in results:
        if r.error:
            writer.writerow([r.image, "", "", "", "", render(r.error, lang)])
        else:
            top_k = "; ".join(f"{label}:{p:.4f}" for label, p in r.top)
            writer.writerow([r.image, r.top[0][0], f"{r.top[0][1]:.4f}", top_k, int(r.not_sure), ""])
    return out.getvalue()
