"""Every user-visible string, in English and Chinese, from the locale files ``core/locales/<lang>.json``.

Each file is a flat ``key -> string`` map with ``{name}`` placeholders, a format translation tools such
as Weblate read. Core errors, skip reasons, warnings and a run's failure carry a key and parameters;
whatever is stored is stored that way (:func:`stored`) and rendered in the reader's language when shown
(:func:`render`). Tests check that both files have the same keys and placeholders, and that every key
is used and every key used exists.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

LANGUAGES: dict[str, str] = {"zh": "中文", "en": "English"}
DEFAULT_LANGUAGE = "en"
LOCALES = Path(__file__).resolve().parent / "locales"


@cache
def catalog(lang: str) -> dict[str, str]:
    """The locale file of ``lang``, loaded once per process."""
    return json.loads((LOCALES / f"{lang}.json").read_text(encoding="utf-8"))


class _Keep(dict):
    """Leaves an unknown placeholder visible instead of failing a render."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def tr(key: str, lang: str = DEFAULT_LANGUAGE, /, **params: Any) -> str:
    """The message for ``key`` in ``lang`` ("en" or "zh"), with ``params`` filled in."""
    template = catalog(lang if lang in LANGUAGES else DEFAULT_LANGUAGE).get(key)
    if template is None:
        return key
    try:
        return template.format_map(_Keep(params))
    except (ValueError, TypeError):
        return template


def has_message(key: str) -> bool:
    return key in catalog(DEFAULT_LANGUAGE)


def stored(key: str, **params: Any) -> dict[str, Any]:
    """A message as it is stored (a run's error, an import warning): key and parameters, no language."""
    return {"key": key, "params": params}


def render(message: dict[str, Any] | str | None, lang: str = DEFAULT_LANGUAGE) -> str:
    """A stored message in ``lang``; plain text (stored before messages were keys) is shown as it is."""
    if not message:
        return ""
    if isinstance(message, str):
        return message
    return tr(message["key"], lang, **message.get("params", {}))


def cli_language() -> str:
    lang = os.environ.get("LABELTUNE_LANG", DEFAULT_LANGUAGE)
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE
