"""Typed domain errors.

Every error carries a translation key and its parameters, so the CLI can print
it in English and the app can show it in the user's language. The message
always names the offending entry, file or field and the rule it broke.
"""

from __future__ import annotations

from typing import Any

from core.i18n import stored, tr


class LabelTuneError(Exception):
    """Base class: a problem the user can act on, never a programming bug."""

    exit_code = 1

    def __init__(self, key: str, **params: Any) -> None:
        self.key = key
        self.params = params
        super().__init__(self.message("en"))

    def message(self, lang: str = "en") -> str:

        return tr(self.key, lang, **self.params)

    def stored(self) -> dict[str, Any]:
        """The message as it is stored (key and parameters), rendered later in the reader's language."""

        return stored(self.key, **self.params)


class DatasetRejected(LabelTuneError):
    """The archive as a whole cannot be imported; nothing was written."""

    exit_code = 3


class DatasetError(LabelTuneError):
    """A dataset operation failed (unknown name, name taken, ...)."""


class UploadError(LabelTuneError):
    """A resumable upload was refused or cannot go on (too large, no disk, unknown, wrong offset); ``status``
    is the HTTP status the upload route answers with."""

    STATUS = {"err.upload_too_large": 413, "err.upload_no_space": 507, "err.upload_unknown": 404,
              "err.upload_offset": 409, "err.upload_grant": 403, "err.upload_incomplete": 409}  # fmt: skip

    @property
    def status(self) -> int:
        return self.STATUS.get(self.key, 400)


class ImageRejected(LabelTuneError):
    """One image cannot be used (corrupt, too large, unsupported format)."""


class WorkspaceError(LabelTuneError):
    """The workspace folder or its database cannot be used."""


class JobError(LabelTuneError):
    """A job cannot be queued, started or cancelled (unknown id, already ended, launcher failed)."""


class ConfigError(LabelTuneError):
    """A configuration value is out of its allowed range."""


class TrainingError(LabelTuneError):
    """A run cannot start or cannot go on (too few classes, weights unavailable, out of memory)."""


class EvaluationError(LabelTuneError):
    """A run cannot be evaluated (no saved model, no stored predictions, an unknown split)."""


class PredictionError(LabelTuneError):
    """A model cannot be loaded or an input cannot be predicted."""


class ExportError(LabelTuneError):
    """A run cannot be exported (no model, no images to check it on)."""
