"""The relay's tracking on PostgreSQL: same schema as the event store, survives restarts."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from domain.application import GrievanceApp
from tests.conftest import OPERATOR, PG_DB, PG_HOST, PG_PORT, PG_USER, make_grievance
from tests.support.workflows import FakeClient
from workflows.relay import Partition, Relay, tracking_recorder

pytestmark = pytest.mark.postgres


def pg_env(schema: str) -> dict[str, str]:
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": PG_DB,
        "POSTGRES_HOST": PG_HOST,
        "POSTGRES_PORT": str(PG_PORT),
        "POSTGRES_USER": PG_USER,
        "POSTGRES_PASSWORD": "",
        "POSTGRES_SCHEMA": schema,
        "POSTGRES_POOL_SIZE": "2",
    }


async def test_tracking_lives_in_the_event_store_schema_and_survives_a_restart(
    pg_schema: str,
) -> None:
    env = pg_env(pg_schema)
    app = GrievanceApp(env)
    client = FakeClient()

    async def connect() -> Any:
        return client

    try:
        for _ in range(3):
            gid = make_grievance(app)
            app.classify_grievance(gid, OPERATOR, category="PM01")
            app.dispatch_grievance(gid, OPERATOR)
        first = Relay(app, tracking_recorder(env), connect, task_queue="tq")
        await first.run_once()
        top = app.recorder.max_notification_id()
        assert first.position() == top

        again = Relay(app, tracking_recorder(env), connect, task_queue="tq")
        assert again.position() == top
        assert await again.run_once() == 0
        assert len(client.calls) == 3

        other = Relay(
            app, tracking_recorder(env), connect, task_queue="tq", partition=Partition(1, 2)
        )
        assert other.position() == 0  # a partition has its own key
    finally:
        app.close()
    with psycopg.connect(host=PG_HOST, port=PG_PORT, dbname=PG_DB, user=PG_USER) as conn:
        rows = conn.execute(
            f'SELECT application_name, notification_id FROM "{pg_schema}".relay_tracking '
            "WHERE application_name LIKE 'Grievances/%'"
        ).fetchall()
    assert rows == [("Grievances/relay", top)]
