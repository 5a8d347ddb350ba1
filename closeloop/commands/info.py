"""``closeloop info``: what this process would connect to, and the policies it loaded."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("info", help="show settings, event store and loaded policies")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from closeloop.bootstrap import build_app
    from closeloop.settings import get_settings
    from domain.policies.coverage import calendar_coverage

    settings = get_settings()
    app = build_app(settings)
    policies = app.policies
    coverage = calendar_coverage(policies.sla, app.now())
    print(
        json.dumps(
            {
                "event_store": "postgresql"
                if settings.uses_postgres
                else str(settings.sqlite_path),
                "sla_profile": policies.sla.profile.name,
                "calendar": {
                    "covered_years": coverage.covered_years,
                    "deadlines_reach": coverage.horizon.date().isoformat(),
                    "years_without_holiday_data": coverage.uncovered_years,
                },
                "categories": len(policies.categories.leaves()),
                "departments": len(policies.directory.departments),
                "notification_log_max_id": app.recorder.max_notification_id(),
                "temporal": f"{settings.temporal_address}/{settings.temporal_namespace}",
                "blob_store": str(settings.blob_path)
                if settings.blob_store == "files"
                else f"s3://{settings.s3_bucket}/{settings.s3_prefix}"
                f" at {settings.s3_endpoint_url or 'AWS'}",
            },
            ensure_ascii=False,
            indent=2,
        )
    )
    app.close()
    return 0
