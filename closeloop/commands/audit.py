"""``closeloop audit verify [--grievance ID]``: walk the hash chains of the event store."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from uuid import UUID

from api.catalogue import broken_link_text, t
from closeloop.commands import add_output_options


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("audit", help="audit the event store")
    audit_sub = parser.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    verify = audit_sub.add_parser(
        "verify", help="recompute every grievance's hash chain; exit 1 on the first broken link"
    )
    verify.add_argument("--grievance", type=UUID, help="check only this grievance id")
    add_output_options(verify, "print the report as JSON")
    verify.set_defaults(handler=run_verify)


def run_verify(args: argparse.Namespace) -> int:
    from closeloop.blobs import build_blob_store
    from closeloop.bootstrap import build_app

    app = build_app()
    blobs = build_blob_store()
    try:
        if args.grievance is not None:
            link = app.verify_grievance(args.grievance)
            checked, broken = 1, [] if link is None else [link]
        else:
            checked, broken = app.verify_all()
        # Every object an Attached event references must exist and still have its hash.
        objects, bad = app.verify_objects(blobs, args.grievance)
    finally:
        blobs.close()
        app.close()
    report = {
        "checked": checked,
        "intact": not broken and not bad,
        "broken": [dict(asdict(b), grievance_id=str(b.grievance_id)) for b in broken],
        "objects_checked": objects,
        "bad_objects": [dict(asdict(b), grievance_id=str(b.grievance_id)) for b in bad],
    }
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return 0 if report["intact"] else 1
    if not broken:
        print(t("cli.audit-intact", args.lang, checked=checked))
    expected, found = t("cli.audit-expected", args.lang), t("cli.audit-found", args.lang)
    for b in broken:
        why = broken_link_text(b, args.lang)
        line = t("cli.audit-broken", args.lang, **asdict(b), why=why)
        print(f"{line}\n  {expected}: {b.expected}\n  {found}: {b.found}", file=sys.stderr)
    if not bad:
        print(t("cli.audit-objects-intact", args.lang, checked=objects))
    for item in bad:
        why = t(f"integrity.{item.reason}", args.lang)
        print(t("cli.audit-object-bad", args.lang, **asdict(item), why=why), file=sys.stderr)
    return 0 if report["intact"] else 1
