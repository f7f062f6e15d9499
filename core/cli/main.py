"""``python -m core``: the command-line interface over the same core as the app.

Every verb takes ``--workspace`` and ``--json``. Domain errors print one line
on stderr (no traceback) and exit with the error's code: 3 for a rejected
archive, 1 for other problems, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from core.cli.audit import add_audit_verb
from core.cli.check import add_check_verb
from core.cli.datasets import add_dataset_verbs
from core.cli.evaluation import add_evaluation_verbs
from core.cli.export import add_export_verbs
from core.cli.foundation import add_foundation_verbs
from core.cli.jobs import add_job_verbs
from core.cli.planning import add_planning_verbs
from core.cli.training import add_training_verbs
from core.cli.tune import add_tune_verb
from core.errors import LabelTuneError
from core.i18n import cli_language
from core.store.workspace import Workspace


def _common(default: Any) -> argparse.ArgumentParser:
    """``--workspace``, ``--database`` and ``--json``, accepted before or after the verb."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--workspace", default=default, help="workspace folder (default: $LABELTUNE_HOME or ./workspace)"
    )
    common.add_argument(
        "--database",
        default=default,
        metavar="URL",
        help="the store's PostgreSQL database, postgresql://USER@HOST/DB, for workers on several machines"
        " (default: $LABELTUNE_DATABASE_URL, else the SQLite file in the workspace)",
    )
    common.add_argument("--json", action="store_true", default=default, help="print one JSON object instead of text")
    common.add_argument(
        "--verbose",
        action="store_true",
        default=default,
        help="also show what TensorFlow and image libraries print (kept in WORKSPACE/logs/cli-native.log otherwise)",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    # The verbs' copies must not overwrite a value given before the verb, hence SUPPRESS.
    common = _common(argparse.SUPPRESS)
    parser = argparse.ArgumentParser(prog="python -m core", description="LabelTune, headless.", parents=[_common(None)])
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    add_dataset_verbs(verbs, common)
    add_audit_verb(verbs, common)
    add_training_verbs(verbs, common)
    add_planning_verbs(verbs, common)
    add_tune_verb(verbs, common)
    add_foundation_verbs(verbs, common)
    add_evaluation_verbs(verbs, common)
    add_export_verbs(verbs, common)
    add_job_verbs(verbs, common)
    add_check_verb(verbs, common)
    return parser


NATIVE_LOG = "cli-native.log"


@contextlib.contextmanager
def native_stderr_to(path: Path | None) -> Iterator[None]:
    """With a path, the process's stderr (file descriptor 2, where TensorFlow's start-up lines and
        libjpeg's "Premature end of JPEG data" go) writes to that file instead, while Python's ``sys.stderr``
        (LabelTune's messages, progress bars, tracebacks) still reaches the terminal. None, or a caller that has
    replaced ``sys.stderr`` (an embedding program, pytest's capture): nothing changes."""
    if path is None or sys.stderr is not sys.__stderr__:  # called in a process that captures stderr itself
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    terminal = os.dup(2)
    log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 2)
    os.close(log)
    python_stderr = sys.stderr
    sys.stderr = os.fdopen(os.dup(terminal), "w", buffering=1, encoding="utf-8", errors="backslashreplace")
    try:
        yield
    finally:
        sys.stderr.flush()
        sys.stderr.close()
        sys.stderr = python_stderr
        os.dup2(terminal, 2)
        os.close(terminal)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.json = bool(args.json)
    args.verbose = bool(args.verbose)
    handler: Callable[[argparse.Namespace, Workspace], Any] = args.handler
    code = 0
    try:
        ws = Workspace.open(args.workspace, args.database)
        # Without --verbose, what C and C++ libraries write to stderr goes to a log file; with --json,
        # stdout holds the one JSON object alone: anything a library prints there (Keras' "Downloading
        # data from ...") goes to stderr instead.
        native = None if args.verbose else ws.root / "logs" / NATIVE_LOG
        with (
            native_stderr_to(native),
            contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext(),
        ):
            payload = handler(args, ws)
        if isinstance(payload, tuple):  # (payload, exit code): a run that failed still reports itself
            payload, code = payload
    except LabelTuneError as exc:
        print(f"error: {exc.message(cli_language())}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the output was piped into a command that stopped reading (head)
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silences the interpreter's final flush
        return 0
    if args.json:
        print(json.dumps(payload, ensure_ascii=False))
    return code
