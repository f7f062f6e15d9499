"""The words the store keeps, declared once and imported wherever they are used (in Python and bound into
SQL as parameters, never retyped as strings). A job's statuses and resources are ``core.jobs.store``'s
``JobStatus`` and ``Resource``."""

from __future__ import annotations

from enum import Enum


class ImageStatus(str, Enum):
    """Whether an image takes part in training and evaluation (the images table checks the values)."""

    ACTIVE = "active"
    EXCLUDED = "excluded"  # kept and shown greyed, left out of every split's training and evaluation

    def __str__(self) -> str:  # "active", not "ImageStatus.ACTIVE", in f-strings and translation keys
        return self.value


# Splits an image can be in (the images table checks it); every list of splits is this one.
SPLITS: tuple[str, ...] = ("train", "val", "test")
# The splits a run is evaluated on when it ends, and that Evaluate predicts by default.
EVALUATED_SPLITS: tuple[str, ...] = ("val", "test")
