"""House rules that keep the layers apart and every string translatable."""

import ast
import os
import string
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UI_FILES = sorted([ROOT / "streamlit_app.py", *(ROOT / "pages").glob("*.py"), *(ROOT / "ui").glob("*.py")])


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
        "toast",
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


# Modules that may import TensorFlow or Keras at module level: the engine's own parts, which the pages
# never import. Everything else imports them inside the functions that need them.
TENSORFLOW_MODULES = {
    "core.training.model",
    "core.training.callbacks",
    "core.training.augment",
    "core.training.distill",
    "core.training.foundation",
}
LIGHT_PAGES = ("dataset", "label", "train", "jobs")


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def test_only_engine_modules_import_tensorflow_at_module_level():
    heavy = set()
    for path in (ROOT / "core").rglob("*.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            if any(n.split(".")[0] in ("tensorflow", "keras") for n in names):
                heavy.add(_module_name(path))
    assert heavy <= TENSORFLOW_MODULES


def test_dataset_label_and_train_pages_never_load_tensorflow(tmp_path):
    """A fresh interpreter runs the app shell and the three light pages, then looks at sys.modules."""
    script = textwrap.dedent(
        f"""
        import sys
        from streamlit.testing.v1 import AppTest
        at = AppTest.from_file("streamlit_app.py", default_timeout=60).run()
        for page in [f"pages/{{p}}.py" for p in {LIGHT_PAGES!r}]:
            at.switch_page(page).run()
            assert not at.exception, (page, [e.value for e in at.exception])
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
        print("HEAVY", heavy[:5])
        sys.exit(1 if heavy else 0)
        """
    )
    env = {**os.environ, "LABELTUNE_HOME": str(tmp_path / "ws")}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def test_modules_the_light_pages_import_leave_tensorflow_out():
    """Every core and ui module the light pages import, directly or not, imported in a fresh interpreter.
    (Imports inside functions load when the function runs: a job's handler, in its worker process.)"""
    modules = set()
    todo = [ROOT / "streamlit_app.py", *(ROOT / "pages" / f"{p}.py" for p in LIGHT_PAGES)]
    while todo:
        tree = ast.parse(todo.pop().read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("core", "ui"):
                # ``from core.jobs import queue`` imports the module core.jobs.queue too
                named = [f"{node.module}.{a.name}" for a in node.names]
                for module in [
                    node.module,
                    *(m for m in named if (ROOT / Path(*m.split("."))).with_suffix(".py").exists()),
                ]:
                    if module not in modules:
                        modules.add(module)
                        path = ROOT / Path(*module.split("."))
                        todo.append(
                            path.with_suffix(".py") if path.with_suffix(".py").exists() else path / "__init__.py"
                        )
    assert {"core.training.jobs", "core.datasets.jobs", "core.jobs.queue", "core.runs.store"} <= modules
    script = f"import sys\nfor m in {sorted(modules)!r}: __import__(m)\n" + (
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')]\nprint(heavy[:5])\nsys.exit(bool(heavy))"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]


# The stages of core, lowest first. A module may import its own stage and the stages below it, never one
# above: the store knows nothing of jobs, the run store nothing of datasets, datasets nothing of training,
# training nothing of evaluation... ``core.errors`` and ``core.i18n`` are below everything.
STAGES = ("store", "jobs", "runs", "datasets", "training", "audit", "evaluation", "prediction", "export", "cli")
BASE = {"errors", "i18n"}


def _stage(module: str) -> int | None:
    """The stage index of a ``core.`` module, None for the base modules (and ``core`` itself)."""
    parts = module.split(".")
    if parts[0] != "core" or len(parts) < 2 or parts[1] in BASE or parts[1] in ("__main__", "__init__"):
        return None
    return STAGES.index(parts[1])


def _imports(path: Path) -> list[tuple[str, int]]:
    """Every ``core`` module a file imports, at module level or inside a function, with its line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "core"]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "core":
            base = node.module or ""
            # ``from core.training import jobs`` names the module core.training.jobs
            found += [(f"{base}.{a.name}" if base.count(".") == 1 else base, node.lineno) for a in node.names]
    return found


def upward_imports(root: Path) -> list[str]:
    offenders = []
    for path in sorted((root / "core").rglob("*.py")):
        own = _stage(_module_name(path) if root == ROOT else ".".join(path.relative_to(root).with_suffix("").parts))
        if own is None:
            continue
        for module, line in _imports(path):
            target = _stage(module)
            if target is not None and target > own:
                offenders.append(f"{path.relative_to(root)}:{line} imports {module} ({STAGES[target]} > {STAGES[own]})")
    for path in UI_FILES:
        offenders += [f"{path.name}:{line} imports {m}" for m, line in _imports(path) if m.startswith("core.cli")]
    return offenders


def test_every_stage_imports_only_its_own_and_lower_stages():
    assert upward_imports(ROOT) == []


def test_an_upward_import_is_caught_even_inside_a_function(tmp_path):
    """The rule above, on a copy of core with one import added inside a function of datasets."""
    import shutil

    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "core", copy / "core", ignore=shutil.ignore_patterns("__pycache__", "*.h5", "*.jpg"))
    editing = copy / "core" / "datasets" / "editing.py"
    editing.write_text(
        editing.read_text(encoding="utf-8") + "\n\ndef _peek():\n    from core.training import engine\n",
        encoding="utf-8",
    )
    found = upward_imports(copy)
    assert len(found) == 1 and "core/datasets/editing.py" in found[0] and "core.training.engine" in found[0]


def test_ci_runs_the_readmes_test_command_and_the_readme_has_two_quick_start_commands():
    """The README's quick start is two commands (install and start the app; install and run the tests),
    and `.ci/run` runs the second exactly."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick_start = readme.split("## ", 2)[1]  # the first section
    commands = [block.split("```", 1)[0].strip() for block in quick_start.split("```bash\n")[1:]]
    assert len(commands) == 2 and all("\n" not in c for c in commands), commands
    assert commands[0].endswith("streamlit run streamlit_app.py")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert commands[1] in ci, commands[1]
    assert all(c in (ROOT / "README.zh-CN.md").read_text(encoding="utf-8") for c in commands)  # the Chinese one too


# Imports that may sit inside a function: TensorFlow, Keras and KerasHub (the light pages must not load
# them); the optional TFLite runtimes that the export's checks try in turn (each may be missing) and ONNX
# Runtime (predict.py runs with whichever one runtime its user installed); and
# Optuna and scikit-learn, whose imports cost the CLI's every start and the light pages' first visit about
# a second each (BENCHMARKS.md, "Suite and start-up") for work only a search, an audit or Evaluate does.
FUNCTION_LEVEL_ALLOWED = {
    "tensorflow", "keras", "keras_hub", "ai_edge_litert", "tflite_runtime", "onnxruntime", "optuna", "sklearn",
}  # fmt: skip
OUR_FILES = ("core", "ui", "pages", "streamlit_app.py")


def _core_modules(root: Path) -> dict[str, Path]:
    return {".".join(p.relative_to(root).with_suffix("").parts): p for p in (root / "core").rglob("*.py")}


def _known(modules: dict[str, Path], name: str) -> str | None:
    """``name`` as one of ``modules`` (a package as its ``__init__``), else None."""
    return name if name in modules else f"{name}.__init__" if f"{name}.__init__" in modules else None


def _targets(modules: dict[str, Path], node: ast.AST) -> set[str]:
    """The core modules an import statement imports (``from core.x import y``: the module core.x.y when
    there is one, else core.x)."""
    if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "core":
        found = {_known(modules, f"{node.module}.{a.name}") or _known(modules, node.module or "") for a in node.names}
    elif isinstance(node, ast.Import):
        found = {_known(modules, a.name) for a in node.names if a.name.split(".")[0] == "core"}
    else:
        found = set()
    return {m for m in found if m}


def tensorflow_loading_modules(root: Path) -> set[str]:
    """The core modules whose import loads TensorFlow: those of :data:`TENSORFLOW_MODULES` (Keras layers,
    losses and callbacks of our own, which subclass Keras' classes) and every module that imports one of
    them at module level. Importing one of these is importing Keras."""
    modules = _core_modules(root)
    at_top = {m: set().union(*(_targets(modules, n) for n in ast.parse(p.read_text(encoding="utf-8")).body))
              for m, p in modules.items()}  # fmt: skip
    heavy = set(TENSORFLOW_MODULES)
    while grown := {m for m, targets in at_top.items() if m not in heavy and targets & heavy}:
        heavy |= grown
    return heavy


def function_level_imports(root: Path) -> list[str]:
    """Every import inside a function (or method) of our code other than :data:`FUNCTION_LEVEL_ALLOWED` and
    our modules that load Keras (:func:`tensorflow_loading_modules`): any other LabelTune module imported
    there hides a dependency or a cycle, and anything else belongs at the top of its module."""
    modules, heavy = _core_modules(root), tensorflow_loading_modules(root)
    offenders = []
    files = [p for name in OUR_FILES for p in ([root / name] if name.endswith(".py") else (root / name).rglob("*.py"))]
    for path in sorted(files):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    names = [node.module or "."]
                else:
                    continue
                if names[0].split(".")[0] == "core" and _targets(modules, node) <= heavy:
                    continue  # importing Keras, through our module that subclasses its classes
                offenders += [
                    f"{path.relative_to(root)}:{node.lineno} imports {name} in {function.name}()"
                    for name in names
                    if name.split(".")[0] not in FUNCTION_LEVEL_ALLOWED
                ]
    return sorted(set(offenders))


def test_function_level_imports_are_for_tensorflow_keras_and_kerashub_only():
    assert function_level_imports(ROOT) == []


def import_cycles(root: Path) -> list[list[str]]:
    """The cycles among core's modules (each a strongly connected set of two or more), counting every
    import, at module level or inside a function, and ``from core.x import y`` as an import of the module
    ``core.x.y`` when that is a module."""
    modules = _core_modules(root)
    graph = {
        module: {t for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))) for t in _targets(modules, node)}
        - {module}
        for module, path in modules.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_no_import_cycles_in_core():
    assert import_cycles(ROOT) == []


def test_an_added_function_level_import_or_cycle_is_caught(tmp_path):
    """Both rules above, on a copy of our code with a function-level import of a LabelTune module added,
    which also closes a cycle (core.store.workspace -> core.jobs.store -> core.store.workspace)."""
    import shutil

    copy = tmp_path / "repo"
    for name in OUR_FILES:
        source = ROOT / name
        ignore = shutil.ignore_patterns("__pycache__", "*.h5", "*.jpg", "*.json")
        if source.is_dir():
            shutil.copytree(source, copy / name, ignore=ignore)
        else:
            shutil.copy(source, copy / name)
    before = (function_level_imports(copy), import_cycles(copy))
    workspace = copy / "core" / "store" / "workspace.py"
    workspace.write_text(
        workspace.read_text(encoding="utf-8") + "\n\ndef _peek():\n    from core.jobs.store import Job\n",
        encoding="utf-8",
    )
    added = [f for f in function_level_imports(copy) if f not in before[0]]
    assert len(added) == 1 and "core/store/workspace.py" in added[0] and "core.jobs.store" in added[0], added
    assert ["core.jobs.store", "core.store.workspace"] in [c for c in import_cycles(copy) if c not in before[1]]


# The modules that speak SQL: the store layer, and each stage's data-access module(s). Everything else calls
# their functions.
SQL_MODULES = {
    "core/store/db.py", "core/store/workspace.py", "core/store/move.py",
    "core/jobs/store.py", "core/jobs/queue.py", "core/runs/store.py", "core/runs/integrity.py",
    "core/datasets/catalog.py", "core/datasets/editing.py", "core/datasets/gallery.py", "core/datasets/ingest.py",
    "core/training/store.py", "core/audit/store.py",
}  # fmt: skip
# What only core/store/db.py may say: SQL one database has and the other lacks (the drivers: imports).
DIALECT = ("PRAGMA", "BEGIN", "json_extract", "json_each", "json_set", "jsonb", "INSERT OR", "LEAST(", "ILIKE",
           "advisory", "MIN(width", "LIMIT -1")  # fmt: skip
DRIVERS = ("sqlite3", "psycopg", "psycopg_pool")


def _sql_calls(tree: ast.AST) -> list[ast.Call]:
    return [
        node for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("execute", "executemany", "insert") and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "conn"
    ]  # fmt: skip


def _text_of(node: ast.AST) -> str:
    return " ".join(n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str))


def test_sql_lives_in_the_store_layer_and_each_stages_data_access_modules():
    """SQL is spoken in the listed modules only, and what differs between SQLite and PostgreSQL (the drivers,
    the write lock, JSON and other spellings) in core/store/db.py alone: every other module runs on both."""
    speaking, dialect = set(), set()
    for path in [*(ROOT / "core").rglob("*.py"), *UI_FILES]:
        name, tree = str(path.relative_to(ROOT)), ast.parse(path.read_text(encoding="utf-8"))
        calls = _sql_calls(tree)
        if calls:
            speaking.add(name)
        if name == "core/store/db.py":
            continue
        dialect |= {f"{name}: {w}" for call in calls if call.args for w in DIALECT if w in _text_of(call.args[0])}
        for node in ast.walk(tree):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])  # fmt: skip
            dialect |= {f"{name}: import {m}" for m in modules if m.split(".")[0] in DRIVERS}
    assert speaking <= SQL_MODULES, f"SQL outside the data-access modules: {sorted(speaking - SQL_MODULES)}"
    allowed = {"core/store/workspace.py: import sqlite3"}  # the backup before a migration: SQLite's backup API
    assert dialect <= allowed, f"one database's words outside core/store/db.py: {sorted(dialect - allowed)}"
