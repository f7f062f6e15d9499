"""``python -m core audit DATASET``: probable label errors, near-duplicates (leaks and conflicts between
splits) and outliers, from the audit job (``core.audit``), which the app shows too; ``--json`` prints
the lists, each most suspicious first."""

from __future__ import annotations

import argparse
from typing import Any

from core.audit.config import AuditConfig, field_help
from core.audit.jobs import AUDIT
from core.audit.store import AuditReport, latest_audit, report
from core.cli.jobs import add_detach_flag, job_json, run_here
from core.cli.training import add_field_flag
from core.i18n import cli_language, tr
from core.jobs.store import JobStatus
from core.runs.config import flag_name
from core.store.workspace import Workspace

SHOWN = 10  # findings of each kind printed as text (--json has them all)


def add_audit_verb(verbs: Any, common: argparse.ArgumentParser) -> None:
    p = verbs.add_parser(
        "audit", parents=[common], help="find probable label errors, near-duplicates across splits, and outliers"
    )
    p.add_argument("dataset")
    for f in AuditConfig.user_fields():
        add_field_flag(p, f, f.default, field_help(f.name, "en").replace("%", "%%") + " (default: %(default)s)",
                       [flag_name(f)])  # fmt: skip
    add_detach_flag(p)
    p.set_defaults(handler=cmd_audit)


def cmd_audit(args: argparse.Namespace, ws: Workspace) -> dict[str, Any]:
    config = AuditConfig(args.dataset, **{f.name: getattr(args, f.name) for f in AuditConfig.user_fields()})
    lang = cli_language()
    job = run_here(ws, AUDIT, config, args, dedupe=f"audit|{config.dataset}")
    if job.status is not JobStatus.COMPLETED:
        if not args.json:
            print(tr("cli.job_submitted", lang, job=job.id, kind=job.kind, status=tr(f"status.{job.status}", lang)))
        return job_json(job, lang)
    found = report(ws, args.dataset, latest_audit(ws, args.dataset))
    assert found is not None  # the job just stored it
    if not args.json:
        _print(found, lang)
    return found.to_json()


def _print(found: AuditReport, lang: str) -> None:
    print(tr("cli.audit_summary", lang, images=len(found.images), issues=len(found.label_issues),
             pairs=len(found.near_duplicates), outliers=len(found.outliers),
             seconds=round(found.audit.seconds, 1)))  # fmt: skip
    data = found.to_json()
    if data["label_issues"]:
        print(tr("cli.audit_label_issues", lang))
        for i in data["label_issues"][:SHOWN]:
            print(f"  {i['score']:.3f}  #{i['image']}  {i['file']}  {i['given']} -> {i['suggested']}")
    if data["near_duplicates"]:
        print(tr("cli.audit_near_duplicates", lang))
        for p in data["near_duplicates"][:SHOWN]:
            where = " / ".join(f"{s or '-'}:{label or '-'}" for s, label in zip(p["splits"], p["labels"], strict=True))
            print(f"  {p['similarity']:.3f}  {p['files'][0]}  {p['files'][1]}  ({where})")
    if data["outliers"]:
        print(tr("cli.audit_outliers", lang))
        for o in data["outliers"][:SHOWN]:
            print(f"  {o['score']:.3f}  #{o['image']}  {o['file']}")
