"""``python -m core check``: the workspace's integrity check (``core.runs.integrity``), as the app runs it
at start-up. Prints each problem with what to do and exits 1 when there is any; repairs nothing.

``python -m core move-store --to URL``: the store moved to PostgreSQL (or back, ``--to sqlite``;
``core.store.move``)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from core.i18n import cli_language, render, tr
from core.jobs.store import refuse_live_jobs
from core.runs.integrity import check
from core.store.db import DATABASE_ENV
from core.store.move import move_store
from core.store.workspace import Workspace


def add_check_verb(verbs: Any, common: argparse.ArgumentParser) -> None:
    p = verbs.add_parser(
        "check",
        parents=[common],
        help="check the workspace (SQLite quick_check, run folders, image files); repairs nothing",
    )
    p.set_defaults(handler=cmd_check)
    p = verbs.add_parser(
        "move-store",
        parents=[common],
        help="copy the workspace's store to PostgreSQL (several machines) or back to its SQLite file;"
        " the old store is kept as a backup and marked moved",
    )
    p.add_argument(
        "--to",
        required=True,
        metavar="URL",
        help="postgresql://USER@HOST/DB (an empty database), or sqlite for the workspace's own file",
    )
    p.set_defaults(handler=cmd_move_store)


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


def cmd_move_store(args: argparse.Namespace, ws: Workspace) -> dict[str, Any]:
    moved = move_store(ws, args.to, refuse_if=refuse_live_jobs)
    if not args.json:
        lang = cli_language()
        rows = sum(moved["rows"].values())
        print(tr("cli.store_moved", lang, source=moved["from"], target=moved["to"], rows=rows, env=DATABASE_ENV))
    return moved
