"""``python -m core check``: the workspace's integrity check (``core.runs.integrity``), as the app runs it
at start-up. Prints each problem with what to do and exits 1 when there is any; repairs nothing."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from core.i18n import cli_language, render, tr
from core.runs.integrity import check
from core.store.workspace import Workspace


def add_check_verb(verbs: Any, common: argparse.ArgumentParser) -> None:
    p = verbs.add_parser(
        "check",
        parents=[common],
        help="check the workspace (SQLite quick_check, run folders, image files); repairs nothing",
    )
    p.set_defaults(handler=cmd_check)


def cmd_check(args: argparse.Namespace, ws: Workspace) -> tuple[dict[str, Any], int]:
    lang = cli_language()
    problems = check(ws)
    if not args.json:
        for problem in problems:
            print(f"problem: {render(problem, lang)}", file=sys.stderr)
        if not problems:
            print(tr("cli.check_ok", lang, path=str(ws.root)))
    return {"workspace": str(ws.root), "problems": [{**p, "text": render(p, lang)} for p in problems]}, int(
        bool(problems)
    )
