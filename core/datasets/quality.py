"""The quality report stored with each dataset and shown on the Dataset page."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from core.datasets.archive import Skipped
from core.i18n import stored

# Shorter side, pixels, below which an image is flagged: upscaled to a 224 px input it carries
# little detail, and it is often a thumbnail or an icon saved by mistake.
SMALL_IMAGE_SIDE = 64
# A class with fewer images than this gets a "collect more" hint.
FEW_IMAGES = 10
# Largest/smallest class ratio from which the imbalance hint is shown.
IMBALANCE_HINT_RATIO = 3.0


def warning(key: str, **params: Any) -> dict[str, Any]:
    """A warning as stored: its message key and parameters (rendered in the reader's language)."""
    return stored(key, **params)


def build_report(
    *,
    stored: list[tuple[str, str, str | None, int, int]],
    skipped: list[Skipped],
    counts: dict[str, int],
    too_small: list[str],
    carved_val: bool,
    has_test: bool,
    notes: list[tuple[str, dict[str, Any]]] = (),
) -> dict[str, Any]:
    """``stored`` holds ``(name, content_hash, label, width, height)`` per imported image; ``notes`` are
    warnings about how the archive was read (its name encoding, manifest matching), shown first."""
    names_by_hash: dict[str, list[str]] = defaultdict(list)
    labels_by_hash: dict[str, set[str]] = defaultdict(set)
    small = []
    for name, content_hash, label, width, height in stored:
        names_by_hash[content_hash].append(name)
        if label:
            labels_by_hash[content_hash].add(label)
        if min(width, height) < SMALL_IMAGE_SIDE:
            small.append({"name": name, "width": width, "height": height})
    duplicates = [{"hash": h, "names": names} for h, names in names_by_hash.items() if len(names) > 1]
    conflicts = [
        {"hash": h, "names": names_by_hash[h], "labels": sorted(labels)}
        for h, labels in labels_by_hash.items()
        if len(labels) > 1
    ]
    populated = {c: n for c, n in counts.items() if n > 0}
    imbalance = None
    if len(populated) >= 2:
        largest = max(populated, key=lambda c: (populated[c], c))
        smallest = min(populated, key=lambda c: (populated[c], c))
        imbalance = {
            "ratio": round(populated[largest] / populated[smallest], 2),
            "largest": largest,
            "smallest": smallest,
        }

    warnings = [warning(key, **params) for key, params in notes]
    if not populated:
        warnings.append(warning("warn.no_labels"))
    elif len(populated) == 1:
        warnings.append(warning("warn.single_class", name=next(iter(populated))))
    if too_small:
        warnings.append(warning("warn.too_small_to_split", classes=", ".join(too_small)))
    few = [c for c, n in populated.items() if n < FEW_IMAGES]
    if few:
        warnings.append(warning("warn.few_images", classes=", ".join(few), minimum=FEW_IMAGES))
    empty = [c for c, n in counts.items() if n == 0]
    if empty:
        warnings.append(warning("warn.empty_classes", classes=", ".join(empty)))
    if imbalance and imbalance["ratio"] >= IMBALANCE_HINT_RATIO:
        warnings.append(warning("warn.imbalance", **imbalance))
    if duplicates:
        warnings.append(warning("warn.duplicates", count=len(duplicates)))
    if conflicts:
        warnings.append(warning("warn.label_conflicts", count=len(conflicts)))
    if small:
        warnings.append(warning("warn.small_images", count=len(small), side=SMALL_IMAGE_SIDE))
    if skipped:
        warnings.append(warning("warn.skipped", count=len(skipped)))
    if carved_val:
        warnings.append(warning("warn.val_carved"))
    if populated and not has_test:
        warnings.append(warning("warn.no_test"))
    return {
        "skipped": [s.to_stored() for s in skipped],
        "duplicates": duplicates,
        "label_conflicts": conflicts,
        "small_images": small,
        "imbalance": imbalance,
        "warnings": warnings,
    }


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
