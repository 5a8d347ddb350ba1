"""``closeloop what-if --from DAY --to DAY [--sla-profile NAME] [--proposal FILE]``: what a
proposed SLA profile and/or calendar would have done to a past period, per department,
next to what happened (the same answer as ``POST /v1/what-if``). Writes no event.

The proposal file is JSON: ``{"sla": {...}, "calendar": {...}}`` in the shapes of
``domain/policies/sla.json``'s profiles and ``calendar.json`` (what it does not name stays).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from api.catalogue import local_time, t
from closeloop.commands import add_output_options, subcommand, table

if TYPE_CHECKING:
    from api.catalogue import Lang
    from api.whatif_schemas import DepartmentWhatIfPublic, WhatIfPublic


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subcommand(
        sub,
        "what-if",
        "judge a past period's deadlines under a proposed SLA profile and/or calendar",
        run,
    )
    parser.add_argument("--from", dest="date_from", required=True, type=date.fromisoformat)
    parser.add_argument("--to", dest="date_to", required=True, type=date.fromisoformat)
    parser.add_argument("--sla-profile", help="a shipped profile to start from")
    parser.add_argument("--proposal", type=Path, help='JSON: {"sla": {...}, "calendar": {...}}')
    add_output_options(parser, "print the answer as JSON")


def run(args: argparse.Namespace) -> int:
    from pydantic import ValidationError as BadInput

    from api.catalogue import describe
    from api.whatif_schemas import WhatIfRequest, what_if_answer
    from closeloop.bootstrap import build_app
    from domain.errors import DomainError

    try:
        proposal: dict[str, Any] = (
            json.loads(args.proposal.read_text(encoding="utf-8")) if args.proposal else {}
        )
        body = WhatIfRequest.model_validate(
            {
                **proposal,
                "date_from": args.date_from,
                "date_to": args.date_to,
                "sla_profile": args.sla_profile or proposal.get("sla_profile"),
            }
        )
    except (OSError, ValueError, BadInput) as error:
        print(t("cli.error", args.lang, message=str(error)), file=sys.stderr)
        return 2
    app = build_app()
    try:
        answer = what_if_answer(app, body, args.lang)
    except DomainError as error:
        print(t("cli.error", args.lang, message=describe(error, args.lang)), file=sys.stderr)
        return 2
    finally:
        app.close()
    if args.json:
        print(answer.model_dump_json(indent=2))
    else:
        print(render(answer, args.lang))
    return 0


def render(answer: WhatIfPublic, lang: Lang) -> str:
    """A heading and one line per department: now and proposed side by side."""

    def w(key: str) -> str:
        return t(f"whatif.{key}", lang)

    counts = ("met", "missed", "pending", "response_rate")
    headers = [
        w("department"),
        w("dispatched"),
        *(f"{w('now')}·{w(c)}" for c in counts),
        *(f"{w('proposed')}·{w(c)}" for c in counts),
    ]

    def line(row: DepartmentWhatIfPublic) -> list[object]:
        def cells(tally: Any) -> list[object]:
            rate = tally.response_rate
            return [tally.met, tally.missed, tally.pending, "–" if rate is None else f"{rate:.1%}"]

        return [row.name or w("total"), row.now.dispatched, *cells(row.now), *cells(row.proposed)]

    heading = t(
        "whatif.heading",
        lang,
        date_from=answer.date_from.isoformat(),
        date_to=answer.date_to.isoformat(),
        as_of=local_time(answer.as_of),
        profile=answer.sla_profile,
    )
    rows = [line(row) for row in answer.items] + [line(answer.total)]
    text = heading + "\n" + table(headers, rows, right=len(headers) - 1)
    moved = answer.routing
    if moved is not None:
        leads = [(i.name or i.department, i.now, i.proposed) for i in moved.items]
        text += "\n\n" + t("whatif.routing", lang, **moved.model_dump(exclude={"items"}))
        text += "\n" + table([w("department"), w("now"), w("proposed")], leads, right=2)
    return text
