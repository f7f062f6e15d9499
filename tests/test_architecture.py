"""House rules that keep the layers apart and every string translatable."""

import ast
import string
from pathlib import Path

import pytest

from core.i18n import MESSAGES, tr

ROOT = Path(__file__).resolve().parents[1]
UI_FILES = sorted([ROOT / "streamlit_app.py", *(ROOT / "pages").glob("*.py"), *(ROOT / "ui").glob("*.py")])


def placeholders(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field}


def test_core_never_imports_streamlit():
    for path in (ROOT / "core").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n.split(".")[0] == "streamlit" for n in names), f"{path} imports streamlit"


@pytest.mark.parametrize("key", sorted(MESSAGES))
def test_every_message_has_both_languages_with_the_same_placeholders(key):
    en, zh = MESSAGES[key]
    assert en.strip() and zh.strip()
    assert placeholders(en) == placeholders(zh)


def test_message_keys_used_in_code_exist():
    used = set()
    for path in [*(ROOT / "core").rglob("*.py"), *UI_FILES]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        # Pieces of f-strings (f"status.{name}") are prefixes, not keys.
        pieces = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in pieces:
                value = node.value
                if (
                    value.count(".") == 1
                    and value.split(".")[0]
                    in {
                        "err",
                        "warn",
                        "skip",
                        "app",
                        "nav",
                        "dataset",
                        "report",
                        "cli",
                        "split",
                        "layout",
                        "train",
                        "status",
                    }
                    and " " not in value
                ):
                    used.add(value)
    missing = sorted(k for k in used if k not in MESSAGES)
    assert missing == []


def test_pages_pass_no_literal_text_to_streamlit():
    """User-visible text goes through the translation table, never a literal in a st.* call."""
    offenders = []
    text_calls = {
        "title",
        "header",
        "subheader",
        "markdown",
        "write",
        "caption",
        "info",
        "warning",
        "error",
        "success",
        "button",
        "text_input",
        "selectbox",
        "radio",
        "file_uploader",
        "number_input",
        "slider",
        "checkbox",
        "expander",
        "metric",
        "toggle",
        "text",
        "tabs",
    }
    for path in UI_FILES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in text_calls:
                if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                    if node.args[0].value.strip(string.punctuation + string.whitespace):
                        offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


def test_pages_are_thin():
    for path in UI_FILES:
        assert len(path.read_text(encoding="utf-8").splitlines()) <= 200, path


def test_tr_falls_back_safely():
    assert tr("no.such.key", "zh") == "no.such.key"
    assert "{name}" in tr("err.dataset_exists", "en")
