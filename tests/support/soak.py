"""An intake soak (issue 22): N clients file grievances over HTTP for a fixed time, and
every request must be accounted for.

Each client files one grievance after another, each with its own ``Idempotency-Key``,
and now and then:

- pauses for 4.5–5 s before its next request, so connections are reused right at
  httpx's pool expiry (5 s), where uvicorn's old keep-alive of 5 s closed them under
  the client (the resets of issue 22);
- loses the answer on purpose (a 1 ms read timeout on the first attempt: the request
  was sent and the API may record it) and retries, as a client whose connection was
  reset would.

Every retry (deliberate or not) goes through ``send_retrying`` with the same key. The
report tells the transport errors the soak caused apart from the ones it did not
(``unexplained``), the keys that never got an answer, and the grievance each key was
answered with; the caller compares that with the event store.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from closeloop.dev.simulator import new_grievance_body, send_retrying

INTAKE = "/v1/grievances"


@dataclass
class SoakReport:
    clients: int
    seconds: float
    keys: int = 0  # distinct Idempotency-Keys sent (one per grievance filed)
    answered: dict[str, str] = field(default_factory=dict)  # key → grievance id
    disagreeing: list[str] = field(default_factory=list)  # a key answered with two ids
    statuses: Counter[int] = field(default_factory=Counter)
    cut_short: int = 0  # first attempts whose answer was lost on purpose
    retried: int = 0  # transport errors retried with the same key (cut short or not)
    unexplained: list[str] = field(default_factory=list)  # not caused by the soak
    gave_up: list[str] = field(default_factory=list)  # no answer after every attempt
    idle_reuses: int = 0  # requests sent after a 4.5–5 s pause
    latencies: list[float] = field(default_factory=list)

    @property
    def distinct_ids(self) -> int:
        return len(set(self.answered.values()))

    def summary(self) -> dict[str, object]:
        ordered = sorted(self.latencies)
        return {
            "clients": self.clients,
            "seconds": self.seconds,
            "keys": self.keys,
            "answered": len(self.answered),
            "distinct_ids": self.distinct_ids,
            "statuses": dict(self.statuses),
            "cut_short": self.cut_short,
            "retried": self.retried,
            "unexplained": len(self.unexplained),
            "gave_up": len(self.gave_up),
            "idle_reuses": self.idle_reuses,
            "p50_ms": round(ordered[len(ordered) // 2] * 1000, 1) if ordered else None,
            "p99_ms": round(ordered[int(len(ordered) * 0.99)] * 1000, 1) if ordered else None,
        }


async def run_soak(
    base_url: str,
    token: str,
    *,
    clients: int = 16,
    seconds: float = 20.0,
    cut_short_every: int = 10,
    idle_share: float = 0.05,
    seed: int = 22,
) -> SoakReport:
    report = SoakReport(clients=clients, seconds=seconds)
    limits = httpx.Limits(
        max_connections=clients, max_keepalive_connections=clients, keepalive_expiry=5.0
    )
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, timeout=60.0, limits=limits) as client:
        stop_at = time.monotonic() + seconds

        def not_ours(error: BaseException) -> None:
            report.retried += 1
            report.unexplained.append(repr(error))

        def answer(key: str, response: httpx.Response) -> None:
            report.statuses[response.status_code] += 1
            if response.status_code != 201:
                return
            gid = str(response.json()["id"])
            if report.answered.setdefault(key, gid) != gid:
                report.disagreeing.append(key)

        async def one_client(index: int) -> None:
            rng = random.Random(f"{seed}/{index}")
            filed = 0
            while time.monotonic() < stop_at:
                if rng.random() < idle_share:
                    await asyncio.sleep(rng.uniform(4.5, 5.0))
                    report.idle_reuses += 1
                body, _ = new_grievance_body(rng)
                key = str(uuid.uuid4())
                headers = auth | {"Idempotency-Key": key}
                report.keys += 1
                filed += 1
                started = time.perf_counter()
                if filed % cut_short_every == 0:
                    report.cut_short += 1
                    try:
                        lost = await client.post(
                            INTAKE,
                            json=body,
                            headers=headers,
                            timeout=httpx.Timeout(60.0, read=0.001),
                        )
                        answer(key, lost)  # answered within 1 ms after all
                    except httpx.TransportError:
                        report.retried += 1
                try:
                    response = await send_retrying(
                        client,
                        "POST",
                        INTAKE,
                        json=body,
                        headers=headers,
                        on_transport_error=not_ours,
                    )
                except httpx.TransportError as error:
                    report.gave_up.append(f"{key}: {error!r}")
                    continue
                report.latencies.append(time.perf_counter() - started)
                answer(key, response)

        await asyncio.gather(*(one_client(i) for i in range(clients)))
    return report


def grievances_in_store(var_dir: Path) -> set[str]:
    """Ids of the grievances the SQLite event store holds (one Received event each)."""
    with sqlite3.connect(var_dir / "events.sqlite") as db:
        rows = db.execute(
            "SELECT originator_id FROM stored_events WHERE topic LIKE ?",
            ("%:Grievance.Received",),
        ).fetchall()
    return {str(uuid.UUID(originator_id)) for (originator_id,) in rows}
