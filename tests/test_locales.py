"""The locale files: the same keys and placeholders in every language, every key used, every key used exists."""

import ast
import string
from pathlib import Path

from core.i18n import LANGUAGES, catalog, render, stored, tr

ROOT = Path(__file__).resolve().parents[1]
CODE = sorted(
    [
        *(ROOT / "core").rglob("*.py"),
        ROOT / "streamlit_app.py",
        *(ROOT / "pages").glob("*.py"),
        *(ROOT / "ui").glob("*.py"),
    ]
)
EN = catalog("en")
NAMESPACES = {key.split(".")[0] for key in EN}


def placeholders(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field}


def strings_in_code() -> tuple[set[str], set[str]]:
    """Every whole string constant in the code, and every prefix an f-string builds a key from."""
    constants, prefixes = set(), set()
    for path in CODE:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        pieces = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr):
                pieces.update(id(v) for v in node.values)
                first = node.values[0] if node.values else None
                if isinstance(first, ast.Constant) and first.value.split(".")[0] in NAMESPACES:
                    prefixes.add(first.value)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in pieces:
                constants.add(node.value)
    return constants, prefixes


def test_every_language_has_the_same_keys():
    for lang in LANGUAGES:
        assert set(catalog(lang)) == set(EN), lang


def placeholder_offenders(catalogs: dict[str, dict[str, str]]) -> list[str]:
    """Every empty message and every placeholder mismatch with English, as ``lang:key: text``."""
    return [
        f"{lang}:{key}: {text!r}"
        for lang, messages in catalogs.items()
        for key, text in sorted(messages.items())
        if key in EN and (not text.strip() or placeholders(text) != placeholders(EN[key]))
    ]


def test_every_message_is_filled_with_the_same_placeholders():
    """One test for every key: it reports each offending message at once."""
    assert placeholder_offenders({lang: catalog(lang) for lang in LANGUAGES}) == []


def test_a_broken_message_is_reported_by_its_key():
    """The check above can fail: a translation that drops a placeholder, and an empty one, are both named."""
    broken = {**catalog("zh"), "err.dataset_exists": "已存在", "err.unexpected": " "}
    assert placeholder_offenders({"en": EN, "zh": broken}) == [
        "zh:err.dataset_exists: '已存在'",
        "zh:err.unexpected: ' '",
    ]


def test_every_key_used_in_code_exists():
    constants, prefixes = strings_in_code()
    files = (".py", ".json", ".md", ".zip", ".keras", ".tflite")  # "predict.py" is a file name, not a key
    used = {
        c
        for c in constants
        if c.count(".") == 1 and c.split(".")[0] in NAMESPACES and " " not in c and not c.endswith(files)
    }
    assert sorted(k for k in used if k not in EN) == []
    assert sorted(p for p in prefixes if not any(k.startswith(p) for k in EN)) == []


def test_every_key_is_used_somewhere():
    constants, prefixes = strings_in_code()
    unused = [k for k in EN if k not in constants and not any(k.startswith(p) for p in prefixes)]
    assert unused == []


def test_stored_messages_render_in_the_readers_language():
    message = stored("err.dataset_exists", name="猫")
    assert render(message, "en") == tr("err.dataset_exists", "en", name="猫")
    assert render(message, "zh") == tr("err.dataset_exists", "zh", name="猫") != render(message, "en")
    assert render("plain text from an old run", "zh") == "plain text from an old run"
    assert render(None, "zh") == ""


def test_tr_falls_back_safely():
    assert tr("no.such.key", "zh") == "no.such.key"
    assert "{name}" in tr("err.dataset_exists", "en")
    assert tr("err.dataset_exists", "fr", name="x") == tr("err.dataset_exists", "en", name="x")
