"""Stratified, seeded train/val/test assignment for images that arrive without a split."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

from core.errors import ConfigError
from core.store.workspace import SPLITS

# A class needs this many distinct images before any go to val/test: with fewer, one
# held-out image would be a large share of what the model can learn from.
MIN_SPLITTABLE = 3


@dataclass(frozen=True)
class SplitConfig:
    """Fractions of each class's images for train, val and test; they must sum to 1."""

    train: float = 0.70
    val: float = 0.15
    test: float = 0.15
    seed: int = 42

    def __post_init__(self) -> None:
        for field_name in SPLITS:
            value = getattr(self, field_name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError("err.config_range", field=field_name, low=0, high=1, value=value)
        if self.train <= 0.0:
            raise ConfigError("err.config_range", field="train", low="> 0", high=1, value=self.train)
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise ConfigError("err.split_sum", total=round(total, 4))

    @classmethod
    def held_out(cls, val: float, test: float, seed: int = 42) -> SplitConfig:
        """Validation and test fractions as given, train the rest: the one way the page and the CLI build it.

        ``train`` is rounded to 6 places so that, say, 15 % + 15 % leaves exactly 0.70, not 0.7000000000000001.
        """
        return cls(train=round(1.0 - val - test, 6), val=val, test=test, seed=seed)


def assign_splits(
    items: Iterable[tuple[Hashable, Hashable, str]], config: SplitConfig
) -> tuple[dict[Hashable, str], list[str]]:
    """Assign a split to each ``(group, item, label)``.

    Items sharing a group (the content hash) always land in the same split, so an
    exact duplicate can never sit in train and test at once. Returns the split of
    each item and the labels too small to split (all their images go to train).
    """
    groups_by_label: dict[str, dict[Hashable, list[Hashable]]] = defaultdict(lambda: defaultdict(list))
    for group, item, label in items:
        groups_by_label[label][group].append(item)
    result: dict[Hashable, str] = {}
    too_small: list[str] = []
    rng = random.Random(config.seed)
    for label in sorted(groups_by_label):
        groups = groups_by_label[label]
        keys = sorted(groups, key=str)
        rng.shuffle(keys)
        n = len(keys)
        if n < MIN_SPLITTABLE:
            too_small.append(label)
            n_val = n_test = 0
        else:
            n_val = max(1, round(n * config.val)) if config.val > 0 else 0
            n_test = max(1, round(n * config.test)) if config.test > 0 else 0
            while n_val + n_test >= n:  # always keep at least one training image
                if n_test >= n_val and n_test > 0:
                    n_test -= 1
                else:
                    n_val -= 1
        for index, key in enumerate(keys):
            split = "val" if index < n_val else "test" if index < n_val + n_test else "train"
            for item in groups[key]:
                result[item] = split
    return result, too_small
