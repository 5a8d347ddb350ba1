"""(7) Duplicate suggestions: precision and recall on the simulator's recurring places.

Known duplicates are generated from the simulator's data (``closeloop/dev/data/
simulator.json``: its weighted places, its category mix and texts): *incidents* (one
problem at one place) start at random over two weeks, and each is reported by one or
more citizens over the following hours (``closeloop.dev.simulator.incident_reports``).
Every report is filed through the application service (SQLite), the
``duplicate_candidates`` projection catches up, and the suggestions for it are asked the
way ``GET /v1/grievances/{id}/similar`` asks them (the read model, then
``domain.similarity``). The truth: the earlier reports of the same incident that are
still open.

As in a centre: an operator sometimes picks another category (``p_misclassified``) or
has not classified yet when looking (``p_unclassified``); some neighbours report from the
next grid of the same community; some reports come days later (outside the window);
grievances are closed after a while (withdrawn here), so they stop being candidates.

precision = suggestions that are true duplicates / all suggestions; recall = true
duplicates suggested / true duplicates open at the time. Baseline, same run and data:
the naive rule "every open grievance of the same community received within the window"
(no category, no score, no limit).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import benchlib

START = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
CITIZEN = {"channel": "hotline", "citizen_name": "张秀英", "citizen_phone": "13812345678"}


@dataclass
class Report:
    """One filed report of an incident, and what the bench knows about it."""

    incident: int
    at: datetime
    location: dict[str, str]
    category: str
    classify_first: bool
    gone_at: datetime
    grievance_id: UUID | None = None
    suggested: dict[str, list[str]] = field(default_factory=dict)  # by policy variant


def variants(shipped: Any) -> dict[str, Any]:
    """The shipped policy and a few stricter ones a city might choose instead."""
    from dataclasses import replace

    return {
        "shipped": shipped,
        "min_score_0.7": replace(shipped, min_score=0.7),
        "window_24h": replace(shipped, window=timedelta(hours=24)),
        "top_1": replace(shipped, limit=1),
    }


def plan(args: argparse.Namespace) -> list[Report]:
    from closeloop.dev.simulator import incident_reports

    rng = random.Random(args.seed)
    reports = []
    for incident, at, location, category in incident_reports(
        rng, START, days=args.days, per_day=args.incidents_per_day
    ):
        gone = at + timedelta(days=rng.expovariate(1 / args.open_days))
        reports.append(
            Report(
                incident=incident,
                at=at,
                location=location,
                category=category,
                classify_first=rng.random() >= args.p_unclassified,
                gone_at=gone,
            )
        )
    return sorted(reports, key=lambda r: r.at)


def misclassify(rng: random.Random, category: str, p: float) -> str:
    from closeloop.dev.simulator import sim_data

    if rng.random() >= p:
        return category
    others = [c.code for c in sim_data().categories if c.code != category]
    return rng.choice(others)


def run(args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    from domain.application import GrievanceApp
    from domain.model import Actor, Location, Role
    from domain.similarity import suggest
    from projections.queries import ReadModels
    from projections.runner import Projector

    rng = random.Random(args.seed + 1)
    reports = plan(args)
    operator = Actor("bench-operator", Role.OPERATOR)
    clock_now = [START]
    app = GrievanceApp(env, clock=lambda: clock_now[0])
    read = ReadModels.from_env(env)
    policy = app.policies.similarity
    policies = variants(policy)
    timings: list[float] = []
    withdrawals = sorted(range(len(reports)), key=lambda i: reports[i].gone_at)
    next_gone = 0
    try:
        with Projector(env, ["duplicate_candidates"]) as projector:
            for report in reports:
                while next_gone < len(withdrawals):
                    gone = reports[withdrawals[next_gone]]
                    if gone.gone_at > report.at:
                        break
                    next_gone += 1
                    if gone.grievance_id is not None:
                        clock_now[0] = gone.gone_at
                        app.withdraw_grievance(gone.grievance_id, operator, reason="已办结")
                clock_now[0] = report.at
                location = Location.from_dict(report.location)
                text = f"{report.category}：重复件基准"
                gid = app.receive_grievance(
                    operator, **CITIZEN, text=text, location=location
                ).grievance_id
                report.grievance_id = gid
                chosen = misclassify(rng, report.category, args.p_misclassified)
                if report.classify_first:
                    app.classify_grievance(gid, operator, category=chosen)
                projector.run_once()
                started = time.perf_counter()
                probe = read.similarity_place(gid)
                assert probe is not None
                candidates = read.duplicate_candidates(probe, policy)
                found = suggest(probe, candidates, policy)
                timings.append((time.perf_counter() - started) * 1000)
                for name, variant in policies.items():
                    chosen_ones = (
                        found if variant is policy else suggest(probe, candidates, variant)
                    )
                    report.suggested[name] = [s.candidate.grievance_id or "" for s in chosen_ones]
                if not report.classify_first:
                    app.classify_grievance(gid, operator, category=chosen)
    finally:
        read.close()
        app.close()
    return score(reports, policy.window, timings)


def rates(true_positive: int, suggested: int, expected: int) -> dict[str, Any]:
    return {
        "suggestions": suggested,
        "true_positives": true_positive,
        "precision": round(true_positive / suggested, 4) if suggested else 0.0,
        "recall": round(true_positive / expected, 4) if expected else 0.0,
    }


def score(reports: list[Report], window: timedelta, timings: list[float]) -> dict[str, Any]:
    """Per rule: suggestions, true positives, precision and recall over every report."""
    names = list(reports[0].suggested) if reports else []
    counts = {name: [0, 0] for name in [*names, "naive"]}  # true positives, suggestions
    expected = 0
    for i, report in enumerate(reports):
        earlier_open = [
            r for r in reports[:i] if r.gone_at > report.at and r.grievance_id is not None
        ]
        truth = {str(r.grievance_id) for r in earlier_open if r.incident == report.incident}
        expected += len(truth)
        naive = [
            str(r.grievance_id)
            for r in earlier_open
            if r.location["community"] == report.location["community"]
            and report.at - r.at <= window
        ]
        for name, suggested in [*report.suggested.items(), ("naive", naive)]:
            counts[name][0] += len(truth & set(suggested))
            counts[name][1] += len(suggested)
    return {
        "reports": len(reports),
        "incidents": len({r.incident for r in reports}),
        "true_pairs": expected,
        "rules": {name: rates(tp, n, expected) for name, (tp, n) in counts.items()},
        "query_ms_p50": round(benchlib.percentile(timings, 50), 3),
        "query_ms_p95": round(benchlib.percentile(timings, 95), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--incidents-per-day", type=float, default=12)
    parser.add_argument("--open-days", type=float, default=2.0, help="mean time open")
    parser.add_argument("--p-unclassified", type=float, default=0.25)
    parser.add_argument("--p-misclassified", type=float, default=0.08)
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()
    benchlib.quiet_logs()
    with tempfile.TemporaryDirectory() as tmp:
        env = benchlib.sqlite_env(Path(tmp) / "events.sqlite")
        started = time.perf_counter()
        result = run(args, env)
        result["seconds"] = round(time.perf_counter() - started, 1)
    rules = result["rules"]
    benchlib.print_table(
        f"Duplicate suggestions (SQLite): {result['reports']} reports of "
        f"{result['incidents']} incidents, {result['true_pairs']} true pairs",
        ["rule", "suggestions", "true", "precision", "recall"],
        [
            [
                name,
                r["suggestions"],
                r["true_positives"],
                f"{r['precision']:.3f}",
                f"{r['recall']:.3f}",
            ]
            for name, r in rules.items()
        ],
    )
    shipped, naive = rules["shipped"], rules["naive"]
    summary = {
        "precision": benchlib.figure(shipped["precision"], "share", naive["precision"] or None),
        "recall": benchlib.figure(shipped["recall"], "share", naive["recall"] or None),
        "query_p95": benchlib.figure(result["query_ms_p95"], "ms", None),
    }
    benchlib.write_result(
        "duplicates",
        summary,
        {"parameters": {k: v for k, v in vars(args).items()}, "sqlite": result},
    )


if __name__ == "__main__":
    main()
